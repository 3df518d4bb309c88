"""The self-contained HTML report: inline CSS and SVG charts, no script, no network."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from insights.model import CampaignReport, SegmentReport


def render_html(
    campaigns: Sequence[CampaignReport],
    segments: SegmentReport | None = None,
    *,
    title: str = "decide insights",
    generated_at: datetime | str,
) -> str:
    """One HTML document with a section per campaign and one for the segments.

    ``generated_at`` is shown in the header (the report reads no clock). Every id is
    escaped; the charts are inline SVG with a ``<title>`` and a table of the same
    numbers beside them.
    """
    raise NotImplementedError("render_html is being written")
