#!/usr/bin/env bash
# Drives the real zuora-sdk 3.21.0 (PyPI) against a freshly started `jobline serve`.
#
# Creates (once, cached under target/) a Python venv with zuora-sdk, starts
# target/debug/jobline on a free port with a temporary SQLite database, creates a Zuora
# client for tenant zuora-e2e, runs test_zuora_sdk.py, and stops the server. Exits non-zero
# if any check fails. Needs target/debug/jobline (`cargo build` or `cargo test` builds it).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

VENV=target/zuora-e2e-venv
SDK_VERSION=3.21.0
if ! "$VENV/bin/python" -c "import importlib.metadata as m; assert m.version('zuora-sdk') == '$SDK_VERSION'" 2>/dev/null; then
    echo "zuora e2e: installing zuora-sdk==$SDK_VERSION into $VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q "zuora-sdk==$SDK_VERSION"
fi

BIN="${JOBLINE_BIN:-${CARGO_TARGET_DIR:-target}/debug/jobline}"
[ -x "$BIN" ] || cargo build -p jobline
WORK=$(mktemp -d)
# E2E_DATABASE_URL runs the suite on another database (the CI passes a fresh PostgreSQL one).
DB="${E2E_DATABASE_URL:-sqlite:$WORK/jobline.db}"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')

"$BIN" migrate --database-url "$DB" >/dev/null
CLIENT=$("$BIN" clients create --tenant zuora-e2e --role admin --json --database-url "$DB")
"$BIN" serve --database-url "$DB" --listen "127.0.0.1:$PORT" >"$WORK/serve.log" 2>&1 &
SERVER=$!
cleanup() {
    kill "$SERVER" 2>/dev/null || true
    wait "$SERVER" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

for _ in $(seq 1 100); do
    curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break
    sleep 0.1
done

export JOBLINE_URL="http://127.0.0.1:$PORT"
export ZUORA_CLIENT_ID=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["client_id"])' <<<"$CLIENT")
export ZUORA_CLIENT_SECRET=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["client_secret"])' <<<"$CLIENT")
if ! "$VENV/bin/python" e2e/zuora/test_zuora_sdk.py; then
    echo "zuora e2e failed; server log:"
    tail -n 50 "$WORK/serve.log"
    exit 1
fi
