"""Fixtures shared by every test package: a real demo server on a free loopback port."""

from __future__ import annotations

import shutil
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

# A real PostgreSQL (postgres_cluster, postgres_dsn) and the DECIDE_REQUIRE_POSTGRES policy;
# pytester runs pytest inside a test (tests/test_postgres_fixture.py checks that policy).
pytest_plugins = ["pytester", "tests.postgres_plugin"]

ADMIN_TOKEN = "test-admin-token"
API_KEY = "test-api-key"


@dataclass(frozen=True)
class RunningServer:
    """A server started for one test: where it listens and the credentials it wants."""

    target: str
    port: int
    db_path: Path
    admin_token: str
    api_key: str
    server: grpc.Server


@pytest.fixture
def demo_server(tmp_path: Path) -> Iterator[RunningServer]:
    """A demo server on 127.0.0.1:0 with a SQLite store in tmp_path, an admin token and
    an API key; stopped when the test ends."""
    from server.app import create_server
    from server.config import ServerConfig

    db_path = tmp_path / "rules.db"
    config = ServerConfig(
        db_path=str(db_path),
        host="127.0.0.1",
        port=0,
        demo=True,
        admin_token=ADMIN_TOKEN,
        api_keys=(API_KEY,),
        poll_interval=0.05,
        grace=0,
    )
    server, port = create_server(config)
    try:
        yield RunningServer(
            target=f"127.0.0.1:{port}",
            port=port,
            db_path=db_path,
            admin_token=ADMIN_TOKEN,
            api_key=API_KEY,
            server=server,
        )
    finally:
        server.stop(None).wait()


@pytest.fixture
def dead_target() -> str:
    """A loopback address where nothing listens: connections are refused at once."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"127.0.0.1:{port}"


@pytest.fixture
def black_hole() -> Iterator[str]:
    """A loopback address that accepts TCP connections and never answers: calls to it
    end only at their deadline."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield f"127.0.0.1:{sock.getsockname()[1]}"


def _self_signed(folder: Path, name: str) -> tuple[Path, Path]:
    """A fresh self-signed certificate for 127.0.0.1 and localhost, and its key."""
    cert, key = folder / f"{name}.pem", folder / f"{name}.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1",
         "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[str, bytes]]:
    """A demo server speaking TLS with a fresh self-signed certificate for 127.0.0.1;
    yields its target and the certificate (PEM) to trust."""
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command")
    from server.app import create_server
    from server.config import ServerConfig

    cert, key = _self_signed(tmp_path, "server")
    config = ServerConfig(
        db_path=str(tmp_path / "rules.db"),
        port=0,
        demo=True,
        tls_cert=str(cert),
        tls_key=str(key),
        admin_token=ADMIN_TOKEN,
        grace=0,
    )
    server, port = create_server(config)
    try:
        yield f"127.0.0.1:{port}", cert.read_bytes()
    finally:
        server.stop(None).wait(10)


@pytest.fixture
def other_certificate(tmp_path: Path) -> Path:
    """A self-signed certificate no server here uses (PEM file)."""
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command")
    cert, _key = _self_signed(tmp_path, "other")
    return cert
