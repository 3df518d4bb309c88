"""The no-logic baseline: a gRPC server that answers Decide (and Track) with a constant.

It is what the transport alone costs: the same proto, the same Python gRPC server with
the same thread pool size and message limit as ``decide serve``, requests parsed as
they would be, and a response that was serialized once before the first call. Whatever
``decide`` achieves is reported as a ratio of this server's figures, measured in the
same run on the same machine.

    python -m loadtest.baseline [--port 0] [--workers 16] [--response-file FILE]

It prints ``{"event": "baseline_started", "port": N, "pid": P}`` as one line on stdout
once it listens, and stops on SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from concurrent import futures
from pathlib import Path
from types import FrameType
from typing import Any

import grpc

from protos import decisioning_pb2 as pb
from server import limits
from server.config import DEFAULT_MAX_WORKERS


def canned_decide_response(placements: int = 3) -> bytes:
    """A DecideResponse shaped like a real one, for when no real one was captured."""
    return pb.DecideResponse(
        decisions=[
            pb.Decision(
                placement=f"placement_{i}",
                decision_id="01KAQ6B7D8E9F0G1H2J3K4M5N6",
                reason=pb.REASON_CAMPAIGN,
                campaign_id=f"camp_{i}",
                variant_id="treatment",
                content_json='{"headline":"Offer"}',
                matched_segments=["seg_1", "seg_2"],
            )
            for i in range(placements)
        ],
        ruleset_version=1,
        ruleset_hash="0" * 64,
    ).SerializeToString()


def _constant(response: bytes, parse: Any) -> Any:
    def handler(request: Any, context: grpc.ServicerContext) -> bytes:
        return response

    # The request is parsed like any server parses it; the response is already bytes.
    return grpc.unary_unary_rpc_method_handler(
        handler, request_deserializer=parse, response_serializer=None
    )


def create_baseline(
    port: int = 0,
    *,
    host: str = "127.0.0.1",
    workers: int = DEFAULT_MAX_WORKERS,
    decide_response: bytes | None = None,
) -> tuple[grpc.Server, int]:
    """Start the baseline server; returns it and its bound port."""
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="baseline"),
        options=[
            ("grpc.max_receive_message_length", limits.MAX_RECEIVE_MESSAGE_BYTES),
            ("grpc.so_reuseport", 0),
        ],
    )
    decide = decide_response if decide_response is not None else canned_decide_response()
    track = pb.TrackResponse(accepted=10).SerializeToString()
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                "decisioning.v1.DecisionService",
                {"Decide": _constant(decide, pb.DecideRequest.FromString)},
            ),
            grpc.method_handlers_generic_handler(
                "decisioning.v1.EventService",
                {"Track": _constant(track, pb.TrackRequest.FromString)},
            ),
        )
    )
    bound = server.add_insecure_port(f"{host}:{port}")
    if bound == 0:
        raise OSError(f"cannot listen on {host}:{port}")
    server.start()
    return server, bound


def main(argv: list[str] | None = None) -> int:
    """Run the baseline until SIGTERM or SIGINT."""
    parser = argparse.ArgumentParser(prog="python -m loadtest.baseline", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--workers", type=int, default=DEFAULT_MAX_WORKERS)
    parser.add_argument("--response-file", type=Path, help="serialized DecideResponse to send")
    args = parser.parse_args(argv)
    response = args.response_file.read_bytes() if args.response_file else None
    server, port = create_baseline(
        args.port, host=args.host, workers=args.workers, decide_response=response
    )
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, request_stop)
    print(json.dumps({"event": "baseline_started", "port": port, "pid": os.getpid()}), flush=True)
    while not stop.wait(0.5):
        pass
    server.stop(1).wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
