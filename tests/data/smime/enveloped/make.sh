#!/bin/sh
# Regenerates the EnvelopedData / AuthEnvelopedData fixtures with openssl 3.0.
# Run from this directory: sh make.sh
set -eu
mk() { # name subject usage newkey-args...
  name=$1 subj=$2 usage=$3; shift 3
  openssl req -x509 -nodes -newkey "$@" -keyout "$name.key" -out "$name.pem" -days 36500 \
    -subj "$subj" -addext "keyUsage=critical,$usage" -addext "subjectKeyIdentifier=hash"
  openssl pkcs8 -topk8 -nocrypt -in "$name.key" -outform DER -out "$name.pk8.der"
  openssl x509 -in "$name.pem" -outform DER -out "$name.crt.der"
  rm "$name.key"
}
mk rsa1 "/CN=Alice RSA/emailAddress=alice@example.org" keyEncipherment,digitalSignature rsa:2048
mk rsa2 "/CN=Bob RSA/emailAddress=bob@example.org" keyEncipherment,digitalSignature rsa:2048
mk p256 "/CN=Carol P-256/emailAddress=carol@example.org" keyAgreement,digitalSignature ec -pkeyopt ec_paramgen_curve:P-256
mk p384 "/CN=Dave P-384/emailAddress=dave@example.org" keyAgreement,digitalSignature ec -pkeyopt ec_paramgen_curve:P-384

# The content: 1000 bytes of MIME-like text (CRLF), not a multiple of the block size.
{ printf 'Content-Type: text/plain; charset=us-ascii\r\n\r\n'
  i=0; while [ $i -lt 30 ]; do printf 'Line %02d of the enveloped test message.\r\n' $i; i=$((i+1)); done
} | head -c 1000 > content.txt

enc() { # output cipher-and-options... -- recipients: last args
  out=$1; shift
  openssl cms -encrypt -binary -in content.txt -outform DER -out "$out" "$@"
}
enc rsa-aes256.der -aes256 rsa1.pem
enc rsa-aes128.der -aes128 rsa1.pem
enc rsa-aes192.der -aes192 rsa1.pem
enc rsa-des3.der -des3 rsa1.pem
enc rsa-gcm.der -aes-256-gcm rsa1.pem
enc rsa-gcm128.der -aes-128-gcm rsa1.pem
enc rsa-oaep-sha1.der -aes256 -recip rsa1.pem -keyopt rsa_padding_mode:oaep
enc rsa-oaep-sha256.der -aes256 -recip rsa1.pem -keyopt rsa_padding_mode:oaep -keyopt rsa_oaep_md:sha256
enc rsa-stream.ber -stream -aes256 rsa1.pem
enc p256-aes256.der -aes256 p256.pem
enc p256-aes128-sha256kdf.der -aes128 -recip p256.pem -keyopt ecdh_kdf_md:sha256
enc p384-aes256.der -aes256 p384.pem
enc p256-aes192.der -aes192 p256.pem  # aes192-wrap
enc p256-gcm.der -aes-256-gcm p256.pem
enc p384-gcm.der -aes-256-gcm p384.pem
enc multi.der -aes256 rsa1.pem rsa2.pem p256.pem p384.pem
# SKI recipient identifier (KTRI version 2).
enc rsa-ski.der -aes256 -keyid rsa1.pem
