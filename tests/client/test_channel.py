"""Channel options: retries come from gRPC's service-config retry policy, not a loop."""

from __future__ import annotations

import json

import pytest

from client import AsyncDecisionClient, DecisionClient
from client._config import ADMIN_SERVICE, DECISION_SERVICE, channel_options


def _option(options, name):
    return dict(options)[name]


def _method_config(options):
    (config,) = json.loads(_option(options, "grpc.service_config"))["methodConfig"]
    return config


class TestRetryPolicy:
    def test_retries_are_enabled(self):
        """grpc.enable_retries is 1 on the client's channel."""
        with DecisionClient("127.0.0.1:1") as c:
            options = c.settings.options

        assert 1 == _option(options, "grpc.enable_retries")

    def test_retry_policy_retries_unavailable_with_backoff(self):
        """The service config retries UNAVAILABLE, three attempts, exponential backoff."""
        with DecisionClient("127.0.0.1:1") as c:
            policy = _method_config(c.settings.options)["retryPolicy"]

        assert ["UNAVAILABLE"] == policy["retryableStatusCodes"]
        assert 3 == policy["maxAttempts"]
        assert {"initialBackoff", "maxBackoff", "backoffMultiplier"} <= set(policy)

    def test_decisions_are_retried_but_writes_are_not(self):
        """Decide and reads are retried; PublishRules and Rollback are not (not idempotent)."""
        names = _method_config(channel_options())["name"]

        assert {"service": DECISION_SERVICE} in names
        assert {"service": ADMIN_SERVICE, "method": "GetRules"} in names
        assert not any(n.get("method") in {"PublishRules", "Rollback"} for n in names)
        assert {"service": ADMIN_SERVICE} not in names

    def test_max_attempts_is_configurable(self):
        """max_attempts sets the policy's attempt count."""
        with DecisionClient("127.0.0.1:1", max_attempts=5) as c:
            policy = _method_config(c.settings.options)["retryPolicy"]

        assert 5 == policy["maxAttempts"]

    def test_one_attempt_turns_retries_off(self):
        """max_attempts=1 removes the retry policy and disables retries."""
        options = channel_options(max_attempts=1)

        assert 0 == _option(options, "grpc.enable_retries")
        assert "retryPolicy" not in _method_config(options)

    def test_extra_options_are_appended(self):
        """Caller options reach the channel after ours, so they win."""
        with DecisionClient("127.0.0.1:1", options=[("grpc.enable_retries", 0)]) as c:
            options = c.settings.options

        assert ("grpc.enable_retries", 0) == options[-1]

    def test_async_client_uses_the_same_options(self):
        """The asyncio client builds its channel with the same retry policy."""
        import asyncio

        async def options():
            async with AsyncDecisionClient("127.0.0.1:1") as c:
                return c.settings.options

        assert channel_options() == asyncio.run(options())


class TestCredentials:
    @pytest.mark.parametrize(
        ("kwargs", "expected"),
        [({}, False), ({"secure": True}, True), ({"root_certificates": b"pem"}, True)],
        ids=["plain", "secure", "roots"],
    )
    def test_tls_is_used_when_asked_or_implied(self, kwargs, expected):
        """TLS is on with secure=True or root certificates, off otherwise."""
        from client._config import ClientSettings

        assert expected == ClientSettings("t", **kwargs).use_tls

    def test_api_key_goes_to_decisions_and_token_to_every_call(self):
        """x-api-key is sent on decision calls; the bearer token on admin calls and, when
        the client has one, on decision calls too (segments are personal data)."""
        from client._config import ClientSettings

        settings = ClientSettings("t", api_key="k", admin_token="s")

        assert (("x-api-key", "k"), ("authorization", "Bearer s")) == settings.decision_metadata()
        assert (("authorization", "Bearer s"),) == settings.admin_metadata()
        assert (("x-api-key", "k"),) == ClientSettings("t", api_key="k").decision_metadata()
