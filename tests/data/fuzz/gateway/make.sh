#!/bin/sh
# Fixed S/MIME material and seed messages for the process_inbound fuzz target (the whole
# gateway). The fixed fuzz key (../key.der) gets a second certificate, an end-entity one
# (../cert.der is self-signed with CA:TRUE, and the gateway never decrypts with a CA's key),
# issued by a fuzz CA that the target's store trusts. A partner (partner@partner.example,
# P-256, its key kept only to make seeds) signs and encrypts the seeds to that certificate.
# Run: cd tests/data/fuzz/gateway && sh make.sh
set -e
cat > ext.cnf <<'CNF'
[fuzz]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = emailProtection
subjectAltName = email:fuzz@example.com
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[partner]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyAgreement
extendedKeyUsage = emailProtection
subjectAltName = email:partner@partner.example
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
CNF
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key.pem \
  -out ca.pem -subj "/CN=Sealgate Fuzz CA" -days 36500 \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
openssl pkey -in ../key.der -inform DER -out fuzz.key.pem
openssl req -new -key fuzz.key.pem -subj "/CN=Sealgate Fuzz/emailAddress=fuzz@example.com" -out fuzz.csr
openssl x509 -req -in fuzz.csr -CA ca.pem -CAkey ca.key.pem -set_serial 2 -days 36500 \
  -extfile ext.cnf -extensions fuzz -outform DER -out fuzz.der
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout partner.key.pem \
  -subj "/CN=Partner/emailAddress=partner@partner.example" -out partner.csr
openssl x509 -req -in partner.csr -CA ca.pem -CAkey ca.key.pem -set_serial 3 -days 36500 \
  -extfile ext.cnf -extensions partner -out partner.pem
openssl x509 -in ca.pem -outform DER -out ca.der
printf 'From: Partner <partner@partner.example>\r\nTo: <fuzz@example.com>\r\nSubject: confidential figures\r\nMessage-ID: <seed-1@partner.example>\r\nSealgate-Signature: valid; smime; signer=ceo@example.com\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b1"\r\n\r\n--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nCard 4111 1111 1111 1111\r\n--b1\r\nContent-Type: application/octet-stream; name="tool.exe"\r\nContent-Disposition: attachment; filename="tool.exe"\r\nContent-Transfer-Encoding: base64\r\n\r\nTVqQAAMAAAAEAAAA\r\n--b1--\r\n' > plain.eml
openssl smime -sign -in plain.eml -signer partner.pem -inkey partner.key.pem -out seed-signed-detached.eml
openssl smime -sign -nodetach -in plain.eml -signer partner.pem -inkey partner.key.pem -out seed-signed-opaque.eml
openssl x509 -in fuzz.der -inform DER -out fuzz.pem
openssl smime -encrypt -aes256 -in plain.eml -out seed-enveloped.eml fuzz.pem
openssl cms -encrypt -aes-256-gcm -in plain.eml -out seed-authenveloped.eml fuzz.pem
openssl smime -encrypt -aes128 -in seed-signed-detached.eml -out seed-signed-enveloped.eml fuzz.pem
rm -f fuzz.csr partner.csr fuzz.key.pem fuzz.pem ext.cnf ca.key.pem partner.key.pem
