#!/usr/bin/env bash
# Regenerates logtrain/envoy_pb/ (committed) from proto/ with grpcio-tools.
# Only message classes are generated: the input registers its gRPC method
# handlers itself, so no *_pb2_grpc service stubs are needed.
# protoc writes absolute imports (`from envoy.data...`); they are rewritten
# to live under logtrain.envoy_pb so that no top-level `envoy` package is
# installed beside the agent.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=$(command -v "${PYTHON:-.venv/bin/python}")
PY=$(realpath -s "$PY")
out=${1:-logtrain/envoy_pb}
rm -rf "$out"
mkdir -p "$out"
protos=$(cd proto && find envoy -name '*.proto' | sort)
dest=$(cd "$out" && pwd)
(cd proto && "$PY" -m grpc_tools.protoc -I. --python_out="$dest" $protos)
find "$out" -name '*_pb2.py' -exec sed -i -E 's/^from envoy\./from logtrain.envoy_pb.envoy./' {} +
find "$out" -type d -exec sh -c 'for d; do [ -f "$d/__init__.py" ] || : > "$d/__init__.py"; done' _ {} +
printf '"""Message classes generated from proto/ by scripts/gen-envoy-protos.sh (do not edit)."""\n' \
  > "$out/__init__.py"
echo "generated $(find "$out" -name '*_pb2.py' | wc -l) modules in $out"
