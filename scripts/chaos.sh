#!/usr/bin/env bash
# The fault suite: kills and restarts workers, the api, RabbitMQ and PostgreSQL under load and
# checks that no accepted job is lost or done twice (tools/chaos in the tools module; docs/operations.md,
# "Fault suite"). It starts its own private PostgreSQL and RabbitMQ node on spare ports, so it
# needs neither the shared services nor Docker, only the PostgreSQL and RabbitMQ server
# binaries. Extra arguments go to `go test`:
#
#   make chaos                                   (or: scripts/chaos.sh)
#   make chaos ARGS='-run TestChaos/poison'      one scenario
#
# Settings: CHAOS_RACE=0 builds the test without -race; CHAOS_BUILD_FLAGS (e.g.
# -race) goes to `go build` of the programs under test; CHAOS_KEEP=1 keeps logs and data
# even when every scenario passes (they are always kept on failure).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
# rabbitmqctl, epmd and the PostgreSQL binaries are found from here.
export PATH="$PATH:/usr/local/go/bin:/usr/local/sbin:/usr/sbin:/sbin"
start=$SECONDS

dir=$(mktemp -d "${TMPDIR:-/tmp}/careerops-chaos.XXXXXX")
chmod 755 "$dir" # the PostgreSQL server runs as the postgres user and must reach its data
export CAREEROPS_CHAOS=1 CHAOS_DIR="$dir" CHAOS_FIGURES="$dir/figures.txt"

status=0
cleanup() {
  # The suite stops everything it started, even when a scenario fails, and its processes die
  # with it (parent-death signal). Should the test binary itself be killed (a go test timeout),
  # end what it left: each pid it recorded, if that process still belongs to this run.
  local f pid name
  for f in "$dir"/chaos-*/pids; do
    [[ -f "$f" ]] || continue
    while read -r pid name; do
      [[ -d /proc/$pid ]] || continue
      if [[ "$(readlink "/proc/$pid/cwd" 2>/dev/null)" == "$dir"* ]] ||
        tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "$dir"; then
        echo "chaos: killing leftover $name (pid $pid)" >&2
        kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
      fi
    done <"$f"
  done
  if ((status == 0)) && [[ -z "${CHAOS_KEEP:-}" ]]; then
    rm -rf "$dir"
  else
    echo "chaos: logs and data kept in $dir" >&2
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The suite's own code (load client, proxy, checks) runs with the race detector: it costs
# ~20 s. The programs under test are built without it, as they ship (CHAOS_BUILD_FLAGS=-race
# builds them with it too, at the price of CPU the 2-core CI machine does not have to spare).
race=(-race)
if [[ "${CHAOS_RACE:-1}" == 0 ]]; then
  race=()
fi

echo "chaos: (cd tools && go test ${race[*]} -count=1 -timeout 30m -v -run TestChaos $* ./chaos/)"
go -C tools test "${race[@]}" -count=1 -timeout 30m -v -run TestChaos "$@" ./chaos/ 2>&1 |
  tee "$dir/test.log" || status=$?
# A skipped suite is a failed suite here: `make chaos` exists to run it.
if grep -q -- '--- SKIP: TestChaos' "$dir/test.log"; then
  status=1
fi

elapsed=$((SECONDS - start))
echo
echo "chaos: figures"
if [[ -s "$CHAOS_FIGURES" ]]; then
  sed 's/^/  /' "$CHAOS_FIGURES"
else
  echo "  (none)"
fi
if ((status == 0)); then
  printf 'chaos: PASS in %dm%02ds\n' $((elapsed / 60)) $((elapsed % 60))
else
  printf 'chaos: FAIL (status %d) after %dm%02ds\n' "$status" $((elapsed / 60)) $((elapsed % 60))
fi
exit "$status"
