"""Rate limits per person and per machine token (API.md, Conventions: 429 with Retry-After).

One throttle for every view. A view picks its bucket with ``throttle_scope``
(default ``api``; the decision endpoints use ``decisions``, with a higher
rate); rates come from ``CONSENTRY_RATE_LIMITS`` at request time. A person
is limited as themselves whether they use the portal session or a user token;
each machine token is limited on its own; anonymous callers by address.

Counters live in the Django cache (local memory by default, Redis in
production so every web process shares them). If the cache fails, the
request is refused with 503 ``dependency_unavailable`` (API.md, Conventions):
an unlimited API is not the safe default.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle

from consentry.errors import DependencyUnavailable

logger = logging.getLogger(__name__)

DEFAULT_SCOPE = "api"
ANONYMOUS_SCOPE = "anon"


class RateLimiterUnavailable(DependencyUnavailable):
    title = "Rate limiting is unavailable"


class CallerRateThrottle(SimpleRateThrottle):
    """Sliding-window limit per caller and scope, configured in settings at request time."""

    def __init__(self) -> None:
        # SimpleRateThrottle reads the rate here, before the view is known; we read it per request.
        pass

    def scope_for(self, request: Request, view) -> str:
        user = getattr(request, "user", None)
        if (user is None or not user.is_authenticated) and request.auth is None:
            return ANONYMOUS_SCOPE
        return getattr(view, "throttle_scope", None) or DEFAULT_SCOPE

    def get_rate(self) -> str | None:
        rates = settings.CONSENTRY_RATE_LIMITS
        if self.scope not in rates:
            raise ImproperlyConfigured(f"No rate limit configured for throttle scope {self.scope!r}")
        return rates[self.scope]

    def get_cache_key(self, request: Request, view) -> str:
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            ident = f"user:{user.pk}"
        elif getattr(request.auth, "pk", None) is not None:
            ident = f"token:{request.auth.pk}"
        else:
            ident = f"addr:{self.get_ident(request)}"
        return f"throttle:{self.scope}:{ident}"

    def allow_request(self, request: Request, view) -> bool:
        self.scope = self.scope_for(request, view)
        self.rate = self.get_rate()
        if self.rate is None:
            return True
        self.num_requests, self.duration = self.parse_rate(self.rate)
        try:
            return super().allow_request(request, view)
        except Exception as exc:
            logger.warning("rate limiter cache failed: %s", exc)
            raise RateLimiterUnavailable("Rate limiting is unavailable; try again shortly.") from exc
