#!/usr/bin/env bash
# End-to-end test of jobline's dashboard (/ui) in a real headless Chromium, driven by
# playwright-core (pinned in package-lock.json; it downloads no browser: the test launches
# /usr/bin/chromium, or $CHROMIUM). Starts the debug build of jobline on a free port with a
# throwaway SQLite database, creates an operator client (the dashboard's sign-in) and an admin
# client of tenant ui-e2e (which creates jobs through the dialect APIs), and runs every
# *.test.js here with Node's built-in test runner (Node 20+).
#
#   bash e2e/ui/run.sh                                  # after `cargo build`
#   UI_SCREENSHOT=docs/dashboard.png bash e2e/ui/run.sh  # also refresh the README's screenshot
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
bin="${JOBLINE_BIN:-${CARGO_TARGET_DIR:-$root/target}/debug/jobline}"
if [[ -n "${UI_SCREENSHOT:-}" && "$UI_SCREENSHOT" != /* ]]; then
    export UI_SCREENSHOT="$root/$UI_SCREENSHOT"
fi
cd "$here"

if [[ ! -x "$bin" ]]; then
    echo "no jobline binary at $bin: run cargo build first" >&2
    exit 1
fi
if [[ ! -x "${CHROMIUM:-/usr/bin/chromium}" ]]; then
    echo "no Chromium at ${CHROMIUM:-/usr/bin/chromium}: apt-get install -y chromium" >&2
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

db="${E2E_DATABASE_URL:-sqlite:$tmp/jobline.db}"
port="$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')"
field() { node -e 'console.log(JSON.parse(process.argv[1])[process.argv[2]])' "$1" "$2"; }

# Creating the clients first also migrates the database, and a database with a client makes
# `serve` skip its first-start bootstrap client.
operator="$("$bin" clients create --tenant ui-e2e --role operator --name dashboard --json --database-url "$db")"
admin="$("$bin" clients create --tenant ui-e2e --role admin --json --database-url "$db")"
export UI_CLIENT_ID="$(field "$operator" client_id)" UI_CLIENT_SECRET="$(field "$operator" client_secret)"
export ADMIN_CLIENT_ID="$(field "$admin" client_id)" ADMIN_CLIENT_SECRET="$(field "$admin" client_secret)"
export JOBLINE_URL="http://127.0.0.1:$port"

"$bin" serve --database-url "$db" --listen "127.0.0.1:$port" >"$tmp/serve.log" 2>&1 &
server=$!
for _ in $(seq 1 100); do
    curl -fsS "$JOBLINE_URL/healthz" >/dev/null 2>&1 && break
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
