"""ProfileService on a real server with a SQLite profile store in tmp_path: reads,
attributes, the right to be forgotten, export, and admin-only access."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from protos import decisioning_pb2 as pb
from protos import decisioning_pb2_grpc as pb_grpc

ADMIN_TOKEN = "profile-admin-token"
ADMIN = (("authorization", f"Bearer {ADMIN_TOKEN}"),)
NOW = datetime.now(UTC).replace(microsecond=0)


def _event(event_id: str, visitor: str, kind: int = pb.EVENT_TYPE_SESSION_START, **oneof):
    message = pb.Event(event_id=event_id, visitor_id=visitor, type=kind, **oneof)
    message.timestamp.FromDatetime(NOW - timedelta(hours=1))
    return message


def _violations(error: grpc.RpcError) -> list[tuple[str, str]]:
    status = rpc_status.from_call(error)
    assert status is not None
    bad_request = error_details_pb2.BadRequest()
    assert status.details[0].Unpack(bad_request)
    return [(v.field, v.description) for v in bad_request.field_violations]


class Profiles:
    """ProfileService and EventService stubs for one server."""

    def __init__(self, running) -> None:
        self.stub = pb_grpc.ProfileServiceStub(running.channel)
        self.events = pb_grpc.EventServiceStub(running.channel)

    def track(self, *messages: pb.Event) -> None:
        self.events.Track(pb.TrackRequest(events=messages), timeout=10)

    def call(self, method: str, request, metadata=ADMIN):
        return getattr(self.stub, method)(request, metadata=metadata, timeout=5)

    def error(self, method: str, request, metadata=ADMIN) -> grpc.RpcError:
        with pytest.raises(grpc.RpcError) as info:
            self.call(method, request, metadata)
        return info.value

    def get(self, visitor: str) -> pb.GetProfileResponse:
        return self.call("GetProfile", pb.GetProfileRequest(visitor_id=visitor))


@pytest.fixture
def profiles(start_server, store) -> Profiles:
    """A server with an admin token, no API keys, and the default profile store."""
    return Profiles(start_server(admin_token=ADMIN_TOKEN))


class TestGetProfile:
    def test_unknown_visitor_is_not_found(self, profiles):
        """An unknown visitor answers found=false and the JSON text null."""
        response = profiles.get("nobody")

        assert (False, "null") == (response.found, response.profile_json)

    def test_stored_profile_is_json_text(self, profiles):
        """A visitor with events has a profile document as JSON text."""
        profiles.track(_event("s1", "v-1"), _event("s2", "v-1"))

        response = profiles.get("v-1")

        assert response.found
        assert 2 == json.loads(response.profile_json)["visits"]

    def test_visitor_id_is_required(self, profiles):
        """An empty visitor id is INVALID_ARGUMENT at visitor_id."""
        error = profiles.error("GetProfile", pb.GetProfileRequest(visitor_id=""))

        assert [("visitor_id", "is required")] == _violations(error)


class TestSetAttributes:
    def test_attributes_are_set_and_returned(self, profiles):
        """SetAttributes returns the profile with the attributes; GetProfile agrees."""
        request = pb.SetAttributesRequest(visitor_id="v-1")
        request.attributes.update({"loyalty_tier": "gold", "points": 120})

        response = profiles.call("SetAttributes", request)

        expected = {"loyalty_tier": "gold", "points": 120}
        assert expected == json.loads(response.profile_json)["attributes"]
        assert expected == json.loads(profiles.get("v-1").profile_json)["attributes"]

    def test_null_removes_an_attribute(self, profiles):
        """A null value removes that attribute and keeps the others."""
        first = pb.SetAttributesRequest(visitor_id="v-1")
        first.attributes.update({"a": 1, "b": 2})
        profiles.call("SetAttributes", first)
        second = pb.SetAttributesRequest(visitor_id="v-1")
        second.attributes.update({"a": None})

        response = profiles.call("SetAttributes", second)

        assert {"b": 2} == json.loads(response.profile_json)["attributes"]

    @pytest.mark.parametrize(
        ("attributes", "expected"),
        [
            ({}, [("attributes", "at least one attribute is required")]),
            (
                {"a.b": 1},
                [("attributes.a.b", "a key must not contain '.' or start with '$'")],
            ),
        ],
        ids=["empty", "dotted-key"],
    )
    def test_bad_attributes(self, profiles, attributes, expected):
        """Empty or unaddressable attributes are INVALID_ARGUMENT with their path."""
        request = pb.SetAttributesRequest(visitor_id="v-1")
        request.attributes.update(attributes)

        error = profiles.error("SetAttributes", request)

        assert expected == _violations(error)
        assert not profiles.get("v-1").found


class TestDeleteVisitor:
    def test_delete_then_not_found(self, profiles):
        """DeleteVisitor removes the profile and its events; GetProfile then finds nothing
        and a second delete removes nothing."""
        profiles.track(_event("s1", "v-1"), _event("s2", "v-1"), _event("s3", "other"))

        deleted = profiles.call("DeleteVisitor", pb.DeleteVisitorRequest(visitor_id="v-1"))
        again = profiles.call("DeleteVisitor", pb.DeleteVisitorRequest(visitor_id="v-1"))

        assert 3 == deleted.deleted  # two events and the profile row
        assert 0 == again.deleted
        assert not profiles.get("v-1").found
        assert profiles.get("other").found

    def test_delete_forgets_merged_ids(self, profiles):
        """Deleting a customer also forgets the anonymous id merged into it."""
        profiles.track(_event("s1", "anon"), _event("s2", "cust"))
        profiles.track(
            _event("i1", "anon", pb.EVENT_TYPE_IDENTIFY, identify=pb.Identify(customer_id="cust"))
        )

        profiles.call("DeleteVisitor", pb.DeleteVisitorRequest(visitor_id="cust"))

        assert (False, False) == (profiles.get("cust").found, profiles.get("anon").found)
        export = json.loads(
            profiles.call("ExportVisitor", pb.ExportVisitorRequest(visitor_id="anon")).export_json
        )
        assert ([], None, []) == (export["aliases"], export["profile"], export["events"])

    def test_events_sent_again_after_delete_are_new(self, profiles):
        """After a delete the same event ids are stored again (nothing of them is left)."""
        profiles.track(_event("s1", "v-1"))
        profiles.call("DeleteVisitor", pb.DeleteVisitorRequest(visitor_id="v-1"))

        response = profiles.events.Track(pb.TrackRequest(events=[_event("s1", "v-1")]), timeout=5)

        assert (1, 0) == (response.accepted, response.duplicates)


class TestExportVisitor:
    def test_export_holds_profile_events_and_aliases(self, profiles):
        """The export has the canonical id, merged ids, the profile and every event."""
        profiles.track(
            _event(
                "p1",
                "anon",
                pb.EVENT_TYPE_PRODUCT_VIEW,
                product_view=pb.ProductView(sku="S1", price=5),
            )
        )
        profiles.track(
            _event("i1", "anon", pb.EVENT_TYPE_IDENTIFY, identify=pb.Identify(customer_id="cust"))
        )

        export = json.loads(
            profiles.call("ExportVisitor", pb.ExportVisitorRequest(visitor_id="anon")).export_json
        )

        assert ("cust", ["anon"]) == (export["visitor_id"], export["aliases"])
        assert ["S1"] == export["profile"]["products_viewed"]
        assert [  # (timestamp, event_id) order; both have the same timestamp
            ("i1", "identify", {"customer_id": "cust"}),
            ("p1", "product_view", {"sku": "S1", "price": 5.0}),
        ] == [(e["event_id"], e["type"], e["properties"]) for e in export["events"]]

    def test_unknown_visitor_exports_nothing(self, profiles):
        """An unknown visitor's export is empty, not an error."""
        export = json.loads(
            profiles.call("ExportVisitor", pb.ExportVisitorRequest(visitor_id="x")).export_json
        )

        expected = {
            "visitor_id": "x",
            "aliases": [],
            "profile": None,
            "events": [],
            "exposures": [],
            "assignments": [],
            "segment_changes": [],
        }

        assert expected == export


class TestAuth:
    @pytest.mark.parametrize(
        ("method", "request_"),
        [
            ("GetProfile", pb.GetProfileRequest(visitor_id="v")),
            ("SetAttributes", pb.SetAttributesRequest(visitor_id="v")),
            ("DeleteVisitor", pb.DeleteVisitorRequest(visitor_id="v")),
            ("ExportVisitor", pb.ExportVisitorRequest(visitor_id="v")),
        ],
        ids=["get", "set", "delete", "export"],
    )
    @pytest.mark.parametrize(
        "metadata",
        [(), (("authorization", "Bearer wrong"),), (("x-api-key", ADMIN_TOKEN),)],
        ids=["none", "wrong-token", "as-api-key"],
    )
    def test_every_method_needs_the_admin_token(self, profiles, method, request_, metadata):
        """Profile calls without the admin bearer token are UNAUTHENTICATED."""
        error = profiles.error(method, request_, metadata)

        assert grpc.StatusCode.UNAUTHENTICATED == error.code()

    def test_no_admin_token_disables_the_service(self, start_server, store):
        """Without a configured admin token, ProfileService refuses every call."""
        running = start_server(admin_token=None)
        stub = pb_grpc.ProfileServiceStub(running.channel)

        with pytest.raises(grpc.RpcError) as info:
            stub.GetProfile(pb.GetProfileRequest(visitor_id="v"), metadata=ADMIN, timeout=5)

        assert grpc.StatusCode.UNAUTHENTICATED == info.value.code()
        assert "DECIDE_ADMIN_TOKEN" in info.value.details()
