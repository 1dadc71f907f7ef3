#!/usr/bin/env bash
# Mailpit (github.com/axllent/mailpit), the SMTP server with a web UI that `make dev` sends
# its emails to, built once into the tools cache outside the clone.
#
#   scripts/mailpit.sh           prints the binary's path; exits 1 if it is not built yet
#   scripts/mailpit.sh --build   builds it (go install; then, if npm is there, its web UI's
#                                assets too, which the Go module does not ship), prints the path
#
# `make dev` starts the build in the background when the binary is missing and runs without
# email meanwhile; the next `make dev` starts Mailpit.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PATH="$PATH:/usr/local/go/bin"

VERSION=v1.33.1 # pinned; see CHANGELOG.md before changing it
tools=${CAREEROPS_TOOLS:-$HOME/.cache/careerops-tools}
bin="$tools/bin/mailpit-$VERSION"

if [[ "${1:-}" != --build ]]; then
  [[ -x "$bin" ]] || exit 1
  echo "$bin"
  exit 0
fi
[[ -x "$bin" ]] && { echo "$bin"; exit 0; }

mkdir -p "$tools/bin"
start=$SECONDS
work=$(mktemp -d "$tools/mailpit-build.XXXXXX")
trap 'rm -rf "$work"' EXIT
echo "mailpit: go install github.com/axllent/mailpit@$VERSION" >&2
GOBIN="$work/bin" go install -trimpath "github.com/axllent/mailpit@$VERSION"
built="$work/bin/mailpit"

# The module has no built web UI (server/ui/dist is made by npm): without it the SMTP server
# and the API (/api/v1/messages) work, the web page stays blank. Build the assets when npm is
# here, and Mailpit again with them.
if command -v npm >/dev/null; then
  src="$work/src"
  cp -r "$(go env GOMODCACHE)/github.com/axllent/mailpit@$VERSION" "$src"
  chmod -R u+w "$src"
  if (cd "$src" && npm ci --no-audit --no-fund --loglevel=error && npm run build) >&2; then
    (cd "$src" && go build -trimpath -o "$work/mailpit-ui" .)
    built="$work/mailpit-ui"
  else
    echo "mailpit: building the web UI failed; Mailpit runs without it (its API works)" >&2
  fi
else
  echo "mailpit: no npm, so no web UI assets; Mailpit runs without them (its API works)" >&2
fi
mv "$built" "$bin"
echo "mailpit: built $bin in $((SECONDS - start))s" >&2
echo "$bin"
