"""The docs site builds in strict mode (a broken link or anchor fails it), and each generated reference
page holds everything its source has: every RPC with its facts, message and field; every command and
option with its variable; every error reason with its code; every move of the transition tables. A page
written by hand where a generated one goes fails the build too.

What a page must hold is read here from the sources themselves (the runtime descriptors, the parser, the
server's tables), not from the generator, so that a generator that drops something fails.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from google.protobuf import descriptor_pb2
from support.built_site import Section, sections

from workflowstate import v1
from workflowstate.server.ops.cli import build_parser
from workflowstate.server.ops.cli_parser import FromEnv, variable_of
from workflowstate.server.state import transitions
from workflowstate.workflows._command import parser as engine_parser

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts"))
from docs_reference.reasons import server_reasons  # noqa: E402  (scripts/ is not a package)


# Variables of the builder's own environment, which the command line page must not take for defaults.
BUILDER_VARIABLES = {"WORKFLOWSTATE_LISTEN": "10.9.8.7:4321", "WORKFLOWSTATE_TARGET": "builder.invalid:1"}


def build(config: Path, site: Path) -> subprocess.CompletedProcess[str]:
    """`mkdocs build --strict` of `config` into `site`, as the README's command runs it."""
    # NO_MKDOCS_2_WARNING: Material's notice about MkDocs 2.0, printed on every build, says nothing of this site.
    environment = {**os.environ, **BUILDER_VARIABLES, "NO_MKDOCS_2_WARNING": "1"}
    command = [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(config), "--site-dir", str(site)]
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, env=environment, timeout=300)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("site")
    built = build(REPO / "mkdocs.yml", folder)
    assert built.returncode == 0, built.stderr
    return folder


def _section_of(page: dict[str, Section], ident: str) -> Section:
    assert ident in page, f"no section #{ident}"
    return page[ident]


def test_every_rpc_is_documented_with_its_comment_facts_and_idempotency(site: Path) -> None:
    page = sections(site, "reference/api.md")
    service = descriptor_pb2.ServiceDescriptorProto()
    v1.SERVICE_DESCRIPTOR.CopyToProto(service)
    assert len(service.method) > 40
    for method in service.method:
        section = _section_of(page, f"rpc-{method.name.lower()}")
        facts = method.options.Extensions[v1.rpc_facts_pb2.rpc_facts]
        (row,) = section.rows[1:]
        assert row == (
            ("stream " if method.client_streaming else "") + method.input_type.rsplit(".", 1)[1],
            ("stream " if method.server_streaming else "") + method.output_type.rsplit(".", 1)[1],
            v1.rpc_facts_pb2.RpcEffect.Name(facts.effect),
            "yes" if facts.batchable else "no",
            descriptor_pb2.MethodOptions.IdempotencyLevel.Name(method.options.idempotency_level),
        ), method.name
        # Every RPC's comment starts with its name (buf's COMMENTS lint and the contract's style).
        assert section.text.removeprefix(section.heading).strip().startswith(f"{method.name} "), method.name


def _messages(container: descriptor_pb2.FileDescriptorProto | descriptor_pb2.DescriptorProto, prefix: str = ""):
    for message in container.nested_type if isinstance(container, descriptor_pb2.DescriptorProto) else container.message_type:
        if not message.options.map_entry:
            yield f"{prefix}{message.name}", message
            yield from _messages(message, f"{prefix}{message.name}.")


def _contract_files() -> list[descriptor_pb2.FileDescriptorProto]:
    service_file = descriptor_pb2.FileDescriptorProto()
    v1.SERVICE_DESCRIPTOR.file.CopyToProto(service_file)
    files = []
    for name in [*service_file.dependency, service_file.name]:
        if name.startswith("workflowstate/"):
            proto = descriptor_pb2.FileDescriptorProto()
            v1.SERVICE_DESCRIPTOR.file.pool.FindFileByName(name).CopyToProto(proto)
            files.append(proto)
    return files


def test_every_message_field_and_enum_value_is_documented(site: Path) -> None:
    page = sections(site, "reference/api.md")
    files = _contract_files()
    assert len(files) > 5
    for file in files:
        for name, message in _messages(file):
            section = _section_of(page, name.lower().replace(".", "-"))
            assert [row[:2] for row in section.rows[1:]] == [(field.name, str(field.number)) for field in message.field], name
        enums = [(enum.name, enum) for enum in file.enum_type]
        enums += [(f"{name}.{enum.name}", enum) for name, message in _messages(file) for enum in message.enum_type]
        for name, enum in enums:
            section = _section_of(page, name.lower().replace(".", "-"))
            assert [row[:2] for row in section.rows[1:]] == [(value.name, str(value.number)) for value in enum.value], name


def _commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    if path == ("engine",):  # it hands its arguments to the engine's own parser (server/ops/cli.py main)
        yield path, engine_parser(prog="workflowstate engine")
        return
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _commands(sub, (*path, name))


def _variables_read() -> dict[tuple[str, ...], dict[str, str]]:
    """For each command, each option that reads a variable, with it: the parser built with every variable set."""
    names = {
        variable_of(option) for _, sub in _commands(build_parser()) for action in sub._actions for option in action.option_strings
    }
    with pytest.MonkeyPatch.context() as patch:
        for name in names:
            patch.setenv(name, "")
        return {
            path: {
                action.option_strings[0]: action.default.variable
                for action in sub._actions
                if isinstance(action.default, FromEnv)
            }
            for path, sub in _commands(build_parser())
        }


def test_every_command_and_option_is_documented_with_its_variable(site: Path) -> None:
    page = sections(site, "reference/cli.md")
    by_heading = {section.heading.strip().rstrip("¶").strip(): section for section in page.values()}
    variables = _variables_read()
    assert sum(len(read) for read in variables.values()) > 40
    for path, parser in _commands(build_parser()):
        prog = " ".join(("workflowstate", *path))
        assert prog in by_heading, f"no section for {prog}"
        rows = {row[0].split(" ")[0].rstrip(","): row for row in by_heading[prog].rows[1:]}
        for action in parser._actions:
            if action.help == argparse.SUPPRESS or isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
                continue
            name = action.option_strings[0] if action.option_strings else (action.metavar or action.dest)
            assert name in rows, f"{prog} {name}"
            assert rows[name][1] == variables[path].get(name, ""), f"{prog} {name}"
    assert "--test-group-hold" not in by_heading["workflowstate serve"].text, "an option hidden from --help stays hidden"


def test_the_defaults_shown_are_the_parser_s_own_not_the_builder_s_environment(site: Path) -> None:
    page = sections(site, "reference/cli.md")
    assert [value for value in BUILDER_VARIABLES.values() if any(value in section.text for section in page.values())] == []
    with pytest.MonkeyPatch.context() as patch:
        for name in BUILDER_VARIABLES:
            patch.delenv(name, raising=False)
        serve = dict(_commands(build_parser()))[("serve",)]
    (listen,) = [action for action in serve._actions if action.option_strings == ["--listen"]]
    rows = [row for section in page.values() for row in section.rows if row[0] == "--listen LISTEN"]
    assert [row[1:3] for row in rows] == [("WORKFLOWSTATE_LISTEN", listen.default)]


def test_every_error_reason_is_documented_with_its_code(site: Path) -> None:
    page = sections(site, "reference/errors.md")
    rows = {row[0]: row[1] for section in page.values() for row in section.rows[1:]}
    assert rows == server_reasons()


def test_every_move_of_the_transition_tables_is_documented(site: Path) -> None:
    page = sections(site, "reference/transitions.md")
    steps = [row[:3] for row in _section_of(page, "steps").rows[1:]]
    runs = [row[:3] for row in _section_of(page, "runs").rows[1:]]
    versions = [row[:2] for row in _section_of(page, "workflow-versions").rows[1:]]
    assert steps == [(move.source.name, move.target.name, move.via.value) for move in transitions.STEP_MOVES]
    assert runs == [(move.source.name, move.target.name, move.via.value) for move in transitions.RUN_MOVES]
    assert versions == [(move.source.name, move.target.name) for move in transitions.VERSION_MOVES]


def _site_copy(tmp_path: Path) -> tuple[Path, Path]:
    """A copy of docs/ under the site's own configuration (the hook and the sources as they are), checked to build:
    its folder and its configuration, so that a test changes one thing of a site that builds, nothing in the repository."""
    docs = tmp_path / "docs"
    shutil.copytree(REPO / "docs", docs)
    config = tmp_path / "mkdocs.yml"
    config.write_text(
        f"INHERIT: {REPO / 'mkdocs.yml'}\ndocs_dir: {docs}\nhooks: [{REPO / 'scripts' / 'docs_hook.py'}]\nwatch: []\n"
    )
    assert build(config, tmp_path / "intact").returncode == 0
    return docs, config


def test_a_hand_written_copy_of_a_generated_page_fails_the_build(tmp_path: Path) -> None:
    docs, config = _site_copy(tmp_path)
    (docs / "reference" / "errors.md").write_text("# Error reasons\n\nA copy, soon out of date.\n")
    built = build(config, tmp_path / "copied")
    assert built.returncode != 0
    assert "docs/reference/errors.md is generated at build time" in built.stderr, built.stderr


@pytest.mark.parametrize(
    ("broken", "named"),
    [
        ("[the API](../reference/no-such-page.md)", "no-such-page.md"),
        ("[an RPC](../reference/api.md#rpc-nosuchrpc)", "rpc-nosuchrpc"),
    ],
)
def test_a_broken_link_or_anchor_fails_the_build(tmp_path: Path, broken: str, named: str) -> None:
    docs, config = _site_copy(tmp_path)
    page = docs / "concepts" / "index.md"
    page.write_text(page.read_text() + f"\nSee {broken}.\n")
    built = build(config, tmp_path / "broken")
    assert built.returncode != 0
    warnings = [line for line in built.stderr.splitlines() if line.startswith("WARNING")]
    assert len(warnings) == 1 and named in warnings[0], built.stderr
