"""Request parsing with hard limits: no body is read into memory beyond what a request may need."""

from __future__ import annotations

from django.conf import settings
from rest_framework import exceptions, parsers


class PayloadTooLarge(exceptions.APIException):
    status_code = 413
    default_detail = "The request body is too large."
    default_code = "payload_too_large"


def content_length(request) -> int:
    try:
        return max(int(request.META.get("CONTENT_LENGTH") or 0), 0)
    except ValueError:
        return 0


def ensure_body_within(request, limit: int) -> None:
    """413 before anything reads the body (DRF reads a JSON body whole, so this must come first)."""
    if content_length(request) > limit:
        raise PayloadTooLarge(f"The request body is larger than {limit} bytes.")


class BoundedJSONParser(parsers.JSONParser):
    """JSON with a size limit checked before reading, and no 500 on pathological nesting."""

    max_bytes = 64 * 1024

    def limit(self) -> int:
        return self.max_bytes

    def parse(self, stream, media_type=None, parser_context=None):
        request = (parser_context or {}).get("request")
        if request is not None:
            ensure_body_within(request, self.limit())
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError as exc:
            # json's recursive decoder gives up on very deep nesting: bad input, not a crash.
            raise exceptions.ParseError("JSON parse error - nested too deeply.") from exc


class UseBatchJSONParser(BoundedJSONParser):
    """A JSON use batch may be as large as Django accepts in memory (DATA_UPLOAD_MAX_MEMORY_SIZE)."""

    def limit(self) -> int:
        return settings.DATA_UPLOAD_MAX_MEMORY_SIZE
