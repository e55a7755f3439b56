"""Failover: the primary PostgreSQL dies (SIGKILL) under load, and its synchronous standby is promoted 2 s later.

The server is given both on a multi-host URL with target_session_attrs=read-write, as an operator
runs it in front of a replicated PostgreSQL: it connects to whichever accepts writes. Load: 8 writers
doing step lifecycles (tests/support/faults_writers.py) and 2 lease holders taking turns on one key.
The scenario runs once; each test checks one promise of it:
- through SQL on the new primary: every acknowledged write is there, no write answered with an
  error is (but for answers saying the outcome is unknown, which allow either state);
- writes succeed again within WRITES_BACK_BOUND of the promotion (the figure is printed);
- the lease key is granted again within its ttl plus LEASE_BACK_BOUND of the promotion.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import timedelta

import grpc
import pytest
from support.faults_writers import WRITERS, Call, Writers, broken_promises, untrue_errors
from support.replicated_postgres import replicated_postgres
from support.server_process import ServerProcess

from workflowstate.client import WorkflowStateClient, WorkflowStateError

SERVER_ARGS = ("--health-interval", "0.2", "--pool-timeout", "1", "--lease-poll-interval", "0.2", "--grace-period", "5")
PROMOTION_DELAY = 2.0  # seconds between the primary's death and the standby's promotion
WRITES_BACK_BOUND = 5.0  # seconds from the promotion to the first acknowledged write (seen: well under 1 s)
LEASE_TTL = 3.0
LEASE_BACK_BOUND = 5.0  # seconds past the ttl within which the key is granted again after the promotion
HOLD = 0.3  # seconds a holder keeps the key before letting the other have it
LIFECYCLES_BEFORE = 2  # per writer, before the primary dies


@dataclass
class Grant:
    at: float
    holder: str
    fencing_token: int


@dataclass
class LeaseHolders:
    """Holders taking the one key in turns, until stopped; every grant and failure recorded."""

    target: str
    key: str
    count: int = 2
    grants: list[Grant] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    unexpected: list[BaseException] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._granted = threading.Condition()
        self._threads = [threading.Thread(target=self._hold, args=(f"holder-{i}",), name=f"holder-{i}") for i in range(self.count)]
        for thread in self._threads:
            thread.start()

    def _hold(self, name: str) -> None:
        try:
            with WorkflowStateClient(self.target, retry=False, timeout=timedelta(seconds=10)) as client:
                while not self._stop.is_set():
                    try:
                        with client.lease(self.key, ttl=timedelta(seconds=LEASE_TTL), wait_timeout=timedelta(seconds=2), holder=name) as lease:
                            with self._granted:
                                self.grants.append(Grant(time.monotonic(), name, lease.fencing_token))
                                self._granted.notify_all()
                            lease.lost.wait(HOLD)
                    except WorkflowStateError as err:
                        self.failures.append(f"{name}: {err.status.name} {err}")
                        self._stop.wait(0.1)  # pace the retries while the database is away
        except BaseException as exc:  # reported by the test
            self.unexpected.append(exc)

    def wait_for_grant_after(self, moment: float, timeout: float) -> Grant | None:
        """The first grant after `moment`, waiting up to `timeout` seconds for it; None when none came."""
        with self._granted:
            self._granted.wait_for(lambda: any(grant.at > moment for grant in self.grants), timeout)
            return next((grant for grant in self.grants if grant.at > moment), None)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(30)
        assert not any(thread.is_alive() for thread in self._threads), "a lease holder did not stop"


@dataclass
class Failover:
    """What one run of the scenario saw."""

    calls: list[Call]
    problems: list[str]
    writes_back_after: float | None
    lease_back_after: float | None
    grants_before: int
    lease_failures: list[str]
    unexpected: list[BaseException]
    server_log: str


@pytest.fixture(scope="module")
def failover() -> Iterator[Failover]:
    with ExitStack() as stack:
        primary, standby = stack.enter_context(replicated_postgres())
        url = f"postgresql://postgres@127.0.0.1:{primary.port},127.0.0.1:{standby.port}/postgres?target_session_attrs=read-write"
        server = ServerProcess(url, "failover", *SERVER_ARGS).start()
        stack.callback(server.kill)
        writers = Writers(server.target)
        stack.callback(writers.stop)
        holders = LeaseHolders(server.target, "failover-key")
        stack.callback(holders.stop)

        writers.wait_until(lambda: writers.completed_since(0) >= WRITERS * LIFECYCLES_BEFORE, 60, "writes before the failover")
        assert holders.wait_for_grant_after(0, 30), f"the key was never granted before the failover: {holders.failures}"
        primary.kill()
        killed = time.monotonic()
        time.sleep(PROMOTION_DELAY)  # the scenario: the operator (or a failover manager) promotes the standby 2 s later
        standby.promote()
        promoted = time.monotonic()
        grants_before = sum(grant.at < killed for grant in holders.grants)

        def written_after_promotion() -> bool:
            return any(call.code == grpc.StatusCode.OK and call.started > promoted for call in writers.calls)

        try:
            writers.wait_until(written_after_promotion, WRITES_BACK_BOUND, "a write acknowledged after the promotion")
        except AssertionError:
            pass  # reported by its test
        first_write = min((call.ended for call in writers.calls if call.code == grpc.StatusCode.OK and call.started > promoted), default=None)
        grant = holders.wait_for_grant_after(promoted, max(promoted + LEASE_TTL + LEASE_BACK_BOUND - time.monotonic(), 0))
        writers.stop()
        holders.stop()
        with standby.connect() as conn:
            problems = broken_promises(conn, "failover", writers.lifecycles)
        result = Failover(
            calls=writers.calls,
            problems=problems,
            writes_back_after=None if first_write is None else first_write - promoted,
            lease_back_after=None if grant is None else grant.at - promoted,
            grants_before=grants_before,
            lease_failures=holders.failures,
            unexpected=holders.unexpected,
            server_log=server.log_text(),
        )
        errors = [call for call in writers.calls if call.code != grpc.StatusCode.OK]
        print(
            f"\nfailover: {len(writers.calls)} calls, {len(errors)} errors "
            f"({sum(call.outcome_unknown for call in errors)} of unknown outcome); first acknowledged write "
            f"{result.writes_back_after} s after the promotion; lease granted again {result.lease_back_after} s after it "
            f"({grants_before} grants before the kill, {len(holders.failures)} lease failures)"
        )
        yield result


def test_failover_to_the_synchronous_standby_loses_nothing_acknowledged_and_applies_nothing_refused(failover: Failover) -> None:
    errors = [call for call in failover.calls if call.code != grpc.StatusCode.OK]
    assert errors, "no call noticed the primary's death"
    untrue = untrue_errors(errors)
    assert not untrue, f"error answers that neither say nothing was written nor that the outcome is unknown: {untrue[:5]}"
    assert not failover.problems, failover.problems[:10]
    assert "unexpected error" not in failover.server_log, f"the server answered INTERNAL:\n{failover.server_log[-4000:]}"


def test_writes_succeed_again_within_the_bound_after_the_promotion(failover: Failover) -> None:
    assert failover.writes_back_after is not None, f"no write acknowledged within {WRITES_BACK_BOUND}s of the promotion"


def test_the_lease_key_is_granted_again_within_its_ttl_plus_the_bound_after_the_promotion(failover: Failover) -> None:
    assert not failover.unexpected, failover.unexpected
    assert failover.grants_before >= 1
    assert failover.lease_back_after is not None, (
        f"the key was not granted again within {LEASE_TTL}s + {LEASE_BACK_BOUND}s of the promotion; "
        f"lease failures: {failover.lease_failures[-10:]}"
    )
