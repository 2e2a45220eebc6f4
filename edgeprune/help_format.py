"""How both command lines name an option's value in --help (typer only; the edge client
imports it too).

typer shows every value as a Python type in angle brackets: `--runs <int range>`,
`--force <bool>`, `JOB_ID <str>`. Ours read like the rest of the Unix world: `--runs INTEGER`,
a choice as `[auto|fp32|int8]`, a flag as nothing, an explicit metavar as written, and
arguments by their upper-case name. Only help text changes: these methods serve nothing else.
"""

from __future__ import annotations

from typing import Any

from typer.core import TyperArgument, TyperOption

_NAMES = {
    "str": "TEXT",
    "int": "INTEGER",
    "float": "FLOAT",
    "path": "PATH",
    "file": "FILE",
    "directory": "DIR",
}
_typer_display_type = TyperArgument.display_type  # typer's "<label>", kept to reword it


def _plain(label: str) -> str:
    label = label.strip("<>").removesuffix(" range")  # typer prints the range itself
    if label.startswith("list[") and label.endswith("]"):
        label = label[len("list[") : -1]  # a repeatable option: one value per use
    if "|" in label:
        return f"[{label}]"
    return _NAMES.get(label, label.upper())


def _option_value(self: TyperOption, ctx: Any) -> str | None:
    if self.is_flag or self.count:
        return None
    if self.metavar is not None:
        return self.metavar
    return _plain(_typer_display_type(self, ctx))


def _argument_value(self: TyperArgument, ctx: Any) -> str | None:
    return _plain(_typer_display_type(self, ctx))


def _argument_name(self: TyperArgument) -> str:
    return self.metavar if self.metavar is not None else (self.name or "").upper()


def install() -> None:
    """Use these names in every typer command of this process (idempotent)."""
    TyperOption.display_type_rich = _option_value  # type: ignore[method-assign]
    TyperArgument.display_type_rich = _argument_value  # type: ignore[method-assign,assignment]
    TyperArgument.display_name_raw = property(_argument_name)  # type: ignore[assignment,method-assign]
