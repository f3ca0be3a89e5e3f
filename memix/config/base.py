"""What every params section shares: forbidden unknown keys, frozen values, no bool where a number goes."""

from __future__ import annotations

import types
import typing
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator


class ParamsError(ValueError):
    """A params file that cannot be used; the message names the file and the key."""


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_for_number(cls, value: Any, info: ValidationInfo) -> Any:
        """``epochs: true`` is a slip, not 1: pydantic would read a bool as a number; only fields that take a bool
        (or a list of them) get one."""
        field = cls.model_fields.get(info.field_name or "")
        if field is None:
            return value
        if isinstance(value, bool) and not _takes_bool(field.annotation):
            raise ValueError(f"{str(value).lower()} is a bool, which this key does not take (a bool is not a number)")
        bools = isinstance(value, list) and any(isinstance(v, bool) for v in value)
        if bools and not _takes_bool_items(field.annotation):
            raise ValueError("an item is a bool (true/false), which this list does not take")
        return value


def _takes_bool(annotation: Any) -> bool:
    """Whether a field of this type accepts ``True``/``False`` as themselves (bool, Any, Literal[False], ...)."""
    if annotation is bool or annotation is Any:
        return True
    origin = typing.get_origin(annotation)
    if origin is Literal:
        return any(isinstance(v, bool) for v in typing.get_args(annotation))
    if origin is Annotated:
        return _takes_bool(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return any(_takes_bool(a) for a in typing.get_args(annotation))
    return False


def _takes_bool_items(annotation: Any) -> bool:
    """Whether a list field (possibly in a union) accepts bools as items."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType, Annotated):
        return any(_takes_bool_items(a) for a in typing.get_args(annotation))
    if origin is list:
        return any(_takes_bool(a) for a in typing.get_args(annotation))
    return True
