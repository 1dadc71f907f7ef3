#!/usr/bin/env bash
# Makes sure the local PostgreSQL and RabbitMQ (with its management API) answer, starting
# them if they do not. Idempotent: when everything is up it only checks, in about a second.
#
#   scripts/services.sh            (or: make services)
#
# It checks the fixed local endpoints the dev machines have: PostgreSQL on 127.0.0.1:5432
# (user postgres, trust), RabbitMQ on 127.0.0.1:5672 and its management API on
# 127.0.0.1:15672 (guest/guest). SKIP_SERVICES=1 skips everything (for a setup where the
# services live elsewhere and TEST_DATABASE_URL / TEST_RABBITMQ_URL point at them).
set -euo pipefail

# rabbitmq-server and rabbitmqctl live in /usr/sbin, which a non-login PATH may lack.
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

if [[ "${SKIP_SERVICES:-0}" == 1 ]]; then
  echo "services: skipped (SKIP_SERVICES=1)"
  exit 0
fi

PG_HOST=127.0.0.1
PG_PORT=5432
AMQP_HOST=127.0.0.1
AMQP_PORT=5672
MGMT_URL=http://127.0.0.1:15672/api/overview
MGMT_USER=guest:guest

die() {
  echo "$*" >&2
  exit 1
}

# tcp_open HOST PORT: true when something accepts a TCP connection there.
tcp_open() {
  timeout 2 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$1" "$2" 2>/dev/null
}

# wait_for SECONDS CMD...: runs CMD every second until it succeeds or SECONDS pass.
wait_for() {
  local deadline=$((SECONDS + $1))
  shift
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || return 1
    sleep 1
  done
}

have() { command -v "$1" >/dev/null 2>&1; }

# --- PostgreSQL --------------------------------------------------------------------------
pg_up() { pg_isready -q -h "$PG_HOST" -p "$PG_PORT"; }

have pg_isready || die "postgresql: pg_isready not found (install the PostgreSQL 15 client and server)"
if pg_up; then
  echo "postgresql: up"
else
  have pg_ctlcluster || die "postgresql: not answering on $PG_HOST:$PG_PORT and pg_ctlcluster not found; start PostgreSQL yourself"
  version=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1 || true)
  [[ -n "$version" ]] || die "postgresql: not answering on $PG_HOST:$PG_PORT and no cluster in /etc/postgresql"
  echo "postgresql: starting cluster $version/main ..."
  pg_ctlcluster --skip-systemctl-redirect "$version" main start ||
    die "postgresql: 'pg_ctlcluster --skip-systemctl-redirect $version main start' failed (see /var/log/postgresql/)"
  wait_for 60 pg_up ||
    die "postgresql: started but not answering on $PG_HOST:$PG_PORT after 60 s (see /var/log/postgresql/)"
  echo "postgresql: started"
fi

# --- RabbitMQ ----------------------------------------------------------------------------
amqp_up() { tcp_open "$AMQP_HOST" "$AMQP_PORT"; }

if amqp_up; then
  echo "rabbitmq: up"
else
  have rabbitmq-server || die "rabbitmq: not answering on $AMQP_HOST:$AMQP_PORT and rabbitmq-server not found; start RabbitMQ yourself"
  echo "rabbitmq: starting ..."
  (
    # RabbitMQ wants many file descriptors; raise the limit where we may (not fatal).
    ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
    exec rabbitmq-server -detached
  ) || die "rabbitmq: 'rabbitmq-server -detached' failed (see /var/log/rabbitmq/)"
  # await_startup fails at once while the node is not reachable yet, so retry it.
  wait_for 90 rabbitmqctl -q --timeout 10 await_startup ||
    die "rabbitmq: node did not finish booting within 90 s (see /var/log/rabbitmq/)"
  wait_for 30 amqp_up ||
    die "rabbitmq: node booted but $AMQP_HOST:$AMQP_PORT does not accept connections"
  echo "rabbitmq: started"
fi

# --- RabbitMQ management plugin ----------------------------------------------------------
mgmt_up() { curl -fs -o /dev/null --max-time 3 -u "$MGMT_USER" "$MGMT_URL"; }

if mgmt_up; then
  echo "rabbitmq management: up"
else
  echo "rabbitmq management: enabling plugin ..."
  rabbitmq-plugins -q enable rabbitmq_management >/dev/null ||
    die "rabbitmq management: 'rabbitmq-plugins enable rabbitmq_management' failed"
  wait_for 60 mgmt_up ||
    die "rabbitmq management: $MGMT_URL does not answer with guest/guest after 60 s"
  echo "rabbitmq management: enabled"
fi
