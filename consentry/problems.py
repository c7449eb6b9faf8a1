"""RFC 9457 problem details: the one error type and the one exception handler.

Services raise ``DomainError`` (or a subclass) with a stable ``code``; the API
layer turns it, and every DRF and Django error, into
``application/problem+json``. Nothing a client sends may produce a 500 or HTML.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from consentry.errors import Conflict, DomainError, Forbidden, NotFound

__all__ = ("Conflict", "DomainError", "Forbidden", "NotFound", "exception_handler", "problem")

PROBLEM_CONTENT_TYPE = "application/problem+json"


def problem(
    *, status_code: int, title: str, detail: str, code: str, errors: dict[str, Any] | None = None, headers=None
) -> Response:
    body: dict[str, Any] = {
        "type": f"https://consentry.dev/problems/{code}",
        "title": title,
        "status": status_code,
        "detail": detail,
        "code": code,
    }
    if errors:
        body["errors"] = errors
    response = Response(body, status=status_code, headers=headers)
    response.content_type = PROBLEM_CONTENT_TYPE
    return response


def _flatten(detail: Any) -> Any:
    if isinstance(detail, dict):
        return {key: _flatten(value) for key, value in detail.items()}
    if isinstance(detail, list):
        return [_flatten(item) for item in detail]
    return str(detail)


def _title(exc: Exception, status_code: int) -> str:
    title = str(getattr(exc, "default_detail", "") or "")
    # Some DRF defaults are templates ("Unsupported media type \"{media_type}\"…"): use the status phrase.
    if not title or "{" in title:
        return HTTPStatus(status_code).phrase
    return title


def exception_handler(exc: Exception, context: dict) -> Response | None:
    if isinstance(exc, DomainError):
        return problem(
            status_code=exc.status_code, title=exc.title, detail=exc.detail, code=exc.code, errors=exc.errors
        )
    if isinstance(exc, DjangoValidationError):
        errors = exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        return problem(
            status_code=422, title="Invalid input", detail="; ".join(exc.messages), code="invalid", errors=errors
        )
    if isinstance(exc, RequestDataTooBig):
        # Django refuses bodies over DATA_UPLOAD_MAX_MEMORY_SIZE when DRF reads them.
        return problem(
            status_code=413,
            title="Request body too large",
            detail=f"The body exceeds {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes.",
            code="payload_too_large",
        )
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        errors = _flatten(exc.detail)
        if not isinstance(errors, dict):
            errors = {"non_field_errors": errors}
        return problem(
            status_code=422,
            title="Invalid input",
            detail="The request has invalid fields; see errors.",
            code="invalid",
            errors=errors,
        )
    detail = exc.detail if isinstance(exc, exceptions.APIException) else str(exc)
    code = exc.get_codes() if isinstance(exc, exceptions.APIException) else "error"
    headers = {k: v for k, v in response.headers.items() if k in ("Retry-After", "WWW-Authenticate")}
    return problem(
        status_code=response.status_code,
        title=_title(exc, response.status_code),
        detail=str(detail),
        code=code if isinstance(code, str) else "error",
        headers=headers,
    )
