"""Errors, one class per HTTP status, as the ``openai`` package has them."""

from __future__ import annotations

from typing import Any

import httpx

__all__ = [
    "TollgateError",
    "APIError",
    "APIConnectionError",
    "APITimeoutError",
    "APIStatusError",
    "BadRequestError",
    "AuthenticationError",
    "PermissionDeniedError",
    "NotFoundError",
    "ConflictError",
    "RequestTooLargeError",
    "UnprocessableEntityError",
    "RateLimitError",
    "InternalServerError",
]


class TollgateError(Exception):
    """Every error this package raises."""


class APIError(TollgateError):
    """A request to the admin API failed."""

    def __init__(self, message: str, request: httpx.Request | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.request = request


class APIConnectionError(APIError):
    """The API could not be reached (refused, reset, DNS)."""


class APITimeoutError(APIConnectionError):
    """The API did not answer within the timeout."""


class APIStatusError(APIError):
    """The API answered with an error status; ``code`` and ``field`` say what to fix."""

    status_code: int

    def __init__(self, response: httpx.Response, body: Any) -> None:
        err = body.get("error", {}) if isinstance(body, dict) else {}
        message = err.get("message") or f"HTTP {response.status_code}"
        super().__init__(message, response.request)
        self.response = response
        self.status_code = response.status_code
        self.body = body
        self.type: str | None = err.get("type")
        self.code: str | None = err.get("code")
        self.field: str | None = err.get("field")

    def __str__(self) -> str:
        return f"{self.status_code} {self.code or ''}: {self.message}".replace(" :", ":")


class BadRequestError(APIStatusError):
    """400: the body is not JSON."""


class AuthenticationError(APIStatusError):
    """401: no token, or an unknown, revoked or expired one."""


class PermissionDeniedError(APIStatusError):
    """403: the token's role may not do this."""


class NotFoundError(APIStatusError):
    """404: no such object, or one of another organization."""


class ConflictError(APIStatusError):
    """409: the write conflicts with what is stored."""


class RequestTooLargeError(APIStatusError):
    """413: the body is larger than the API accepts."""


class UnprocessableEntityError(APIStatusError):
    """422: a field is invalid; ``field`` names it."""


class RateLimitError(APIStatusError):
    """429: too many attempts; retry later."""


class InternalServerError(APIStatusError):
    """5xx: the server failed."""


_BY_STATUS = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    413: RequestTooLargeError,
    422: UnprocessableEntityError,
    429: RateLimitError,
}


def status_error(response: httpx.Response) -> APIStatusError:
    """The exception for an error response."""
    try:
        body: Any = response.json()
    except ValueError:
        body = response.text
    cls = _BY_STATUS.get(response.status_code)
    if cls is None:
        cls = InternalServerError if response.status_code >= 500 else APIStatusError
    return cls(response, body)
