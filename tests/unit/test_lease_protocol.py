"""The client's I/O-free Lease protocol (client/_lease_protocol.py), driven by hand on a fake clock.

No server, no stream: each test feeds the protocol the responses a server would send, at times
it picks, and checks what the protocol decides.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from workflowstate.client import LeaseLostReason, WorkflowStateError
from workflowstate.client._lease_protocol import KEEPALIVES_PER_TTL, LeaseProtocol, LeaseTerms
from workflowstate import v1 as pb

TTL = 3.0


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def terms(wait_timeout: timedelta | None = None) -> LeaseTerms:
    return LeaseTerms(key="k", ttl=timedelta(seconds=TTL), wait_timeout=wait_timeout, holder="test")


def granted(token: int = 7) -> pb.LeaseResponse:
    response = pb.LeaseResponse()
    response.granted.key = "k"
    response.granted.fencing_token = token
    response.granted.expire_time.seconds = 1_700_000_000
    return response


def kept_alive(seconds: int = 1_700_000_010) -> pb.LeaseResponse:
    response = pb.LeaseResponse()
    response.kept_alive.expire_time.seconds = seconds
    return response


def lost(reason: int = pb.LEASE_LOST_REASON_EXPIRED) -> pb.LeaseResponse:
    return pb.LeaseResponse(lost=pb.LeaseLost(reason=reason, message="gone"))


def held(clock: Clock) -> LeaseProtocol:
    protocol = LeaseProtocol(terms(), clock=clock)
    protocol.acquire()
    protocol.granted(granted())
    return protocol


def test_unset_wait_timeout_waits_forever_and_zero_tries_once() -> None:
    assert not LeaseProtocol(terms()).acquire().acquire.HasField("wait_timeout")
    once = LeaseProtocol(terms(timedelta(0))).acquire().acquire
    assert once.HasField("wait_timeout") and once.wait_timeout.ToTimedelta() == timedelta(0)


def test_the_grant_gives_the_fencing_token_and_expiry() -> None:
    protocol = held(Clock())
    assert protocol.fencing_token == 7
    assert protocol.expire_time is not None and protocol.expire_time.timestamp() == 1_700_000_000
    assert not protocol.finished and protocol.lost_reason is None


@pytest.mark.parametrize("first", [None, kept_alive(), lost()], ids=["stream-ended", "kept-alive", "lost"])
def test_a_first_response_that_is_not_a_grant_is_an_error(first: pb.LeaseResponse | None) -> None:
    protocol = LeaseProtocol(terms(), clock=Clock())
    with pytest.raises(WorkflowStateError, match="not a grant"):
        protocol.granted(first)
    assert protocol.fencing_token == 0, "nothing granted"


def test_a_keepalive_is_due_well_before_the_ttl() -> None:
    clock = Clock()
    protocol = held(clock)
    wait = protocol.seconds_to_next_tick()
    assert wait == pytest.approx(TTL / KEEPALIVES_PER_TTL)
    assert wait is not None and wait < TTL
    assert protocol.tick() is None, "not due yet"
    clock.now += wait
    request = protocol.tick()
    assert request is not None and request.WhichOneof("kind") == "keep_alive"
    assert protocol.tick() is None, "one keepalive per interval"


def test_the_deadline_counts_from_when_the_keepalive_was_sent_not_answered() -> None:
    clock = Clock()
    protocol = held(clock)
    clock.now += 1.0
    assert protocol.tick() is not None  # sent at 101
    clock.now += 1.5  # a slow answer, at 102.5
    protocol.receive(kept_alive())
    # Deadline 101 + ttl = 104, not 102.5 + ttl: the server cannot have extended it later than the send.
    clock.now = 104.0 - 1e-6
    assert protocol.lost_reason is None
    while protocol.tick() is not None:  # keepalives due in between, unanswered
        pass
    assert protocol.lost_reason is None, "still within the deadline"
    clock.now = 104.0
    assert protocol.tick() is None
    assert protocol.lost_reason is LeaseLostReason.DEADLINE_PASSED


def test_each_answer_extends_the_deadline_from_its_own_send() -> None:
    clock = Clock()
    protocol = held(clock)  # deadline 103
    clock.now += 1.0
    protocol.tick()  # sent at 101 -> deadline 104
    clock.now += 1.0
    protocol.tick()  # sent at 102 -> deadline 105
    protocol.receive(kept_alive())
    protocol.receive(kept_alive())
    clock.now = 104.5
    assert protocol.tick() is not None and protocol.lost_reason is None, "the deadline is the later send's"


def test_once_the_deadline_passed_no_keepalive_is_sent_and_no_tick_is_asked() -> None:
    clock = Clock()
    protocol = held(clock)
    clock.now += TTL
    assert protocol.tick() is None
    assert protocol.lost_reason is LeaseLostReason.DEADLINE_PASSED
    clock.now += TTL
    assert protocol.tick() is None
    assert protocol.seconds_to_next_tick() is None
    protocol.receive(kept_alive())
    assert protocol.lost_reason is LeaseLostReason.DEADLINE_PASSED, "an answer after the loss does not revive it"


def test_a_loss_is_reported_once_with_its_first_reason() -> None:
    protocol = held(Clock())
    protocol.receive(lost(pb.LEASE_LOST_REASON_TAKEN_OVER))
    assert protocol.lost_reason is LeaseLostReason.TAKEN_OVER
    assert protocol.finished
    protocol.stream_ended()
    protocol.receive(lost(pb.LEASE_LOST_REASON_SERVER_SHUTDOWN))
    assert protocol.lost_reason is LeaseLostReason.TAKEN_OVER


def test_a_stream_that_ends_while_held_loses_the_lease() -> None:
    protocol = held(Clock())
    protocol.stream_ended()
    assert protocol.lost_reason is LeaseLostReason.STREAM_BROKEN and protocol.finished


@pytest.mark.parametrize(
    "response",
    [granted(8), pb.LeaseResponse(released=pb.LeaseReleased()), kept_alive()],
    ids=["second-grant", "unasked-release", "answer-to-no-keepalive"],
)
def test_a_response_that_does_not_fit_the_lease_ends_it_as_broken(response: pb.LeaseResponse) -> None:
    protocol = held(Clock())
    protocol.receive(response)
    assert protocol.lost_reason is LeaseLostReason.STREAM_BROKEN and protocol.finished
    assert protocol.fencing_token == 7, "a second grant never replaces the token"


def test_release_is_sent_once_and_only_for_a_held_lease() -> None:
    waiting = LeaseProtocol(terms(), clock=Clock())
    assert waiting.release() is None, "nothing granted, nothing to release"
    protocol = held(Clock())
    request = protocol.release()
    assert request is not None and request.WhichOneof("kind") == "release"
    assert protocol.release() is None
    assert protocol.tick() is None and protocol.seconds_to_next_tick() is None, "no keepalive while releasing"
    protocol.receive(pb.LeaseResponse(released=pb.LeaseReleased()))
    assert protocol.finished and protocol.lost_reason is None, "a release is not a loss"


def test_nothing_is_released_after_the_server_said_lost() -> None:
    protocol = held(Clock())
    protocol.receive(lost())
    assert protocol.release() is None
