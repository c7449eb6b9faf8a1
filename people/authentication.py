"""DRF authentication and permissions for bearer tokens (API.md, Conventions)."""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions, permissions
from rest_framework.request import Request

from people.models import ApiToken, TokenKind
from people.tokens import token_resolve


class BearerTokenAuthentication(authentication.BaseAuthentication):
    """``Authorization: Bearer <token>``. User tokens act as their person; machine tokens as themselves."""

    keyword = "Bearer"

    def authenticate(self, request: Request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Malformed Authorization header: use 'Bearer <token>'.")
        try:
            raw = header[1].decode("ascii")
        except UnicodeDecodeError as exc:
            raise exceptions.AuthenticationFailed("The token is not valid.") from exc
        token = token_resolve(raw)
        if token is None:
            raise exceptions.AuthenticationFailed("The token is unknown, expired or revoked.")
        if token.kind == TokenKind.USER:
            user = token.user
            # token_user_bound: a user token always acts as a user.
            assert user is not None
            if not user.is_active:
                raise exceptions.AuthenticationFailed("The token's user is inactive.")
            return user, token
        return AnonymousUser(), token

    def authenticate_header(self, request: Request) -> str:
        return f'{self.keyword} realm="consentry"'


def token_of(request: Request) -> ApiToken | None:
    return request.auth if isinstance(request.auth, ApiToken) else None


class _TokenKindPermission(permissions.BasePermission):
    kind: str = ""
    message = "This token may not call this endpoint."

    def has_permission(self, request: Request, view) -> bool:
        token = token_of(request)
        return token is not None and token.kind == self.kind


class IsDeviceToken(_TokenKindPermission):
    kind = TokenKind.DEVICE


class IsPipelineToken(_TokenKindPermission):
    kind = TokenKind.PIPELINE


class IsHRToken(_TokenKindPermission):
    kind = TokenKind.HR


class IsPersonAuthenticated(permissions.BasePermission):
    """A signed-in person (session or user token); machine tokens are refused."""

    message = "Sign in, or use a user token."

    def has_permission(self, request: Request, view) -> bool:
        token = token_of(request)
        if token is not None and token.kind != TokenKind.USER:
            return False
        return bool(request.user and request.user.is_authenticated)


class BearerTokenScheme(OpenApiAuthenticationExtension):
    """Describes ``BearerTokenAuthentication`` in the OpenAPI document (drf-spectacular).

    drf-spectacular registers an extension when its class is defined, so this module must be imported
    before the schema is generated: ``PeopleConfig.ready()`` does it.
    """

    target_class = BearerTokenAuthentication
    name = "bearerToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "Device, pipeline, user or HR token (API.md, Conventions): `Authorization: Bearer <token>`.",
        }
