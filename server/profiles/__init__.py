"""Profiles: the event log and visitor profiles, their stores and the read cache."""
