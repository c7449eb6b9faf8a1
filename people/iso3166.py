"""ISO 3166 codes, checked against pycountry's tables.

Work locations and regions accept only codes pycountry knows: a typo in an HR
feed must not create a place no rule covers.
"""

from __future__ import annotations

from functools import lru_cache

import pycountry


@lru_cache(maxsize=4096)
def country_name(code: str) -> str | None:
    """Name of ISO 3166-1 alpha-2 ``code``, or None when unknown."""
    if len(code) != 2 or not code.isupper():
        return None
    country = pycountry.countries.get(alpha_2=code)
    return country.name if country else None


@lru_cache(maxsize=16384)
def subdivision_name(code: str) -> str | None:
    """Name of ISO 3166-2 ``code`` (e.g. ``US-NY``), or None when unknown."""
    if "-" not in code or code != code.upper():
        return None
    subdivision = pycountry.subdivisions.get(code=code)
    return subdivision.name if subdivision else None


def is_known(code: str) -> bool:
    return bool(country_name(code) or subdivision_name(code))


def location_errors(country: str, subdivision: str = "") -> dict[str, str]:
    """Field errors for a work location; empty when it is a valid ISO pair."""
    errors: dict[str, str] = {}
    if not country_name(country):
        errors["country"] = f"{country!r} is not an ISO 3166-1 alpha-2 country code (e.g. US, DE)."
    if subdivision:
        if not subdivision_name(subdivision):
            errors["subdivision"] = f"{subdivision!r} is not an ISO 3166-2 subdivision code (e.g. US-NY)."
        elif not subdivision.startswith(f"{country}-"):
            errors["subdivision"] = f"{subdivision!r} is not a subdivision of {country!r}."
    return errors
