"""Every test's tier (support/tiers.py) follows from where it lives and what it uses: the markers
a fast run selects (`-m unit`, `-m "unit or store"`) are never written by hand."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.tiers import module_runs_node, tier_of

TESTS = Path(__file__).parents[1]


@pytest.mark.parametrize(
    ("folders", "fixtures", "runs_node", "tier"),
    [
        (("unit",), [], False, "unit"),
        (("store",), ["database_url"], False, "store"),
        (("docs",), [], False, "docs"),
        (("faults",), ["start_server", "chromium"], True, "faults"),  # the folder decides before anything it uses
        (("packaging",), ["database_url"], True, "packaging"),  # runs npm, yet its folder's tier
        ((), ["page", "browser", "chromium"], False, "browser"),
        ((), ["start_server"], True, "typescript"),
        ((), ["stub", "server", "database_url"], False, "server"),
        ((), [], False, "server"),
    ],
)
def test_a_test_s_tier_comes_from_its_folder_then_what_it_uses(folders, fixtures, runs_node, tier) -> None:
    assert tier_of(folders, fixtures, runs_node) == tier


def test_a_module_runs_node_when_it_names_the_program() -> None:
    assert module_runs_node(TESTS / "test_typescript.py"), "shutil.which('npm'): the TypeScript SDK's suites"
    assert module_runs_node(TESTS / "test_pikku_example.py"), "['npm', ...]: the Pikku example"
    assert not module_runs_node(TESTS / "test_architecture.py"), "an ast node is not the node program"
    assert not module_runs_node(TESTS / "test_dashboard_browser.py")
