"""Browser tests: Debian's chromium driven by Playwright against pytest-django's live server.

The browser is the distribution's ``/usr/bin/chromium`` (``run.py test``
installs it with apt-get when it can). Without it the tests skip with the
reason, except in CI (``CI=true``), where a missing browser is a failure.
Each test starts from the shipped default policy pack; the live server sees
what the test writes because these tests use real, committed transactions.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from django.core.handlers.wsgi import WSGIHandler
from django.core.management import call_command
from django.test import override_settings
from django_otp.plugins.otp_totp.models import TOTPDevice

from conftest import make_employee, make_user
from consentry.tests.roles import make_approver, make_auditor, make_legal
from e2e.browser import CHROMIUM, CHROMIUM_ARGS, Browser, require


@pytest.fixture(scope="module")
def browser(django_db_setup, django_db_blocker) -> Iterator:
    """Chromium for one test module, started after the test database exists.

    Playwright's sync API keeps an asyncio event loop marked as running in
    this thread for as long as it is open, and Django's ORM refuses to run
    next to one unless DJANGO_ALLOW_ASYNC_UNSAFE is set. So the browser lives
    only as long as the module's tests, and the flag only as long as the
    browser: the rest of the suite runs with Django's guard intact.
    """
    require(CHROMIUM.exists(), f"no chromium at {CHROMIUM}: apt-get install chromium (run.py test does it)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:  # pragma: no cover - requirements-dev pins it
        require(False, "playwright is not installed: pip install -r requirements-dev.txt")
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            yield launched
            launched.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


def _rebuild_handler(live_server) -> None:
    """Give the running live server a fresh request handler, built from the settings now in force."""
    live_server.thread.httpd.set_app(live_server.thread.static_handler(WSGIHandler()))


@pytest.fixture(scope="module")
def http_live_server(live_server):
    """pytest-django's live server, answering plain HTTP on localhost without redirecting to HTTPS.

    SecurityMiddleware reads SECURE_SSL_REDIRECT once, when its handler is
    built, and the session-wide live server may have been started earlier by
    an API test (those send X-Forwarded-Proto instead; a browser cannot, as
    CSRF then insists on an https origin). So for this module the handler is
    rebuilt with the redirect off, and rebuilt again afterwards with the
    production settings. Cookies stay ``Secure``: browsers accept those on
    http://localhost, so the production cookie settings are what is tested.
    """
    with override_settings(SECURE_SSL_REDIRECT=False):
        _rebuild_handler(live_server)
        yield live_server
    _rebuild_handler(live_server)


@pytest.fixture
def policy(transactional_db):
    from governance.models import PolicyRevision

    # A transactional test empties every table, the migration-made revision row too.
    PolicyRevision.objects.get_or_create(pk=1)
    call_command("load_policy_pack", verbosity=0)


@pytest.fixture
def people(policy):
    """The personas of these journeys, on the default pack's regions."""
    from governance.models import Region

    regions = {region.code: region for region in Region.objects.all()}
    us = [regions[code] for code in regions if code == "US" or code.startswith("US-")]
    eu = [regions[code] for code in ("EU", "EEA", "DE", "FR", "IT")]
    nina = make_employee(
        hr_id="E1001",
        country="US",
        subdivision="US-NY",
        department="Engineering",
        user=make_user("nina"),
        display_name="Nina Novak",
    )
    tess = make_employee(
        hr_id="E1003", country="US", subdivision="US-TX", department="Support", display_name="Tess Walker"
    )
    staff = {
        "lena": make_legal(make_user("lena", first_name="Lena", last_name="(legal, US)"), *us),
        "ada": make_approver(make_legal(make_user("ada", first_name="Ada", last_name="(legal)"), *us), *us),
        "elias": make_legal(make_user("elias", first_name="Elias", last_name="(legal, EU)"), *eu),
        "aurelio": make_auditor(make_user("aurelio", first_name="Aurelio", last_name="(auditor)")),
    }
    for user in staff.values():
        # Their authenticator app: legal and auditors sign in with a second factor.
        TOTPDevice.objects.create(user=user, name="phone", confirmed=True)
    return {"nina": nina, "tess": tess, **staff}


class ExportWorker:
    """Stands in for the Celery worker that builds audit exports.

    The live server runs in the test process, so a job the page (or the test)
    enqueues lands in ``queued`` instead of the broker; ``run_next`` then runs
    the real task, as a worker would, while the browser watches.
    """

    def __init__(self, task):
        self.task = task
        self.queued: list[str] = []

    def run_next(self) -> None:
        self.task.apply(args=[self.queued.pop(0)], throw=True)


@pytest.fixture
def export_worker(monkeypatch, settings, tmp_path) -> ExportWorker:
    """Export jobs queue here, and their bundles are stored in a throwaway folder."""
    from audit.tasks import export_build_task

    settings.MEDIA_ROOT = tmp_path / "media"
    worker = ExportWorker(export_build_task)
    monkeypatch.setattr(export_build_task, "delay", worker.queued.append)
    return worker


@pytest.fixture
def open_browser(browser, http_live_server):
    """``open_browser(username=None, mobile=False)`` → a Browser, signed in through the form when named."""
    contexts = []

    def _open(username: str | None = None, *, mobile: bool = False) -> Browser:
        viewport = {"width": 390, "height": 844} if mobile else {"width": 1280, "height": 900}
        context = browser.new_context(viewport=viewport, accept_downloads=True)
        contexts.append(context)
        tab = Browser(context.new_page(), http_live_server.url)
        if username:
            tab.sign_in(username)
        return tab

    yield _open
    for context in contexts:
        context.close()
