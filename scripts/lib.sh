# Shell helpers shared by the scripts that run the programs (dev.sh, browser-test.sh).
# Source it; it expects an associative array PID (name → pid) in the caller.

# stop_procs TAG NAME...: SIGTERM to each, then wait for each (45 s at most, leaving room for
# the worker's drain, WORKER_DRAIN_TIMEOUT=30s by default, then SIGKILL). Reports any exit
# status but 0 on stderr, prefixed with TAG, and returns 1 if there was one.
stop_procs() {
  local tag=$1 name status rc=0 deadline
  shift
  for name in "$@"; do
    if [[ -n "${PID[$name]:-}" ]]; then kill -TERM "${PID[$name]}" 2>/dev/null || true; fi
  done
  deadline=$((SECONDS + 45))
  for name in "$@"; do
    [[ -n "${PID[$name]:-}" ]] || continue
    while kill -0 "${PID[$name]}" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
    if kill -0 "${PID[$name]}" 2>/dev/null; then
      echo "$tag: $name did not stop within 45 s of SIGTERM; killing it" >&2
      kill -KILL "${PID[$name]}" 2>/dev/null || true
    fi
    status=0
    wait "${PID[$name]}" 2>/dev/null || status=$?
    if ((status != 0)); then
      echo "$tag: $name exited with status $status" >&2
      rc=1
    fi
    unset "PID[$name]"
  done
  return $rc
}
