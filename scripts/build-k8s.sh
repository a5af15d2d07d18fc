#!/usr/bin/env bash
# Builds the real Kubernetes parts the tests and the demo run (kube-apiserver, kube-controller-manager,
# kubectl, etcd, helm) from their Go modules into a git-ignored cache keyed by the versions.
# A second run with the binaries present returns at once. Prints the bin folder on stdout's last line.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
KUBE_VERSION=1.37.2
ETCD_VERSION=3.6.16
HELM_VERSION=4.3.1
cache="${OIDC_OPERATOR_BIN_CACHE:-$root/.cache/bin}/k8s-${KUBE_VERSION}_etcd-${ETCD_VERSION}_helm-${HELM_VERSION}"
mkdir -p "$cache"
log() { echo "[build-k8s] $*" >&2; }

need=()
for b in kube-apiserver kube-controller-manager kubectl etcd helm; do
  [ -x "$cache/$b" ] || need+=("$b")
done
if [ ${#need[@]} -eq 0 ]; then
  log "cached: $cache"
  echo "$cache"
  exit 0
fi
command -v go >/dev/null || { log "go is required (Go 1.26+): https://go.dev/doc/install"; exit 1; }

minor="${KUBE_VERSION#*.}"; minor="${minor%%.*}"
ver_flags=""
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ver_flags+=" -X ${pkg}.gitVersion=v${KUBE_VERSION} -X ${pkg}.gitMajor=1 -X ${pkg}.gitMinor=${minor}"
  ver_flags+=" -X ${pkg}.gitTreeState=clean"
done

build_k8s=()
for b in kube-apiserver kube-controller-manager kubectl; do
  [ -x "$cache/$b" ] || build_k8s+=("$b")
done
for b in "${build_k8s[@]}"; do
  start=$SECONDS
  log "building $b v${KUBE_VERSION} (cold: several minutes)"
  (cd "$root/tools/k8s" && go build -trimpath -ldflags "-s -w${ver_flags}" -o "$cache/$b.tmp" "k8s.io/kubernetes/cmd/$b")
  mv "$cache/$b.tmp" "$cache/$b"
  log "built $b in $((SECONDS - start))s"
done
if [ ! -x "$cache/etcd" ]; then
  start=$SECONDS
  log "building etcd v${ETCD_VERSION}"
  (cd "$root/tools/etcd" && go build -trimpath -ldflags "-s -w" -o "$cache/etcd.tmp" .)
  mv "$cache/etcd.tmp" "$cache/etcd"
  log "built etcd in $((SECONDS - start))s"
fi
if [ ! -x "$cache/helm" ]; then
  start=$SECONDS
  log "building helm v${HELM_VERSION}"
  tmp="$(mktemp -d)"
  GOBIN="$tmp" go install -trimpath -ldflags "-s -w" "helm.sh/helm/v4/cmd/helm@v${HELM_VERSION}"
  mv "$tmp/helm" "$cache/helm"; rmdir "$tmp"
  log "built helm in $((SECONDS - start))s"
fi
echo "$cache"
