#!/usr/bin/env bash
# Builds Flux's source-controller and kustomize-controller from their Go modules (pinned versions),
# copies their CRDs from the module sources, and builds the gopher-lua health-check runner
# (tools/lua-health) into a git-ignored cache keyed by the versions, like scripts/build-k8s.sh.
# A second run with everything present returns at once. Prints the cache folder on stdout's last line.
# v1.9.x is the newest Flux controller line that declares go 1.26 (v1.10 declares go 1.27), so the
# machine's Go builds it without downloading a toolchain. source-controller v1.9.3 is the newest v1.9
# whose dependencies the Go proxy serves here (v1.9.4+ need github.com/fluxcd/pkg/artifact v0.18.2+,
# which it answers with 403 "not available"; so do v1.10.x's fluxcd/pkg modules).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
SOURCE_VERSION=1.9.3
KUSTOMIZE_VERSION=1.9.6
LUA_VERSION=1.1.2 # github.com/yuin/gopher-lua, pinned in tools/lua-health/go.mod
cache="${OIDC_OPERATOR_BIN_CACHE:-$root/.cache/bin}/flux-source-${SOURCE_VERSION}_kustomize-${KUSTOMIZE_VERSION}_lua-${LUA_VERSION}"
mkdir -p "$cache"
log() { echo "[build-flux] $*" >&2; }

if [ -x "$cache/source-controller" ] && [ -x "$cache/kustomize-controller" ] && [ -x "$cache/lua-health" ] &&
  [ -f "$cache/crds/.done" ]; then
  log "cached: $cache"
  echo "$cache"
  exit 0
fi
command -v go >/dev/null || { log "go is required (Go 1.26+): https://go.dev/doc/install"; exit 1; }

# mod_dir <module@version>: the module's source folder in the Go module cache (downloads it once).
mod_dir() { go mod download -json "$1" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p'; }

# The controllers' go.mod replaces their api module with ./api, a nested module that the module zip
# leaves out: build from a writable copy with the api module put back, so the build is upstream's.
build_controller() { # name version
  local name="$1" version="$2" start=$SECONDS work
  [ -x "$cache/$name" ] && return 0
  log "building $name v$version (cold: several minutes)"
  work="$(mktemp -d)"
  cp -r "$(mod_dir "github.com/fluxcd/$name@v$version")" "$work/src"
  chmod -R u+w "$work/src"
  rm -rf "$work/src/api"
  cp -r "$(mod_dir "github.com/fluxcd/$name/api@v$version")" "$work/src/api"
  chmod -R u+w "$work/src/api"
  (cd "$work/src" && go build -trimpath -ldflags "-s -w" -o "$cache/$name.tmp" .)
  rm -rf "$work"
  mv "$cache/$name.tmp" "$cache/$name"
  log "built $name v$version in $((SECONDS - start))s"
}

if [ ! -x "$cache/lua-health" ]; then
  start=$SECONDS
  (cd "$root/tools/lua-health" && go build -trimpath -ldflags "-s -w" -o "$cache/lua-health.tmp" .)
  mv "$cache/lua-health.tmp" "$cache/lua-health"
  log "built lua-health (gopher-lua v$LUA_VERSION) in $((SECONDS - start))s"
fi
if [ ! -f "$cache/crds/.done" ]; then
  rm -rf "$cache/crds" && mkdir -p "$cache/crds"
  cp "$(mod_dir "github.com/fluxcd/source-controller@v$SOURCE_VERSION")/config/crd/bases/"*.yaml "$cache/crds/"
  cp "$(mod_dir "github.com/fluxcd/kustomize-controller@v$KUSTOMIZE_VERSION")/config/crd/bases/"*.yaml "$cache/crds/"
  chmod u+w "$cache/crds/"*.yaml
  touch "$cache/crds/.done"
fi
build_controller source-controller "$SOURCE_VERSION"
build_controller kustomize-controller "$KUSTOMIZE_VERSION"
echo "$cache"
