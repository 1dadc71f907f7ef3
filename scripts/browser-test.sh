#!/usr/bin/env bash
# Browser tests of the api's web pages (/ and /ops): headless Debian Chromium, driven by
# playwright-core from npm (internal/webui/e2e, Node's built-in test runner), against the real
# programs: fakeopenai (3 s per letter, so the streaming is visible), api and worker, and Mailpit
# (a real SMTP server with an HTTP API, that the worker's emails go to), on free ports, with a
# fresh PostgreSQL database and a fresh RabbitMQ vhost that are removed on exit.
#
#   make browser-test                        (or: scripts/browser-test.sh)
#   UPDATE_SCREENSHOTS=1 make browser-test   also rewrites docs/screenshots/*.png
#   make browser-test ARGS='--test-name-pattern=ops'    extra arguments for node --test
#
# Needs Node.js 20+ with npm, PostgreSQL and RabbitMQ (started by scripts/services.sh) and
# /usr/bin/chromium (installed with apt-get when missing; CHROMIUM_PATH points elsewhere), and
# Mailpit (built once into ~/.cache/careerops-tools by scripts/mailpit.sh when missing).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh
export PATH="$PATH:/usr/local/go/bin:/usr/local/sbin:/usr/sbin:/sbin"
start=$SECONDS

E2E=internal/webui/e2e
BIN_DIR=bin
CHROMIUM_PATH=${CHROMIUM_PATH:-/usr/bin/chromium}
PG_ADMIN_URL=${PG_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable}
RABBITMQ_HOST=127.0.0.1:5672
RABBITMQ_MGMT=http://127.0.0.1:15672
RABBITMQ_AUTH=guest:guest

say() { echo "browser-test: $*"; }
die() {
  echo "browser-test: $*" >&2
  exit 1
}

# --- tools ---------------------------------------------------------------------------------
if [[ ! -x "$CHROMIUM_PATH" ]]; then
  [[ "$CHROMIUM_PATH" == /usr/bin/chromium ]] || die "CHROMIUM_PATH=$CHROMIUM_PATH is not executable"
  command -v apt-get >/dev/null || die "no /usr/bin/chromium and no apt-get: install Chromium, or set CHROMIUM_PATH"
  SUDO=()
  ((EUID == 0)) || SUDO=(sudo)
  say "installing Debian's chromium package (once)"
  "${SUDO[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq chromium >/dev/null
  [[ -x "$CHROMIUM_PATH" ]] || die "apt-get installed chromium, but $CHROMIUM_PATH is still missing"
fi
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  die "Node.js 20+ and npm are needed"
fi
command -v psql >/dev/null || die "psql is needed (to drop the test database)"
MAILPIT_BIN=$(scripts/mailpit.sh) || {
  say "building Mailpit (once, a few minutes)"
  MAILPIT_BIN=$(nice -n 10 scripts/mailpit.sh --build)
}
say "$("$CHROMIUM_PATH" --version 2>/dev/null | head -n 1), node $(node --version)"

say "npm ci in $E2E"
(cd "$E2E" && npm ci --no-audit --no-fund --loglevel=error)

say "building ./cmd/... into $BIN_DIR/"
go build -o "$BIN_DIR/" ./cmd/...

scripts/services.sh

# --- a private database, vhost and ports -----------------------------------------------------
WORK=$(mktemp -d "${TMPDIR:-/tmp}/careerops-browser.XXXXXX")
SUFFIX=$(od -An -tx1 -N4 /dev/urandom | tr -d ' \n')
DB=careerops_browser_$SUFFIX
VHOST=careerops-browser-$SUFFIX
free_port() { node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }
API_PORT=$(free_port)
ADMIN_PORT=$(free_port)
FAKE_PORT=$(free_port)
SMTP_PORT=$(free_port)
MAILPIT_PORT=$(free_port)
MAILPIT_URL=http://127.0.0.1:$MAILPIT_PORT
BASE_URL=http://127.0.0.1:$API_PORT

declare -A PID=()
CREATED_DB=0
CREATED_VHOST=0
STATUS=1

# The EXIT trap runs these three.
# shellcheck disable=SC2317

# shellcheck disable=SC2317
show_logs() {
  local n
  for n in mailpit fakeopenai api worker; do
    [[ -s "$WORK/$n.log" ]] || continue
    echo "----- last lines of the $n log" >&2
    tail -n 30 "$WORK/$n.log" >&2
  done
}

# shellcheck disable=SC2317
cleanup() {
  trap '' INT TERM
  stop_procs browser-test api worker || true
  stop_procs browser-test fakeopenai mailpit || true
  ((STATUS == 0)) || show_logs
  if ((CREATED_DB)); then
    psql -q "$PG_ADMIN_URL" -c "DROP DATABASE IF EXISTS \"$DB\" WITH (FORCE)" >/dev/null ||
      echo "browser-test: could not drop database $DB" >&2
  fi
  if ((CREATED_VHOST)); then
    curl -fsS -o /dev/null -u "$RABBITMQ_AUTH" -X DELETE "$RABBITMQ_MGMT/api/vhosts/$VHOST" ||
      echo "browser-test: could not delete vhost $VHOST" >&2
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

say "database $DB, RabbitMQ vhost $VHOST"
curl -fsS -o /dev/null -u "$RABBITMQ_AUTH" -X PUT "$RABBITMQ_MGMT/api/vhosts/$VHOST" -H 'Content-Type: application/json' -d '{}'
CREATED_VHOST=1
curl -fsS -o /dev/null -u "$RABBITMQ_AUTH" -X PUT "$RABBITMQ_MGMT/api/permissions/$VHOST/${RABBITMQ_AUTH%%:*}" \
  -H 'Content-Type: application/json' -d '{"configure":".*","write":".*","read":".*"}'

export DATABASE_URL="postgres://postgres@127.0.0.1:5432/$DB?sslmode=disable"
export RABBITMQ_URL="amqp://$RABBITMQ_AUTH@$RABBITMQ_HOST/$VHOST"
CREATED_DB=1 # migrate creates it; drop it even if migrating fails halfway
"$BIN_DIR/careeropsctl" migrate up >/dev/null

# --- the programs ----------------------------------------------------------------------------
DETACH=()
command -v setsid >/dev/null && DETACH=(setsid)
# Not a function: "$@" & must fork and exec the program itself, so that $! is its pid.
start_program() {
  local name=$1
  shift
  "${DETACH[@]}" env "$@" >"$WORK/$name.log" 2>&1 </dev/null &
  PID[$name]=$!
}

JWT_SECRET=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')
start_program mailpit "$MAILPIT_BIN" --smtp "127.0.0.1:$SMTP_PORT" --listen "127.0.0.1:$MAILPIT_PORT" \
  --database "$WORK/mailpit.db" --disable-version-check --smtp-disable-rdns
start_program fakeopenai "$BIN_DIR/fakeopenai" --addr "127.0.0.1:$FAKE_PORT" --latency 3s
start_program api HTTP_ADDR="127.0.0.1:$API_PORT" JWT_SECRET="$JWT_SECRET" DEV_TOKEN_ENDPOINT=true \
  JAEGER_UI_URL=http://127.0.0.1:16686 "$BIN_DIR/api"
start_program worker ADMIN_ADDR="127.0.0.1:$ADMIN_PORT" OPENAI_API_KEY=sk-browser-test \
  OPENAI_BASE_URL="http://127.0.0.1:$FAKE_PORT/v1" OPENAI_MODEL=fake-gpt \
  JWT_SECRET="$JWT_SECRET" PUBLIC_BASE_URL="$BASE_URL" SMTP_HOST=127.0.0.1 SMTP_PORT="$SMTP_PORT" SMTP_TLS=none \
  SMTP_FROM='CareerOps <no-reply@careerops.localhost>' "$BIN_DIR/worker"

deadline=$((SECONDS + 30))
for url in "$BASE_URL/readyz" "http://127.0.0.1:$ADMIN_PORT/readyz" "http://127.0.0.1:$FAKE_PORT/v1/models" "$MAILPIT_URL/readyz"; do
  until curl -fs -o /dev/null --max-time 2 -H 'Authorization: Bearer sk-browser-test' "$url"; do
    for n in mailpit fakeopenai api worker; do
      kill -0 "${PID[$n]}" 2>/dev/null || die "$n exited during startup"
    done
    ((SECONDS < deadline)) || die "$url did not answer within 30 s"
    sleep 0.3
  done
done
say "api $BASE_URL, worker admin :$ADMIN_PORT, fakeopenai :$FAKE_PORT (3 s per letter), Mailpit SMTP :$SMTP_PORT and $MAILPIT_URL are ready"

# --- the tests -------------------------------------------------------------------------------
tests_start=$SECONDS
status=0
(
  cd "$E2E"
  BASE_URL=$BASE_URL MAILPIT_URL=$MAILPIT_URL CHROMIUM_PATH=$CHROMIUM_PATH JWT_SECRET=$JWT_SECRET node --test --test-concurrency=1 --test-reporter=spec \
    --test-timeout=120000 "$@" ./*.test.mjs
) || status=$?
STATUS=$status

elapsed=$((SECONDS - start))
if ((status == 0)); then
  printf 'browser-test: PASS (tests %ds, total %dm%02ds)\n' $((SECONDS - tests_start)) $((elapsed / 60)) $((elapsed % 60))
else
  printf 'browser-test: FAIL (node --test exit status %d) after %dm%02ds\n' "$status" $((elapsed / 60)) $((elapsed % 60))
fi
exit "$status"
