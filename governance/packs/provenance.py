"""Which pack entries were applied before: the ledger's record of earlier loads.

A pack applies each entry once. When the ledger shows that a load already
applied an entry saying exactly this, and the database says something else
now, the policy was changed since (a rule approved in the console, a
retention period edited, an exclusion removed, or a later pack): that later
change stands, and the entry is *kept* as the database has it instead of
being applied again. So loading the same pack at every start, or an older
pack after a newer one, never undoes what was decided after it. An entry
that says something no load has applied yet is a new decision of the pack
and is applied as before.

Each ``policy_pack.loaded`` entry lists the fingerprints of the entries of
the pack it records (``entries.entry_fingerprint``). Entries written before
fingerprints were recorded name only the file's SHA-256: every entry of that
exact file counts as applied.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from audit.models import AuditEntry, EventType
from governance.packs.entries import FINGERPRINTED_SECTIONS, entry_fingerprint
from governance.packs.source import PackSource


@dataclass(frozen=True, slots=True)
class PackHistory:
    """What earlier loads applied, as read from the ledger."""

    fingerprints: frozenset[str]
    files: frozenset[str]

    @classmethod
    def from_ledger(cls) -> PackHistory:
        fingerprints: set[str] = set()
        files: set[str] = set()
        for payload in AuditEntry.objects.filter(event_type=EventType.POLICY_PACK_LOADED).values_list(
            "payload", flat=True
        ):
            if not isinstance(payload, dict):
                continue
            recorded = payload.get("entries")
            if isinstance(recorded, list):
                fingerprints.update(item for item in recorded if isinstance(item, str))
            elif isinstance(payload.get("sha256"), str):
                files.add(payload["sha256"])
        return cls(fingerprints=frozenset(fingerprints), files=frozenset(files))

    def applied(self, source: PackSource, section: str, entry: Any) -> bool:
        """Whether an earlier load applied this entry, word for word."""
        if source.sha256 in self.files:
            return True
        fingerprint = entry_fingerprint(section, entry)
        return fingerprint is not None and fingerprint in self.fingerprints


def pack_fingerprints(source: PackSource) -> list[str]:
    """The fingerprints a load of ``source`` records: every entry it says, applied now or before."""
    found = {
        fingerprint
        for section in FINGERPRINTED_SECTIONS
        for _index, entry in source.section(section)
        if (fingerprint := entry_fingerprint(section, entry)) is not None
    }
    return sorted(found)
