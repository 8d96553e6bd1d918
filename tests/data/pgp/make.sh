#!/bin/sh
# Makes the OpenPGP fixtures with GnuPG 2.2.40 (run from tests/data/pgp). See ../NOTES.md.
set -eu
export GNUPGHOME=$(mktemp -d)
G() { gpg --batch --yes --pinentry-mode loopback --passphrase '' "$@"; }
fpr() { gpg --with-colons --list-keys "$1" | awk -F: '/^fpr/{print $10; exit}'; }
G --quick-gen-key 'RSA Test <rsa@example.org>' rsa3072 sign never
G --quick-add-key "$(fpr '<rsa@example.org>')" rsa3072 encr never
G --quick-gen-key 'Ed Test <ed@example.org>' future-default default never
G --quick-gen-key 'Sign Only <signonly@example.org>' ed25519 sign never
G --quick-gen-key 'Revoked Test <revoked@example.org>' future-default default never
gpg --batch --yes --pinentry-mode loopback --passphrase 'correct horse' \
    --quick-gen-key 'Locked Test <locked@example.org>' future-default default never
G --quick-gen-key 'Expired Test <expired@example.org>' future-default default seconds=1
# Revoke with the revocation certificate gpg made at generation (strip the ':' guard).
sed 's/^:-----/-----/' "$GNUPGHOME/openpgp-revocs.d/$(fpr "<revoked@example.org>").rev" | gpg --batch --import
for k in rsa ed signonly revoked expired; do
    gpg --armor --export "<$k@example.org>" > "$k.pub.asc"
    G --armor --export-secret-keys "<$k@example.org>" > "$k.sec.asc"
done
gpg --armor --export "<locked@example.org>" > locked.pub.asc
gpg --batch --pinentry-mode loopback --passphrase 'correct horse' --armor --export-secret-keys "<locked@example.org>" > locked.sec.asc
G --armor --export-secret-subkeys "<rsa@example.org>" > rsa.subkeys.sec.asc  # primary as gnu-dummy stub
gpg --export "<rsa@example.org>" > rsa.pub.pgp               # binary
gpg --armor --export "<rsa@example.org>" "<ed@example.org>" > keyring.pub.asc   # two certs
printf 'Hello from GnuPG.\r\nSecond line.\r\n' > plain.txt
# Encrypted and signed by gpg (sign with ed, encrypt to rsa and ed; and each alone).
G --armor --trust-model always -u "<ed@example.org>" -r "<rsa@example.org>" --encrypt --sign -o gpg-rsa-signed-by-ed.asc plain.txt
G --armor --trust-model always -u "<rsa@example.org>" -r "<ed@example.org>" --encrypt --sign -o gpg-ed-signed-by-rsa.asc plain.txt
G --trust-model always -r "<ed@example.org>" --encrypt -o gpg-ed.pgp plain.txt
# Legacy SED (no MDC, EFAIL): --rfc2440 writes a Symmetrically Encrypted Data packet (tag 9).
G --trust-model always --rfc2440 --cipher-algo AES256 -r "<rsa@example.org>" --encrypt -o gpg-rsa-sed.pgp plain.txt
# Detached and inline signatures.
G -u "<ed@example.org>" --armor --detach-sign -o plain.txt.ed.asc plain.txt
G -u "<rsa@example.org>" --detach-sign -o plain.txt.rsa.sig plain.txt
G -u "<ed@example.org>" --armor --sign -o gpg-inline-signed-by-ed.asc plain.txt
G -u "<ed@example.org>" --clearsign -o gpg-clearsigned-by-ed.asc plain.txt
rm -rf "$GNUPGHOME"

# Sequoia's sq 0.27 (sequoia-openpgp 1.12, Nettle): a Cv25519 key and a signed message to it.
sq key generate --userid '<sq@example.org>' --export sq.sec.asc
sq key extract-cert sq.sec.asc > sq.pub.asc
sq encrypt --recipient-cert sq.pub.asc --signer-key sq.sec.asc plain.txt > sq-signed.asc
