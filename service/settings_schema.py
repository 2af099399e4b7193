"""One declaration per setting: a dataclass field that carries its environment variable, how its text is read
and checked, and its documentation.

    @dataclass(frozen=True)
    class Settings:
        flask_threads: int = setting("FLASK_THREADS", 32, range=(1, 512),
                                     doc="Threads per worker that run request handlers.")

The field's default is the value when the variable is unset or empty. Its type picks the parser and the words
of the one-line error (``bool``: true or false; ``int``: a whole number; ``float``: a finite number; ``str``:
the text as given); ``range``, ``choices``, ``pattern`` and ``check`` narrow what is accepted, and ``allowed``
words what they cannot say themselves (``an http:// or https:// URL``). ``parse`` reads any other type (the
comma-separated lists). :func:`read` fills a settings class from an environment, :func:`example_lines` writes
its part of ``.env.example`` (``doc`` is the comment above the variable; ``section`` starts a new part).

Plain dataclasses and the standard library only: the settings are read on every start (``bench/startup.py``).
"""

from __future__ import annotations

import math
import re
import textwrap
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

#: the spellings marshmallow's Boolean accepted (the settings were read with it before)
TRUE = frozenset({"1", "t", "T", "true", "True", "TRUE", "y", "Y", "yes", "Yes", "YES", "on", "On", "ON"})
FALSE = frozenset({"0", "f", "F", "false", "False", "FALSE", "n", "N", "no", "No", "NO", "off", "Off", "OFF"})

WIDTH = 111  # of a line in .env.example


@dataclass(frozen=True)
class Variable:
    """One environment variable of a settings class (see the module doc)."""

    name: str
    parse: Callable[[str], Any]
    check: Callable[[Any], bool]
    allowed: str  # what is accepted, in words: the end of the one-line error
    doc: str = ""
    example: str = ""  # the value .env.example shows
    section: str = ""
    secret: bool = False

    def value(self, raw: str) -> Any:
        """The value of ``raw``; ValueError when it is not accepted."""
        value = self.parse(raw)
        if not self.check(value):
            raise ValueError(f"{self.name}: not accepted")
        return value


def _boolean(raw: str) -> bool:
    if raw in TRUE:
        return True
    if raw in FALSE:
        return False
    raise ValueError(raw)


def _finite(raw: str) -> float:
    value = float(raw)
    if not math.isfinite(value):
        raise ValueError(raw)
    return value


def comma_separated(text: str) -> tuple[str, ...]:
    """``"a, b,,c"`` -> ``("a", "b", "c")``: the parser of the list settings."""
    return tuple(p.strip() for p in text.split(",") if p.strip())


def _shown(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    if value is None or isinstance(value, tuple):
        return ",".join(_shown(v) for v in value or ())
    return str(value)


def setting(name: str, default: Any, *, doc: str = "", parse: Callable[[str], Any] | None = None,
            range: tuple[float, float] | None = None, choices: tuple[str, ...] | None = None,
            pattern: str | None = None, check: Callable[[Any], bool] | None = None, allowed: str | None = None,
            example: str | None = None, section: str = "", secret: bool = False) -> Any:
    """A dataclass field read from the environment variable ``name`` (module doc). A secret stays out of the
    dataclass's repr and out of every message."""
    if parse is None:
        parse, kind = {bool: (_boolean, "true or false"), int: (int, "a whole number"),
                       float: (_finite, "a number")}.get(type(default), (str, "text"))
    else:
        kind = "text"
    checks: list[Callable[[Any], bool]] = []
    if range is not None:
        low, high = range
        checks.append(lambda v: low <= v <= high)
        kind = f"{kind} from {low:g} to {high:g}"
    if choices is not None:
        checks.append(lambda v: v in choices)
        kind = "one of " + ", ".join(choices)
    if pattern is not None:
        compiled = re.compile(pattern)
        checks.append(lambda v: compiled.match(v) is not None)
    if check is not None:
        checks.append(check)
    var = Variable(name=name, parse=parse, check=lambda v: all(c(v) for c in checks), allowed=allowed or kind,
                   doc=doc, example=_shown(default) if example is None else example, section=section, secret=secret)
    return field(default=default, repr=not secret, metadata={"env": var})


def variables(cls: type) -> Iterator[tuple[str, Variable]]:
    """``(field name, variable)`` of every declared field of the dataclass ``cls``, in declaration order."""
    for f in fields(cls):
        var = f.metadata.get("env")
        if var is not None:
            yield f.name, var


def read(cls: type, env: Mapping[str, str]) -> tuple[dict[str, Any], list[tuple[Variable, str]]]:
    """The values ``env`` sets for ``cls``'s fields (an unset or empty variable keeps the field's default),
    and the variables whose text is not accepted, with that text."""
    values: dict[str, Any] = {}
    invalid: list[tuple[Variable, str]] = []
    for name, var in variables(cls):
        raw = env.get(var.name, "")
        if raw == "":
            continue
        try:
            values[name] = var.value(raw)
        except ValueError:
            invalid.append((var, raw))
    return values, invalid


def comment(text: str) -> list[str]:
    """``text`` as ``# `` comment lines of .env.example."""
    return textwrap.wrap(text, WIDTH - 2, initial_indent="# ", subsequent_indent="# ", break_long_words=False,
                         break_on_hyphens=False)


def section_title(title: str) -> str:
    head = f"# --- {title} "
    return head + "-" * max(3, WIDTH - len(head))


_SHELL_SAFE = re.compile(r"[A-Za-z0-9_@%+=:,./-]*")


def assignment(name: str, value: str) -> str:
    """``NAME=value`` as python-dotenv and a POSIX shell both read it: single quotes when needed."""
    if _SHELL_SAFE.fullmatch(value):
        return f"{name}={value}"
    if "'" in value:
        raise ValueError(f"{name}: a default with a single quote cannot be written to .env.example")
    return f"{name}='{value}'"


def example_lines(cls: type) -> list[str]:
    """``cls``'s part of .env.example: each section's title, each variable's comment and assignment."""
    lines: list[str] = []
    for _, var in variables(cls):
        if var.section:
            lines += ["", section_title(var.section)]
        lines += comment(var.doc) + [assignment(var.name, var.example)]
    return lines
