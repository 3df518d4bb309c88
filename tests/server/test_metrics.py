"""Prometheus metrics, scraped over HTTP from a real server's metrics port."""

from __future__ import annotations

import random
import sqlite3
import time
import urllib.request

import grpc
import pytest
from prometheus_client.parser import text_string_to_metric_families

from protos import decisioning_pb2 as pb


def _scrape(running) -> str:
    url = f"http://127.0.0.1:{running.server.metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.read().decode()


def _value(text: str, name: str, **labels: str) -> float:
    """The value of the sample ``name`` with exactly ``labels``; 0 when absent."""
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return float(sample.value)
    return 0.0


def _samples(text: str) -> list[tuple[str, dict[str, str]]]:
    """Every sample of a scrape: its name and labels."""
    return [
        (sample.name, sample.labels)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    ]


@pytest.fixture
def metered(start_server, store):
    return start_server(metrics_port=0, api_keys=("k",))


DECIDE = {"grpc_service": "decisioning.v1.DecisionService", "grpc_method": "Decide"}


class TestMetrics:
    def test_calls_are_counted_by_status_code(self, metered):
        """Every call is counted under its method and status code, rejections included."""
        ok = pb.DecideRequest(visitor_id="v", placements=["slot_0"])
        metered.decisions.Decide(ok, metadata=(("x-api-key", "k"),), timeout=5)
        for request, metadata in [
            (pb.DecideRequest(visitor_id="", placements=["slot_0"]), (("x-api-key", "k"),)),
            (ok, ()),
        ]:
            with pytest.raises(grpc.RpcError):
                metered.decisions.Decide(request, metadata=metadata, timeout=5)

        text = _scrape(metered)

        assert (1, 1, 1) == (
            _value(text, "grpc_server_handled_total", **DECIDE, grpc_code="OK"),
            _value(text, "grpc_server_handled_total", **DECIDE, grpc_code="INVALID_ARGUMENT"),
            _value(text, "grpc_server_handled_total", **DECIDE, grpc_code="UNAUTHENTICATED"),
        )
        assert 3 == _value(text, "grpc_server_handling_seconds_count", **DECIDE)

    def test_decisions_are_counted_by_placement_campaign_variant_reason(self, metered):
        """Each decision counts once; unknown placements share one label value."""
        request = pb.DecideRequest(visitor_id="v", placements=["slot_0", "slot_1", "typo"])
        metered.decisions.Decide(request, metadata=(("x-api-key", "k"),), timeout=5)

        text = _scrape(metered)

        name = "decide_decisions_total"
        assert (1, 1, 1) == (
            _value(
                text, name, placement="slot_0", campaign="main", variant="only", reason="CAMPAIGN"
            ),
            _value(text, name, placement="slot_1", campaign="", variant="", reason="FALLBACK"),
            _value(
                text,
                name,
                placement="(unknown)",
                campaign="",
                variant="",
                reason="UNKNOWN_PLACEMENT",
            ),
        )

    def test_random_placement_ids_share_one_label(self, metered):
        """32,000 random placement ids: one "(unknown)" label, no more samples than for 32."""
        rng = random.Random(12)

        def decide_unknown(count: int) -> None:
            for _ in range(count // 32):
                ids = [f"random-{rng.getrandbits(64):016x}" for _ in range(32)]
                request = pb.DecideRequest(visitor_id="v", placements=ids)
                metered.decisions.Decide(request, metadata=(("x-api-key", "k"),), timeout=5)

        decide_unknown(32)
        samples_after_32 = _samples(_scrape(metered))
        decide_unknown(32_000 - 32)
        text = _scrape(metered)

        name = "decide_decisions_total"
        unknown = {"campaign": "", "variant": "", "reason": "UNKNOWN_PLACEMENT"}
        assert (32_000, {"(unknown)"}) == (
            _value(text, name, placement="(unknown)", **unknown),
            {labels["placement"] for sample_name, labels in _samples(text) if sample_name == name},
        )
        assert len(samples_after_32) == len(_samples(text))

    def test_ruleset_gauges_and_reload_counters(self, metered, db_path, invalid_rules):
        """The served version is a gauge; reloads and failed reloads are counters."""
        raw = sqlite3.connect(db_path)
        try:
            with raw:
                cursor = raw.execute(
                    "INSERT INTO versions (document, content_hash, created_at)"
                    " VALUES (?, 'x', '2026-01-01T00:00:00Z')",
                    [invalid_rules],
                )
                raw.execute("UPDATE active SET version = ?", [cursor.lastrowid])
        finally:
            raw.close()
        deadline = time.monotonic() + 2
        while metered.server.reloader.status.error_count == 0 and time.monotonic() < deadline:
            time.sleep(0.01)

        text = _scrape(metered)

        assert (1, 1, 1) == (
            _value(text, "decide_ruleset_version"),
            _value(text, "decide_ruleset_reloads_total"),
            _value(text, "decide_ruleset_reload_errors_total"),
        )

    def test_servers_in_one_process_have_separate_registries(self, metered, start_server):
        """Two servers in one process each expose only their own calls."""
        other = start_server(metrics_port=0)
        metered.decisions.Decide(
            pb.DecideRequest(visitor_id="v", placements=["slot_0"]),
            metadata=(("x-api-key", "k"),),
            timeout=5,
        )

        ok = {"grpc_code": "OK", **DECIDE}
        assert (1, 0) == (
            _value(_scrape(metered), "grpc_server_handled_total", **ok),
            _value(_scrape(other), "grpc_server_handled_total", **ok),
        )

    def test_metrics_off_by_default(self, running):
        """Without metrics_port no endpoint is started."""
        assert None is running.server.metrics_port
