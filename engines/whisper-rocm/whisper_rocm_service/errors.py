"""OpenAI-style error bodies.

Every non-2xx answer of the service has the shape the OpenAI API uses, so a client written
for OpenAI (and the gateway's OpenAI adapter) can read ``error.message`` and ``error.code``
without a special case for this engine::

    {"error": {"message": str, "type": str, "param": str | null, "code": str | null}}

``type`` is ``invalid_request_error`` for anything the caller can fix (4xx) and
``server_error`` for 5xx.
"""

from typing import Dict, Optional

from starlette.responses import JSONResponse

INVALID_REQUEST = "invalid_request_error"
SERVER_ERROR = "server_error"


class ApiError(Exception):
    """An error that maps one-to-one onto an HTTP status and an OpenAI error body.

    ``status`` is the HTTP status code, ``param`` the request field at fault (``None`` when
    no single field is), ``code`` a stable machine-readable reason such as ``empty_file``.
    ``headers`` are extra response headers (``WWW-Authenticate`` on 401).
    """

    def __init__(
        self,
        status: int,
        message: str,
        *,
        param: Optional[str] = None,
        code: Optional[str] = None,
        error_type: Optional[str] = None,
        headers: Optional[Dict[str, str]] = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code
        self.error_type = error_type or (SERVER_ERROR if status >= 500 else INVALID_REQUEST)
        self.headers = headers or {}

    def body(self) -> Dict[str, Dict[str, Optional[str]]]:
        """The JSON body as a plain dict: ``{"error": {message, type, param, code}}``."""
        return {
            "error": {
                "message": self.message,
                "type": self.error_type,
                "param": self.param,
                "code": self.code,
            }
        }

    def to_response(self) -> JSONResponse:
        """Render as a ``JSONResponse`` with this error's status and headers."""
        return JSONResponse(self.body(), status_code=self.status, headers=self.headers)


def invalid_value(param: str, message: str) -> ApiError:
    """400 for a field whose value is out of range or not one of the allowed values."""
    return ApiError(400, message, param=param, code="invalid_value")
