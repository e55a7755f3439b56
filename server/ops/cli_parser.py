"""The command line's argument parser: every option defaults to its WORKFLOWSTATE_<OPTION> variable.

The standard library only: `serve` and the operator commands (which import the client, never the
server) both build on it.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterable
from typing import NoReturn

ENV_PREFIX = "WORKFLOWSTATE_"


def variable_of(option: str) -> str:
    """The variable an option reads: --database-url reads WORKFLOWSTATE_DATABASE_URL."""
    return ENV_PREFIX + option.lstrip("-").replace("-", "_").upper()


_TRUE, _FALSE = ("1", "true", "yes", "on"), ("", "0", "false", "no", "off")


def switch(text: str) -> bool:
    """The value of an on/off flag's variable (the flag itself takes no value)."""
    if text.strip().lower() in _TRUE + _FALSE:
        return text.strip().lower() in _TRUE
    raise argparse.ArgumentTypeError(f"must be one of {', '.join(repr(word) for word in _TRUE + _FALSE)}, not {text!r}")


class FromEnv:
    """A flag's default taken from its variable, checked after parsing, like the flag would be.

    Not a str: argparse would convert a str default itself and name the flag in its errors, and
    would do so before --help, which must work whatever the environment holds.
    """

    def __init__(self, variable: str, text: str) -> None:
        self.variable = variable
        self.text = text

    def __str__(self) -> str:
        return f"{self.text!r} from {self.variable}"


class EnvParser(argparse.ArgumentParser):
    """An ArgumentParser whose options default to their WORKFLOWSTATE_<OPTION> variable, with the
    option's own checks and messages naming the variable (subparsers are of this class too)."""

    def read_environment(self, only: Iterable[str] | None = None) -> None:
        """Call once every option is added; `only` limits it to those options (e.g. ["--target"]),
        so that a variable never answers a question such as --yes."""
        chosen = None if only is None else set(only)
        for action in self._actions:
            if not action.option_strings or action.default == argparse.SUPPRESS:
                continue
            if chosen is not None and action.option_strings[0] not in chosen:
                continue
            variable = variable_of(action.option_strings[0])
            if variable in os.environ:
                action.default = FromEnv(variable, os.environ[variable])

    def parse_known_args(self, args=None, namespace=None):  # type: ignore[no-untyped-def]  # argparse's signature
        namespace, extras = super().parse_known_args(args, namespace)
        for action in self._actions:
            value = getattr(namespace, action.dest, None)
            if isinstance(value, FromEnv):
                setattr(namespace, action.dest, self._from_env(action, value))
        return namespace, extras

    def error(self, message: str) -> NoReturn:
        # argparse reads a value that starts with '-' (as a token may) as the next option, and says
        # only that the value is missing: say how to give it.
        option = message.removeprefix("argument ").removesuffix(": expected one argument")
        if option != message and option.startswith("--"):
            message += f" (a value that starts with '-' is given after '=': {option}=-...)"
        super().error(message)

    def _from_env(self, action: argparse.Action, value: FromEnv) -> object:
        convert = switch if isinstance(action, argparse._StoreTrueAction) else (action.type or str)
        try:
            converted = convert(value.text)  # type: ignore[operator]
        except (argparse.ArgumentTypeError, TypeError, ValueError) as err:
            self.error(f"{value.variable}: {err}")
        if action.choices is not None and converted not in action.choices:
            choices = ", ".join(repr(choice) for choice in action.choices)
            self.error(f"{value.variable}: invalid choice: {value.text!r} (choose from {choices})")
        return converted
