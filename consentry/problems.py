"""RFC 9457 problem details: the one error type and the one exception handler.

Services raise ``DomainError`` (or a subclass) with a stable ``code``; the API
layer turns it, and every DRF and Django error, into
``application/problem+json``. Nothing a client sends may produce a 500 or HTML.

A database outage (``consentry.outages``) is answered 503
``dependency_unavailable`` wherever it is raised: in DRF's handling
(authentication, permissions, throttling, the view, the idempotency layer,
serializers) by ``exception_handler``; in a plain Django view or while a
response renders by ``DatabaseOutageMiddleware``; in another middleware
(the session, the signed-in user) by ``server_error``. Each answers in the
caller's format: problem+json under ``/api/``, a SCIM error under
``/scim/v2/``, a page elsewhere; and logs one line, no traceback. The
Django-level ``page_not_found`` and ``server_error`` also keep unknown API
addresses and unexpected API failures in problem+json.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.signals import got_request_exception
from django.http import Http404, HttpRequest, HttpResponse
from django.template.loader import render_to_string
from django.views import defaults
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from consentry.errors import Conflict, DependencyUnavailable, DomainError, Forbidden, NotFound, ProblemErrors
from consentry.outages import is_database_outage, log_outage

__all__ = (
    "Conflict",
    "DatabaseOutageMiddleware",
    "DependencyUnavailable",
    "DomainError",
    "Forbidden",
    "NotFound",
    "exception_handler",
    "page_not_found",
    "problem",
    "server_error",
)

PROBLEM_CONTENT_TYPE = "application/problem+json"
SCIM_CONTENT_TYPE = "application/scim+json"
SCIM_ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"
# URL prefixes whose callers are machines: they get their own error format, never a page.
API_PREFIX = "/api/"
SCIM_PREFIX = "/scim/v2/"
OUTAGE_DETAIL = "The database is unavailable; nothing was decided or changed. Treat this as a denial and retry shortly."
# Seconds a client should wait before retrying after an outage (RFC 9110 Retry-After).
OUTAGE_RETRY_AFTER = "5"


def _problem_body(
    *, status_code: int, title: str, detail: str, code: str, errors: ProblemErrors | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": f"https://consentry.dev/problems/{code}",
        "title": title,
        "status": status_code,
        "detail": detail,
        "code": code,
    }
    if errors:
        body["errors"] = errors
    return body


def problem(
    *, status_code: int, title: str, detail: str, code: str, errors: ProblemErrors | None = None, headers=None
) -> Response:
    body = _problem_body(status_code=status_code, title=title, detail=detail, code=code, errors=errors)
    response = Response(body, status=status_code, headers=headers)
    response.content_type = PROBLEM_CONTENT_TYPE
    return response


def _plain_problem(*, status_code: int, title: str, detail: str, code: str) -> HttpResponse:
    """A problem response outside DRF (no content negotiation there: problem+json is the only format)."""
    body = _problem_body(status_code=status_code, title=title, detail=detail, code=code)
    return HttpResponse(json.dumps(body), status=status_code, content_type=PROBLEM_CONTENT_TYPE)


def _plain_scim_error(*, status_code: int, detail: str) -> HttpResponse:
    # RFC 7644 §3.12; built by hand as people.scim does with scim2-models, which this layer may not import.
    body = {"schemas": [SCIM_ERROR_SCHEMA], "status": str(status_code), "detail": detail}
    return HttpResponse(json.dumps(body), status=status_code, content_type=SCIM_CONTENT_TYPE)


def _outage_problem(request: Any, exc: BaseException) -> Response:
    log_outage(request, exc)
    error = DependencyUnavailable(OUTAGE_DETAIL)
    response = problem(
        status_code=error.status_code,
        title=error.title,
        detail=error.detail,
        code=error.code,
        headers={"Retry-After": OUTAGE_RETRY_AFTER},
    )
    # Logged above in one line: Django's request logger must not add a second.
    # Django's private flag, absent from its stubs.
    response._has_been_logged = True  # type: ignore[attr-defined]
    return response


def outage_response(request: HttpRequest, exc: BaseException) -> HttpResponse:
    """The 503 for a database outage outside DRF's handling, in the format the caller reads."""
    log_outage(request, exc)
    if request.path.startswith(API_PREFIX):
        error = DependencyUnavailable(OUTAGE_DETAIL)
        response = _plain_problem(status_code=503, title=error.title, detail=error.detail, code=error.code)
    elif request.path.startswith(SCIM_PREFIX):
        response = _plain_scim_error(status_code=503, detail=OUTAGE_DETAIL)
    else:
        # No request context: its processors read the session and the user, from the database that is down.
        response = HttpResponse(render_to_string("503.html"), status=503)
    response["Retry-After"] = OUTAGE_RETRY_AFTER
    # Django's private flag, absent from its stubs.
    response._has_been_logged = True  # type: ignore[attr-defined]
    return response


class DatabaseOutageMiddleware:
    """Answers a database outage outside DRF's own handling with a 503 (first in MIDDLEWARE).

    DRF views answer their own outages in ``exception_handler``. This answers
    the rest: through ``process_exception`` those raised by a view or while its
    response renders (portal pages, SCIM, whose DRF handler lets the error
    through, plain Django views); and, when ``DEBUG`` shows its traceback page
    for an outage raised in another middleware (production has
    ``server_error`` for that), by replacing that page with the 503.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        outage = getattr(request, "_database_outage", None)
        if outage is not None and response.status_code == 500:
            return outage_response(request, outage)
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if is_database_outage(exception):
            return outage_response(request, exception)
        return None


def _note_outage(sender: Any, request: HttpRequest | None = None, **kwargs: Any) -> None:
    # Sent while Django handles an exception no view or middleware answered, so sys.exc_info() holds it.
    exc = sys.exc_info()[1]
    if request is not None and exc is not None and is_database_outage(exc):
        # Read back by DatabaseOutageMiddleware; a per-request attribute the stubs cannot know.
        request._database_outage = exc  # type: ignore[attr-defined]


got_request_exception.connect(_note_outage, dispatch_uid="consentry.problems.note_outage")


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """``handler404``: an unknown address under /api/ is a problem+json 404, not a page."""
    if request.path.startswith(API_PREFIX):
        return _plain_problem(
            status_code=404, title="Not found", detail="No API endpoint at this address.", code="not_found"
        )
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    """``handler500``: an outage raised in a middleware is a 503; any other failure a 500 in the caller's format.

    Django calls it while handling the exception, so ``sys.exc_info()`` holds it.
    """
    exc = sys.exc_info()[1]
    if exc is not None and is_database_outage(exc):
        return outage_response(request, exc)
    if request.path.startswith(API_PREFIX):
        return _plain_problem(
            status_code=500,
            title="Internal server error",
            detail="The server failed to answer; the error has been logged.",
            code="server_error",
        )
    if request.path.startswith(SCIM_PREFIX):
        return _plain_scim_error(status_code=500, detail="The server failed to answer; the error has been logged.")
    return defaults.server_error(request)


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
    if is_database_outage(exc):
        return _outage_problem(context["request"], exc)
    if isinstance(exc, DomainError):
        return problem(
            status_code=exc.status_code, title=exc.title, detail=exc.detail, code=exc.code, errors=exc.problem_errors
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
