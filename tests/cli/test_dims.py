"""The one size/shape syntax of both command lines (edgeprune.contracts.dims)."""

from __future__ import annotations

import pytest

from edgeprune.contracts.dims import DimsError, parse_dims


def test_commas_are_the_syntax() -> None:
    assert parse_dims("3,32,32", option="--input-shape", names="C,H,W") == ((3, 32, 32), None)
    assert parse_dims(" 64, 48 ", option="--input-size", names="H,W") == ((64, 48), None)


def test_the_old_x_syntax_is_read_with_a_note() -> None:
    dims, note = parse_dims("32x32", option="--input-size", names="H,W")
    assert dims == (32, 32)
    assert note == "--input-size 32x32 is the old syntax: write --input-size 32,32"


@pytest.mark.parametrize("text", ["32", "3,32,32", "a,b", "0,32", "32,-1", ""])
def test_anything_else_is_refused_with_the_syntax(text: str) -> None:
    with pytest.raises(DimsError, match=r"--input-size takes H,W, positive integers, e\.g\. 32,32"):
        parse_dims(text, option="--input-size", names="H,W")
