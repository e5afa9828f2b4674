#!/bin/sh
# Release build of gatehouse: a static binary (no cgo, no dynamic loader),
# reproducible (-trimpath), with the version and commit stamped.
# Used by the Dockerfile and by the tests of cmd/gatehouse.
#   VERSION  version to stamp (default: dev)
#   COMMIT   commit to stamp (default: the build's VCS information, if any)
#   OUT      output file (default: ./gatehouse)
set -eu
cd "$(dirname "$0")/.."
CGO_ENABLED=0 exec go build -trimpath \
  -ldflags "-s -w -X main.version=${VERSION:-dev} -X main.commit=${COMMIT:-}" \
  -o "${OUT:-gatehouse}" ./cmd/gatehouse
