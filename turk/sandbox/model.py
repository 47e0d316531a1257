"""Request validation against MTurk's published service model (botocore's copy).

The model is loaded once per process. Validation checks what the real service checks
before doing anything: required members, JSON types, enums, string lengths and
patterns, numeric minimums and maximums, list lengths.
"""

from __future__ import annotations

import re
from functools import cache, lru_cache
from typing import Any

from botocore.model import OperationModel, ServiceModel, Shape, StructureShape

from turk.sandbox.errors import ApiError, invalid_parameter

TARGET_PREFIX = "MTurkRequesterServiceV20170117"
"""The ``X-Amz-Target`` prefix of the 2017-01-17 Requester API."""


@lru_cache(maxsize=1)
def service_model() -> ServiceModel:
    """Return MTurk's service model (loaded once).

    Returns:
        botocore's :class:`ServiceModel` for ``mturk``.
    """
    import botocore.session

    return botocore.session.get_session().get_service_model("mturk")


@cache
def operation_model(name: str) -> OperationModel | None:
    """Return the model of one operation, or None when MTurk has no such operation.

    Args:
        name: Operation name, e.g. ``CreateHIT``.

    Returns:
        The operation model or None.
    """
    model = service_model()
    if name not in model.operation_names:
        return None
    return model.operation_model(name)


@cache
def _pattern(text: str) -> re.Pattern[str]:
    return re.compile(text)


def validate(operation: str, params: Any) -> None:
    """Check one request body against the operation's input shape.

    Args:
        operation: Operation name (known to the model).
        params: The decoded JSON body.

    Raises:
        ApiError: ``ParameterValidationError`` naming the first offending parameter.
    """
    op = operation_model(operation)
    if op is None:
        raise ApiError("UnknownOperationException", f"Unknown operation {operation}")
    shape = op.input_shape
    if shape is None:
        return
    if not isinstance(params, dict):
        raise ApiError(
            "SerializationException", "Start of structure or map found where not expected"
        )
    _check(shape, params, "")


def _check(shape: Shape, value: Any, path: str) -> None:
    kind = shape.type_name
    name = path or shape.name
    if kind == "structure":
        assert isinstance(shape, StructureShape)
        if not isinstance(value, dict):
            raise invalid_parameter(f"The value for the parameter {name} must be a structure.")
        for required in shape.required_members:
            if value.get(required) is None:
                member = f"{path}.{required}" if path else required
                raise invalid_parameter(
                    f"Your request is missing required parameters. "
                    f"Required parameters include {member}."
                )
        for key, item in value.items():
            member_shape = shape.members.get(key)
            if member_shape is None or item is None:
                continue  # the JSON protocol ignores members it does not model
            _check(member_shape, item, f"{path}.{key}" if path else key)
        return
    if kind == "list":
        if not isinstance(value, list):
            raise invalid_parameter(f"The value for the parameter {name} must be a list.")
        _check_range(len(value), shape, name, "number of items")
        for index, item in enumerate(value):
            _check(shape.member, item, f"{name}[{index}]")  # type: ignore[attr-defined]
        return
    if kind == "string":
        if not isinstance(value, str):
            raise invalid_parameter(f'The value "{value}" is not valid for the parameter {name}.')
        enum: list[str] = getattr(shape, "enum", None) or []
        if enum and value not in enum:
            raise invalid_parameter(
                f'The value "{value}" is not valid for the parameter {name}. '
                f"Valid values: {', '.join(enum)}."
            )
        _check_range(len(value), shape, name, "length")
        pattern = shape.metadata.get("pattern")
        if pattern and not _pattern(pattern).fullmatch(value):
            raise invalid_parameter(f'The value "{value}" is not valid for the parameter {name}.')
        return
    if kind in ("integer", "long"):
        if isinstance(value, bool) or not isinstance(value, int):
            raise invalid_parameter(f'The value "{value}" is not valid for the parameter {name}.')
        _check_range(value, shape, name, "value")
        return
    if kind == "boolean":
        if not isinstance(value, bool):
            raise invalid_parameter(f'The value "{value}" is not valid for the parameter {name}.')
        return
    if kind in ("timestamp", "double", "float"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise invalid_parameter(f'The value "{value}" is not valid for the parameter {name}.')
        return


def _check_range(measure: int, shape: Shape, name: str, what: str) -> None:
    low = shape.metadata.get("min")
    high = shape.metadata.get("max")
    if low is not None and measure < low:
        raise invalid_parameter(f"Your request parameter {name} has a minimum {what} of {low}.")
    if high is not None and measure > high:
        raise invalid_parameter(f"Your request parameter {name} has a maximum {what} of {high}.")
