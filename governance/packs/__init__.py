"""Policy packs: the versioned YAML file legal keeps in version control.

A pack declares regions, categories, purposes, notices, jurisdiction rules,
legal instruments, retention and exclusions (format in docs/policy-packs.md).
Reading maps every value to its line (``source``), the shape is checked
against ``governance/pack_schema.json`` (``structure``), the meaning against
the pack and the database (``checks``), and only a pack with no problem at all
is applied, in one transaction, through the audited services (``loading``).
``export`` writes the approved policy back out in the same format.
"""

from __future__ import annotations

import os
from pathlib import Path

from governance.packs.checks import check_pack
from governance.packs.export import export_pack
from governance.packs.loading import LoadResult, load_pack, policy_is_empty
from governance.packs.source import PackError, PackInvalid, PackSource, parse_pack

DEFAULT_PACK_PATH = Path(__file__).resolve().parent.parent / "policy_packs" / "default.yaml"


def display_name(path: Path) -> str:
    """How messages name the file: relative to the working directory when it is below it."""
    relative = os.path.relpath(path.resolve())
    return str(path) if relative.startswith("..") else relative


def read_pack(path: Path) -> PackSource:
    """Read and parse a pack file; raises ``PackInvalid`` if it cannot be read or is not YAML."""
    filename = display_name(path)
    try:
        content = path.read_bytes()
    except OSError as exc:
        raise PackInvalid(filename=filename, errors=[PackError(message=f"cannot be read: {exc.strerror}")]) from exc
    return parse_pack(content, filename=filename)


__all__ = [
    "DEFAULT_PACK_PATH",
    "LoadResult",
    "PackError",
    "PackInvalid",
    "PackSource",
    "check_pack",
    "export_pack",
    "load_pack",
    "parse_pack",
    "policy_is_empty",
    "read_pack",
]
