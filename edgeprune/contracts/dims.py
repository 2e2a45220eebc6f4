"""The one syntax for sizes and shapes on both command lines: numbers separated by commas,
`--input-shape 3,32,32` (C,H,W), `--input-size 32,32` (H,W).

`3x32x32`, which `compress --input-size` used to take, is still read, with a note saying
how to write it now.
"""

from __future__ import annotations


class DimsError(ValueError):
    """Text that is not COUNT positive integers separated by commas."""


def parse_dims(text: str, *, option: str, names: str) -> tuple[tuple[int, ...], str | None]:
    """'3,32,32' -> ((3, 32, 32), None) for names 'C,H,W'; the old '3x32x32' gives the same
    dims and a note. `names` ('C,H,W', 'H,W') fixes how many dims there are."""
    count = len(names.split(","))
    example = ",".join(str(d) for d in (3, 32, 32)[-count:])
    old = "x" in text.lower() and "," not in text
    parts = [p.strip() for p in text.lower().replace("x", ",").split(",")]
    try:
        dims = tuple(int(p) for p in parts)
    except ValueError:
        dims = ()
    if len(dims) != count or min(dims, default=0) < 1:
        raise DimsError(f"{option} takes {names}, positive integers, e.g. {example}: not {text!r}")
    canonical = ",".join(str(d) for d in dims)
    note = f"{option} {text} is the old syntax: write {option} {canonical}" if old else None
    return dims, note
