"""The command line page, from the parser `workflowstate` runs (server/ops/cli.py build_parser).

Which options read a WORKFLOWSTATE_<OPTION> variable is the parser's own answer (environment_options). The
parser is built without the WORKFLOWSTATE_ variables of whoever builds the site, so the defaults shown are its own.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta

from workflowstate.server.ops.cli import build_parser
from workflowstate.server.ops.cli_parser import ENV_PREFIX, FromEnv, variable_of
from workflowstate.workflows._command import parser as engine_parser

from .markdown import GENERATED_NOTE, code, table


# The commands that hand all their arguments to a parser of their own (server/ops/cli.py main): their options are that parser's.
DELEGATED: dict[tuple[str, ...], Callable[[], argparse.ArgumentParser]] = {
    ("engine",): lambda: engine_parser(prog="workflowstate engine"),
}


def commands(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """Every command of `parser`, itself first, each with its path of subcommand names."""
    if path in DELEGATED:
        yield path, DELEGATED[path]()
        return
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from commands(sub, (*path, name))


def documented_options(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    """The options and arguments of one command its --help shows (not the hidden test-only ones, not --help)."""
    return [
        action
        for action in parser._actions
        if action.help != argparse.SUPPRESS and not isinstance(action, (argparse._HelpAction, argparse._SubParsersAction))
    ]


@contextmanager
def _environment(variables: dict[str, str]) -> Iterator[None]:
    """The environment without any WORKFLOWSTATE_ variable but `variables`: the defaults a page shows are the
    parser's own, never those of whoever builds the site."""
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update({name: value for name, value in saved.items() if not name.startswith(ENV_PREFIX)} | variables)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def environment_options() -> dict[tuple[str, ...], dict[str, str]]:
    """For each command, the options that read a variable, with the variable's name: the parser built with
    every option's variable set, an option whose default then comes from its variable reads it."""
    with _environment({}):
        names = {
            variable_of(option)
            for _, parser in commands(build_parser())
            for action in parser._actions
            for option in action.option_strings
        }
    with _environment({name: "" for name in names}):
        return {
            path: {
                action.option_strings[0]: action.default.variable
                for action in sub._actions
                if isinstance(action.default, FromEnv)
            }
            for path, sub in commands(build_parser())
        }


def _help(action: argparse.Action, prog: str) -> str:
    """The help text as --help prints it (its %(default)s and friends expanded)."""
    if not action.help:
        return ""
    params = dict(vars(action), prog=prog)
    if action.choices is not None:
        params["choices"] = ", ".join(map(str, action.choices))
    return action.help % params


def _default(action: argparse.Action) -> str:
    if action.default in (None, False, (), "", argparse.SUPPRESS) or isinstance(action, argparse._VersionAction):
        return ""
    if isinstance(action.default, timedelta):
        return code(f"{action.default.total_seconds():g}") + " s"
    return code(str(action.default))


def _name(action: argparse.Action) -> str:
    if not action.option_strings:
        return code(action.metavar if isinstance(action.metavar, str) else action.dest)
    names = ", ".join(action.option_strings)
    if action.nargs == 0:
        return code(names)
    metavar = (
        action.metavar
        if isinstance(action.metavar, str)
        else ("{" + ",".join(map(str, action.choices)) + "}" if action.choices else action.dest.upper())
    )
    return code(f"{names} {metavar}")


def page() -> str:
    with _environment({}):
        every_command = list(commands(build_parser()))
    variables = environment_options()
    parts = [
        GENERATED_NOTE.format(source="the parser of server/ops/cli.py"),
        "# Command line",
        "Every command of `workflowstate`, as its `--help` shows it. An option with a variable also reads it from "
        "the environment (the option wins), checked like the option and named in the error.",
    ]
    for path, sub in every_command:
        prog = " ".join(("workflowstate", *path))
        parts.append(f"## `{prog}`")
        if sub.description:
            parts.append(sub.description)
        rows = [
            (
                _name(action),
                code(variables[path][action.option_strings[0]])
                if action.option_strings and action.option_strings[0] in variables[path]
                else "",
                _default(action),
                _help(action, prog),
            )
            for action in documented_options(sub)
        ]
        if rows:
            parts.append(table(("option", "variable", "default", "meaning"), rows))
        if sub.epilog:
            parts.append("```text\n" + sub.epilog.strip("\n") + "\n```")
    return "\n\n".join(parts) + "\n"
