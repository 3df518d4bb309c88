"""Activation: what decide does for channels and systems other than the storefront's page.

- ``batch``: DecideBatch, the decisions of a segment or a list of visitors at one moment
  (an email send), previewed or recorded as exposures tagged with a channel;
- ``assignments`` and ``recording``: the arm each visitor was served, stored with the
  exposure and passed back to the engine, so that visitors keep it across identity
  merges and rules changes; and the first serve of a campaign recorded as a
  ``campaign_served`` event, which fills ``campaigns.seen``;
- ``changes``, ``feed`` and ``webhooks``: visitors entering and leaving segments marked
  ``notify``, found after events and by a periodic sweep, kept in a durable change log,
  streamed (WatchSegmentChanges) and POSTed to webhooks; ``worker`` runs them in the
  one process that holds the lease.

Every piece of state sits behind a small Protocol (``server.activation.store``); the
SQLite implementations (``server.activation.sqlite``) keep their tables in the profile
store's file.
"""
