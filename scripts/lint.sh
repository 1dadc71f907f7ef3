#!/usr/bin/env bash
# Static checks: gofmt, go vet, go mod tidy, golangci-lint (configured by .golangci.yml).
# Runs every check and fails at the end if any failed.
#
#   make lint                          (or: scripts/lint.sh)
#
# golangci-lint is pinned to GOLANGCI_LINT_VERSION and cached outside the clone, in
# ${CAREEROPS_TOOLS:-$HOME/.cache/careerops-tools}/bin, so a warm CI run does not rebuild it.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PATH="$PATH:/usr/local/go/bin"

GOLANGCI_LINT_VERSION=2.15.0
TOOLS_DIR=${CAREEROPS_TOOLS:-$HOME/.cache/careerops-tools}
GOLANGCI_LINT=$TOOLS_DIR/bin/golangci-lint

failed=()
step() { echo "lint: $*"; }

step "gofmt"
unformatted=$(find . -name '*.go' -not -path './.git/*' -not -path './vendor/*' -not -path '*/testdata/*' -print0 |
  xargs -0 -r gofmt -l) || failed+=("gofmt (errors above)")
if [[ -n "$unformatted" ]]; then
  echo "lint: these files need gofmt -w:" >&2
  sed 's/^/  /' <<<"$unformatted" >&2
  failed+=(gofmt)
fi

# The root module (the product) and the tools module (tools/go.mod: bench, loadgen, chaos).
for mod in . tools; do
  step "go vet ./... in $mod"
  go -C "$mod" vet ./... || failed+=("go vet ($mod)")

  step "go mod tidy -diff in $mod"
  go -C "$mod" mod tidy -diff || {
    echo "lint: $mod/go.mod or go.sum is not tidy; run 'go mod tidy' there (the diff above is what it would change)" >&2
    failed+=("go mod tidy ($mod)")
  }
done

if [[ ! -x "$GOLANGCI_LINT" ]] || ! "$GOLANGCI_LINT" version 2>/dev/null | grep -q "version $GOLANGCI_LINT_VERSION "; then
  step "installing golangci-lint v$GOLANGCI_LINT_VERSION into $TOOLS_DIR/bin (once)"
  mkdir -p "$TOOLS_DIR/bin"
  GOBIN=$TOOLS_DIR/bin go install "github.com/golangci/golangci-lint/v2/cmd/golangci-lint@v$GOLANGCI_LINT_VERSION"
fi
# --allow-parallel-runners: a lint of another checkout on this machine (a second worktree, or CI
# beside a session) runs beside this one instead of failing at once on its lock.
step "golangci-lint run ./... ($("$GOLANGCI_LINT" version 2>/dev/null | head -n 1 | cut -d' ' -f1-4))"
"$GOLANGCI_LINT" run --allow-parallel-runners ./... || failed+=(golangci-lint)
step "golangci-lint run ./... in tools (same .golangci.yml)"
(cd tools && "$GOLANGCI_LINT" run --allow-parallel-runners --config ../.golangci.yml ./...) || failed+=("golangci-lint (tools)")

if ((${#failed[@]})); then
  echo "lint: FAIL: ${failed[*]}" >&2
  exit 1
fi
echo "lint: OK"
