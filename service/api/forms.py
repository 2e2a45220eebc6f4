"""Validation of the plain fields that come with a multipart upload.

The fields are parsed with the same pydantic machinery as JSON bodies, and a failure is
re-raised as FastAPI's RequestValidationError with `body.<field>` locations, so clients get
the same 422 problem shape whichever way they sent the data.
"""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

from fastapi.exceptions import RequestValidationError
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)


def _parse_shape(value: Any) -> Any:
    # "1,32,32", "1x32x32" and "[1, 32, 32]" are all what an operator means.
    if isinstance(value, str):
        text = value.strip().strip("[]()")
        parts = [p for p in text.replace("x", ",").replace(" ", ",").split(",") if p]
        return parts
    return value


InputShape = Annotated[
    list[Annotated[int, Field(ge=1, le=8192)]],
    BeforeValidator(_parse_shape),
    Field(min_length=3, max_length=3, description="C,H,W of one input, e.g. 1,32,32"),
]


class ModelUploadFields(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Names of the pruning engine's model zoo; the worker decides whether it exists. All
    # three may be left out: the inspection reads them from the checkpoint's own record
    # (EdgePrune checkpoints carry one), the input's H,W defaulting to the arch's usual one.
    arch: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")] | None = None
    num_classes: Annotated[int, Field(ge=2, le=100_000)] | None = None
    input_shape: InputShape | None = None
    name: Annotated[str, Field(min_length=1, max_length=200)] | None = None

    @model_validator(mode="before")
    @classmethod
    def _blank_is_left_out(cls, data: Any) -> Any:
        # A form's empty input ("arch=") means the same as no field at all.
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if not (isinstance(v, str) and not v.strip())}
        return data


class DatasetUploadFields(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(min_length=1, max_length=200)] | None = None


FieldsT = TypeVar("FieldsT", bound=BaseModel)


def parse_fields(schema: type[FieldsT], fields: dict[str, str]) -> FieldsT:
    try:
        return schema.model_validate(fields)
    except ValidationError as exc:
        errors = [
            {"loc": ("body", *err["loc"]), "msg": err["msg"], "type": err["type"]}
            for err in exc.errors()
        ]
        raise RequestValidationError(errors) from None
