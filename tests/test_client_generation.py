"""The blocking client is the async one without the awaiting: generated, or pinned where hand-written.

``_sync.py`` and ``_events_sync.py`` are generated from their async sources by
scripts/async_to_sync.py; the drift test fails when a checked-in file is not
what the script makes of its source now. The twins that stay hand-written
(leases and workers: threads and a lock on one side, tasks on the other) are
pinned here instead: the same public names, and every public method with the
same parameters, kinds and defaults.
"""

from __future__ import annotations

import inspect
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from workflowstate.client import AsyncLease, AsyncWorker, AsyncWorkflowStateClient, Lease, Worker, WorkflowStateClient

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "scripts"))
import async_to_sync  # noqa: E402


def test_generated_sync_modules_match_their_async_sources() -> None:
    result = subprocess.run(
        [sys.executable, "scripts/async_to_sync.py", "--check"], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("module", async_to_sync.MODULES, ids=lambda module: module.target)
def test_a_generated_module_says_it_is_generated_and_from_what(module: async_to_sync.Module) -> None:
    text = (REPO / module.target).read_text()
    assert text.startswith(async_to_sync.header(module))
    assert f"from {module.source} by scripts/async_to_sync.py" in text


def test_the_generator_refuses_a_special_case_the_source_no_longer_has() -> None:
    stale = async_to_sync.Module(
        "client/_async.py", "client/_sync.py", replace={"a sentence the async client does not say": "anything"}
    )
    with pytest.raises(SystemExit, match="not there exactly once"):
        async_to_sync.generate(stale)


def _public_surface(cls: type) -> dict[str, Any]:
    """Each public attribute of ``cls``: a method's parameters (name, kind, default), or its kind."""
    surface: dict[str, Any] = {}
    for name, value in inspect.getmembers(cls):
        if name.startswith("_") and name != "__init__":
            continue
        if isinstance(inspect.getattr_static(cls, name), property):
            surface[name] = "property"
        elif inspect.isfunction(value):
            parameters = inspect.signature(value).parameters.values()
            surface[name] = [(p.name, p.kind, p.default) for p in parameters]
        else:
            surface[name] = type(value).__name__
    return surface


def _public_instance_attributes(cls: type) -> set[str]:
    """The public attributes ``__init__`` sets (``lost``, ``stopping``): ``self.<name> =`` in its source."""
    return set(re.findall(r"self\.([a-z]\w*)(?:: [^=]+)? = ", inspect.getsource(cls.__init__)))


@pytest.mark.parametrize(
    ("blocking", "asynchronous"),
    [(WorkflowStateClient, AsyncWorkflowStateClient), (Lease, AsyncLease), (Worker, AsyncWorker)],
    ids=["client", "lease", "worker"],
)
def test_sync_and_async_twins_have_the_same_public_signatures(blocking: type, asynchronous: type) -> None:
    assert _public_surface(blocking) == _public_surface(asynchronous)
    assert _public_instance_attributes(blocking) == _public_instance_attributes(asynchronous)
