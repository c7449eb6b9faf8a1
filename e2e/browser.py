"""The browser side of the browser tests: where chromium and axe-core are, and a signed-in tab."""

from __future__ import annotations

import json
from pathlib import Path

from consentry.tests.dependencies import require

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ROOT = Path(__file__).resolve().parent.parent
SCREENSHOTS = ROOT / "artifacts" / "screenshots"
AXE = Path(__file__).resolve().parent / "node_modules" / "axe-core" / "axe.min.js"


def current_code(username: str) -> str:
    """What the person's authenticator app shows now (their confirmed TOTP device)."""
    from django_otp.oath import TOTP
    from django_otp.plugins.otp_totp.models import TOTPDevice

    device = TOTPDevice.objects.get(user__username=username, confirmed=True)
    return f"{TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift).token():06d}"


class Browser:
    """One signed-in person's browser tab, with the helpers the journeys use."""

    def __init__(self, page, base_url: str):
        self.page = page
        self.base_url = base_url
        self.console_errors: list[str] = []

        def note_error(message) -> None:
            if message.type == "error":
                self.console_errors.append(message.text)

        page.on("console", note_error)

    def go(self, path: str):
        return self.page.goto(self.base_url + path)

    def sign_in(self, username: str) -> None:
        """Through the real sign-in form (session login with CSRF), then the second factor if asked."""
        self.go("/accounts/login/")
        self.page.get_by_label("Username").fill(username)
        self.page.get_by_label("Password").fill(f"pw-{username}")
        self.page.get_by_role("button", name="Sign in").click()
        self.page.wait_for_load_state()
        if "/accounts/2fa/" in self.page.url:
            self.page.get_by_label("Six-digit code from your authenticator app").fill(current_code(username))
            self.page.get_by_role("button", name="Verify").click()
            self.page.wait_for_load_state()

    def screenshot(self, name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def axe_violations(self, *, impacts=("serious", "critical")) -> list[dict]:
        """Run axe-core on the page; the serious and critical violations, described."""
        require(AXE.exists(), f"axe-core is not installed at {AXE}: npm ci --prefix e2e (run.py test does it)")
        # evaluate() runs through the DevTools protocol, so the page's strict
        # CSP (no inline scripts) stays on while axe is injected.
        self.page.evaluate(AXE.read_text())
        result = self.page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
        return [
            {
                "id": violation["id"],
                "impact": violation["impact"],
                "help": violation["help"],
                "nodes": [node["target"] for node in violation["nodes"]][:5],
            }
            for violation in result["violations"]
            if violation["impact"] in impacts
        ]


def describe(violations: list[dict] | dict[str, list]) -> str:
    # One page's violations, or every page's by name.
    return json.dumps(violations, indent=2)
