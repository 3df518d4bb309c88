"""The client over TLS, trusting the server's self-signed certificate (``tls_server``
in tests/conftest.py)."""

from __future__ import annotations

import pytest

from client import Unavailable


@pytest.mark.slow
class TestTls:
    def test_root_certificates_turn_tls_on(self, make_client, tls_server):
        """Given the server's certificate as root, the client decides over TLS."""
        target, roots = tls_server
        c = make_client(target, root_certificates=roots, decide_timeout=5.0)

        result = c.decide("visitor-1", ["home_hero"], profile_overrides={"visits": 1})

        assert "welcome_offer" == result["home_hero"].campaign_id

    def test_plaintext_client_cannot_talk_to_a_tls_server(self, make_client, tls_server):
        """Without TLS settings the call fails as Unavailable."""
        target, _roots = tls_server
        c = make_client(target, decide_timeout=2.0)

        with pytest.raises(Unavailable):
            c.decide("visitor-1", ["home_hero"])

    def test_cli_query_with_tls_ca(self, tls_server, tmp_path, capsys):
        """decide query --tls-ca FILE talks TLS to the server."""
        from cli import main

        target, roots = tls_server
        ca = tmp_path / "ca.pem"
        ca.write_bytes(roots)

        code = main(
            ["query", "--target", target, "--tls-ca", str(ca), "--visitor", "v",
             "--placement", "home_hero", "--profile", "visits=1", "--json"]
        )  # fmt: skip

        assert 0 == code
        assert '"campaign_id": "welcome_offer"' in capsys.readouterr().out
