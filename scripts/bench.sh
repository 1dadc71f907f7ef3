#!/usr/bin/env bash
# The benchmark suite (docs/benchmarks.md): builds api, worker and fakeopenai as they ship
# (without -race, like the Dockerfile), and the River peer (tools/riverpeer), then runs
# tools/bench (the tools module), which measures the raw limit (pgx + amqp091-go), the api's
# enqueue, the system end to end, the worker's per-job overhead, the footprint and the same job
# on River, side by side in one run, and prints one line per figure and a markdown table. Not a
# test and not in CI.
#
#   make bench                   (or: scripts/bench.sh)
#   BENCH_PROFILE=1 make bench   also CPU profiles (the programs' PPROF_ADDR, if they have it)
#   BENCH_QUICK=1 make bench     short windows, to try the harness (numbers not for the docs)
#   BENCH_PHASES=raw,api make bench   a subset: raw, api, e2e, overhead, free, river, experiments
#                                ("river": the River peer, tools/riverpeer, beside our api runs
#                                and our 1x32 and 4x8 end-to-end runs, which it runs if e2e is not asked)
#   BENCH_E2E='0s 1x8,0s 4x8'   only these end-to-end runs (by name; with BENCH_PROFILE=1 each is profiled)
#   BENCH_KEEP=1                 keep the bench database and RabbitMQ vhost afterwards
#
# Output: bin/bench/out/{results.md,results.json,logs/,profiles/}.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PATH="$PATH:/usr/local/go/bin:/usr/local/sbin:/usr/sbin:/sbin"
start=$SECONDS

scripts/services.sh

BENCH_BIN=${BENCH_BIN:-bin/bench}
BENCH_OUT=${BENCH_OUT:-$BENCH_BIN/out}
export BENCH_BIN BENCH_OUT
mkdir -p "$BENCH_BIN" "$BENCH_OUT/profiles"
rm -f "$BENCH_OUT"/profiles/*

echo "bench: building api, worker, fakeopenai, the River peer (CGO_ENABLED=0 -trimpath -ldflags='-s -w') and the bench into $BENCH_BIN/"
CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$BENCH_BIN/" ./cmd/api ./cmd/worker ./cmd/fakeopenai
CGO_ENABLED=0 go -C tools build -trimpath -ldflags='-s -w' -o "$(realpath "$BENCH_BIN")/riverpeer" ./cmd/riverpeer
go -C tools build -o "$(realpath "$BENCH_BIN")/bench" ./cmd/bench

commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
if [[ -n "$(git status --porcelain --untracked-files=no -- cmd internal go.mod go.sum tools/go.mod tools/bench tools/loadgen tools/riverpeer 2>/dev/null)" ]]; then
  commit="$commit+dirty"
fi
export BENCH_COMMIT=${BENCH_COMMIT:-$commit}

# The load is CPU-bound on a small machine: say if something else is busy.
read -r load1 _ </proc/loadavg
echo "bench: load average before the run: $load1 on $(nproc) CPUs"

status=0
"$BENCH_BIN/bench" || status=$?

shopt -s nullglob
profiles=("$BENCH_OUT"/profiles/*.pb.gz)
if ((${#profiles[@]})); then
  echo
  for p in "${profiles[@]}"; do
    { go tool pprof -top -nodecount=30 "$p" && echo && go tool pprof -top -cum -nodecount=60 "$p"; } \
      >"${p%.pb.gz}.top.txt" 2>/dev/null || true
    echo "bench: profile $p (flat and cumulative tops: ${p%.pb.gz}.top.txt)"
  done
fi

elapsed=$((SECONDS - start))
printf 'bench: wall time %dm%02ds\n' $((elapsed / 60)) $((elapsed % 60))
exit "$status"
