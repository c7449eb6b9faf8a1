"""Bearer-token authentication is described once in the OpenAPI document."""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension

from people.authentication import BearerTokenAuthentication, BearerTokenScheme


def test_one_schema_extension_describes_bearer_tokens():
    # drf-spectacular keeps every extension ever defined and answers with the first match, so a second
    # definition for the same class would silently decide which description the schema shows.
    describing = [
        extension
        for extension in OpenApiAuthenticationExtension._registry
        if extension._matches(BearerTokenAuthentication())
    ]
    assert describing == [BearerTokenScheme]
