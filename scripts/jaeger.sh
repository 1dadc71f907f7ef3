#!/usr/bin/env bash
# Prints the path of the Jaeger binary the tracing test runs, building it once from the Go
# module proxy into the tools cache outside the clone. tools/jaeger/go.mod pins the version
# (a separate module, so the product's go.mod stays lean).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PATH="$PATH:/usr/local/go/bin"

tools=${CAREEROPS_TOOLS:-$HOME/.cache/careerops-tools}
version=$(cd tools/jaeger && go list -m -f '{{.Version}}' github.com/jaegertracing/jaeger)
bin="$tools/bin/jaeger-$version"
if [[ ! -x "$bin" ]]; then
  echo "jaeger: building $version into $bin (once; about 5 minutes on 2 cores)" >&2
  mkdir -p "$tools/bin"
  start=$SECONDS
  # A temporary file of this build's own: a second cold run beside this one (CI beside a
  # session, another worktree) builds its own and renames it over the same name.
  (cd tools/jaeger && go build -trimpath -o "$bin.tmp.$$" github.com/jaegertracing/jaeger/cmd/jaeger)
  mv "$bin.tmp.$$" "$bin"
  echo "jaeger: built in $((SECONDS - start))s" >&2
fi
echo "$bin"
