"""Status codes and their details, against a real server on 127.0.0.1:0."""

from __future__ import annotations

import logging

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from protos import decisioning_pb2 as pb
from server import limits


def _violations(error: grpc.RpcError) -> list[tuple[str, str]]:
    status = rpc_status.from_call(error)
    assert status is not None, "no google.rpc.Status in the trailers"
    bad_request = error_details_pb2.BadRequest()
    assert status.details[0].Unpack(bad_request)
    return [(v.field, v.description) for v in bad_request.field_violations]


def _decide_error(running, request: pb.DecideRequest) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        running.decisions.Decide(request, timeout=5)
    return info.value


class TestInvalidArgument:
    def test_every_problem_is_a_field_violation(self, running):
        """A bad request lists every problem, each at its path, in a BadRequest."""
        request = pb.DecideRequest(visitor_id="", placements=["slot_0", "slot_1", ""])
        request.context.update({"page": {"tags": [1, 2, 3, float("nan")]}})

        error = _decide_error(running, request)

        assert grpc.StatusCode.INVALID_ARGUMENT == error.code()
        assert [
            ("visitor_id", "is required"),
            ("placements[2]", "must not be empty"),
            ("context.page.tags[3]", "must be a finite number"),
        ] == _violations(error)

    def test_too_many_placements(self, start_server, store):
        """More placements than max_placements is INVALID_ARGUMENT naming the limit."""
        server = start_server(max_placements=2)

        error = _decide_error(server, pb.DecideRequest(visitor_id="v", placements=["a", "b", "c"]))

        assert [("placements", "3 placements requested; at most 2 per call")] == _violations(error)

    def test_visitor_id_too_long(self, running):
        """An overlong visitor id is INVALID_ARGUMENT at visitor_id."""
        request = pb.DecideRequest(
            visitor_id="v" * (limits.MAX_VISITOR_ID_LENGTH + 1), placements=["slot_0"]
        )

        assert ["visitor_id"] == [f for f, _ in _violations(_decide_error(running, request))]

    def test_context_too_deep(self, running):
        """A context nested past MAX_STRUCT_DEPTH is INVALID_ARGUMENT at the deep path."""
        deep: dict = {"x": 1}
        for _ in range(limits.MAX_STRUCT_DEPTH):
            deep = {"n": deep}
        request = pb.DecideRequest(visitor_id="v", placements=["slot_0"])
        request.context.update(deep)

        ((field, description),) = _violations(_decide_error(running, request))

        assert field.startswith("context.n.n")
        assert "nests deeper than 8 levels" == description

    def test_engine_problems_are_invalid_argument(self, running):
        """The engine's own request checks (duplicate placements) map to INVALID_ARGUMENT."""
        request = pb.DecideRequest(visitor_id="v", placements=["slot_0", "slot_0"])

        error = _decide_error(running, request)

        assert grpc.StatusCode.INVALID_ARGUMENT == error.code()
        assert ["placements[1]"] == [f for f, _ in _violations(error)]

    def test_invalid_document_lists_every_problem(self, running, invalid_rules, admin_metadata):
        """PublishRules with a bad document is INVALID_ARGUMENT with all its problems."""
        with pytest.raises(grpc.RpcError) as info:
            running.admin.PublishRules(
                pb.PublishRulesRequest(document_json=invalid_rules), metadata=admin_metadata
            )

        violations = _violations(info.value)
        assert grpc.StatusCode.INVALID_ARGUMENT == info.value.code()
        assert len(violations) >= 2
        assert all(field.startswith("campaigns[0]") for field, _ in violations)

    def test_malformed_json_names_line_and_column(self, running, admin_metadata):
        """A syntax error in a published document names its line and column."""
        with pytest.raises(grpc.RpcError) as info:
            running.admin.PublishRules(
                pb.PublishRulesRequest(document_json='{\n"segments": [,]}'),
                metadata=admin_metadata,
            )

        assert [("", "invalid JSON at line 2, column 14: Expecting value")] == _violations(
            info.value
        )

    def test_oversized_document(self, running, admin_metadata):
        """A document over MAX_DOCUMENT_BYTES (but under the message limit) is refused."""
        text = '{"pad": "' + "x" * limits.MAX_DOCUMENT_BYTES + '"}'

        with pytest.raises(grpc.RpcError) as info:
            running.admin.PublishRules(
                pb.PublishRulesRequest(document_json=text), metadata=admin_metadata
            )

        assert grpc.StatusCode.INVALID_ARGUMENT == info.value.code()
        assert "at most 2097152" in info.value.details()


class TestOtherCodes:
    def test_message_over_the_receive_limit(self, running):
        """A request larger than MAX_RECEIVE_MESSAGE_BYTES is RESOURCE_EXHAUSTED (gRPC's own)."""
        request = pb.DecideRequest(
            visitor_id="v" * (limits.MAX_RECEIVE_MESSAGE_BYTES + 1), placements=["slot_0"]
        )

        assert grpc.StatusCode.RESOURCE_EXHAUSTED == _decide_error(running, request).code()

    def test_stale_expected_version(self, running, make_rules, admin_metadata):
        """Publishing against a version that is no longer active is FAILED_PRECONDITION."""
        request = pb.PublishRulesRequest(document_json=make_rules("v2"), expected_version=0)

        with pytest.raises(grpc.RpcError) as info:
            running.admin.PublishRules(request, metadata=admin_metadata)

        assert grpc.StatusCode.FAILED_PRECONDITION == info.value.code()
        assert "active version is 1" in info.value.details()

    def test_missing_version(self, running, admin_metadata):
        """GetRules and Rollback of an unknown version are NOT_FOUND."""
        with pytest.raises(grpc.RpcError) as get_info:
            running.admin.GetRules(pb.GetRulesRequest(version=99), metadata=admin_metadata)
        with pytest.raises(grpc.RpcError) as rollback_info:
            running.admin.Rollback(pb.RollbackRequest(version=99), metadata=admin_metadata)

        assert (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.NOT_FOUND) == (
            get_info.value.code(),
            rollback_info.value.code(),
        )

    def test_unexpected_exception_is_generic_internal(self, start_server, store, caplog):
        """A crash in a dependency is INTERNAL with a generic message; the log has it all."""

        class Broken:
            def peek(self, visitor_id):
                raise RuntimeError("profile backend password=hunter2")

            def use_activity(self, needs):
                pass

            def activity_status(self):
                from server.profiles.backfill import BackfillStatus

                return BackfillStatus()

            def close(self):
                pass

        server = start_server(profiles=Broken())

        with caplog.at_level(logging.ERROR, "decide.server"):
            error = _decide_error(server, pb.DecideRequest(visitor_id="v", placements=["slot_0"]))

        assert grpc.StatusCode.INTERNAL == error.code()
        assert "hunter2" not in error.details()
        assert "hunter2" in caplog.text

    def test_unavailable_before_the_first_good_load(self, start_server, db_path, invalid_rules):
        """With only a bad document in the store, Decide is UNAVAILABLE (retryable)."""
        _store_with_only(db_path, invalid_rules)
        server = start_server()

        error = _decide_error(server, pb.DecideRequest(visitor_id="v", placements=["slot_0"]))

        assert grpc.StatusCode.UNAVAILABLE == error.code()


class TestAdminRoundTrip:
    def test_publish_get_list_rollback(self, running, make_rules, admin_metadata):
        """Publish, read back, list and roll back through the API; Decide follows."""
        published = running.admin.PublishRules(
            pb.PublishRulesRequest(document_json=make_rules("v2"), expected_version=1),
            metadata=admin_metadata + (("x-decide-author", "ana"),),
        ).version
        served_after_publish = running.decide().ruleset_version
        got = running.admin.GetRules(pb.GetRulesRequest(), metadata=admin_metadata)
        rolled = running.admin.Rollback(
            pb.RollbackRequest(version=1, comment="back"), metadata=admin_metadata
        ).version
        listed = running.admin.ListVersions(
            pb.ListVersionsRequest(limit=2), metadata=admin_metadata
        )

        assert (2, "ana", 2) == (published.version, published.author, served_after_publish)
        assert make_rules("v2") == got.document_json
        assert (3, 1, "back") == (rolled.version, rolled.restored_from, rolled.comment)
        assert ([3, 2], 3) == ([v.version for v in listed.versions], listed.active_version)
        assert 3 == running.decide().ruleset_version

    def test_status_shows_hash_and_counts(self, running, admin_metadata):
        """GetStatus names the served version, its hash and the store's version."""
        status = running.status()
        decided = running.decide()

        assert (1, 1, decided.ruleset_hash) == (
            status.active_version,
            status.store_version,
            status.content_hash,
        )
        assert status.reload_count >= 1
        assert status.server_version


def _store_with_only(db_path, document: str) -> None:
    """A store file whose only version holds ``document``, written around the API."""
    import sqlite3

    from server.rules.sqlite import SQLiteRulesStore as RulesStore

    RulesStore(db_path, seed=False).close()
    raw = sqlite3.connect(db_path)
    try:
        with raw:
            raw.execute(
                "INSERT INTO versions (version, document, content_hash, created_at)"
                " VALUES (1, ?, 'x', '2026-01-01T00:00:00Z')",
                [document],
            )
            raw.execute("INSERT INTO active (id, version, updated_at) VALUES (1, 1, 'now')")
    finally:
        raw.close()
