"""Errors of the sandbox: wire errors in MTurk's shape, and local configuration errors."""

from __future__ import annotations

import time
from typing import Any


class SandboxError(Exception):
    """A sandbox option, truth file or fault spec cannot be used; the message names it."""


def _stamp() -> str:
    # MTurk ends its messages with the server time in milliseconds, e.g. "(1626172412406)".
    return f"({int(time.time() * 1000)})"


class ApiError(Exception):
    """An error answered to a Requester API call, in the shape MTurk (AWS JSON 1.1) uses.

    ``kind`` is the ``__type`` botocore reads as ``Error.Code``: ``RequestError`` and
    ``ServiceFault`` (MTurk's modeled errors, with ``TurkErrorCode``),
    ``ParameterValidationError`` (MTurk's answer to an invalid parameter),
    ``ThrottlingException``, ``UnknownOperationException`` and
    ``SerializationException`` (the AWS JSON protocol's own).
    """

    def __init__(
        self,
        kind: str,
        message: str,
        turk_code: str | None = None,
        status: int = 400,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.turk_code = turk_code
        self.status = status

    def body(self) -> dict[str, Any]:
        """Return the JSON error body, as MTurk sends it.

        Returns:
            ``{"__type": ..., "Message": ..., "TurkErrorCode": ...}``.
        """
        body: dict[str, Any] = {"__type": self.kind, "Message": f"{self.message} {_stamp()}"}
        if self.turk_code:
            body["TurkErrorCode"] = self.turk_code
        return body


def request_error(message: str, turk_code: str) -> ApiError:
    """Build a ``RequestError`` (the caller's request cannot be done).

    Args:
        message: What is wrong, naming the id or parameter.
        turk_code: MTurk's ``TurkErrorCode``, e.g. ``AWS.MechanicalTurk.HITDoesNotExist``.

    Returns:
        The error to raise.
    """
    return ApiError("RequestError", message, turk_code)


def invalid_parameter(message: str) -> ApiError:
    """Build a ``ParameterValidationError``, MTurk's answer to a bad parameter value.

    Args:
        message: Which parameter is wrong and why.

    Returns:
        The error to raise.
    """
    return ApiError("ParameterValidationError", message, "AWS.ParameterValidationError")


def service_fault(message: str = "The service encountered an internal error.") -> ApiError:
    """Build a ``ServiceFault`` (HTTP 500; botocore retries it).

    Args:
        message: The message sent.

    Returns:
        The error to raise.
    """
    return ApiError("ServiceFault", message, "AWS.MechanicalTurk.ServiceFault", status=500)


def throttled() -> ApiError:
    """Build a ``ThrottlingException`` (HTTP 400; botocore retries it).

    Returns:
        The error to raise.
    """
    return ApiError("ThrottlingException", "Rate exceeded", None, status=400)
