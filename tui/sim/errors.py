"""OpenAI's JSON error shape, and the request errors the simulator answers with it.

Every error body is ``{"error": {"message", "type", "param", "code"}}``, as OpenAI sends it
(openai-python raises ``BadRequestError`` / ``NotFoundError`` ... from the status and keeps
the body). Request checks raise :class:`RequestError` with the ``param`` that names the field
and the ``code`` OpenAI uses for that kind of problem.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse

_ERROR_TYPES: dict[int, tuple[str, str | None]] = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("permission_error", "unsupported_country_region_territory"),
    404: ("invalid_request_error", "not_found"),
    408: ("timeout", "timeout"),
    409: ("conflict", "conflict"),
    429: ("requests", "rate_limit_exceeded"),
}


def _body(status: int, message: str, param: str | None, code: str | None) -> dict[str, Any]:
    type_ = _ERROR_TYPES.get(status, ("server_error", None))[0]
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def error_response(
    status: int, message: str, *, headers: dict[str, str] | None = None
) -> JSONResponse:
    """An OpenAI-style JSON error (nested ``error`` object); its ``type`` and ``code``
    follow from the status."""
    code = _ERROR_TYPES.get(status, ("server_error", "server_error"))[1]
    return JSONResponse(_body(status, message, None, code), status_code=status, headers=headers)


class RequestError(ValueError):
    """A request the simulator refuses, as OpenAI would: status, message, param and code."""

    def __init__(
        self, message: str, *, param: str | None = None, code: str | None = None, status: int = 400
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code
        self.status = status

    def response(self) -> JSONResponse:
        """The JSON error response of this refusal."""
        body = _body(self.status, self.message, self.param, self.code)
        return JSONResponse(body, status_code=self.status)


def type_name(value: Any) -> str:
    """How OpenAI's messages name a JSON value's type ("a string", "an integer", "null")."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a decimal"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def missing(param: str) -> RequestError:
    """``Missing required parameter: 'param'.``"""
    return RequestError(
        f"Missing required parameter: '{param}'.", param=param, code="missing_required_parameter"
    )


def invalid_type(param: str, expected: str, value: Any) -> RequestError:
    """``Invalid type for 'param': expected ..., but got ... instead.``"""
    return RequestError(
        f"Invalid type for '{param}': expected {expected}, but got {type_name(value)} instead.",
        param=param,
        code="invalid_type",
    )


def invalid_value(param: str, value: Any, supported: tuple[str, ...]) -> RequestError:
    """``Invalid value: 'x'. Supported values are: 'a', 'b', and 'c'.``"""
    names = [f"'{s}'" for s in supported]
    listed = ", ".join(names[:-1]) + f", and {names[-1]}" if len(names) > 2 else " and ".join(names)
    return RequestError(
        f"Invalid value: '{value}'. Supported values are: {listed}.",
        param=param,
        code="invalid_value",
    )


def empty_array(param: str) -> RequestError:
    """``Invalid 'param': empty array. Expected an array with minimum length 1, ...``"""
    return RequestError(
        f"Invalid '{param}': empty array. Expected an array with minimum length 1, "
        "but got an empty array instead.",
        param=param,
        code="empty_array",
    )


def previous_not_found(rid: str) -> RequestError:
    """OpenAI's 404 for a ``previous_response_id`` it does not have (unknown, evicted, or
    created with ``store: false``)."""
    return RequestError(
        f"Previous response with id '{rid}' not found.",
        param="previous_response_id",
        code="previous_response_not_found",
        status=404,
    )


def previous_unsupported() -> RequestError:
    """A stateless gateway's 400 for ``previous_response_id``."""
    return RequestError(
        "Unsupported parameter: 'previous_response_id'. This server does not store "
        "responses; send the conversation as input items instead.",
        param="previous_response_id",
        code="unsupported_parameter",
    )


def context_exceeded(api: str, window: int, tokens: int) -> RequestError:
    """OpenAI's 400 ``context_length_exceeded`` (chat names the messages' size; Responses
    says only that the input is too long, as OpenAI does)."""
    if api == "chat":
        return RequestError(
            f"This model's maximum context length is {window} tokens. However, your messages "
            f"resulted in {tokens} tokens. Please reduce the length of the messages.",
            param="messages",
            code="context_length_exceeded",
        )
    return RequestError(
        "Your input exceeds the context window of this model. Please adjust your input and "
        "try again.",
        param="input",
        code="context_length_exceeded",
    )
