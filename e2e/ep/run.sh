#!/usr/bin/env bash
# End-to-end tests of jobline's Elastic Path dialects with Elastic Path's own JavaScript SDK
# (@elasticpath/js-sdk, pinned in package.json). Starts the debug build of jobline on a free
# port with a throwaway SQLite database, creates an admin client for tenant ep-e2e, and runs
# every *.test.js here with Node's built-in test runner (Node 20+).
#
#   bash e2e/ep/run.sh            # after `cargo build` (or `cargo test`) built target/debug/jobline
#
# Tests find the server through JOBLINE_HOST (host:port), EP_CLIENT_ID and EP_CLIENT_SECRET;
# client.js builds the SDK client from them. Add new dialect tests as more *.test.js files.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
bin="${JOBLINE_BIN:-${CARGO_TARGET_DIR:-$root/target}/debug/jobline}"
cd "$here"

if [[ ! -x "$bin" ]]; then
    echo "no jobline binary at $bin: run cargo build first" >&2
    exit 1
fi

# The lock file pins every transitive package; `npm ci` installs exactly that.
npm ci --no-audit --no-fund --loglevel=error

tmp="$(mktemp -d)"
server=""
cleanup() {
    if [[ -n "$server" ]]; then
        kill "$server" 2>/dev/null || true
        wait "$server" 2>/dev/null || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT

# E2E_DATABASE_URL runs the suite on another database (the CI passes a fresh PostgreSQL one).
db="${E2E_DATABASE_URL:-sqlite:$tmp/jobline.db}"
port="$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')"

# Creating the client first also migrates the database, and a database with a client makes
# `serve` skip its first-start bootstrap client.
creds="$("$bin" clients create --tenant ep-e2e --role admin --json --database-url "$db")"
export EP_CLIENT_ID="$(node -e 'console.log(JSON.parse(process.argv[1]).client_id)' "$creds")"
export EP_CLIENT_SECRET="$(node -e 'console.log(JSON.parse(process.argv[1]).client_secret)' "$creds")"
export JOBLINE_HOST="127.0.0.1:$port"

"$bin" serve --database-url "$db" --listen "$JOBLINE_HOST" >"$tmp/serve.log" 2>&1 &
server=$!
for _ in $(seq 1 100); do
    curl -fsS "http://$JOBLINE_HOST/healthz" >/dev/null 2>&1 && break
    if ! kill -0 "$server" 2>/dev/null; then
        cat "$tmp/serve.log" >&2
        exit 1
    fi
    sleep 0.1
done

if ! node --test; then
    echo "--- jobline log ---" >&2
    tail -n 50 "$tmp/serve.log" >&2
    exit 1
fi
