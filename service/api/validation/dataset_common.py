"""What the dataset inspectors share: the answer they give and how a broken rule becomes a
422 naming the uploaded file."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from edgeprune.contracts.dataset_rules import DatasetRuleError
from service.api.errors import InvalidUpload

LOC = ["body", "file"]


@dataclass(frozen=True)
class DatasetInfo:
    format: str
    samples: int  # training samples (a test split, given or held out, is not counted)
    classes: list[str]
    input_shape: list[int]


def invalid(detail: str) -> InvalidUpload:
    return InvalidUpload(detail, loc=LOC)


@contextmanager
def upload_rules() -> Iterator[None]:
    """Rules of `edgeprune.contracts.dataset_rules` broken inside: a 422 with their reason."""
    try:
        yield
    except DatasetRuleError as exc:
        raise invalid(str(exc)) from None
