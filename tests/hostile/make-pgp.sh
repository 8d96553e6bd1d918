#!/bin/sh
# OpenPGP files of the hostile corpus (see NOTES.md), made with GnuPG for the test key
# tests/data/pgp/rsa.pub.asc (whose secret half is rsa.sec.asc).
set -eu
cd "$(dirname "$0")"
GNUPGHOME=$(mktemp -d)
export GNUPGHOME
trap 'gpgconf --kill gpg-agent; rm -rf "$GNUPGHOME"' EXIT
gpg --batch --quiet --import ../data/pgp/rsa.pub.asc
# Compression bomb: 64 MiB of zeros, zlib level 9, inside SEIPD with MDC (about 65 KB).
head -c 67108864 /dev/zero |
    gpg --batch --yes --trust-model always --compress-algo zlib -z 9 \
        -r "<rsa@example.org>" --encrypt -o pgp-bomb-64m.pgp
