#!/usr/bin/env bash
# Prints the path of an OpenSSL 3.6 `openssl` binary, building it first if it is missing.
#
# Debian 12 ships OpenSSL 3.0, which has no ML-KEM; tests/tests/pq_interop.rs needs a real
# OpenSSL that speaks CMS KEMRecipientInfo (RFC 9629 / RFC 9936) to check our messages both
# ways. 3.5 has ML-KEM keys but its CMS has no KEMRecipientInfo (`cms -encrypt` to an ML-KEM
# certificate fails with "operation not supported for this keytype", and it finds no
# recipient in ours); 3.6 is the first release with it (crypto/cms/cms_kemri.c).
# The only source reachable from CI is a registry, so the OpenSSL source comes from the
# crates.io crate `openssl-src` (300.6.x bundles the 3.6 tarball), fetched through cargo
# with a throwaway manifest. Only the apps are built, statically, into a cache dir outside
# the clone (reused when the machine keeps it): a few minutes on 2 cores the first time,
# nothing afterwards.
#
# Usage: SEALGATE_OPENSSL_PQ="$(tests/openssl-pq.sh)"
# Env:   SEALGATE_OPENSSL_PQ_CACHE  cache dir (default ${CARGO_TARGET_DIR}-openssl-pq, else
#                                   $HOME/.cache/sealgate-openssl-pq)
# All build output goes to stderr (and build.log in the cache dir); stdout is the path only.
set -euo pipefail

# Pinned: bumping it rebuilds into a new directory.
OPENSSL_SRC_VERSION="300.6.1"

if [ -n "${SEALGATE_OPENSSL_PQ_CACHE:-}" ]; then
    cache="$SEALGATE_OPENSSL_PQ_CACHE"
elif [ -n "${CARGO_TARGET_DIR:-}" ]; then
    cache="${CARGO_TARGET_DIR}-openssl-pq"
else
    cache="$HOME/.cache/sealgate-openssl-pq"
fi
prefix="$cache/$OPENSSL_SRC_VERSION"
bin="$prefix/bin/openssl"

# A finished build leaves a stamp written last, so a half-done build (killed CI run) is
# redone rather than trusted.
if [ -x "$bin" ] && [ -f "$prefix/.complete" ]; then
    echo "$bin"
    exit 0
fi

command -v perl >/dev/null || { echo "openssl-pq.sh: perl is needed by OpenSSL's Configure" >&2; exit 1; }
command -v make >/dev/null || { echo "openssl-pq.sh: make is needed" >&2; exit 1; }
command -v cc >/dev/null || { echo "openssl-pq.sh: a C compiler (cc) is needed" >&2; exit 1; }

mkdir -p "$cache"
work="$(mktemp -d "$cache/build.XXXXXX")"
trap 'rm -rf "$work"' EXIT

# Fetch the crate through cargo (no `cargo download`): a manifest that depends on it exactly.
mkdir -p "$work/fetch/src"
cat >"$work/fetch/Cargo.toml" <<EOF
[package]
name = "sealgate-openssl-pq-fetch"
version = "0.0.0"
edition = "2021"
publish = false

[dependencies]
openssl-src = "=$OPENSSL_SRC_VERSION"

[workspace]
EOF
: >"$work/fetch/src/lib.rs"
echo "openssl-pq.sh: fetching openssl-src $OPENSSL_SRC_VERSION" >&2
cargo fetch --manifest-path "$work/fetch/Cargo.toml" >&2
manifest="$(cargo metadata --format-version 1 --manifest-path "$work/fetch/Cargo.toml" |
    python3 -c 'import json, sys
d = json.load(sys.stdin)
print(next(p["manifest_path"] for p in d["packages"] if p["name"] == "openssl-src"))')"
src="$(dirname "$manifest")/openssl"
[ -x "$src/Configure" ] || { echo "openssl-pq.sh: no OpenSSL source at $src" >&2; exit 1; }

# Build out of tree from a copy: the registry source is shared and must stay pristine.
cp -R "$src" "$work/openssl"
log="$cache/build.log"
echo "openssl-pq.sh: building OpenSSL from openssl-src $OPENSSL_SRC_VERSION into $prefix (log: $log)" >&2
start=$SECONDS
(
    cd "$work/openssl"
    # Static apps only, without what the tests never touch (docs, tests, shared libraries,
    # engines, legacy and national ciphers, QUIC/DTLS, CMP, CT, TS, SLH-DSA, LMS), to keep the
    # first CI run short. ML-KEM, ML-DSA, RSA, EC, AES(-GCM/-wrap), HKDF and CMS stay.
    ./Configure --prefix="$prefix" --openssldir="$prefix/ssl" --libdir=lib \
        no-docs no-tests no-shared no-module no-engine no-dso no-legacy no-ssl3 no-comp \
        no-aria no-bf no-camellia no-cast no-cmp no-ct no-dtls no-gost no-idea no-md4 \
        no-mdc2 no-ocb no-quic no-rc2 no-rc4 no-rmd160 no-seed no-siphash no-siv no-slh-dsa \
        no-sm2 no-sm3 no-sm4 no-srp no-srtp no-ts no-whirlpool no-argon2 no-scrypt no-lms \
        >"$log" 2>&1
    make -j"${SEALGATE_OPENSSL_PQ_JOBS:-2}" build_programs >>"$log" 2>&1
    # No openssl.cnf: openssl-src leaves it out of the crate, and without one the default
    # provider (ML-KEM included) is loaded anyway.
    mkdir -p "$prefix/bin"
    cp apps/openssl "$prefix/bin/openssl"
) || { echo "openssl-pq.sh: build failed, last lines of $log:" >&2; tail -30 "$log" >&2; exit 1; }
"$bin" version >&2
touch "$prefix/.complete"
echo "openssl-pq.sh: built in $((SECONDS - start)) s" >&2
echo "$bin"
