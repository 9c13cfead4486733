"""Errors that the HTTP layer maps to status codes.

Every error carries a human-readable ``detail``; the app serves it as
``{"detail": "..."}`` (FastAPI's error shape) with the class's ``status_code``.
"""


class ServiceError(Exception):
    """Base class: an error with an HTTP status and a one-line explanation."""

    status_code = 500

    def __init__(self, detail: str):
        super().__init__(detail)
        self.detail = detail


class BadRequest(ServiceError):
    """The request itself is wrong (parameters, upload); retrying it unchanged fails again."""

    status_code = 400


class EngineUnavailable(ServiceError):
    """The engine cannot serve now (model download failed, GPU out of memory); a retry may succeed."""

    status_code = 503


class AlignmentUnavailable(Exception):
    """No wav2vec2 alignment model exists for a language.

    Raised by a backend's ``align``; the pipeline then keeps the unaligned segment
    times and returns segments with an empty ``words`` list instead of failing.
    """
