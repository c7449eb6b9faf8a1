"""The people API: CSV import of employees for HR systems without SCIM (API.md, HR provisioning).

``POST /api/v1/people/import`` takes the same file as the upload page and
``manage.py import_employees`` (people/csv_import.py, docs/scim.md), with the
same validation and limits: every row is checked first, and any invalid row
means nothing is applied. HR tokens only.
"""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import exceptions, parsers, serializers
from rest_framework.authentication import SessionAuthentication
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from consentry.errors import RowsRefused
from consentry.idempotency import idempotent
from consentry.openapi import IDEMPOTENCY_KEY, problem_example, problem_responses
from people.authentication import BearerTokenAuthentication, IsHRToken, token_of
from people.csv_import import COLUMNS, import_csv
from people.scim.views import hr_actor

CSV_MEDIA_TYPE = "text/csv"


class CsvTooLarge(RowsRefused):
    status_code = 413
    code = "payload_too_large"
    title = "Request body too large"


class InvalidCsv(RowsRefused):
    code = "invalid_csv"
    title = "The file has invalid rows"


class CsvParser(parsers.BaseParser):
    """The raw bytes of a ``text/csv`` body, refused with a 413 beyond ``CONSENTRY_CSV_MAX_BYTES``.

    The size is checked before the body is read, and again on the bytes read,
    since a chunked upload has no Content-Length.
    """

    media_type = CSV_MEDIA_TYPE

    # DRF's stubs allow a parser only a mapping, but request.data is whatever the parser returns: here the bytes.
    def parse(self, stream, media_type=None, parser_context=None) -> bytes:  # type: ignore[override]
        limit = settings.CONSENTRY_CSV_MAX_BYTES
        request = (parser_context or {}).get("request")
        declared = request.META.get("CONTENT_LENGTH") if request is not None else None
        if declared and declared.isdigit() and int(declared) > limit:
            raise CsvTooLarge(f"The file is larger than {limit} bytes; split it.")
        content = stream.read(limit + 1) if stream is not None else b""
        if len(content) > limit:
            raise CsvTooLarge(f"The file is larger than {limit} bytes; split it.")
        return content


class ImportSummarySerializer(serializers.Serializer):
    rows = serializers.IntegerField(help_text="Employee rows in the file.")
    created = serializers.IntegerField()
    updated = serializers.IntegerField()
    unchanged = serializers.IntegerField()
    terminated = serializers.IntegerField(help_text="Rows that terminated an employee (counted as updated too).")


_EXAMPLE_CSV = (
    "hr_id,user_name,email,country,region,department,status\nE1002,carlos,carlos@example.com,US,CA,R&D,active\n"
)


class PeopleImportView(APIView):
    """Import employees from an HR export: all rows or none."""

    # Sessions are authenticated only to be refused with a 403, like the other tokens.
    authentication_classes = [BearerTokenAuthentication, SessionAuthentication]
    permission_classes = [IsHRToken]
    parser_classes = [CsvParser]
    throttle_scope = "provisioning"

    @extend_schema(
        tags=["HR provisioning"],
        operation_id="people_import",
        summary="Import employees from a CSV file (HR token)",
        description=(
            f"The body is the CSV file itself (`Content-Type: {CSV_MEDIA_TYPE}`), UTF-8, with a header row naming "
            f"columns among {', '.join(COLUMNS)}; `hr_id` and `country` are required. Rows update the employees "
            "that exist (by `hr_id`), create the others and give each a login (its `user_name`, else its "
            "`hr_id`). Every row is validated first: if any is invalid, nothing is applied and the 422 lists "
            "every error with its row (the header is row 1), field and message. Limits: "
            "`CONSENTRY_CSV_MAX_ROWS` rows (422) and `CONSENTRY_CSV_MAX_BYTES` bytes (413)."
        ),
        parameters=[IDEMPOTENCY_KEY],
        request={CSV_MEDIA_TYPE: OpenApiTypes.BINARY},
        examples=[OpenApiExample("One employee", value=_EXAMPLE_CSV, request_only=True, media_type=CSV_MEDIA_TYPE)],
        responses={
            200: OpenApiResponse(ImportSummarySerializer, description="Imported in one transaction."),
            **problem_responses(
                401,
                403,
                413,
                415,
                422,
                429,
                examples={
                    422: [
                        problem_example(
                            422,
                            "invalid_csv",
                            "2 invalid rows; nothing was imported.",
                            [
                                {"row": 3, "field": "country", "message": "'XX' is not an ISO 3166-1 country."},
                                {"row": 7, "field": "hr_id", "message": "Also on row 4."},
                            ],
                        )
                    ]
                },
            ),
        },
    )
    @idempotent
    def post(self, request: Request) -> Response:
        if request.content_type.split(";")[0].strip().lower() != CSV_MEDIA_TYPE:
            raise exceptions.UnsupportedMediaType(request.content_type or "(none)")
        content = request.data if isinstance(request.data, bytes) else b""
        token = token_of(request)
        assert token is not None  # IsHRToken
        outcome = import_csv(content=content, source=f"api:{token.name}", actor=hr_actor(request))
        summary = outcome.summary
        if summary is None:
            errors = [{"row": e.row, "field": e.column, "message": e.message} for e in outcome.errors]
            if outcome.too_large:
                raise CsvTooLarge(" ".join(e.message for e in outcome.errors), rows=errors)
            count = len({e.row for e in outcome.errors})
            raise InvalidCsv(f"{count} invalid row{'s' if count != 1 else ''}; nothing was imported.", rows=errors)
        rows = summary.created + summary.updated + summary.unchanged
        body = {
            "rows": rows,
            "created": summary.created,
            "updated": summary.updated,
            "unchanged": summary.unchanged,
            "terminated": summary.terminated,
        }
        return Response(ImportSummarySerializer(body).data)
