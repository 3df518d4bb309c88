"""Bench only: the server's profile fold keeps activity for a ruleset's declaration, as
the server will once it passes ``Ruleset.activity`` to ``decision.profile.apply``.

``bench/ingest.py`` measures the server as it is; with this folder first on the server's
``PYTHONPATH`` and ``DECIDE_BENCH_ACTIVITY`` set to ``default`` (the default document's
journey segments) or ``windowed`` (``bench/engine.py``'s 20 windowed segments), every
fold keeps that declaration's activity, so the same run measures ingest with activity
tracking without touching ``server/``::

    PYTHONPATH=bench/activity_shim DECIDE_BENCH_ACTIVITY=default \\
        .venv/bin/python bench/ingest.py --skip-decide
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

_KIND = os.environ.get("DECIDE_BENCH_ACTIVITY")

if _KIND:
    import decision.profile as _profile
    from decision import NO_ACTIVITY, compile_ruleset, default_document

    if _KIND == "windowed":
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
        import synthetic

        _NEEDS = compile_ruleset(synthetic.make_windowed_document(200, 20, 100)).activity
    else:
        _NEEDS = compile_ruleset(default_document()).activity
    _apply = _profile.apply

    def _apply_with_needs(state: Any, event: Any, needs: Any = NO_ACTIVITY) -> None:
        _apply(state, event, _NEEDS if needs is NO_ACTIVITY else needs)

    # Replaced before server.profile_store imports it (sitecustomize runs first);
    # rebuild() looks apply up in the module, so it keeps the activity too.
    _profile.apply = _apply_with_needs
