"""The commands the docs tell readers to run exist, and name demo logins that exist."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from django.core.management import call_command, get_commands

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "client" / "README.md"]

# Code a reader copies: fenced blocks and inline spans (which may wrap a line).
CODE = re.compile(r"```[^\n]*\n(.*?)```|`([^`]+)`", re.DOTALL)
COMMAND = re.compile(r"(?:run\.py\s+manage|python3?\s+manage\.py)\s+([a-z_]+)")
# ``python manage.py`` with a real command after it (not a placeholder such as <command>).
BARE = re.compile(r"python3? manage\.py\s+[a-z]")
# Arguments that name a person: (pattern, what it names).
PERSON_ARGUMENTS = [
    (re.compile(r"\benrol_totp\s+(\S+)"), "username"),
    (re.compile(r"\baxes_reset_username\s+(\S+)"), "username"),
    (re.compile(r"\bset_password_link\s+(\S+)"), "username"),
    (re.compile(r"--username\s+(\S+)"), "username"),
    (re.compile(r"--employee\s+(\S+)"), "hr_id"),
]


def code_in(path: Path) -> list[str]:
    return [block or span for block, span in CODE.findall(path.read_text(encoding="utf-8"))]


def is_placeholder(word: str) -> bool:
    return word.startswith("<") or word.isupper() or word in {"…", "..."}


@pytest.mark.parametrize("path", DOCS, ids=lambda path: str(path.relative_to(ROOT)))
def test_every_management_command_in_the_docs_exists(path):
    known = set(get_commands()) | {"help"}
    named = {name for code in code_in(path) for name in COMMAND.findall(code)}

    assert named - known == set(), f"{path.name} names commands manage.py does not have"


def test_the_docs_show_how_to_run_commands_outside_production_with_run_py():
    # Outside the production section, a fresh machine has no Django on its path: run.py brings the virtualenv.
    readme = ROOT / "README.md"
    before_production = readme.read_text(encoding="utf-8").split("## Production")[0]
    # A line may still say that inside the virtualenv ``python manage.py`` is the same command.
    bare = [
        f"{path.relative_to(ROOT)}: {line}"
        for path in DOCS
        if path != readme
        for line in path.read_text(encoding="utf-8").splitlines()
        if BARE.search(line) and "virtualenv" not in line
    ]

    assert not BARE.search(before_production)
    assert bare == []


@pytest.mark.django_db
def test_every_person_named_in_a_docs_command_is_a_demo_login(settings, tmp_path):
    settings.STATE_DIR = tmp_path
    out = io.StringIO()
    call_command("load_demo", stdout=out)
    logins = {line.split()[0]: line for line in out.getvalue().splitlines()[1:]}
    hr_ids = set(re.findall(r"employee (E\d+)", out.getvalue()))
    assert {"nina", "legal_us", "approver", "auditor"} <= set(logins)

    named = [
        (path.name, kind, word)
        for path in DOCS
        for code in code_in(path)
        for pattern, kind in PERSON_ARGUMENTS
        for word in pattern.findall(code)
        if not is_placeholder(word)
    ]

    assert named, "the docs name no demo login at all: the pattern no longer matches them"
    unknown = [
        (name, kind, word) for name, kind, word in named if word not in (logins if kind == "username" else hr_ids)
    ]
    assert unknown == []
