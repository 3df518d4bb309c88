"""An immutable snapshot of one loaded rules version: what a request handler works from.

Handlers read ``Reloader.snapshot`` once per request and use only that object, so a
call that started on version 7 finishes on version 7 even if version 8 is swapped in
meanwhile, and the response names the version it used.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import Any

from decision import Ruleset
from server.rules import documents

NULL_JSON = "null"


def to_json(value: Any) -> str:
    """Compact JSON text of a content value (key order kept: it is content)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A compiled ruleset with its store version and precomputed content JSON.

    ``texts`` maps ``id(value)`` to ``(value, json_text)`` for every variant content and
    placement fallback the ruleset holds. The snapshot keeps those values alive, so an
    id cannot be reused while the snapshot exists; ``content_json`` still checks
    identity, and serializes anything it does not know (e.g. a copy) on the spot.
    """

    ruleset: Ruleset
    version: int
    document: str
    loaded_at: datetime
    texts: Mapping[int, tuple[Any, str]]

    @property
    def content_hash(self) -> str:
        """The ruleset's content hash (``Ruleset.version``)."""
        return self.ruleset.version

    def content_json(self, value: Any) -> str:
        """The JSON text of a content value returned by the engine."""
        if value is None:
            return NULL_JSON
        entry = self.texts.get(id(value))
        if entry is not None and entry[0] is value:
            return entry[1]
        return to_json(value)


def build_snapshot(
    version: int, document: str, loaded_at: datetime, ruleset: Ruleset | None = None
) -> Snapshot:
    """Parse, compile and precompute; raises ``InvalidRulesError`` listing every problem.

    ``ruleset``: the document already compiled (by the publish that stored it)."""
    if ruleset is None:
        ruleset = documents.compile_text(document)
    texts: dict[int, tuple[Any, str]] = {}
    values = [p.fallback for p in ruleset.placements.values()]
    values += [v.content for c in ruleset.campaigns.values() for v in c.variants]
    for value in values:
        if value is not None and id(value) not in texts:
            texts[id(value)] = (value, to_json(value))
    return Snapshot(
        ruleset=ruleset,
        version=version,
        document=document,
        loaded_at=loaded_at,
        texts=MappingProxyType(texts),
    )
