"""Domain errors: what services raise when they refuse a request.

Each carries an HTTP status and a stable machine-readable ``code``; the API
layer (``consentry.problems``) turns them into RFC 9457 problem details. This
module imports nothing from DRF so any layer can raise them.
"""

from __future__ import annotations

from typing import Any

HTTP_403_FORBIDDEN = 403
HTTP_404_NOT_FOUND = 404
HTTP_409_CONFLICT = 409
HTTP_422_UNPROCESSABLE_ENTITY = 422
HTTP_503_SERVICE_UNAVAILABLE = 503


class DomainError(Exception):
    """A refused state change or request, with a stable machine-readable code."""

    status_code = HTTP_422_UNPROCESSABLE_ENTITY
    code = "invalid"
    title = "The request cannot be carried out"

    def __init__(self, detail: str, *, code: str | None = None, errors: dict[str, Any] | None = None):
        super().__init__(detail)
        self.detail = detail
        if code:
            self.code = code
        self.errors = errors or {}

    @property
    def problem_errors(self) -> ProblemErrors:
        """What the problem+json answer lists under ``errors``."""
        return self.errors


# A problem's ``errors``: messages by field, or one entry per invalid row of an uploaded file.
ProblemErrors = dict[str, Any] | list[dict[str, Any]]


class RowsRefused(DomainError):
    """A refused upload (a CSV import): its ``errors`` list every invalid row, not fields."""

    def __init__(self, detail: str, *, rows: list[dict[str, Any]] | None = None, code: str | None = None):
        super().__init__(detail, code=code)
        self.rows = rows or []

    @property
    def problem_errors(self) -> ProblemErrors:
        return self.rows


class NotFound(DomainError):
    status_code = HTTP_404_NOT_FOUND
    code = "not_found"
    title = "Not found"


class Conflict(DomainError):
    status_code = HTTP_409_CONFLICT
    code = "conflict"
    title = "Conflict with the current state"


class Forbidden(DomainError):
    status_code = HTTP_403_FORBIDDEN
    code = "forbidden"
    title = "Not allowed"


class DependencyUnavailable(DomainError):
    """A service the request needs (the database, the rate-limit cache) is down: nothing was decided or changed.

    API.md promises 503 with this code; clients treat it, like any error, as a denial and retry later.
    """

    status_code = HTTP_503_SERVICE_UNAVAILABLE
    code = "dependency_unavailable"
    title = "A dependency is unavailable"
