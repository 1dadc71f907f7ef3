#!/usr/bin/env bash
# make devloop-check: runs the dev-loop files through the real tools, with no cluster and no
# Docker engine: `tilt alpha tiltfile-result` (Tiltfile) and `skaffold render --offline`
# (skaffold.yaml, both profiles). Tilt and Skaffold are built once from their module zips
# (the Go module proxy is the only source here) into ${CAREEROPS_TOOLS:-~/.cache/careerops-tools}/bin;
# later runs reuse the binaries. A cold build takes several minutes per tool.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
export PATH="$PATH:/usr/local/go/bin"

TILT_VERSION=v0.33.17
SKAFFOLD_VERSION=v2.19.0
TOOLS_DIR=${CAREEROPS_TOOLS:-$HOME/.cache/careerops-tools}
TILT=$TOOLS_DIR/bin/tilt-$TILT_VERSION
SKAFFOLD=$TOOLS_DIR/bin/skaffold-$SKAFFOLD_VERSION
mkdir -p "$TOOLS_DIR/bin"

say() { echo "devloop-check: $*"; }

# build_from_zip MODULE VERSION PACKAGE OUT CGO: go mod download the module, copy it out of the
# read-only module cache, drop its vendor/ (resolve from the module proxy instead) and build.
build_from_zip() {
  local mod=$1 version=$2 pkg=$3 out=$4 cgo=$5 dir work start=$SECONDS
  say "building $mod@$version (once; cached as $out)"
  dir=$(go mod download -json "$mod@$version" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  [[ -d "$dir" ]] || { echo "devloop-check: go mod download $mod@$version gave no directory" >&2; exit 1; }
  work=$(mktemp -d)
  trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' RETURN
  cp -r "$dir/." "$work/"
  chmod -R u+w "$work"
  rm -rf "$work/vendor"
  (cd "$work" && GOFLAGS=-mod=mod CGO_ENABLED=$cgo go build -trimpath -o "$out.tmp" "$pkg")
  mv "$out.tmp" "$out"
  say "built $(basename "$out") in $((SECONDS - start))s"
}

[[ -x "$TILT" ]] || build_from_zip github.com/tilt-dev/tilt "$TILT_VERSION" ./cmd/tilt "$TILT" 1 # cgo: tree-sitter
# The checksum database has no record of skaffold v2.19.0's go.mod (404 from sum.golang.org
# while the module proxy serves the zip), so the go command may not verify that one module
# against it; its dependencies are still verified as usual.
export GONOSUMDB=github.com/GoogleContainerTools/skaffold
[[ -x "$SKAFFOLD" ]] || build_from_zip github.com/GoogleContainerTools/skaffold/v2 "$SKAFFOLD_VERSION" ./cmd/skaffold "$SKAFFOLD" 0

# skaffold's helm renderer and Tilt's helm() run the helm binary.
HELM_VERSION=v3.22.0
HELM_DIR=$TOOLS_DIR/helm-$HELM_VERSION
if [[ ! -x "$HELM_DIR/helm" ]]; then
  say "installing helm $HELM_VERSION into $HELM_DIR (once)"
  GOBIN=$HELM_DIR CGO_ENABLED=0 go install "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
fi
export PATH="$HELM_DIR:$PATH"

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

say "tilt alpha tiltfile-result (Tiltfile)"
# Tilt evaluates the Tiltfile without a cluster; k8s_yaml(helm(...)) shells out to helm, so
# the chart is rendered here by the helm the chartcheck module builds.
"$TILT" alpha tiltfile-result --file Tiltfile >"$out/tilt.json" 2>"$out/tilt.err" || {
  cat "$out/tilt.err" >&2
  exit 1
}

for profile in dev staging; do
  say "skaffold render --offline --digest-source=tag -p $profile"
  repo=""
  [[ $profile == staging ]] && repo=registry.example.com/careerops
  "$SKAFFOLD" render --offline --digest-source=tag -p "$profile" --filename skaffold.yaml \
    --default-repo="$repo" >"$out/skaffold-$profile.yaml" 2>"$out/skaffold-$profile.err" || {
    cat "$out/skaffold-$profile.err" >&2
    exit 1
  }
done

say "checking what they produced (go test -run TestDevloop)"
(cd tools/chartcheck && DEVLOOP_OUT=$out go test -count=1 -v -run TestDevloop ./... | grep -v "^chartcheck:")
say "OK"
