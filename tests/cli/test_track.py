"""``decide track``, ``decide profile`` and ``decide profiles rebuild``, run in-process
against a real demo server and a real SQLite file."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta

import pytest

import cli

STAMP = (datetime.now(UTC) - timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ")


def line(event_id: str, type_: str = "session_start", visitor: str = "v-1", **properties) -> str:
    return json.dumps(
        {
            "event_id": event_id,
            "visitor_id": visitor,
            "type": type_,
            "timestamp": STAMP,
            "properties": properties,
        }
    )


@pytest.fixture
def jsonl(tmp_path):
    """``jsonl(*lines)``: a .jsonl file with these lines."""

    def write(*lines: str):
        path = tmp_path / "events.jsonl"
        path.write_text("\n".join(lines) + "\n")
        return path

    return write


@pytest.fixture
def track(decide, demo_server):
    """Run ``decide track FILE`` against the demo server with its API key."""

    def run(path, *extra: str):
        return decide(
            "track", path, "--target", demo_server.target, "--api-key", demo_server.api_key, *extra
        )

    return run


@pytest.fixture
def profile(decide, demo_server):
    """Run ``decide profile ...`` against the demo server with its admin token."""

    def run(*args: str):
        return decide(
            "profile",
            *args,
            "--target",
            demo_server.target,
            "--admin-token",
            demo_server.admin_token,
        )

    return run


class TestTrack:
    def test_events_are_sent_and_counted(self, track, profile, jsonl):
        """Every line is stored; the summary says how many; blank lines are skipped."""
        path = jsonl(line("e1"), "", line("e2"), line("e3", "page_view", url="/"))

        run = track(path, "--batch", "2")

        assert (0, "") == (run.code, run.err)
        assert f"{path}: 3 events sent, 3 stored, 0 duplicates\n" == run.out
        assert 2 == json.loads(profile("v-1", "--json").out)["visits"]

    def test_sending_again_counts_duplicates(self, track, jsonl):
        """Re-running a file stores nothing new."""
        path = jsonl(line("e1"), line("e2"))
        track(path)

        run = track(path)

        assert f"{path}: 2 events sent, 0 stored, 2 duplicates\n" == run.out

    def test_bad_lines_are_reported_and_nothing_is_sent(self, track, profile, jsonl):
        """Each bad line is reported with its number and field; exit 1; nothing stored."""
        path = jsonl(
            line("e1"),
            "{not json",
            line("e3", "purchase", order_id="o1", value=-1, articles=1),
            "[1, 2]",
            line("e1", "page_view"),
        )

        run = track(path)

        assert 1 == run.code
        assert [
            f"{path}:2: invalid JSON at column 2: Expecting property name enclosed in double quotes",
            f"{path}:3: properties.value: must be >= 0",
            f"{path}:4: expected a JSON object, got list",
            f"{path}:5: event_id: repeats line 1 with different content",
            f"decide: error: {path}: 4 bad lines; nothing was sent",
        ] == run.err.splitlines()
        assert 1 == profile("v-1").code

    def test_batch_size_is_checked(self, track, jsonl):
        """--batch outside 1..1000 is a usage error."""
        run = track(jsonl(line("e1")), "--batch", "1001")

        assert 2 == run.code
        assert "--batch must be between 1 and 1000" in run.err

    def test_missing_api_key_is_an_auth_error(self, decide, demo_server, jsonl):
        """Without the API key the server refuses: exit 5, with a hint."""
        run = decide("track", jsonl(line("e1")), "--target", demo_server.target)

        assert 5 == run.code
        assert "--api-key" in run.err

    def test_unreachable_server(self, decide, dead_target, jsonl):
        """An unreachable server is exit 3."""
        run = decide("track", jsonl(line("e1")), "--target", dead_target, "--timeout", "1")

        assert 3 == run.code

    def test_server_rejection_names_the_line(self, track, jsonl, monkeypatch):
        """A batch the server refuses (here: validated locally with a clock days ahead of
        the server's) is reported by line, and the lines before it stay stored."""
        future = (datetime.now(UTC) + timedelta(days=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
        path = jsonl(line("e1"), line("e2").replace(STAMP, future))
        real_datetime = datetime

        class Ahead(datetime):
            @classmethod
            def now(cls, tz=None):
                return real_datetime.now(tz) + timedelta(days=5)

        monkeypatch.setattr("cli.profiles.datetime", Ahead)

        run = track(path, "--batch", "1")

        assert 1 == run.code
        assert "  line 2: timestamp: is more than 24 hours in the future" in run.err
        assert "the lines before line 2 were stored (1 new, 0 duplicates)" in run.err


class TestProfile:
    def test_show_prints_dotted_fields(self, track, profile, jsonl):
        """`decide profile V` prints one dotted field per line."""
        track(jsonl(line("e1"), line("e2", "product_view", sku="S1", category="shoes")))

        run = profile("v-1")

        assert 0 == run.code
        lines = run.out.splitlines()
        rows = [entry.split() for entry in lines[1:]]
        assert "visitor v-1" == lines[0]
        assert ["visits", "1"] in rows
        assert ["categories_viewed", '["shoes"]'] in rows

    def test_json_and_explicit_show(self, track, profile, jsonl):
        """--json prints the document; `profile show V` is the same as `profile V`."""
        track(jsonl(line("e1")))

        assert profile("v-1", "--json").out == profile("show", "v-1", "--json").out
        assert 1 == json.loads(profile("v-1", "--json").out)["visits"]

    def test_unknown_visitor_is_exit_1(self, profile):
        """A visitor without a profile is one error line and exit 1."""
        run = profile("nobody")

        assert (1, "decide: error: no profile stored for visitor nobody\n") == (run.code, run.err)

    def test_delete_then_not_found(self, track, profile, jsonl):
        """`profile delete V` forgets the visitor; showing it is then exit 1."""
        track(jsonl(line("e1"), line("e2")))

        deleted = profile("delete", "v-1")
        again = profile("delete", "v-1")

        assert "deleted visitor v-1: 3 stored records removed\n" == deleted.out
        assert "nothing stored for visitor v-1\n" == again.out
        assert 1 == profile("v-1").code

    def test_export_prints_everything_held(self, track, profile, jsonl):
        """`profile export V` prints the export document as JSON."""
        track(jsonl(line("e1")))

        export = json.loads(profile("export", "v-1").out)

        assert ("v-1", ["e1"]) == (export["visitor_id"], [e["event_id"] for e in export["events"]])

    def test_bad_words_are_a_usage_error(self, profile):
        """An unknown action with a visitor is a usage error."""
        run = profile("purge", "v-1")

        assert 2 == run.code

    def test_admin_token_is_required(self, decide, demo_server):
        """Without the admin token: exit 5 and a hint naming DECIDE_ADMIN_TOKEN."""
        run = decide("profile", "v-1", "--target", demo_server.target)

        assert 5 == run.code
        assert "DECIDE_ADMIN_TOKEN" in run.err


class TestProfilesRebuild:
    def test_rebuild_recomputes_from_the_log(self, track, profile, jsonl, decide, demo_server):
        """A profile row damaged behind the store's back is restored by a rebuild."""
        track(jsonl(line("e1"), line("e2"), line("e3", visitor="v-2")))
        raw = sqlite3.connect(demo_server.db_path)
        with raw:
            raw.execute("UPDATE profiles SET document = '{}', state = '{}'")
        raw.close()

        run = decide("profiles", "rebuild", "--db", demo_server.db_path)

        assert (0, f"rebuilt 2 profiles in {demo_server.db_path}\n") == (run.code, run.out)
        assert 2 == json.loads(profile("v-1", "--json").out)["visits"]

    def test_rebuild_keeps_what_the_active_rules_read(
        self, track, profile, jsonl, decide, demo_server
    ):
        """A rebuild keeps the activity the store's active rules read, as the server does."""
        order = {"order_id": "o-1", "value": 30, "articles": 1}
        track(jsonl(line("e1"), line("e2", "purchase", **order)))
        folded = json.loads(profile("v-1", "--json").out)
        raw = sqlite3.connect(demo_server.db_path)
        with raw:
            raw.execute("UPDATE profiles SET document = '{}', state = '{}'")
        raw.close()

        decide("profiles", "rebuild", "--db", demo_server.db_path)

        rebuilt = json.loads(profile("v-1", "--json").out)
        assert folded == rebuilt
        assert ["purchase", "session"] == sorted(rebuilt["activity"])

    def test_missing_store_file(self, decide, tmp_path):
        """A store file that does not exist is exit 1, and no file is created."""
        path = tmp_path / "nope.db"

        run = decide("profiles", "rebuild", "--db", path)

        assert (1, False) == (run.code, path.exists())
        assert "no such store file" in run.err

    def test_without_a_subcommand_prints_usage(self, decide):
        """`decide profiles` alone prints usage and exits 2."""
        assert cli.EXIT_USAGE == decide("profiles").code
