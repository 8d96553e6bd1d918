#!/bin/sh
# Regenerates the SignedData fixtures (OpenSSL 3.0.x). Run from this directory: sh make.sh
set -eu
cat > ext.cnf <<'CNF'
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[leaf]
basicConstraints = CA:FALSE
keyUsage = critical, digitalSignature, nonRepudiation, keyEncipherment
extendedKeyUsage = emailProtection
subjectAltName = email:${ENV::ADDR}
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[wrongusage]
basicConstraints = CA:FALSE
keyUsage = critical, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = email:${ENV::ADDR}
[notca]
basicConstraints = CA:FALSE
keyUsage = critical, digitalSignature, keyCertSign
[ca_pathlen0]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
[ca_nokeycertsign]
basicConstraints = critical, CA:TRUE
keyUsage = critical, digitalSignature
[leaf_critical]
basicConstraints = CA:FALSE
keyUsage = critical, digitalSignature
1.3.6.1.4.1.55555.1 = critical, ASN1:NULL
# `openssl ca` is the only 3.0 command that sets an explicit validity in the past
[ca_past]
dir = ./ca-db
database = $dir/index.txt
serial = $dir/serial
new_certs_dir = $dir
default_md = sha256
policy = policy_any
x509_extensions = leaf
unique_subject = no
[policy_any]
commonName = supplied
emailAddress = optional
CNF
export ADDR=unused@example.com
printf 'Content-Type: text/plain\r\n\r\nHello, signed world.\r\n' > content.txt

# root CA and intermediate (RSA-2048), 20 years
openssl req -x509 -newkey rsa:2048 -nodes -keyout root.key -out root.pem -days 7300 \
  -subj "/CN=Sealgate Test Root" -extensions ca -config ext.cnf -sha256
openssl req -new -newkey rsa:2048 -nodes -keyout int.key -out int.csr -subj "/CN=Sealgate Test Intermediate"
openssl x509 -req -in int.csr -CA root.pem -CAkey root.key -set_serial 0x1001 -days 7300 -sha256 \
  -extfile ext.cnf -extensions ca -out int.pem
rm -f int.csr

# leaf NAME ADDRESS EXTENSIONS SERIAL KEYGEN-ARGS...: key NAME.key (PKCS#8), cert NAME.pem from int
leaf() {
  name=$1; ADDR=$2; export ADDR; ext=$3; serial=$4; shift 4
  openssl genpkey "$@" -out "$name.key"
  openssl req -new -key "$name.key" -out "$name.csr" -subj "/CN=$name/emailAddress=$ADDR"
  openssl x509 -req -in "$name.csr" -CA int.pem -CAkey int.key -days 7300 -sha256 \
    -extfile ext.cnf -extensions "$ext" -set_serial "$serial" -out "$name.pem"
}
leaf alice-rsa alice@example.com leaf 0x2001 -algorithm RSA -pkeyopt rsa_keygen_bits:2048
leaf bob-p256 bob@example.com leaf 0x2002 -algorithm EC -pkeyopt ec_paramgen_curve:P-256
leaf carol-p384 carol@example.com leaf 0x2003 -algorithm EC -pkeyopt ec_paramgen_curve:P-384
leaf erin-wrong erin@example.com wrongusage 0x2004 -algorithm RSA -pkeyopt rsa_keygen_bits:2048
# dave: valid only in January 2020 (expired long before any signing time)
rm -rf ca-db && mkdir ca-db && : > ca-db/index.txt && echo 2005 > ca-db/serial
ADDR=dave@example.com; export ADDR
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out dave-past.key
openssl req -new -key dave-past.key -out dave-past.csr -subj "/CN=dave-past/emailAddress=dave@example.com"
openssl ca -batch -config ext.cnf -name ca_past -cert int.pem -keyfile int.key -in dave-past.csr \
  -startdate 20200101000000Z -enddate 20200201000000Z -notext -out dave-past.pem
rm -rf ca-db *.csr
# mallory: signed by a certificate that is not a CA (basicConstraints CA:FALSE)
ADDR=mallory@example.com; export ADDR
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out notca.key
openssl req -new -key notca.key -out notca.csr -subj "/CN=Not A CA"
openssl x509 -req -in notca.csr -CA int.pem -CAkey int.key -days 7300 -sha256 -extfile ext.cnf \
  -extensions notca -set_serial 0x3001 -out notca.pem
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out mallory.key
openssl req -new -key mallory.key -out mallory.csr -subj "/CN=mallory/emailAddress=mallory@example.com"
openssl x509 -req -in mallory.csr -CA notca.pem -CAkey notca.key -days 7300 -sha256 -extfile ext.cnf \
  -extensions leaf -set_serial 0x3002 -out mallory.pem
rm -f *.csr notca.key

# SignedData. -binary: sign the bytes as they are (no CRLF canonicalisation).
sign() { # OUT SIGNER [extra cms args]
  out=$1; who=$2; shift 2
  openssl cms -sign -binary -md sha256 -in content.txt -signer "$who.pem" -inkey "$who.key" \
    -outform DER -out "$out" "$@"
}
sign rsa-detached.der alice-rsa -certfile int.pem
sign rsa-opaque.der alice-rsa -nodetach -certfile int.pem
sign rsa-noattr.der alice-rsa -noattr -certfile int.pem
sign rsa-nocerts.der alice-rsa -nocerts
sign rsa-pss.der alice-rsa -keyopt rsa_padding_mode:pss -certfile int.pem
sign rsa-pss-digestsalt.der alice-rsa -keyopt rsa_padding_mode:pss -keyopt rsa_pss_saltlen:digest -certfile int.pem
sign p256-detached.der bob-p256 -certfile int.pem
openssl cms -sign -binary -md sha384 -in content.txt -signer carol-p384.pem -inkey carol-p384.key \
  -outform DER -out p384-opaque.der -nodetach -certfile int.pem
sign wrong-usage.der erin-wrong -certfile int.pem
sign expired.der dave-past -certfile int.pem
sign notca.der mallory -certfile int.pem -certfile notca.pem
# two signers (RSA + P-256)
openssl cms -sign -binary -md sha256 -in content.txt -signer alice-rsa.pem -inkey alice-rsa.key \
  -signer bob-p256.pem -inkey bob-p256.key -certfile int.pem -outform DER -out two-signers.der
# BER (indefinite lengths), for when crate::ber lands
openssl cms -sign -binary -md sha256 -in content.txt -signer alice-rsa.pem -inkey alice-rsa.key \
  -nodetach -stream -certfile int.pem -outform DER -out rsa-opaque-ber.der

# Path-building edge cases (certificates only):
# frank <- sub-ca <- pl0-ca (pathlen:0) <- root: pathLenConstraint exceeded
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out pl0-ca.key
openssl req -new -key pl0-ca.key -out pl0-ca.csr -subj "/CN=PathLen0 CA"
openssl x509 -req -in pl0-ca.csr -CA root.pem -CAkey root.key -days 7300 -sha256 -extfile ext.cnf \
  -extensions ca_pathlen0 -set_serial 0x4001 -out pl0-ca.pem
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out sub-ca.key
openssl req -new -key sub-ca.key -out sub-ca.csr -subj "/CN=Sub CA"
openssl x509 -req -in sub-ca.csr -CA pl0-ca.pem -CAkey pl0-ca.key -days 7300 -sha256 -extfile ext.cnf \
  -extensions ca -set_serial 0x4002 -out sub-ca.pem
ADDR=frank@example.com; export ADDR
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out frank.key
openssl req -new -key frank.key -out frank.csr -subj "/CN=frank"
openssl x509 -req -in frank.csr -CA sub-ca.pem -CAkey sub-ca.key -days 7300 -sha256 -extfile ext.cnf \
  -extensions leaf -set_serial 0x4003 -out frank.pem
# grace <- noks-ca (cA but keyUsage without keyCertSign) <- root
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out noks-ca.key
openssl req -new -key noks-ca.key -out noks-ca.csr -subj "/CN=No KeyCertSign CA"
openssl x509 -req -in noks-ca.csr -CA root.pem -CAkey root.key -days 7300 -sha256 -extfile ext.cnf \
  -extensions ca_nokeycertsign -set_serial 0x4004 -out noks-ca.pem
ADDR=grace@example.com; export ADDR
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out grace.key
openssl req -new -key grace.key -out grace.csr -subj "/CN=grace"
openssl x509 -req -in grace.csr -CA noks-ca.pem -CAkey noks-ca.key -days 7300 -sha256 -extfile ext.cnf \
  -extensions leaf -set_serial 0x4005 -out grace.pem
# heidi <- int, with an unknown critical extension
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out heidi.key
openssl req -new -key heidi.key -out heidi.csr -subj "/CN=heidi"
openssl x509 -req -in heidi.csr -CA int.pem -CAkey int.key -days 7300 -sha256 -extfile ext.cnf \
  -extensions leaf_critical -set_serial 0x4006 -out heidi.pem
rm -f *.csr pl0-ca.key sub-ca.key noks-ca.key frank.key grace.key heidi.key
rm -f root.key int.key
# SignerIdentifier subjectKeyIdentifier (SignerInfo version 3)
sign rsa-keyid.der alice-rsa -keyid -certfile int.pem
# a decoy: self-signed, same name as the intermediate, different key
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout /dev/null -out decoy-int.pem \
  -days 7300 -subj "/CN=Sealgate Test Intermediate" -extensions ca -config ext.cnf
# gpgsm 2.2.40 output (BER with indefinite lengths), signed with alice's key
G=$(mktemp -d /tmp/sgg.XXXX); export GNUPGHOME=$G
echo disable-crl-checks > $G/gpgsm.conf
gpgsm --batch --import root.pem int.pem
openssl pkcs12 -export -legacy -certpbe PBE-SHA1-3DES -keypbe PBE-SHA1-3DES -macalg sha1 \
  -in alice-rsa.pem -inkey alice-rsa.key -passout pass:test -out $G/alice.p12
echo test | gpgsm --batch --pinentry-mode loopback --passphrase-fd 0 --import $G/alice.p12
echo test | gpgsm --batch --pinentry-mode loopback --passphrase-fd 0 --disable-crl-checks \
  -u alice@example.com --include-certs -1 --detach-sign --output gpgsm-detached.der content.txt
echo test | gpgsm --batch --pinentry-mode loopback --passphrase-fd 0 --disable-crl-checks \
  -u alice@example.com --include-certs -1 --sign --output gpgsm-opaque.der content.txt
gpgconf --kill all; rm -rf $G
