#!/usr/bin/env bash
# Builds the real peers the interop tests talk to, into a cache outside the
# clone that later runs reuse:
#   - SPIRE v1.13.3 spire-server and spire-agent (a program, built with cgo);
#   - the go-spiffe v2.9.0 peer programs kept in examples/interop/go-spiffe.
#
# Usage:  eval "$(examples/interop/build.sh)"
# It prints `export MTLS_INTEROP_*=...` lines on stdout (progress goes to
# stderr); the tests find the binaries through those variables.
#
# Needs Go (1.24 or newer; 1.26 on this project's machines; without one it
# fetches go1.26.8 from the module proxy), gcc, curl and python3 (only for
# that fetch) and the Go module proxy. The first run takes minutes; later runs
# are a cache hit.
set -euo pipefail

SPIRE_VERSION=v1.13.3
GO_SPIFFE_VERSION=v2.9.0
here="$(cd "$(dirname "$0")" && pwd)"
cache="${MTLS_INTEROP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mtls-interop}"

log() { printf 'interop: %s\n' "$*" >&2; }

command -v go >/dev/null 2>&1 || {
  for candidate in /usr/local/go/bin/go /usr/lib/go/bin/go; do
    if [ -x "$candidate" ]; then PATH="$(dirname "$candidate"):$PATH"; break; fi
  done
}
GO_TOOLCHAIN=go1.26.8
if ! command -v go >/dev/null 2>&1; then
  # No Go on this machine: take the release toolchain from the Go module
  # proxy (golang.org/toolchain, the same zip `GOTOOLCHAIN` downloads).
  toolchain="$cache/toolchain-$GO_TOOLCHAIN"
  if [ ! -x "$toolchain/go/bin/go" ]; then
    log "no go on PATH: fetching $GO_TOOLCHAIN from the Go module proxy"
    mkdir -p "$toolchain"
    proxy="${GOPROXY:-https://proxy.golang.org}"; proxy="${proxy%%,*}"
    curl -fsSL -o "$toolchain/go.zip" \
      "$proxy/golang.org/toolchain/@v/v0.0.1-$GO_TOOLCHAIN.linux-amd64.zip"
    python3 -m zipfile -e "$toolchain/go.zip" "$toolchain/unpacked"
    rm -rf "$toolchain/go"
    mv "$toolchain/unpacked/golang.org/toolchain@v0.0.1-$GO_TOOLCHAIN.linux-amd64" "$toolchain/go"
    chmod +x "$toolchain"/go/bin/* "$toolchain"/go/pkg/tool/*/*
    rm -rf "$toolchain/unpacked" "$toolchain/go.zip"
  fi
  PATH="$toolchain/go/bin:$PATH"
fi
command -v go >/dev/null 2>&1 || { log "go not found: install Go 1.24+"; exit 1; }
command -v gcc >/dev/null 2>&1 || { log "gcc not found: SPIRE needs cgo (apt-get install gcc)"; exit 1; }
export CGO_ENABLED=1
# The builds below must not pick up a workspace or vendor setting of the caller.
export GOWORK=off GOFLAGS=-buildvcs=false

# --- SPIRE -----------------------------------------------------------------
spire_dir="$cache/spire-$SPIRE_VERSION"
if [ -x "$spire_dir/bin/spire-server" ] && [ -x "$spire_dir/bin/spire-agent" ]; then
  log "SPIRE $SPIRE_VERSION: cached in $spire_dir"
else
  log "SPIRE $SPIRE_VERSION: building into $spire_dir (minutes the first time)"
  scratch="$(mktemp -d)"
  trap 'rm -rf "$scratch"' EXIT
  (
    cd "$scratch"
    go mod init mtls.invalid/spire-build >/dev/null 2>&1
    # SPIRE is a program, not a library: the proxy serves it as a tool
    # dependency of a scratch module (a bare `go install ...@version` is refused).
    go get -tool "github.com/spiffe/spire/cmd/spire-server@$SPIRE_VERSION" >&2
    go get -tool "github.com/spiffe/spire/cmd/spire-agent@$SPIRE_VERSION" >&2
    mkdir -p "$spire_dir/bin.tmp"
    GOBIN="$spire_dir/bin.tmp" go install github.com/spiffe/spire/cmd/spire-server github.com/spiffe/spire/cmd/spire-agent >&2
  )
  rm -rf "$spire_dir/bin"
  mv "$spire_dir/bin.tmp" "$spire_dir/bin"
fi

# --- go-spiffe peers -------------------------------------------------------
# Rebuilt when the sources change: the cache key is a hash of the module.
src="$here/go-spiffe"
hash="$( (cd "$src" && cat go.mod go.sum $(find . -name '*.go' | sort)) | sha256sum | cut -c1-16)"
peers_dir="$cache/go-spiffe-$GO_SPIFFE_VERSION-$hash"
if [ -x "$peers_dir/bin/spiffe-peer" ]; then
  log "go-spiffe peers: cached in $peers_dir"
else
  log "go-spiffe peers ($GO_SPIFFE_VERSION): building into $peers_dir"
  mkdir -p "$peers_dir/bin.tmp"
  (cd "$src" && GOBIN="$peers_dir/bin.tmp" go install ./... >&2)
  rm -rf "$peers_dir/bin"
  mv "$peers_dir/bin.tmp" "$peers_dir/bin"
fi

# The Go used here, for other builds that need one (the FIPS module).
echo "export MTLS_INTEROP_GO_BIN='$(dirname "$(command -v go)")'"
echo "export MTLS_INTEROP_SPIRE_SERVER='$spire_dir/bin/spire-server'"
echo "export MTLS_INTEROP_SPIRE_AGENT='$spire_dir/bin/spire-agent'"
echo "export MTLS_INTEROP_GO_SPIFFE_PEER='$peers_dir/bin/spiffe-peer'"
