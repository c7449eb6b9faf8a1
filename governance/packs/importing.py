"""Importing a pack through the legal console: the loader, plus who uploaded it.

The loader records its changes as the ``policy_pack`` system actor, naming the
pack as the approving channel. A console upload is a person's act, so the
same transaction also records who imported which file; if that entry cannot
be written, the pack is not applied either.
"""

from __future__ import annotations

from django.db import transaction

from audit.actors import Actor
from audit.models import EventType
from audit.services import record
from governance.packs.loading import LoadResult, load_pack
from governance.packs.source import PackSource


def pack_import(*, source: PackSource, actor: Actor) -> LoadResult:
    """Check and apply an uploaded pack in one transaction, attributed to ``actor``.

    Raises ``PackInvalid`` (nothing applied) when the pack has any problem.
    An unchanged pack writes nothing, as with ``load_policy_pack``.
    """
    with transaction.atomic():
        result = load_pack(source)
        if result.changed:
            record(
                event_type=EventType.POLICY_PACK_IMPORTED,
                actor=actor,
                object_type="policy_pack",
                object_id=f"{result.name}:{result.version}",
                payload={
                    "name": result.name,
                    "version": result.version,
                    "sha256": result.sha256,
                    "filename": source.filename,
                },
            )
    return result
