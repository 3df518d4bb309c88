#!/bin/sh
# Load a decide server's Decide method with h2load, the C HTTP/2 load generator, so
# that the client costs the cores almost nothing and the figures are the server's own.
#
#   loadtest/h2load.sh HOST:PORT [SECONDS] [CONNECTIONS] [CALLS_PER_CONNECTION]
#
# Needs h2load (Debian/Ubuntu: apt-get install -y nghttp2-client) and this repository's
# Python environment (PYTHON, default .venv/bin/python) to build the request body: a
# 5-byte gRPC length prefix and a serialized DecideRequest with 3 placements, sent as a
# preview: the server records no exposure and counts no decision (the target may hold
# real experiments; `python -m loadtest.h2load body --allow-writes` builds one that does).
# h2load reports HTTP statuses only: every gRPC call is HTTP 200, its gRPC status is in
# the trailers. See loadtest/h2load.py.
set -eu
target=${1:?usage: loadtest/h2load.sh HOST:PORT [SECONDS] [CONNECTIONS] [CALLS_PER_CONNECTION]}
seconds=${2:-10}
connections=${3:-1}
streams=${4:-16}
python=${PYTHON:-.venv/bin/python}
case "$target" in
  127.*|localhost:*|\[::1\]:*) ;;
  *) echo "h2load.sh: refusing non-loopback target $target" >&2; exit 2 ;;
esac
command -v h2load >/dev/null || { echo "h2load.sh: h2load is not installed (apt-get install -y nghttp2-client)" >&2; exit 3; }
body=$(mktemp)
trap 'rm -f "$body"' EXIT
"$python" -m loadtest.h2load body --out "$body" --placements-per-call 3
h2load -D "$seconds" --warm-up-time=2 -c "$connections" -m "$streams" -t 1 -d "$body" \
  -H 'content-type: application/grpc' -H 'te: trailers' \
  "http://$target/decisioning.v1.DecisionService/Decide"
