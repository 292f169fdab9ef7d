#!/usr/bin/env bash
# scripts/install-deps.sh - installs every Debian 12 package sr2fhir needs to build, test,
# fuzz and benchmark (see "Dependencies" in README.md for why each is there).
set -euo pipefail
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends \
    build-essential clang libclang-rt-14-dev \
    zlib1g-dev libyajl-dev libjson-c-dev libcurl4-openssl-dev libsqlite3-dev libmicrohttpd-dev libgnutls28-dev libssl-dev ca-certificates openssl curl \
    dcmtk python3 python3-pydicom \
    hyperfine time pkg-config man-db debhelper lintian \
    abigail-tools >/dev/null
# node and npm run ../shared/tools (the guide's validator, the FHIRcast hub of test_cast, the FHIR server of the send
# tests); machines that already have a Node.js keep theirs
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    $SUDO apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi
# the DICOM peers of the gateway tests (Orthanc with DICOMweb, DCMTK), when ../shared is
# beside the checkout: its own installer, idempotent
peers="$(cd "$(dirname "$0")/.." && pwd)/../shared/tools/dicom-peers/dicom-peers.sh"
if [ -x "$peers" ]; then
    $SUDO "$peers" install >/dev/null
fi
echo "install-deps: all packages present"
