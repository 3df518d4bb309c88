"""Exposures on every backend: recorded rows are written in batches, exported with the
visitor, moved by identify merges and forgotten with the visitor."""

from __future__ import annotations

from .conftest import NOW


def record(storage, *exposures):
    storage.exposures.record(list(exposures))
    storage.exposures.flush()


class TestExposures:
    def test_recorded_exposures_are_exported_with_the_visitor(self, storage, events):
        """ExportVisitor lists a visitor's exposures, oldest first, with their segments."""
        storage.profiles.track(events(("s1", "session_start", 5)))
        record(
            storage,
            ("d1", "v-1", "camp", "control", ("s1", "s2"), "hero", NOW),
            ("d2", "v-2", "camp", "treatment", (), "hero", NOW),
        )

        exported = storage.profiles.export_visitor("v-1")["exposures"]

        assert [
            {
                "decision_id": "d1",
                "visitor_id": "v-1",
                "campaign": "camp",
                "variant": "control",
                "segments": ["s1", "s2"],
                "placement": "hero",
                "timestamp": "2026-07-01T12:00:00.000000Z",
                "channel": "web",
                "send_id": "",
            }
        ] == exported

    def test_alias_exposures_are_stored_under_the_customer(self, storage, events):
        """An exposure of an identified visitor's anonymous id belongs to the customer."""
        identify = events(("i", "identify", 5, {"customer_id": "cust"}), visitor="anon")
        storage.profiles.track(identify)

        record(storage, ("d1", "anon", "camp", "control", (), "hero", NOW))

        exported = storage.profiles.export_visitor("cust")["exposures"]
        assert [("d1", "anon")] == [(e["decision_id"], e["visitor_id"]) for e in exported]

    def test_identify_moves_exposures_to_the_customer(self, storage, events):
        """Exposures recorded before a merge follow the visitor into the customer."""
        record(storage, ("d1", "anon", "camp", "control", (), "hero", NOW))

        identify = events(("i", "identify", 5, {"customer_id": "cust"}), visitor="anon")
        storage.profiles.track(identify)

        exported = storage.profiles.export_visitor("cust")["exposures"]
        assert ["d1"] == [e["decision_id"] for e in exported]

    def test_delete_visitor_forgets_exposures(self, backend, storage, events):
        """DeleteVisitor removes the visitor's exposures and keeps everyone else's."""
        storage.profiles.track(events(("s1", "session_start", 5)))
        record(
            storage,
            ("d1", "v-1", "camp", "control", (), "hero", NOW),
            ("d2", "v-2", "camp", "control", (), "hero", NOW),
        )

        storage.profiles.delete_visitor("v-1")

        assert [("d2",)] == backend.sql("SELECT decision_id FROM exposures")

    def test_close_writes_what_is_pending(self, backend):
        """A storage closed with buffered exposures writes them first."""
        storage = backend.open()
        storage.exposures.record([("d1", "v-1", "camp", "control", (), "hero", NOW)])

        storage.close()

        assert [("d1",)] == backend.sql("SELECT decision_id FROM exposures")
