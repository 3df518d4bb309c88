"""ServerConfig: defaults, DECIDE_* variables, precedence and errors that name the key."""

from __future__ import annotations

import pytest

from server.config import ConfigError, ServerConfig


class TestDefaults:
    def test_defaults_bind_loopback_with_metrics_off(self):
        """With nothing configured the server binds 127.0.0.1:50051, metrics off, no admin."""
        config = ServerConfig.from_env({})

        assert ("127.0.0.1", 50051, None, None) == (
            config.host,
            config.port,
            config.metrics_port,
            config.admin_token,
        )
        assert 0.2 == config.poll_interval
        assert config.loopback_only


class TestEnvironment:
    def test_variables_are_parsed(self):
        """Each DECIDE_* variable is parsed into its field's type."""
        environ = {
            "DECIDE_DB_PATH": "/tmp/x.db",
            "DECIDE_PORT": "6000",
            "DECIDE_DEMO": "yes",
            "DECIDE_API_KEYS": "a, b,,c",
            "DECIDE_METRICS_PORT": "9100",
            "DECIDE_POLL_INTERVAL": "0.5",
            "DECIDE_LOG_JSON": "1",
            "DECIDE_LOG_LEVEL": "debug",
            "DECIDE_MAX_PLACEMENTS": "8",
        }

        config = ServerConfig.from_env(environ)

        assert ("/tmp/x.db", 6000, True, ("a", "b", "c"), 9100, 0.5, True, "DEBUG", 8) == (
            config.db_path,
            config.port,
            config.demo,
            config.api_keys,
            config.metrics_port,
            config.poll_interval,
            config.log_json,
            config.log_level,
            config.max_placements,
        )

    def test_explicit_argument_beats_environment(self):
        """An explicit argument wins over the variable; None counts as not given."""
        environ = {"DECIDE_PORT": "6000", "DECIDE_HOST": "0.0.0.0"}

        config = ServerConfig.from_env(environ, port=7000, host=None)

        assert (7000, "0.0.0.0") == (config.port, config.host)

    def test_scan_pool_settings(self):
        """DECIDE_SCAN_PROCESSES and DECIDE_SCAN_MIN_PROFILES size the estimate workers;
        by default one per core (0) for stores of 50,000 profiles or more."""
        config = ServerConfig.from_env(
            {"DECIDE_SCAN_PROCESSES": "3", "DECIDE_SCAN_MIN_PROFILES": "1000"}
        )

        assert ((3, 1000), (0, 50_000)) == (
            (config.scan_processes, config.scan_min_profiles),
            (ServerConfig().scan_processes, ServerConfig().scan_min_profiles),
        )

    def test_exposures_durable(self):
        """DECIDE_EXPOSURES_DURABLE turns durable exposures on; they are off by default."""
        config = ServerConfig.from_env({"DECIDE_EXPOSURES_DURABLE": "1"})

        assert (True, False) == (config.exposures_durable, ServerConfig().exposures_durable)

    def test_metrics_port_off(self):
        """DECIDE_METRICS_PORT=off disables the metrics endpoint."""
        assert None is ServerConfig.from_env({"DECIDE_METRICS_PORT": "off"}).metrics_port

    @pytest.mark.parametrize(
        ("environ", "key"),
        [
            ({"DECIDE_PORT": "http"}, "DECIDE_PORT"),
            ({"DECIDE_PORT": "70000"}, "DECIDE_PORT"),
            ({"DECIDE_DEMO": "maybe"}, "DECIDE_DEMO"),
            ({"DECIDE_POLL_INTERVAL": "0"}, "DECIDE_POLL_INTERVAL"),
            ({"DECIDE_LOG_LEVEL": "LOUD"}, "DECIDE_LOG_LEVEL"),
            ({"DECIDE_TLS_CERT": "cert.pem"}, "DECIDE_TLS_CERT"),
            ({"DECIDE_SCAN_PROCESSES": "-1"}, "DECIDE_SCAN_PROCESSES"),
            ({"DECIDE_SCAN_MIN_PROFILES": "many"}, "DECIDE_SCAN_MIN_PROFILES"),
        ],
        ids=[
            "not-int",
            "port-range",
            "not-bool",
            "zero-interval",
            "level",
            "cert-without-key",
            "scan-processes",
            "scan-min-profiles",
        ],
    )
    def test_bad_variable_names_the_variable(self, environ, key):
        """A bad value raises ConfigError whose key is the variable it came from."""
        with pytest.raises(ConfigError) as info:
            ServerConfig.from_env(environ)

        assert key == info.value.key
        assert str(info.value).startswith(key)


class TestValidation:
    def test_bad_argument_names_the_field(self):
        """A bad explicit value raises ConfigError naming the field."""
        with pytest.raises(ConfigError) as info:
            ServerConfig.from_env({}, grace=-1.0)

        assert "grace" == info.value.key

    def test_unknown_override_is_refused(self):
        """A misspelt override is an error, not silently ignored."""
        with pytest.raises(ConfigError) as info:
            ServerConfig.from_env({}, prot=1)

        assert "prot" == info.value.key

    def test_blank_admin_token_is_refused(self):
        """A blank admin token would be a guessable credential."""
        with pytest.raises(ConfigError):
            ServerConfig(admin_token="  ")

    @pytest.mark.parametrize(
        ("host", "expected"),
        [("127.0.0.1", True), ("::1", True), ("localhost", True), ("0.0.0.0", False)],
    )
    def test_loopback_only(self, host, expected):
        """loopback_only tells whether the bind address is reachable from elsewhere."""
        assert expected == ServerConfig(host=host).loopback_only
