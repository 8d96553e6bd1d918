#!/usr/bin/env python3
"""Re-encode an OpenSSL-made PKCS#12 file into shapes OpenSSL 3.0 cannot write, for tests.

Usage (run in tests/data/keys):
  p12rewrite.py pbmac1 IN.p12 PASSWORD OUT.p12
      Replace the MAC by a PBMAC1 MAC (RFC 9579: PBKDF2-HMAC-SHA256, 2048 iterations,
      keyLength 32, salt "sealgate", HMAC-SHA256).
  p12rewrite.py segmented IN.p12 PASSWORD OUT.p12
      Definite lengths throughout, but every encryptedContent [0] IMPLICIT OCTET STRING is
      written in the constructed form (segments of 64 bytes), as Windows does; the MAC
      (the file's own digest and iteration count) is recomputed.
  p12rewrite.py remac-bytes IN.p12 PASSWORD OUT.p12
      Recompute the MAC with the password's UTF-8 bytes taken as BMP code units, as OpenSSL
      before 1.1.0 wrote files with non-ASCII passwords (bags must use PBES2, whose PBKDF2
      takes the same bytes either way).
  p12rewrite.py ber IN.p12 PASSWORD OUT.p12
      As `segmented`, and in addition every SEQUENCE, SET and [n] constructed value uses the
      indefinite length form and every OCTET STRING the constructed form (segments of 64 bytes),
      in the PFX and inside the authSafe and each SafeContents: BER as Java and Windows write it.

Only the Python standard library is used; the PKCS#12 KDF (RFC 7292 Appendix B.2) is written
out here so the MAC can be recomputed. Check the result with `openssl pkcs12 -info` (or, for
PBMAC1, with `cryptography`'s bundled OpenSSL >= 3.4).
"""
import hashlib
import hmac
import sys

SEG = 64


def tlv(data, pos):
    """(tag, constructed, header_len, content_start, content_end) of the DER TLV at pos."""
    tag = data[pos]
    n = data[pos + 1]
    if n < 0x80:
        return tag, tag & 0x20, 2, pos + 2, pos + 2 + n
    k = n & 0x7F
    length = int.from_bytes(data[pos + 2:pos + 2 + k], "big")
    return tag, tag & 0x20, 2 + k, pos + 2 + k, pos + 2 + k + length


def children(data, start, end):
    out = []
    pos = start
    while pos < end:
        t = tlv(data, pos)
        out.append((pos, t))
        pos = t[4]
    return out


def enc_len(n):
    if n < 0x80:
        return bytes([n])
    b = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(b)]) + b


def der(tag, content):
    return bytes([tag]) + enc_len(len(content)) + content


def oid(dotted):
    parts = [int(x) for x in dotted.split(".")]
    body = bytes([40 * parts[0] + parts[1]])
    for p in parts[2:]:
        chunk = [p & 0x7F]
        p >>= 7
        while p:
            chunk.append(0x80 | (p & 0x7F))
            p >>= 7
        body += bytes(reversed(chunk))
    return der(0x06, body)


def integer(n):
    b = n.to_bytes((n.bit_length() + 8) // 8 or 1, "big")
    return der(0x02, b)


def pkcs12_kdf(hname, password, salt, ident, iterations, n, bytes_as_units=False):
    h = hashlib.new(hname)
    u, v = h.digest_size, h.block_size
    if bytes_as_units:
        # OpenSSL < 1.1.0: every UTF-8 byte taken as one BMP code unit.
        pw = b"".join(b"\0" + bytes([c]) for c in password.encode()) + b"\0\0"
    else:
        pw = password.encode("utf-16-be") + b"\0\0"

    def stretch(s):
        # Appendix B.2 steps 2-3: repeat to the next multiple of v bytes.
        n = v * ((len(s) + v - 1) // v)
        return (s * (n // len(s) + 1))[:n] if s else b""

    i = bytearray(stretch(salt) + stretch(pw))
    out = b""
    while True:
        a = hashlib.new(hname, bytes([ident]) * v + bytes(i)).digest()
        for _ in range(1, iterations):
            a = hashlib.new(hname, a).digest()
        out += a
        if len(out) >= n:
            return out[:n]
        b = (a * (v // u + 1))[:v]
        bi = int.from_bytes(b, "big")
        for j in range(0, len(i), v):
            x = (int.from_bytes(i[j:j + v], "big") + bi + 1) % (1 << (8 * v))
            i[j:j + v] = x.to_bytes(v, "big")


def octets_constructed(content, tag=0x24):
    body = b"".join(der(0x04, content[k:k + SEG]) for k in range(0, len(content), SEG)) or der(0x04, b"")
    return der(tag, body)


def to_ber(data, start, end, inner_octets=None):
    """Re-encode the TLVs in data[start:end] with indefinite lengths and constructed strings.

    inner_octets(content) may re-encode the payload of an OCTET STRING first."""
    out = b""
    for pos, (tag, cons, _, cs, ce) in children(data, start, end):
        content = data[cs:ce]
        if tag == 0x04:
            payload = inner_octets(content) if inner_octets else content
            body = b"".join(der(0x04, payload[k:k + SEG]) for k in range(0, len(payload), SEG))
            out += b"\x24\x80" + body + b"\x00\x00"
        elif cons:
            out += bytes([tag]) + b"\x80" + to_ber(data, cs, ce, inner_octets) + b"\x00\x00"
        else:
            out += data[pos:ce]
    return out


def is_safe_contents(payload):
    """True if payload is DER SEQUENCE OF SafeBag (bagId under pkcs-12 bagtypes)."""
    bag_types = oid("1.2.840.113549.1.12.10.1")[2:]
    try:
        (_, (tag, _, _, cs, ce)) = children(payload, 0, len(payload))[0]
        if tag != 0x30 or ce != len(payload):
            return False
        (_, (t2, _, _, bs, be)) = children(payload, cs, ce)[0]
        (_, (t3, _, _, os_, oe)) = children(payload, bs, be)[0]
        return t2 == 0x30 and t3 == 0x06 and payload[os_:oe].startswith(bag_types)
    except (IndexError, ValueError):
        return False


def segment_encrypted_content(safe_der):
    """AuthenticatedSafe DER -> same, with encryptedData's [0] IMPLICIT content segmented."""
    (_, (_, _, _, cs, ce)) = children(safe_der, 0, len(safe_der))[0]
    out = b""
    for pos, (tag, _, _, ics, ice) in children(safe_der, cs, ce):
        ci = children(safe_der, ics, ice)
        ctype = safe_der[ci[0][0]:ci[0][1][4]]
        if ctype == oid("1.2.840.113549.1.7.6"):
            # [0] EXPLICIT EncryptedData SEQUENCE { version, EncryptedContentInfo }
            (_, (_, _, _, e0s, e0e)) = ci[1]
            (_, (_, _, _, eds, ede)) = children(safe_der, e0s, e0e)[0]
            ver, eci = children(safe_der, eds, ede)[:2]
            (_, (_, _, _, ecs, ece)) = eci
            parts = children(safe_der, ecs, ece)
            ctype2 = safe_der[parts[0][0]:parts[0][1][4]]
            alg = safe_der[parts[1][0]:parts[1][1][4]]
            (_, (_, _, _, c0s, c0e)) = parts[2]
            new_eci = der(0x30, ctype2 + alg + octets_constructed(safe_der[c0s:c0e], 0xA0))
            new_ed = der(0x30, safe_der[ver[0]:ver[1][4]] + new_eci)
            out += der(0x30, ctype + der(0xA0, new_ed))
        else:
            out += safe_der[pos:ice]
    return der(0x30, out)


def main():
    mode, src, password, dst = sys.argv[1:5]
    data = open(src, "rb").read()
    (_, (_, _, _, ps, pe)) = children(data, 0, len(data))[0]
    version, auth_safe, mac_data = children(data, ps, pe)
    # authSafe ContentInfo { data, [0] { OCTET STRING } }
    (_, (_, _, _, acs, ace)) = auth_safe
    ctype, explicit = children(data, acs, ace)
    (_, (_, _, _, x0s, x0e)) = explicit
    (_, (_, _, _, os_s, os_e)) = children(data, x0s, x0e)[0]
    content = data[os_s:os_e]
    ver_der = data[version[0]:version[1][4]]
    data_oid = oid("1.2.840.113549.1.7.1")

    if mode == "pbmac1":
        salt, iters, klen = b"sealgate", 2048, 32
        key = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iters, klen)
        tag = hmac.new(key, content, "sha256").digest()
        hmac_sha256 = der(0x30, oid("1.2.840.113549.2.9") + b"\x05\x00")
        pbkdf2 = der(0x30, oid("1.2.840.113549.1.5.12") + der(0x30, der(0x04, salt) + integer(iters) + integer(klen) + hmac_sha256))
        pbmac1 = der(0x30, oid("1.2.840.113549.1.5.14") + der(0x30, pbkdf2 + hmac_sha256))
        mac = der(0x30, der(0x30, pbmac1 + der(0x04, tag)) + der(0x04, b"NOT USED") + integer(1))
        out = der(0x30, ver_der + data[auth_safe[0]:auth_safe[1][4]] + mac)
    else:
        new_content = content if mode == "remac-bytes" else segment_encrypted_content(content)
        # MacData { DigestInfo { AlgId { digest }, digest }, macSalt, iterations }
        (_, (_, _, _, ms, me)) = mac_data
        di, salt_tlv, iter_tlv = children(data, ms, me)
        (_, (_, _, _, ds, de)) = di
        alg_tlv = children(data, ds, de)[0]
        alg_der = data[alg_tlv[0]:alg_tlv[1][4]]
        (_, (_, _, _, as_, ae)) = alg_tlv
        digest_oid = data[children(data, as_, ae)[0][0]:children(data, as_, ae)[0][1][4]]
        hname = {oid("1.3.14.3.2.26"): "sha1", oid("2.16.840.1.101.3.4.2.1"): "sha256"}[digest_oid]
        salt = data[salt_tlv[1][3]:salt_tlv[1][4]]
        iters = int.from_bytes(data[iter_tlv[1][3]:iter_tlv[1][4]], "big")
        key = pkcs12_kdf(hname, password, salt, 3, iters, hashlib.new(hname).digest_size,
                         bytes_as_units=(mode == "remac-bytes"))
        tag = hmac.new(key, new_content, hname).digest()
        mac = der(0x30, der(0x30, alg_der + der(0x04, tag)) + der(0x04, salt) + integer(iters))
        if mode in ("segmented", "remac-bytes"):
            auth = der(0x30, data_oid + der(0xA0, der(0x04, new_content)))
            out = der(0x30, ver_der + auth + mac)
        elif mode == "ber":
            # BER inside the authSafe too: the SafeContents of `data` ContentInfos are the
            # payloads of OCTET STRINGs nested in it.
            def inner(payload):
                if is_safe_contents(payload):
                    return to_ber(payload, 0, len(payload))
                return payload

            ber_content = to_ber(new_content, 0, len(new_content), inner)
            key_tag = hmac.new(key, ber_content, hname).digest()
            mac = der(0x30, der(0x30, alg_der + der(0x04, key_tag)) + der(0x04, salt) + integer(iters))
            whole = der(0x30, ver_der + der(0x30, data_oid + der(0xA0, der(0x04, ber_content))) + mac)
            out = to_ber(whole, 0, len(whole))
        else:
            raise SystemExit("unknown mode " + mode)
    open(dst, "wb").write(out)


if __name__ == "__main__":
    main()
