"""The ``decide`` command line: exit codes, messages and output, run in-process."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

import cli


class TestParseAssignments:
    @pytest.mark.parametrize(
        ("items", "expected"),
        [
            (["visits=3"], {"visits": 3}),
            (["ratio=0.5", "vip=true", "none=null"], {"ratio": 0.5, "vip": True, "none": None}),
            (["device=mobile"], {"device": "mobile"}),
            (['code="007"'], {"code": "007"}),
            (['tags=["a","b"]'], {"tags": ["a", "b"]}),
            (["page.type=home", "page.id=12"], {"page": {"type": "home", "id": 12}}),
            (["empty="], {"empty": ""}),
            (["url=https://x.test/?a=b"], {"url": "https://x.test/?a=b"}),
        ],
        ids=["int", "scalars", "string", "quoted", "list", "dotted", "empty", "equals"],
    )
    def test_values_are_json_when_they_parse(self, items, expected):
        """KEY=VALUE parses VALUE as JSON, else keeps the string; dotted keys nest."""
        assert expected == cli.parse_assignments(items, "--context")

    @pytest.mark.parametrize("item", ["novalue", "=3", "a..b=1"])
    def test_malformed_assignment_is_a_usage_error(self, item):
        """An item without KEY= is rejected with the usage exit code."""
        with pytest.raises(cli.CliError) as caught:
            cli.parse_assignments([item], "--context")

        assert cli.EXIT_USAGE == caught.value.exit_code

    def test_value_and_nested_keys_conflict(self):
        """a=1 and a.b=2 cannot both hold: the second is reported."""
        with pytest.raises(cli.CliError, match="a is already a value"):
            cli.parse_assignments(["a=1", "a.b=2"], "--context")


class TestRulesValidate:
    def test_valid_file_exits_zero(self, decide, demo_file):
        """A valid rules file prints 'valid' and exits 0."""
        run = decide("rules", "validate", demo_file)

        assert (0, "") == (run.code, run.err)
        assert "valid" in run.out

    def test_every_problem_is_printed_with_its_path(self, decide, tmp_path):
        """Each problem is a line 'FILE: PATH: MESSAGE' on stderr; exit 1."""
        path = tmp_path / "bad.json"
        path.write_text(json.dumps({"segments": [], "placements": [], "campaigns": [{}, {}]}))

        run = decide("rules", "validate", path)

        assert 1 == run.code
        assert f"{path}: campaigns[0]" in run.err
        assert f"{path}: campaigns[1]" in run.err
        assert "invalid rules document" in run.err.splitlines()[-1]

    def test_json_syntax_error_names_line_and_column(self, decide, tmp_path):
        """A JSON syntax error is reported with its line and column."""
        path = tmp_path / "broken.json"
        path.write_text('{\n  "segments": [\n  ]\n  "campaigns": []\n}\n')

        run = decide("rules", "validate", path)

        assert 1 == run.code
        assert "line 4, column 3" in run.err

    def test_missing_file_is_one_line(self, decide, tmp_path):
        """A missing file is one error line, exit 1, no traceback."""
        run = decide("rules", "validate", tmp_path / "nope.json")

        assert 1 == run.code
        assert [f"decide: error: {tmp_path / 'nope.json'}: no such file"] == run.err.splitlines()


class TestRulesOnStoreFile:
    def test_apply_history_export_rollback(self, decide, demo_file, tmp_path):
        """apply publishes into the file, history lists it, export prints it, rollback restores."""
        db = tmp_path / "rules.db"

        applied = decide("rules", "apply", demo_file, "--db", db, "--comment", "demo")
        history = decide("rules", "history", "--db", db, "--json")
        exported = decide("rules", "export", "--db", db)
        rolled = decide("rules", "rollback", "1", "--db", db)
        first = decide("rules", "export", "--db", db, "--version", "1")

        assert (0, "published version 2") == (applied.code, applied.out.split(" (")[0])
        assert [2, 1] == [v["version"] for v in history.json()]
        assert "demo" == history.json()[0]["comment"]
        assert json.loads(demo_file.read_text()) == exported.json()
        assert 0 == rolled.code
        assert "now version 3" in rolled.out
        assert first.out == decide("rules", "export", "--db", db).out

    def test_history_table_marks_the_active_version(self, decide, demo_file, tmp_path):
        """The default history output is a table with the active version starred."""
        db = tmp_path / "rules.db"
        decide("rules", "apply", demo_file, "--db", db)

        run = decide("rules", "history", "--db", db)

        assert 0 == run.code
        assert "VERSION" in run.out.splitlines()[0]
        assert run.out.splitlines()[1].startswith("* 2")

    def test_stale_expected_version_exits_with_conflict(self, decide, demo_file, tmp_path):
        """--expected-version that is no longer active exits 4 with a one-line message."""
        db = tmp_path / "rules.db"
        decide("rules", "apply", demo_file, "--db", db)

        run = decide("rules", "apply", demo_file, "--db", db, "--expected-version", "1")

        assert cli.EXIT_CONFLICT == run.code
        assert 1 == len(run.err.splitlines())
        assert "stale version" in run.err

    def test_invalid_rules_are_not_applied(self, decide, tmp_path):
        """Applying an invalid document lists its problems and exits 1."""
        db = tmp_path / "rules.db"
        bad = tmp_path / "bad.json"
        bad.write_text(json.dumps({"segments": [], "placements": [], "campaigns": [{}]}))

        run = decide("rules", "apply", bad, "--db", db)

        assert 1 == run.code
        assert "campaigns[0]" in run.err
        assert 1 == len(decide("rules", "history", "--db", db, "--json").json())

    def test_unknown_version_exits_one(self, decide, tmp_path, demo_file):
        """Exporting a version that does not exist is a one-line error."""
        db = tmp_path / "rules.db"
        decide("rules", "apply", demo_file, "--db", db)

        run = decide("rules", "export", "--db", db, "--version", "42")

        assert (1, 1) == (run.code, len(run.err.splitlines()))
        assert "42" in run.err

    def test_reading_a_missing_store_does_not_create_it(self, decide, tmp_path):
        """history on a missing file fails instead of creating an empty store."""
        db = tmp_path / "missing.db"

        run = decide("rules", "history", "--db", db)

        assert 1 == run.code
        assert not db.exists()

    def test_db_defaults_to_the_configured_path(self, decide, demo_file, tmp_path, monkeypatch):
        """Without --db or --target, rules commands use DECIDE_DB_PATH."""
        db = tmp_path / "env.db"
        monkeypatch.setenv("DECIDE_DB_PATH", str(db))

        run = decide("rules", "apply", demo_file)

        assert 0 == run.code
        assert db.exists()


class TestRulesThroughServer:
    def test_apply_history_export_rollback_via_target(self, decide, demo_server, demo_file):
        """--target with the admin token drives the server's RulesAdmin service."""
        target = ["--target", demo_server.target, "--admin-token", demo_server.admin_token]

        applied = decide("rules", "apply", demo_file, *target, "--comment", "via cli")
        history = decide("rules", "history", *target, "--json")
        exported = decide("rules", "export", *target)
        rolled = decide("rules", "rollback", "1", *target)

        assert 0 == applied.code, applied.err
        assert "via cli" == history.json()[0]["comment"]
        assert json.loads(demo_file.read_text()) == exported.json()
        assert 0 == rolled.code

    def test_admin_token_from_environment(self, decide, demo_server, monkeypatch):
        """DECIDE_ADMIN_TOKEN and DECIDE_TARGET stand in for the flags."""
        monkeypatch.setenv("DECIDE_ADMIN_TOKEN", demo_server.admin_token)
        monkeypatch.setenv("DECIDE_TARGET", demo_server.target)

        run = decide("rules", "history")

        assert 0 == run.code, run.err

    def test_wrong_token_exits_with_auth_failure(self, decide, demo_server):
        """A wrong admin token is exit 5 with a one-line message."""
        run = decide("rules", "history", "--target", demo_server.target, "--admin-token", "no")

        assert cli.EXIT_AUTH == run.code
        assert 1 == len(run.err.splitlines())
        assert "authentication failed" in run.err

    def test_invalid_rules_list_the_server_violations(self, decide, demo_server, tmp_path):
        """Publishing invalid rules through the server prints each violation's path."""
        bad = tmp_path / "bad.json"
        bad.write_text(json.dumps({"segments": [], "placements": [], "campaigns": [{}]}))

        run = decide(
            "rules",
            "apply",
            bad,
            "--target",
            demo_server.target,
            "--admin-token",
            demo_server.admin_token,
        )

        assert 1 == run.code
        assert "campaigns[0]" in run.err
        assert "rejected by the server: invalid rules document" in run.err.splitlines()[-1]

    def test_stale_version_via_target_exits_with_conflict(self, decide, demo_server, demo_file):
        """The server's FAILED_PRECONDITION becomes exit 4."""
        target = ["--target", demo_server.target, "--admin-token", demo_server.admin_token]
        decide("rules", "apply", demo_file, *target)

        run = decide("rules", "apply", demo_file, *target, "--expected-version", "1")

        assert cli.EXIT_CONFLICT == run.code

    def test_unreachable_server_exits_three(self, decide, dead_target):
        """A server that cannot be reached is exit 3 with a one-line message."""
        run = decide("rules", "history", "--target", dead_target, "--admin-token", "t")

        assert cli.EXIT_UNAVAILABLE == run.code
        assert 1 == len(run.err.splitlines())
        assert f"cannot reach the server at {dead_target}" in run.err


class TestQuery:
    def test_text_output_names_placements_and_campaigns(self, decide, demo_server):
        """The default output shows each placement's reason, campaign and content."""
        run = decide(
            "query",
            "--target",
            demo_server.target,
            "--api-key",
            demo_server.api_key,
            "--visitor",
            "v1",
            "--placement",
            "home_hero",
            "--placement",
            "product_recommendations",
            "--profile",
            "visits=1",
        )

        assert 0 == run.code, run.err
        assert "home_hero: CAMPAIGN" in run.out
        assert "campaign  welcome_offer" in run.out
        assert "product_recommendations: FALLBACK" in run.out

    def test_json_output_is_one_document(self, decide, demo_server, monkeypatch):
        """--json prints one JSON document; the api key may come from DECIDE_API_KEY."""
        monkeypatch.setenv("DECIDE_API_KEY", demo_server.api_key)

        run = decide(
            "query",
            "--target",
            demo_server.target,
            "--visitor",
            "v1",
            "--placement",
            "popup",
            "--context",
            "device=mobile",
            "--profile",
            "visits=3",
            "--profile",
            'cart.items=[{"sku": "A"}]',
            "--profile",
            "cart.updated_at=2020-01-01T00:00:00Z",
            "--explain",
            "--json",
        )
        document = run.json()

        assert 0 == run.code, run.err
        (decision,) = document["decisions"]
        assert ("popup", "cart_rescue_mobile") == (decision["placement"], decision["campaign_id"])
        assert "SELECTED" == decision["explanation"][0]["outcome"]

    def test_missing_api_key_exits_with_auth_failure(self, decide, demo_server):
        """Without the server's api key, query is exit 5."""
        run = decide(
            "query", "--target", demo_server.target, "--visitor", "v", "--placement", "popup"
        )

        assert cli.EXIT_AUTH == run.code

    def test_silent_server_exits_three_naming_the_deadline(self, decide, black_hole):
        """A server that never answers ends at --timeout: exit 3, one line."""
        run = decide(
            "query",
            "--target",
            black_hole,
            "--visitor",
            "v",
            "--placement",
            "popup",
            "--timeout",
            "0.2",
        )

        assert cli.EXIT_UNAVAILABLE == run.code
        assert [f"decide: error: the server at {black_hole} did not answer within 0.2s"] == (
            run.err.splitlines()
        )

    def test_missing_target_is_a_usage_error(self, decide):
        """query needs --target or DECIDE_TARGET."""
        run = decide("query", "--visitor", "v", "--placement", "popup")

        assert cli.EXIT_USAGE == run.code
        assert "--target" in run.err


class TestStatus:
    def test_status_shows_the_served_version(self, decide, demo_server):
        """status prints the version being served."""
        run = decide(
            "status", "--target", demo_server.target, "--admin-token", demo_server.admin_token
        )

        assert 0 == run.code, run.err
        assert "serving         version 2" in run.out

    def test_status_says_whether_profiles_keep_what_the_rules_read(self, decide, demo_server):
        """status prints the activity back-fill's state: complete on a fresh store."""
        from client import DecisionClient

        with DecisionClient(demo_server.target, admin_token=demo_server.admin_token) as c:
            deadline = time.monotonic() + 30
            while not c.status().activity_backfill.complete and time.monotonic() < deadline:
                time.sleep(0.02)

        run = decide(
            "status", "--target", demo_server.target, "--admin-token", demo_server.admin_token
        )

        assert "activity        every profile keeps what the rules read\n" in run.out

    def test_status_json(self, decide, demo_server):
        """status --json prints the ServerStatus fields."""
        run = decide(
            "status",
            "--json",
            "--target",
            demo_server.target,
            "--admin-token",
            demo_server.admin_token,
        )

        assert 2 == run.json()["active_version"]


class TestServe:
    def test_flags_override_the_environment(self, decide, monkeypatch, tmp_path):
        """serve builds ServerConfig from flags over DECIDE_* variables, then serves it."""
        import server.processes

        seen = []
        monkeypatch.setattr(server.processes, "serve", lambda config: seen.append(config) or 0)
        monkeypatch.setenv("DECIDE_PORT", "6000")
        monkeypatch.setenv("DECIDE_ADMIN_TOKEN", "from-env")

        run = decide(
            "serve",
            "--demo",
            "--db",
            tmp_path / "x.db",
            "--port",
            "7000",
            "--api-key",
            "a",
            "--api-key",
            "b",
            "--log-json",
        )

        assert 0 == run.code
        (config,) = seen
        assert (7000, "from-env", ("a", "b"), True, True) == (
            config.port,
            config.admin_token,
            config.api_keys,
            config.demo,
            config.log_json,
        )

    def test_bad_configuration_is_a_usage_error(self, decide):
        """An invalid value is one line naming the setting, exit 2."""
        run = decide("serve", "--port", "70000")

        assert cli.EXIT_USAGE == run.code
        assert "port" in run.err
        assert 1 == len(run.err.splitlines())

    def test_missing_tls_file_is_reported(self, decide, tmp_path):
        """A TLS file that does not exist is reported before the server starts."""
        run = decide("serve", "--tls-cert", tmp_path / "c.pem", "--tls-key", tmp_path / "k.pem")

        assert cli.EXIT_USAGE == run.code
        assert "no such file" in run.err


class TestSchema:
    def test_schema_is_printed_as_json(self, decide):
        """rules schema prints the rules JSON Schema."""
        run = decide("rules", "schema")

        assert 0 == run.code
        assert "object" == run.json()["type"]


class TestUsage:
    def test_no_command_prints_help(self, decide):
        """decide with no command prints help on stderr and exits 2."""
        run = decide()

        assert cli.EXIT_USAGE == run.code
        assert "usage" in run.err

    def test_unknown_command_exits_two(self, decide):
        """An unknown subcommand is argparse's usage error."""
        with pytest.raises(SystemExit) as caught:
            decide("frobnicate")

        assert 2 == caught.value.code


class TestSubprocess:
    def test_user_error_prints_one_line_and_no_traceback(self, tmp_path):
        """Run as a process, a user error is one stderr line and a non-zero exit."""
        missing = tmp_path / "missing.json"
        root = Path(__file__).resolve().parents[2]

        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "cli",
                "rules",
                "apply",
                str(missing),
                "--db",
                str(tmp_path / "x.db"),
            ],
            capture_output=True,
            text=True,
            cwd=root,
            timeout=60,
            check=False,
        )

        assert 1 == done.returncode
        assert [f"decide: error: {missing}: no such file"] == done.stderr.splitlines()
        assert "Traceback" not in done.stderr


class TestServeProcesses:
    @pytest.mark.parametrize(("given", "expected"), [("auto", 0), ("AUTO", 0), ("3", 3)])
    def test_processes_takes_auto_or_a_count(self, decide, monkeypatch, tmp_path, given, expected):
        """--processes auto (one per core) or a number reaches the configuration."""
        import server.processes

        seen = []
        monkeypatch.setattr(server.processes, "serve", lambda config: seen.append(config) or 0)

        run = decide("serve", "--db", tmp_path / "x.db", "--processes", given)

        assert (0, [expected]) == (run.code, [c.processes for c in seen])

    def test_processes_default_is_one_per_core(self, decide, monkeypatch, tmp_path):
        """Without --processes the configuration asks for one process per usable core."""
        import os

        import server.processes

        seen = []
        monkeypatch.setattr(server.processes, "serve", lambda config: seen.append(config) or 0)
        monkeypatch.delenv("DECIDE_PROCESSES", raising=False)

        decide("serve", "--db", tmp_path / "x.db")

        assert len(os.sched_getaffinity(0)) == seen[0].process_count

    def test_processes_refuses_words_other_than_auto(self, tmp_path, capsys):
        """--processes many is a usage error (exit 2) naming what is expected."""
        from cli import main

        with pytest.raises(SystemExit) as exit_info:
            main(["serve", "--db", str(tmp_path / "x.db"), "--processes", "many"])

        assert 2 == exit_info.value.code
        assert "expected auto or a number" in capsys.readouterr().err
