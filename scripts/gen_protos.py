"""Regenerate the committed Python stubs from protos/*.proto (run from anywhere).

Run from the repository root with ``-I.`` so the gRPC module imports
``from protos import decisioning_pb2`` and works once installed (grpc/grpc#9575).
"""

from __future__ import annotations

import sys
from importlib import resources
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent


def generate(out_dir: Path, root: Path = ROOT) -> None:
    """Write decisioning_pb2.py, .pyi and _pb2_grpc.py for every proto under out_dir."""
    well_known = resources.files("grpc_tools") / "_proto"
    for proto in sorted((root / "protos").glob("*.proto")):
        args = [
            "grpc_tools.protoc",
            f"-I{root}",
            f"-I{well_known}",
            f"--python_out={out_dir}",
            f"--pyi_out={out_dir}",
            f"--grpc_python_out={out_dir}",
            str(proto),
        ]
        if protoc.main(args) != 0:
            raise SystemExit(f"protoc failed for {proto}")


if __name__ == "__main__":
    generate(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT)
