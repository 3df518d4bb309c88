"""Assembling the server: --demo seeding, TLS, binding errors, serve(), profiles, logs."""

from __future__ import annotations

import io
import json
import logging
import shutil
import subprocess
from pathlib import Path

import grpc
import pytest

import decision
from protos import decisioning_pb2 as pb
from protos import decisioning_pb2_grpc as pb_grpc
from server.app import create_server
from server.processes import serve
from server.config import ServerConfig
from server.logs import JsonFormatter, configure_logging
from server.profiles.cache import CachedProfileStore, merge_profile
from server.rules.sqlite import SQLiteRulesStore as RulesStore


class TestDemo:
    def test_demo_rules_replace_the_seed(self, start_server, admin_metadata):
        """--demo on a new store serves the demo rules."""
        server = start_server(demo=True)

        rules = server.admin.GetRules(pb.GetRulesRequest(), metadata=admin_metadata)

        assert decision.demo_document() == json.loads(rules.document_json)
        assert 2 == server.decide("home_hero").ruleset_version

    def test_demo_never_overwrites_published_rules(self, start_server, store):
        """--demo on a store someone published to leaves their rules active."""
        server = start_server(demo=True)

        assert (1, 1) == (store.active_version(), server.decide().ruleset_version)


class TestBinding:
    def test_port_in_use_is_an_error(self, running):
        """A second server on a busy port fails, saying the address is in use, instead of
        sharing it (no SO_REUSEPORT)."""
        config = ServerConfig(db_path=running.config.db_path, port=running.port)

        with pytest.raises(OSError, match="cannot listen on .*: the address is already in use"):
            create_server(config)

    def test_serve_returns_1_when_it_cannot_start(self, running):
        """serve() logs why and returns exit code 1 when the port is taken."""
        config = ServerConfig(db_path=running.config.db_path, port=running.port)
        root = logging.getLogger()
        saved = (list(root.handlers), root.level)
        try:
            code = serve(config)
        finally:
            root.handlers[:] = saved[0]
            root.setLevel(saved[1])

        assert 1 == code


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
class TestTls:
    @pytest.fixture
    def certificate(self, tmp_path: Path) -> tuple[Path, Path]:
        cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1",
             "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
            check=True,
            capture_output=True,
        )  # fmt: skip
        return cert, key

    def test_tls_port_serves_tls_clients(self, start_server, store, certificate):
        """With tls_cert/tls_key the port speaks TLS: a TLS client decides, plaintext fails."""
        cert, key = certificate
        server = start_server(tls_cert=str(cert), tls_key=str(key))
        credentials = grpc.ssl_channel_credentials(root_certificates=cert.read_bytes())
        request = pb.DecideRequest(visitor_id="v", placements=["slot_0"])

        with grpc.secure_channel(server.target, credentials) as channel:
            response = pb_grpc.DecisionServiceStub(channel).Decide(request, timeout=5)
        with pytest.raises(grpc.RpcError) as plaintext:
            server.decisions.Decide(request, timeout=2)

        assert 1 == response.ruleset_version
        assert grpc.StatusCode.UNAVAILABLE == plaintext.value.code()


class TestProfiles:
    def test_overrides_replace_top_level_fields(self):
        """Overrides replace whole top-level fields; other stored fields stay."""
        stored = {"tier": "gold", "cart": {"items": [1]}, "visits": 3}

        merged = merge_profile(stored, {"cart": {}, "visits": 1})

        assert {"tier": "gold", "cart": {}, "visits": 1} == merged
        assert {"items": [1]} == stored["cart"]

    def test_cache_asks_the_backend_once_per_visitor(self):
        """Within the TTL a visitor's profile (or its absence) is fetched once."""
        calls: list[str] = []

        class Backend:
            def get(self, visitor_id: str):
                calls.append(visitor_id)
                return {"v": visitor_id} if visitor_id == "known" else None

        cache = CachedProfileStore(Backend(), maxsize=10, ttl=60)
        results = [cache.get(v) for v in ("known", "known", "nobody", "nobody")]

        assert [{"v": "known"}, {"v": "known"}, None, None] == results
        assert ["known", "nobody"] == calls

    def test_cache_can_be_disabled(self):
        """maxsize 0 sends every lookup to the backend."""
        calls: list[str] = []

        class Backend:
            def get(self, visitor_id: str):
                calls.append(visitor_id)

        cache = CachedProfileStore(Backend(), maxsize=0, ttl=60)
        cache.get("a")
        cache.get("a")

        assert ["a", "a"] == calls


class TestLogs:
    def test_json_lines_carry_event_fields(self):
        """Each record is one JSON object with level, message and the extra fields."""
        record = logging.LogRecord("decide.x", logging.INFO, __file__, 1, "loaded %d", (3,), None)
        record.event = "rules_loaded"
        record.version = 3

        entry = json.loads(JsonFormatter().format(record))

        assert ("INFO", "loaded 3", "rules_loaded", 3) == (
            entry["level"],
            entry["msg"],
            entry["event"],
            entry["version"],
        )

    def test_no_log_line_per_request(self, running):
        """Successful calls log nothing at INFO: metrics count requests, logs tell events
        (a background worker's one-time event, such as taking the activation lease, may
        fall in the same moments)."""
        stream = io.StringIO()
        root = logging.getLogger()
        saved = (list(root.handlers), root.level)
        try:
            configure_logging("INFO", json_lines=True, stream=stream)
            for _ in range(30):
                running.decide()
        finally:
            root.handlers[:] = saved[0]
            root.setLevel(saved[1])
        lines = [json.loads(line) for line in stream.getvalue().splitlines()]

        assert [] == [line for line in lines if line.get("event") not in {"activation_lease"}]


def test_store_shared_with_the_caller_stays_open(start_server, store):
    """A store passed to create_server is the caller's: stopping the server keeps it open."""
    server = start_server(store=store)

    server.server.stop(None).wait(5)

    assert 1 == store.active_version()
    assert isinstance(store, RulesStore)
