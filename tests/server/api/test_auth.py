"""Authentication: admin bearer token, decision API keys, open health and reflection."""

from __future__ import annotations

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from protos import decisioning_pb2 as pb


def _status_error(call, *args, **kwargs) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        call(*args, timeout=5, **kwargs)
    return info.value


class TestAdminToken:
    @pytest.mark.parametrize(
        ("metadata", "details"),
        [
            ((), "missing admin credentials"),
            ((("authorization", "Bearer wrong"),), "invalid admin token"),
            ((("authorization", "Basic abc"),), "malformed authorization metadata"),
            ((("authorization", "Bearer"),), "malformed authorization metadata"),
        ],
        ids=["missing", "wrong", "wrong-scheme", "empty"],
    )
    def test_bad_credentials_are_unauthenticated(self, running, metadata, details):
        """Admin calls without the right bearer token are UNAUTHENTICATED, saying why."""
        error = _status_error(running.admin.GetStatus, pb.GetStatusRequest(), metadata=metadata)

        assert grpc.StatusCode.UNAUTHENTICATED == error.code()
        assert error.details().startswith(details)

    def test_scheme_is_case_insensitive(self, running, admin_metadata):
        """'bearer' works as well as 'Bearer' (RFC 7235 schemes are case-insensitive)."""
        token = admin_metadata[0][1].split(" ", 1)[1]

        status = running.admin.GetStatus(
            pb.GetStatusRequest(), metadata=(("authorization", f"bearer {token}"),)
        )

        assert 1 == status.active_version

    def test_no_configured_token_refuses_every_admin_call(
        self, start_server, store, admin_metadata
    ):
        """Without an admin token the admin API is off, and the error says how to enable it."""
        server = start_server(admin_token=None)

        error = _status_error(
            server.admin.ListVersions, pb.ListVersionsRequest(), metadata=admin_metadata
        )

        assert grpc.StatusCode.UNAUTHENTICATED == error.code()
        assert "DECIDE_ADMIN_TOKEN" in error.details()

    def test_admin_token_is_not_an_api_key(self, start_server, store, admin_metadata):
        """The admin token does not open DecisionService when API keys are configured."""
        server = start_server(api_keys=("k1",))
        token = admin_metadata[0][1].split(" ", 1)[1]

        error = _status_error(
            server.decisions.Decide,
            pb.DecideRequest(visitor_id="v", placements=["slot_0"]),
            metadata=(("x-api-key", token),),
        )

        assert grpc.StatusCode.UNAUTHENTICATED == error.code()


class TestApiKeys:
    @pytest.fixture
    def keyed(self, start_server, store):
        return start_server(api_keys=("key-one", "key-two"))

    def test_missing_key(self, keyed):
        """With keys configured, a Decide without x-api-key is UNAUTHENTICATED."""
        error = _status_error(
            keyed.decisions.Decide, pb.DecideRequest(visitor_id="v", placements=["slot_0"])
        )

        assert (
            grpc.StatusCode.UNAUTHENTICATED,
            "missing API key: send it in 'x-api-key' metadata",
        ) == (
            error.code(),
            error.details(),
        )

    def test_wrong_key(self, keyed):
        """An unknown key is UNAUTHENTICATED."""
        error = _status_error(
            keyed.decisions.GetVisitorSegments,
            pb.GetVisitorSegmentsRequest(visitor_id="v"),
            metadata=(("x-api-key", "key-three"),),
        )

        assert (grpc.StatusCode.UNAUTHENTICATED, "invalid API key") == (
            error.code(),
            error.details(),
        )

    @pytest.mark.parametrize("key", ["key-one", "key-two"])
    def test_any_configured_key_works(self, keyed, key):
        """Each configured key is accepted."""
        response = keyed.decisions.Decide(
            pb.DecideRequest(visitor_id="v", placements=["slot_0"]),
            metadata=(("x-api-key", key),),
            timeout=5,
        )

        assert 1 == response.ruleset_version

    def test_no_keys_configured_means_open(self, running):
        """Without configured keys, Decide needs no metadata."""
        response = running.decisions.Decide(
            pb.DecideRequest(visitor_id="v", placements=["slot_0"]), timeout=5
        )

        assert 1 == response.ruleset_version

    def test_health_stays_open(self, keyed):
        """Health checks need no credentials, whatever is configured."""
        stub = health_pb2_grpc.HealthStub(keyed.channel)

        response = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=5)

        assert health_pb2.HealthCheckResponse.SERVING == response.status


class TestPersonalData:
    """Which segments a visitor is in is personal data: shown only to callers with
    credentials (README, "Security")."""

    REQUEST = pb.DecideRequest(visitor_id="new-face", placements=["home_hero"])

    def test_anonymous_decide_gets_content_but_no_segments(self, start_server):
        """On a server without API keys, an anonymous Decide gets the campaign and its
        content, with matched_segments left empty."""
        server = start_server(demo=True)

        hero = server.decisions.Decide(self.REQUEST, timeout=5).decisions[0]

        assert ("welcome_offer", []) == (hero.campaign_id, list(hero.matched_segments))
        assert hero.content_json.startswith('{"headline"')

    def test_admin_token_shows_segments_and_explanations(self, start_server, admin_metadata):
        """The same call with the admin token names the matched segments and may explain."""
        server = start_server(demo=True)

        plain = server.decisions.Decide(self.REQUEST, metadata=admin_metadata, timeout=5)
        explained = server.decisions.Decide(
            pb.DecideRequest(visitor_id="new-face", placements=["home_hero"], explain=True),
            metadata=admin_metadata,
            timeout=5,
        )

        assert ["new_visitors"] == list(plain.decisions[0].matched_segments)
        assert explained.decisions[0].explanation.candidates

    def test_anonymous_explain_and_segment_lookup_are_refused(self, start_server):
        """explain and GetVisitorSegments without credentials are UNAUTHENTICATED, saying
        which credential would do."""
        server = start_server(demo=True)
        explain = _status_error(
            server.decisions.Decide,
            pb.DecideRequest(visitor_id="new-face", placements=["home_hero"], explain=True),
        )
        segments = _status_error(
            server.decisions.GetVisitorSegments, pb.GetVisitorSegmentsRequest(visitor_id="huge")
        )

        assert [grpc.StatusCode.UNAUTHENTICATED] * 2 == [explain.code(), segments.code()]
        assert "personal data" in explain.details()
        assert "admin" in segments.details()

    def test_api_key_holders_get_the_full_answer(self, start_server):
        """With API keys configured, a keyed call sees segments, explanations and
        GetVisitorSegments; the admin token alone is not a key."""
        server = start_server(demo=True, api_keys=("shop-key",))
        keyed = (("x-api-key", "shop-key"),)

        hero = server.decisions.Decide(self.REQUEST, metadata=keyed, timeout=5).decisions[0]
        segments = server.decisions.GetVisitorSegments(
            pb.GetVisitorSegmentsRequest(visitor_id="new-face"), metadata=keyed, timeout=5
        )

        assert ["new_visitors"] == list(hero.matched_segments)
        assert "new_visitors" in segments.segment_ids
