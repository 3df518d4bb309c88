"""The committed stubs are exactly what the pinned grpcio-tools generates from the .proto."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GENERATED = ["decisioning_pb2.py", "decisioning_pb2.pyi", "decisioning_pb2_grpc.py"]

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("grpc_tools") is None, reason="grpcio-tools is not installed"
)


def _generate(out_dir: Path) -> None:
    spec = importlib.util.spec_from_file_location("gen_protos", ROOT / "scripts" / "gen_protos.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("gen_protos", module)
    spec.loader.exec_module(module)
    module.generate(out_dir)


@pytest.mark.parametrize("name", GENERATED)
def test_committed_stub_matches_proto(tmp_path: Path, name: str):
    """Regenerating from protos/decisioning.proto reproduces the committed file byte for byte."""
    _generate(tmp_path)

    expected = (tmp_path / "protos" / name).read_bytes()
    actual = (ROOT / "protos" / name).read_bytes()
    assert expected == actual, f"protos/{name} drifted: run `make protos` and commit"


def test_grpc_module_imports_through_the_package():
    """The gRPC stub imports its messages as `protos.decisioning_pb2`, so it works installed."""
    source = (ROOT / "protos" / "decisioning_pb2_grpc.py").read_text()

    assert "from protos import decisioning_pb2" in source
