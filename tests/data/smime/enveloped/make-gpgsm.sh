#!/bin/sh
# Regenerates the gpgsm 2.2.40 fixtures (run after make.sh: they are encrypted to rsa1).
# gpgsm output is BER: indefinite lengths and a chunked encryptedContent.
# gpgsm 2.2 cannot encrypt to EC keys (ksba_cms_set_enc_val: Invalid S-expression) and has no
# --always-trust: the self-signed certificate goes into trustlist.txt with the "relax" flag.
set -eu
GNUPGHOME=$(mktemp -d); export GNUPGHOME
gpgsm --batch --import rsa1.pem
fpr=$(openssl x509 -in rsa1.pem -noout -fingerprint -sha1 | cut -d= -f2 | tr -d :)
echo "$fpr S relax" > "$GNUPGHOME/trustlist.txt"
gpgconf --reload gpg-agent 2>/dev/null || true
G="gpgsm --batch --yes --disable-crl-checks --disable-policy-checks -r 0x$fpr"
$G --output gpgsm-rsa-aes128.p7m --encrypt content.txt           # gpgsm's default cipher
$G --cipher-algo AES256 --output gpgsm-rsa-aes256.p7m --encrypt content.txt
gpgconf --kill gpg-agent 2>/dev/null || true
rm -rf "$GNUPGHOME"
