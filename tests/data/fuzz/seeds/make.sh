#!/bin/sh
# Seed messages for the parse_mime and parse_smime_message fuzz targets: a MIME tree with the
# constructs the parser has paths for, and that tree signed and encrypted with openssl for the
# fixed fuzz key (../key.der, ../cert.pem), so the fuzzer starts inside real decryption and
# verification. Run: cd tests/data/fuzz/seeds && sh make.sh
set -e
printf 'From: Fuzz <fuzz@example.com>\r\nTo: <to@example.org>\r\nSubject: =?utf-8?q?Gr=C3=BC=C3=9Fe?= seeds\r\nDate: Mon, 23 Nov 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="outer"\r\n\r\npreamble\r\n--outer\r\nContent-Type: multipart/alternative; boundary=inner\r\n\r\n--inner\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\ncaf=C3=A9 soft=\r\nbreak  =20\r\n--inner\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n<p>Gr\303\274\303\237e</p>\r\n--inner--\r\n--outer\r\nContent-Type: application/octet-stream; name*0*=utf-8'"''"'%%E2%%82%%AC; name*1=".bin"\r\nContent-Disposition: attachment; filename="a b.bin"\r\nContent-Transfer-Encoding: base64\r\n\r\nAAECAwQFBgcICQ==\r\n--outer\r\nContent-Type: message/rfc822\r\n\r\nFrom: Inner <inner@example.net>\r\nSubject: inner\r\nContent-Type: text/plain\r\n\r\ninner body\r\n--outer\r\nContent-Type: application/x-raw\r\nContent-Transfer-Encoding: binary\r\n\r\n\000\001\r\r\n\n\377\r\n--outer--\r\nepilogue\r\n' > tree.eml
printf 'From: fuzz@example.com\nSubject: lf only\nContent-Type: text/plain\n\nline\n' > lf.eml
openssl smime -sign -in tree.eml -signer ../cert.pem -inkey ../key.der -keyform DER -out signed-detached.eml
openssl smime -sign -nodetach -in tree.eml -signer ../cert.pem -inkey ../key.der -keyform DER -out signed-opaque.eml
openssl smime -encrypt -aes256 -in tree.eml -out enveloped.eml ../cert.pem
openssl cms -encrypt -aes-256-gcm -in tree.eml -out authenveloped.eml ../cert.pem
openssl smime -encrypt -aes128 -in signed-detached.eml -out signed-enveloped.eml ../cert.pem
openssl cms -encrypt -stream -aes256 -in tree.eml -out enveloped-stream.eml ../cert.pem
