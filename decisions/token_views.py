"""The staff page for API tokens: list, issue (the secret shown once) and revoke.

It sits here, not in people/, because issuing a pipeline token offers the
governance purposes, which the apps above may not import. Who sees, issues
and revokes what is decided in ``people.tokens`` (the same functions the
token API asks), and every write goes through ``token_issue`` and
``token_revoke``, which write the audit entry.
"""

from __future__ import annotations

from functools import wraps

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.cache import add_never_cache_headers, patch_cache_control
from django.views.decorators.http import require_http_methods

from audit.actors import Actor
from consentry.errors import DomainError
from governance.models import Purpose
from people.forms import TokenFilterForm, TokenIssueForm
from people.models import ApiToken, TokenKind
from people.tokens import (
    token_issue,
    token_kinds_issuable_by,
    token_may_revoke,
    token_revoke,
    token_state,
    tokens_filter,
    tokens_visible_to,
)

# Service error keys that name a form field under another name.
_FIELD_OF_ERROR = {"lifetime": "days", "user": "kind"}


def token_page(view):
    """Signed in, with permission to see every token (the staff who manage machine access)."""

    @login_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs):
        if not request.user.has_perm("people.view_apitoken"):
            raise PermissionDenied("The token page is for staff who manage API tokens.")
        return view(request, *args, **kwargs)

    return wrapper


def _issue_form(request: HttpRequest, data=None) -> TokenIssueForm | None:
    kinds = token_kinds_issuable_by(request.user)
    if not kinds:
        return None
    purposes = [(p.slug, p.name) for p in Purpose.objects.filter(prohibited=False).order_by("name")]
    return TokenIssueForm(data, kinds=kinds, purposes=purposes)


def _list_page(request: HttpRequest, issue_form: TokenIssueForm | None, *, status: int = 200) -> HttpResponse:
    now = timezone.now()
    filters = TokenFilterForm(request.GET or None)
    tokens = tokens_visible_to(request.user)
    if filters.is_bound and filters.is_valid():
        data = filters.cleaned_data
        tokens = tokens_filter(tokens, at=now, kind=data["kind"], state=data["state"], search=data["q"])
    elif filters.is_bound:
        tokens = tokens.none()
    page = Paginator(tokens, settings.CONSENTRY_PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    rows = [
        {"token": token, "state": token_state(token, at=now), "may_revoke": token_may_revoke(request.user, token)}
        for token in page.object_list
    ]
    context = {
        "section": "tokens",
        "filters": filters,
        "page": page,
        "rows": rows,
        "query": query.urlencode(),
        "form": issue_form,
        "kind_labels": dict(TokenKind.choices),
    }
    return render(request, "decisions/tokens.html", context, status=status)


def _issue(request: HttpRequest, form: TokenIssueForm) -> tuple[ApiToken, str] | None:
    """Issue through the service; its refusals land on the form's fields. None when refused."""
    user = request.user
    assert user.is_authenticated  # login_required, in token_page
    data = form.cleaned_data
    kind = data["kind"]
    try:
        return token_issue(
            kind=kind,
            name=data["name"].strip() or data["device_id"] or (user.get_username() if kind == "user" else ""),
            employee=data["employee_record"],
            device_id=data["device_id"],
            # A user token acts as the person who issues it, never as somebody else.
            user=user if kind == TokenKind.USER else None,
            purposes=data["purposes"],
            lifetime=form.lifetime,
            actor=Actor.for_user(user),
        )
    except DomainError as error:
        if error.code == "employee_inactive":
            form.add_error("employee", "This employee is not active: tokens are issued only for active employees.")
        for key, message in (error.errors or {}).items():
            field = _FIELD_OF_ERROR.get(key, key)
            form.add_error(field if field in form.fields else None, message)
        if not form.errors:
            form.add_error(None, error.detail)
        return None


@require_http_methods(["GET", "POST"])
@token_page
def tokens(request: HttpRequest) -> HttpResponse:
    """The tokens the viewer may see, and the form to issue one; a successful issue shows the secret once."""
    if request.method == "GET":
        return _list_page(request, _issue_form(request))
    form = _issue_form(request, request.POST)
    if form is None:
        raise PermissionDenied("Your account may not issue tokens.")
    issued = _issue(request, form) if form.is_valid() else None
    if issued is None:
        return _list_page(request, form, status=422)
    token, raw = issued
    response = render(
        request,
        "decisions/token_issued.html",
        {
            "section": "tokens",
            "token": token,
            "raw": raw,
            "server": request.build_absolute_uri("/").rstrip("/"),
            "kind_label": TokenKind(token.kind).label,
        },
    )
    # The secret exists only in this response: no cache, no proxy, no back-button copy keeps it.
    add_never_cache_headers(response)
    patch_cache_control(response, no_store=True, private=True)
    return response


@require_http_methods(["GET", "POST"])
@token_page
def token_revoke_view(request: HttpRequest, pk: int) -> HttpResponse:
    """A confirmation that says what revoking does, then the revocation."""
    token = tokens_visible_to(request.user).filter(pk=pk).first()
    if token is None:
        raise Http404("No such token.")
    if not token_may_revoke(request.user, token):
        raise PermissionDenied("Your account may see this token but not revoke it.")
    if request.method == "POST":
        already = token.revoked_at is not None
        token_revoke(token=token, actor=Actor.for_user(request.user))
        if already:
            messages.info(request, f"{token.name} ({token.prefix}…) was already revoked.")
        else:
            messages.success(request, f"Revoked {token.name} ({token.prefix}…). Its next request is refused.")
        return redirect("tokens:list")
    return render(
        request,
        "decisions/token_revoke.html",
        {
            "section": "tokens",
            "token": token,
            "state": token_state(token, at=timezone.now()),
            "kind_label": TokenKind(token.kind).label,
        },
    )
