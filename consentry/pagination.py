"""The API's one pagination: ``?limit=`` and ``?offset=`` on every list (API.md, Conventions).

Every paginated list uses ``ApiPagination`` (REST_FRAMEWORK's default, and the
views that paginate by hand), or a subclass that only adds to the page.

- ``limit`` defaults to ``PAGE_SIZE`` (100). A larger limit than
  ``MAX_LIMIT`` is clamped to it, as DRF's ``max_limit`` does: asking for more
  than a page may hold is not an error, and the ``next`` link carries on.
- ``offset`` defaults to 0; an offset past the end gives an empty page.
- A ``limit`` that is not a whole number or is below 1, or an ``offset`` that
  is not a whole number or is negative, is a 422 ``invalid`` with the field
  named in ``errors``, like any other invalid query parameter. (DRF's own
  class quietly used the default instead, and passed a limit of any size to
  the database, which refused values past 64 bits with a 500.)
"""

from __future__ import annotations

from rest_framework import exceptions
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request

MAX_LIMIT = 1000
# Longer than any number worth parsing (the largest 64-bit integer has 19 digits).
_MAX_DIGITS = 30


def _whole_number(request: Request, name: str, *, minimum: int) -> int | None:
    raw = request.query_params.get(name)
    if raw is None:
        return None
    text = raw.strip()
    if not (text.isascii() and text.isdigit()) or len(text) > _MAX_DIGITS or int(text) < minimum:
        raise exceptions.ValidationError({name: f"A whole number of at least {minimum}."})
    return int(text)


class ApiPagination(LimitOffsetPagination):
    """Limit and offset, checked: junk is a 422, an oversized limit is clamped (see the module docstring)."""

    max_limit = MAX_LIMIT

    # None only if PAGE_SIZE were unset: DRF then leaves the list unpaginated.
    def get_limit(self, request: Request) -> int | None:
        limit = _whole_number(request, self.limit_query_param, minimum=1)
        if limit is None:
            return self.default_limit
        return min(limit, self.max_limit)

    def get_offset(self, request: Request) -> int:
        return _whole_number(request, self.offset_query_param, minimum=0) or 0
