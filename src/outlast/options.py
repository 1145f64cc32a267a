"""How a server option is declared, parsed and shown: :class:`Option` and the parsers of its
values.

The machinery only: outlast's own options, the one table of them, are
:data:`outlast.config.OPTIONS`. An option turns a flag's argument or a variable's value into a
setting (:meth:`Option.from_text`, :meth:`Option.from_env`), adds its flag to a parser
(:meth:`Option.add_to`), and says how it reads in ``--help`` and in the docs.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

# -- parsing one value ---------------------------------------------------------------------


class OptionError(ValueError):
    """A value that an option cannot take; its message is one line, for the command line."""


def duration(text: str) -> float:
    """Seconds, or a number with a unit: ``90``, ``30s``, ``15m``, ``12h``, ``7d``."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    text = text.strip().lower()
    scale = units.get(text[-1:])
    number = text[:-1] if scale else text
    try:
        value = float(number) * (scale or 1)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a duration: {text!r} (e.g. 90, 30s, 15m, 7d)"
        ) from None
    if value <= 0:
        raise argparse.ArgumentTypeError("a duration must be positive")
    return value


def positive_int(text: str) -> int:
    """A whole number of at least 1."""
    return _at_least(1, text)


def non_negative_int(text: str) -> int:
    """A whole number of at least 0."""
    return _at_least(0, text)


def _at_least(minimum: int, text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"must be at least {minimum}")
    return value


def integer(text: str) -> int:
    """Any whole number."""
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None


def text(value: str) -> str:
    """The text as it is."""
    return value


TRUE = ("1", "true", "yes", "on")
FALSE = ("0", "false", "no", "off")


def boolean(value: str) -> bool:
    """``1``/``true``/``yes``/``on`` or ``0``/``false``/``no``/``off`` (any case)."""
    lowered = value.strip().lower()
    if lowered in TRUE:
        return True
    if lowered in FALSE:
        return False
    raise argparse.ArgumentTypeError(f"not a boolean: {value!r} (1/0, true/false, yes/no)")


# -- an option ------------------------------------------------------------------------------

Kind = Literal["value", "list", "switch", "mode"]


@dataclass(frozen=True, slots=True)
class Option:
    """One server option: where it goes in :class:`Settings`, its flag, variable, type and help."""

    dest: str
    """The :class:`Settings` field: ``max_running``, or ``a2a.name`` in a nested group."""
    flag: str
    """The command-line flag, ``--max-running``."""
    env: str
    """The environment variable, ``OUTLAST_MAX_RUNNING``."""
    help: str
    """One line for ``--help`` and the docs table."""
    group: str
    """The section of ``--help`` and of the docs page."""
    default: Any = None
    parse: Callable[[str], Any] = text
    """Turns one value's text (a flag's argument, the variable's value) into the setting."""
    kind: Kind = "value"
    """``value``: ``--flag X``; ``list``: repeatable, the variable holding several (see
    ``separator``); ``switch``: ``--flag`` alone sets ``flag_value``, the variable is a boolean;
    ``mode``: ``--flag`` and ``--no-flag`` pick two of the ``choices`` the variable may name."""
    choices: tuple[str, ...] = ()
    metavar: str | None = None
    env_note: str = ""
    """How the variable's value is written, when not as the flag's (``comma-separated``)."""
    default_text: str | None = None
    """How the default reads in help and docs, when its value alone does not say it."""
    details: str = ""
    """More for the docs page (Markdown), after the help."""
    separator: str | None = ","
    """For a ``list``: what separates items in the variable (``None``: the value is one item)."""
    flag_value: Any = True
    """For a ``switch``: what the flag sets (``False`` for a ``--no-…`` flag); for a ``mode``: what
    ``--flag`` picks."""
    negative: tuple[Any, str] | None = None
    """For a ``mode``: what ``--no-flag`` picks, and its help."""
    env_fallbacks: tuple[str, ...] = ()
    """Variables read, in order, when ``env`` is unset (another program's standard name)."""
    commands: tuple[str, ...] = ("serve",)
    """The commands that take the option."""

    @property
    def shown_metavar(self) -> str:
        """The flag's argument in ``--help``: ``--lease LEASE``."""
        return self.metavar or self.flag.removeprefix("--").upper().replace("-", "_")

    @property
    def env_usage(self) -> str:
        """The variable as help and docs name it: ``OUTLAST_INSECURE=1``, ``OUTLAST_API_KEYS,
        comma-separated``."""
        if self.kind == "switch":
            return f"{self.env}={1 if self.flag_value else 0}"
        return f"{self.env}, {self.env_note}" if self.env_note else self.env

    @property
    def negative_flag(self) -> str:
        """A ``mode`` option's second flag: ``--no-a2a`` for ``--a2a``."""
        return "--no-" + self.flag.removeprefix("--")

    def shown_default(self) -> str | None:
        """The default as help and docs show it (``None``: it has none worth showing)."""
        if self.default_text is not None:
            return self.default_text
        default = self.default
        if default is None or default == [] or default is False:
            return None
        if isinstance(default, float) and default.is_integer():
            return str(int(default))
        return str(default)

    def from_text(self, value: str, source: str) -> Any:
        """Parse one value; an :class:`OptionError` naming ``source`` when it does not parse."""
        try:
            parsed = self.parse(value)
        except (argparse.ArgumentTypeError, ValueError) as exc:
            raise OptionError(f"{source}: {exc}") from None
        if self.choices and parsed not in self.choices:
            allowed = ", ".join(self.choices)
            raise OptionError(f"{source} must be one of {allowed}, not {value!r}")
        return parsed

    def from_env(self, environ: Mapping[str, str]) -> Any:
        """The value the environment gives (``None``: unset or empty, so the default holds)."""
        for name in (self.env, *self.env_fallbacks):
            raw = environ.get(name, "")
            if raw.strip():
                break
        else:
            return None
        if self.kind == "list":
            items = [raw] if self.separator is None else raw.split(self.separator)
            return [self.from_text(item.strip(), name) for item in items if item.strip()]
        return self.from_text(raw.strip(), name)

    @property
    def arg_dest(self) -> str:
        """Where argparse puts the option's value: ``a2a__name`` for ``a2a.name``."""
        return self.dest.replace(".", "__")

    def add_to(self, target: Any) -> None:
        """Add the option's flag (a ``mode``'s two flags) to a parser or an argument group.

        Every default is ``None`` here, so that a flag given can be told from one left out
        (:func:`outlast.config.settings_from` then fills in the variable or the default).
        """
        dest = self.arg_dest
        if self.kind == "switch":
            target.add_argument(self.flag, dest=dest, action="store_const",
                                const=self.flag_value, default=None, help=help_text(self))  # fmt: skip
        elif self.kind == "mode":
            assert self.negative is not None, self.flag
            off, off_help = self.negative
            target.add_argument(self.flag, dest=dest, action="store_const",
                                const=self.flag_value, default=None, help=help_text(self))  # fmt: skip
            target.add_argument(self.negative_flag, dest=dest, action="store_const", const=off,
                                help=off_help)  # fmt: skip
        else:
            target.add_argument(
                self.flag,
                dest=dest,
                type=self.parse,
                choices=self.choices or None,
                action="append" if self.kind == "list" else "store",
                default=None,
                metavar=None if self.choices else self.shown_metavar,
                help=help_text(self),
            )


# -- how it reads ------------------------------------------------------------------------


def help_text(option: Option) -> str:
    """``--help``'s line: the help, then whether it repeats, the variable and the default."""
    notes = ["repeatable"] if option.kind == "list" else []
    notes.append(f"env {option.env_usage}")
    shown = option.shown_default()
    if shown is not None:
        notes.append(f"default {shown}")
    return f"{option.help} ({'; '.join(notes)})"
