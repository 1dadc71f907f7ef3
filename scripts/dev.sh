#!/usr/bin/env bash
# Runs the whole system locally: fakeopenai (a fake LLM), api and worker, against the local
# PostgreSQL and RabbitMQ, and Mailpit for the emails once it is built (see below). Ctrl-C
# stops everything cleanly.
#
#   make dev            (or: scripts/dev.sh)
#
# Every setting below can be overridden from the environment, e.g.
#   FAKEOPENAI_LATENCY=0 HTTP_ADDR=127.0.0.1:8081 make dev
# fakeopenai also reads FAKEOPENAI_<FLAG> itself, e.g. FAKEOPENAI_FAIL_RATE=0.3 make dev.
# DEV_TAIL=0 does not follow the logs in the terminal (they are always in .dev/*.log).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh
ROOT=$PWD
export PATH="$PATH:/usr/local/go/bin"

DEV_DIR=.dev
BIN_DIR=bin
mkdir -p "$DEV_DIR"

# --- configuration (the caller's environment wins) ---------------------------------------
: "${DATABASE_URL:=postgres://postgres@127.0.0.1:5432/careerops?sslmode=disable}"
: "${RABBITMQ_URL:=amqp://guest:guest@127.0.0.1:5672/}"
: "${OPENAI_API_KEY:=sk-dev-fake}"
: "${OPENAI_MODEL:=fake-gpt}"
: "${HTTP_ADDR:=127.0.0.1:8080}"
: "${ADMIN_ADDR:=127.0.0.1:9090}"
: "${FAKEOPENAI_ADDR:=127.0.0.1:8090}"
: "${FAKEOPENAI_LATENCY:=2s}"
: "${DEV_TAIL:=1}"
# The web page's "get a dev token" button; never enable this outside development.
: "${DEV_TOKEN_ENDPOINT:=true}"
: "${JAEGER_UI_URL:=http://127.0.0.1:16686}"
if [[ -z "${JWT_SECRET:-}" ]]; then
  if [[ ! -s "$DEV_DIR/jwt-secret" ]]; then
    (umask 077 && od -An -tx1 -N24 /dev/urandom | tr -d ' \n' >"$DEV_DIR/jwt-secret")
  fi
  JWT_SECRET=$(<"$DEV_DIR/jwt-secret")
fi

# local_url ADDR: http://host:port for a listen address (":8080" and "0.0.0.0:8080" become
# 127.0.0.1:8080).
local_url() {
  local host=${1%:*} port=${1##*:}
  [[ -z "$host" || "$host" == 0.0.0.0 || "$host" == "[::]" ]] && host=127.0.0.1
  echo "http://$host:$port"
}
API_URL=$(local_url "$HTTP_ADDR")
ADMIN_URL=$(local_url "$ADMIN_ADDR")
FAKE_URL=$(local_url "$FAKEOPENAI_ADDR")
: "${OPENAI_BASE_URL:=$FAKE_URL/v1}" # http://127.0.0.1:8090/v1 by default

export DATABASE_URL RABBITMQ_URL OPENAI_API_KEY OPENAI_BASE_URL OPENAI_MODEL HTTP_ADDR \
  ADMIN_ADDR JWT_SECRET DEV_TOKEN_ENDPOINT JAEGER_UI_URL

say() { echo "dev: $*"; }

# --- services, build, migrations ---------------------------------------------------------
scripts/services.sh

# port_taken URL: true when something already accepts connections on URL's host:port.
port_taken() {
  local hp=${1#http://}
  timeout 2 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "${hp%:*}" "${hp##*:}" 2>/dev/null
}
taken=0
for pair in "HTTP_ADDR=$API_URL" "ADMIN_ADDR=$ADMIN_URL" "FAKEOPENAI_ADDR=$FAKE_URL"; do
  if port_taken "${pair#*=}"; then
    echo "dev: ${pair#*=http://} (${pair%%=*}) is already in use by another process" \
      "- is another 'make dev' running? Stop it, or set ${pair%%=*} to a free address." >&2
    if command -v ss >/dev/null; then
      ss -ltnpH "sport = :${pair##*:}" 2>/dev/null | sed 's/^/dev:   /' >&2 || true
    fi
    taken=1
  fi
done
((taken == 0)) || exit 1

# --- email: Mailpit catches every email (its web UI shows them) ----------------------------
# Set SMTP_HOST to send elsewhere. Mailpit is built once in the background (scripts/mailpit.sh);
# until it is there, this runs without email.
: "${MAILPIT_SMTP_ADDR:=127.0.0.1:1025}"
: "${MAILPIT_UI_ADDR:=127.0.0.1:8025}"
MAILPIT_URL=$(local_url "$MAILPIT_UI_ADDR")
MAILPIT_BIN=""
EMAIL_NOTE="no email (SMTP_HOST is not set)"
if [[ -n "${SMTP_HOST:-}" ]]; then
  EMAIL_NOTE="email to your SMTP_HOST=$SMTP_HOST"
elif port_taken "$(local_url "$MAILPIT_SMTP_ADDR")"; then
  SMTP_HOST=${MAILPIT_SMTP_ADDR%:*} SMTP_PORT=${MAILPIT_SMTP_ADDR##*:} SMTP_TLS=${SMTP_TLS:-none}
  EMAIL_NOTE="email to the SMTP server already on $MAILPIT_SMTP_ADDR (docker compose's Mailpit? its UI: $MAILPIT_URL)"
elif MAILPIT_BIN=$(scripts/mailpit.sh); then
  SMTP_HOST=${MAILPIT_SMTP_ADDR%:*} SMTP_PORT=${MAILPIT_SMTP_ADDR##*:} SMTP_TLS=${SMTP_TLS:-none}
  EMAIL_NOTE="email to Mailpit: read it at $MAILPIT_URL"
else
  MAILPIT_BIN=""
  if ! { [[ -s "$DEV_DIR/mailpit-build.pid" ]] && kill -0 "$(<"$DEV_DIR/mailpit-build.pid")" 2>/dev/null; }; then
    nohup setsid nice -n 10 scripts/mailpit.sh --build >"$DEV_DIR/mailpit-build.log" 2>&1 </dev/null &
    echo $! >"$DEV_DIR/mailpit-build.pid"
  fi
  EMAIL_NOTE="no email yet: Mailpit is being built in the background (once, a few minutes; log $DEV_DIR/mailpit-build.log). The next 'make dev' starts it and sends email there. (Or set SMTP_HOST.)"
fi
if [[ -n "${SMTP_HOST:-}" ]]; then
  : "${SMTP_FROM:=CareerOps <no-reply@careerops.localhost>}"
  : "${PUBLIC_BASE_URL:=$API_URL}"
  export SMTP_HOST SMTP_FROM PUBLIC_BASE_URL
  [[ -z "${SMTP_PORT:-}" ]] || export SMTP_PORT
  [[ -z "${SMTP_TLS:-}" ]] || export SMTP_TLS
fi
say "$EMAIL_NOTE"

say "building ./cmd/... into $BIN_DIR/"
go build -o "$BIN_DIR/" ./cmd/...

say "migrating $(sed -E 's#//([^:@/]+):[^@/]*@#//\1:***@#' <<<"$DATABASE_URL")"
"$BIN_DIR/careeropsctl" migrate up

# The environment careeropsctl (and the recipe below) needs, for the user's shell.
{
  echo "# Written by scripts/dev.sh: source it to use bin/careeropsctl against 'make dev'."
  for v in DATABASE_URL RABBITMQ_URL JWT_SECRET; do
    printf 'export %s=%q\n' "$v" "${!v}"
  done
  printf 'export API=%q\n' "$API_URL"
} >"$DEV_DIR/env"

# --- start the programs ------------------------------------------------------------------
# Each runs in its own session (setsid), so a Ctrl-C in the terminal reaches only this
# script, which then stops them with one SIGTERM each and waits for them to drain.
NAMES=(fakeopenai api worker)
declare -A PID=()
TAIL_PIDS=()
# Not a function: "$@" & must fork and exec the program itself, so that $! is its pid.
DETACH=()
command -v setsid >/dev/null && DETACH=(setsid)

start() {
  local name=$1
  shift
  : >"$DEV_DIR/$name.log"
  "${DETACH[@]}" "$@" >>"$DEV_DIR/$name.log" 2>&1 </dev/null &
  PID[$name]=$!
}

STOPPING=0
stop_all() {
  local rc=0
  STOPPING=1
  trap '' INT TERM
  # api and worker first (the worker finishes its jobs in flight, which need the fake LLM and
  # may send email), then fakeopenai and Mailpit.
  stop_procs dev api worker || rc=1
  stop_procs dev fakeopenai || rc=1
  [[ -z "${PID[mailpit]:-}" ]] || stop_procs dev mailpit || rc=1
  for p in "${TAIL_PIDS[@]}"; do kill -TERM -- "-$p" 2>/dev/null || kill -TERM "$p" 2>/dev/null || true; done
  TAIL_PIDS=()
  return $rc
}


on_signal() {
  echo
  say "stopping (SIGTERM to api and worker, then fakeopenai and Mailpit) ..."
  if stop_all; then
    say "all stopped"
    exit 0
  fi
  exit 1
}
on_exit() { ((STOPPING)) || stop_all || true; }
trap on_signal INT TERM
trap on_exit EXIT

if [[ -n "$MAILPIT_BIN" ]]; then
  start mailpit "$MAILPIT_BIN" --smtp "$MAILPIT_SMTP_ADDR" --listen "$MAILPIT_UI_ADDR" \
    --disable-version-check --smtp-disable-rdns --max 1000
  NAMES+=(mailpit)
fi
start fakeopenai "$BIN_DIR/fakeopenai" --addr "$FAKEOPENAI_ADDR" --latency "$FAKEOPENAI_LATENCY"
start api "$BIN_DIR/api"
start worker "$BIN_DIR/worker"
say "started fakeopenai (pid ${PID[fakeopenai]}), api (pid ${PID[api]}), worker (pid ${PID[worker]})${PID[mailpit]:+, mailpit (pid ${PID[mailpit]})}; logs in $DEV_DIR/*.log"

# --- wait until ready --------------------------------------------------------------------
ready() { curl -fs -o /dev/null --max-time 2 "$1"; }
deadline=$((SECONDS + 30))
for check in "api=$API_URL/readyz" "worker=$ADMIN_URL/readyz"; do
  name=${check%%=*}
  url=${check#*=}
  until ready "$url"; do
    dead=""
    for n in "${NAMES[@]}"; do kill -0 "${PID[$n]}" 2>/dev/null || dead+=" $n"; done
    if [[ -n "$dead" ]] || ((SECONDS >= deadline)); then
      if [[ -n "$dead" ]]; then
        echo "dev: exited during startup:$dead" >&2
      else
        echo "dev: $url did not answer 200 within 30 s" >&2
      fi
      for n in "${NAMES[@]}"; do
        echo "----- tail $DEV_DIR/$n.log" >&2
        tail -n 20 "$DEV_DIR/$n.log" >&2 || true
      done
      exit 1
    fi
    sleep 0.5
  done
  say "$name ready ($url)"
done

# --- the recipe --------------------------------------------------------------------------
cat <<EOF

CareerOps is running: api $API_URL, worker admin $ADMIN_URL, fake LLM $FAKE_URL (latency $FAKEOPENAI_LATENCY).
Email: $EMAIL_NOTE

In a browser: $API_URL/ (press "Get a dev token", then write a letter and watch it stream),
and $API_URL/ops (operations: queues, failures, the dead-letter queue).

Or with curl, in another terminal, from $ROOT:

  source $DEV_DIR/env
  ID=\$(bin/careeropsctl user add --email "me-\$(date +%s)@example.com")
  TOKEN=\$(bin/careeropsctl token --user "\$ID")
  JOB=\$(curl -s "\$API/api/cover-letter" -H "Authorization: Bearer \$TOKEN" \\
    -H 'Content-Type: application/json' \\
    -d '{"jobDescription": "Senior Go engineer, distributed systems.", "cvText": "10 years of Go, PostgreSQL and RabbitMQ.", "tone": "friendly"}' \\
    | tee /dev/stderr | jq -r .jobId); echo
  curl -s "\$API/api/cover-letter/status/\$JOB" -H "Authorization: Bearer \$TOKEN" | jq .
  curl -s "\$API/api/cover-letter/jobs" -H "Authorization: Bearer \$TOKEN" | jq .

Repeat the status call: pending -> processing -> completed takes about $FAKEOPENAI_LATENCY.
(No jq? Drop "| jq ..." and copy the jobId from the answer.) Also: $API_URL/metrics,
$ADMIN_URL/metrics, bin/careeropsctl dlq list. Ctrl-C here stops everything.

EOF

if [[ "$DEV_TAIL" == 1 ]]; then
  say "following new log lines ($DEV_DIR/{$(IFS=,; echo "${NAMES[*]}")}.log):"
  for n in "${NAMES[@]}"; do
    # Its own process group, so stop_all can end tail and sed together.
    "${DETACH[@]}" bash -c 'exec tail -n 0 -F "$1" 2>/dev/null | sed -u "s/^/[$2] /"' _ "$DEV_DIR/$n.log" "$n" &
    TAIL_PIDS+=($!)
  done
fi

# --- run until Ctrl-C or until a program dies --------------------------------------------
while :; do
  exited=""
  status=0
  wait -n -p exited "${PID[@]}" || status=$?
  [[ -n "$exited" ]] || continue
  for n in "${NAMES[@]}"; do
    [[ "${PID[$n]:-}" == "$exited" ]] || continue
    unset "PID[$n]"
    echo "dev: $n exited unexpectedly with status $status; see $DEV_DIR/$n.log. Stopping the rest." >&2
    tail -n 20 "$DEV_DIR/$n.log" >&2 || true
    STOPPING=1
    stop_all || true
    exit 1
  done
done
