"""The command line page, from the parser `workflowstate` runs (server/ops/cli.py build_parser).

Which options read a WORKFLOWSTATE_<OPTION> variable is the parser's own answer: it is built once
more with every option's variable set, and an option whose default then comes from its variable reads it.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator
from contextlib import contextmanager

from workflowstate.server.ops.cli import build_parser
from workflowstate.server.ops.cli_parser import FromEnv, variable_of

from .markdown import GENERATED_NOTE, code, table


def commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """Every command of `parser`, itself first, each with its path of subcommand names."""
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
        if action.help != argparse.SUPPRESS
        and not isinstance(action, (argparse._HelpAction, argparse._SubParsersAction))
    ]


@contextmanager
def _every_variable_set() -> Iterator[None]:
    """The environment with every option's variable set, so that the options that read one show it."""
    names = {variable_of(option) for _, parser in commands(build_parser()) for action in parser._actions for option in action.option_strings}
    saved = dict(os.environ)
    os.environ.update({name: "" for name in names})
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def environment_options() -> dict[tuple[str, ...], dict[str, str]]:
    """For each command, the options that read a variable, with the variable's name."""
    with _every_variable_set():
        parser = build_parser()
        return {
            path: {
                action.option_strings[0]: action.default.variable
                for action in sub._actions
                if isinstance(action.default, FromEnv)
            }
            for path, sub in commands(parser)
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
    if action.default in (None, False, (), argparse.SUPPRESS) or isinstance(action, argparse._VersionAction):
        return ""
    return code(str(action.default))


def _name(action: argparse.Action) -> str:
    if not action.option_strings:
        return code(action.metavar if isinstance(action.metavar, str) else action.dest)
    names = ", ".join(action.option_strings)
    if action.nargs == 0:
        return code(names)
    metavar = action.metavar if isinstance(action.metavar, str) else ("{" + ",".join(map(str, action.choices)) + "}" if action.choices else action.dest.upper())
    return code(f"{names} {metavar}")


def page() -> str:
    parser = build_parser()
    variables = environment_options()
    parts = [
        GENERATED_NOTE.format(source="the parser of server/ops/cli.py"),
        "# Command line",
        "Every command of `workflowstate`, as its `--help` shows it. An option with a variable also reads it from "
        "the environment (the option wins), checked like the option and named in the error.",
    ]
    for path, sub in commands(parser):
        prog = " ".join(("workflowstate", *path))
        parts.append(f"## `{prog}`")
        if sub.description:
            parts.append(sub.description)
        rows = [
            (_name(action), code(variables[path][action.option_strings[0]]) if action.option_strings and action.option_strings[0] in variables[path] else "", _default(action), _help(action, prog))
            for action in documented_options(sub)
        ]
        if rows:
            parts.append(table(("option", "variable", "default", "meaning"), rows))
        if sub.epilog:
            parts.append("```text\n" + sub.epilog.strip("\n") + "\n```")
    return "\n\n".join(parts) + "\n"
