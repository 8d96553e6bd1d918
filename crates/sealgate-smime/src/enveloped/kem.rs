//! KEMRecipientInfo (RFC 9629) for ML-KEM-512, ML-KEM-768 and ML-KEM-1024 recipients
//! (RFC 9936).
//!
//! The KEMRecipientInfo travels in an `OtherRecipientInfo` with `oriType` id-ori-kem. Written
//! here: the profile RFC 9936 §3 sets for each parameter set, KDF HKDF with SHA-256
//! (id-alg-hkdf-with-sha256, parameters absent, empty salt) and `wrap` id-aes128-wrap with
//! `kekLength` 16 for ML-KEM-512, id-aes256-wrap with `kekLength` 32 for ML-KEM-768 and -1024.
//! Read: HKDF with SHA-256, SHA-384 or SHA-512 (RFC 8619; OpenSSL 3.6 writes the latter two
//! with `cms -recip_kdf`) and any of id-aes128-wrap, id-aes192-wrap and id-aes256-wrap, as the
//! message names them, `kekLength` equal to that wrap's key size. The KDF `info` is the DER of
//! `CMSORIforKEMOtherInfo { wrap, kekLength, ukm }` (RFC 9629 §5).
//!
//! ML-KEM itself is aws-lc-rs's `kem` module. Every failure after the structure checks
//! (decapsulation, which with implicit rejection shows up as an unwrap failure, and the key
//! unwrap itself) gives the coarse [`Error::DecryptionFailed`].

use aws_lc_rs::hkdf::{self, HKDF_SHA256, HKDF_SHA384, HKDF_SHA512, KeyType, Salt};
use aws_lc_rs::kem::{
    Ciphertext, DecapsulationKey, EncapsulationKey, ML_KEM_512, ML_KEM_768, ML_KEM_1024,
};
use cms::content_info::CmsVersion;
use cms::enveloped_data::{OtherRecipientInfo, RecipientIdentifier, RecipientInfo};
use cms::kemri::{CmsOriForKemOtherInfo, ID_ORI_KEM, KemRecipientInfo};
use const_oid::ObjectIdentifier;
use der::asn1::OctetString;
use der::{Any, Decode, Encode};
use spki::AlgorithmIdentifierOwned;
use zeroize::Zeroizing;

use super::kari::{self, AES128_WRAP, AES192_WRAP, AES256_WRAP};
use crate::error::{Error, Result};

/// id-alg-ml-kem-512 (RFC 9935 / NIST CSOR).
pub(crate) const ML_KEM_512_OID: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.4.1");
/// id-alg-ml-kem-768.
pub(crate) const ML_KEM_768_OID: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.4.2");
/// id-alg-ml-kem-1024.
pub(crate) const ML_KEM_1024_OID: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.4.3");
/// id-alg-hkdf-with-sha256 (RFC 8619).
pub(crate) const HKDF_SHA256_OID: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.3.28");
/// id-alg-hkdf-with-sha384 (RFC 8619).
pub(crate) const HKDF_SHA384_OID: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.3.29");
/// id-alg-hkdf-with-sha512 (RFC 8619).
pub(crate) const HKDF_SHA512_OID: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.3.30");

/// Upper bound on a wrapped content-encryption key (AES-256 key + 8 bytes of wrap IV, with
/// room to spare); anything longer is malformed.
const MAX_WRAPPED: usize = 64;

/// The ML-KEM parameter sets this module handles.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MlKem {
    /// ML-KEM-512 (NIST category 1).
    MlKem512,
    /// ML-KEM-768 (NIST category 3).
    MlKem768,
    /// ML-KEM-1024 (NIST category 5).
    MlKem1024,
}

impl MlKem {
    /// The parameter set for an SPKI / KEM AlgorithmIdentifier OID, if it is one of ours.
    pub fn from_oid(oid: &ObjectIdentifier) -> Option<Self> {
        match *oid {
            ML_KEM_512_OID => Some(Self::MlKem512),
            ML_KEM_768_OID => Some(Self::MlKem768),
            ML_KEM_1024_OID => Some(Self::MlKem1024),
            _ => None,
        }
    }

    /// The AlgorithmIdentifier OID (RFC 9935).
    pub fn oid(self) -> ObjectIdentifier {
        match self {
            Self::MlKem512 => ML_KEM_512_OID,
            Self::MlKem768 => ML_KEM_768_OID,
            Self::MlKem1024 => ML_KEM_1024_OID,
        }
    }

    pub(crate) fn lc_alg(self) -> &'static aws_lc_rs::kem::Algorithm {
        match self {
            Self::MlKem512 => &ML_KEM_512,
            Self::MlKem768 => &ML_KEM_768,
            Self::MlKem1024 => &ML_KEM_1024,
        }
    }

    /// FIPS 203 ciphertext size in bytes.
    pub fn ciphertext_len(self) -> usize {
        match self {
            Self::MlKem512 => 768,
            Self::MlKem768 => 1088,
            Self::MlKem1024 => 1568,
        }
    }

    /// FIPS 203 encapsulation (public) key size in bytes.
    pub fn public_key_len(self) -> usize {
        match self {
            Self::MlKem512 => 800,
            Self::MlKem768 => 1184,
            Self::MlKem1024 => 1568,
        }
    }

    /// The key-wrap algorithm RFC 9936 §3 pairs with this parameter set (what we write):
    /// id-aes128-wrap for ML-KEM-512, id-aes256-wrap for the others.
    fn wrap_oid(self) -> ObjectIdentifier {
        match self {
            Self::MlKem512 => AES128_WRAP,
            Self::MlKem768 | Self::MlKem1024 => AES256_WRAP,
        }
    }
}

/// The KEK length (bytes) a key-wrap algorithm needs, for the wraps this module accepts.
fn kek_len(wrap: &ObjectIdentifier) -> Option<usize> {
    match *wrap {
        AES128_WRAP => Some(16),
        AES192_WRAP => Some(24),
        AES256_WRAP => Some(32),
        _ => None,
    }
}

/// The HKDF for a KEMRecipientInfo `kdf` OID, for the KDFs this module reads (RFC 8619).
fn hkdf_for(kdf: &ObjectIdentifier) -> Option<hkdf::Algorithm> {
    match *kdf {
        HKDF_SHA256_OID => Some(HKDF_SHA256),
        HKDF_SHA384_OID => Some(HKDF_SHA384),
        HKDF_SHA512_OID => Some(HKDF_SHA512),
        _ => None,
    }
}

struct KekLen(usize);
impl KeyType for KekLen {
    fn len(&self) -> usize {
        self.0
    }
}

/// RFC 9629 §5: KEK = HKDF(salt = empty, IKM = ss, info = CMSORIforKEMOtherInfo, L),
/// L = `kek_len` bytes (16, 24 or 32: the wrap's key size); `kdf` is the message's HKDF
/// (RFC 8619 leaves the salt out of the AlgorithmIdentifier: empty).
fn derive_kek(
    kdf: hkdf::Algorithm,
    ss: &[u8],
    wrap: &AlgorithmIdentifierOwned,
    kek_len: usize,
    ukm: Option<&OctetString>,
) -> Result<Zeroizing<Vec<u8>>> {
    let info = CmsOriForKemOtherInfo {
        wrap: wrap.clone(),
        kek_length: u16::try_from(kek_len).map_err(|_| Error::Crypto { what: "HKDF" })?,
        ukm: ukm.cloned(),
    }
    .to_der()?;
    let prk = Salt::new(kdf, &[]).extract(ss);
    let mut kek = Zeroizing::new(vec![0u8; kek_len]);
    prk.expand(&[&info], KekLen(kek_len))
        .and_then(|okm| okm.fill(&mut kek[..]))
        .map_err(|_| Error::Crypto { what: "HKDF" })?;
    Ok(kek)
}

/// Builds the `RecipientInfo::Ori` carrying a KEMRecipientInfo that wraps `cek` for the
/// holder of `public_key` (the raw FIPS 203 encapsulation key from the certificate's SPKI).
///
/// ML-KEM encapsulation draws its randomness from aws-lc-rs's own generator.
pub(crate) fn wrap_for(
    kem: MlKem,
    public_key: &[u8],
    rid: RecipientIdentifier,
    cek: &[u8],
) -> Result<RecipientInfo> {
    if public_key.len() != kem.public_key_len() {
        return Err(Error::malformed("ML-KEM public key", "wrong length"));
    }
    let ek = EncapsulationKey::new(kem.lc_alg(), public_key)
        .map_err(|_| Error::malformed("ML-KEM public key", "rejected"))?;
    let (ct, ss) = ek
        .encapsulate()
        .map_err(|_| Error::Crypto { what: "ML-KEM" })?;
    let wrap = AlgorithmIdentifierOwned {
        oid: kem.wrap_oid(),
        parameters: None,
    };
    let len = kek_len(&wrap.oid).ok_or(Error::Crypto { what: "key wrap" })?;
    let kek = derive_kek(HKDF_SHA256, ss.as_ref(), &wrap, len, None)?;
    let wrapped = kari::wrap_key(&wrap.oid, &kek, cek)?;
    let kemri = KemRecipientInfo {
        version: CmsVersion::V0,
        rid,
        kem: AlgorithmIdentifierOwned {
            oid: kem.oid(),
            parameters: None,
        },
        kem_ct: OctetString::new(ct.as_ref())?,
        kdf: AlgorithmIdentifierOwned {
            oid: HKDF_SHA256_OID,
            parameters: None,
        },
        kek_length: u16::try_from(len).map_err(|_| Error::Crypto { what: "key wrap" })?,
        ukm: None,
        wrap,
        encrypted_key: OctetString::new(wrapped)?,
    };
    Ok(RecipientInfo::Ori(OtherRecipientInfo {
        ori_type: ID_ORI_KEM,
        ori_value: Any::from_der(&kemri.to_der()?)?,
    }))
}

/// Parses and checks an `OtherRecipientInfo` as a KEMRecipientInfo of our profile. Returns
/// `Ok(None)` when the ori is of another type (the caller skips it). Never panics; every
/// length is checked before any crypto runs.
pub(crate) fn parse(ori: &OtherRecipientInfo) -> Result<Option<(MlKem, KemRecipientInfo)>> {
    if ori.ori_type != ID_ORI_KEM {
        return Ok(None);
    }
    const W: &str = "KEMRecipientInfo";
    let kemri =
        KemRecipientInfo::from_der(&ori.ori_value.to_der()?).map_err(|e| Error::malformed(W, e))?;
    if kemri.version != CmsVersion::V0 {
        return Err(Error::malformed(W, "version is not 0"));
    }
    let Some(kem) = MlKem::from_oid(&kemri.kem.oid) else {
        return Err(Error::UnsupportedAlgorithm {
            what: "KEM",
            oid: kemri.kem.oid.to_string(),
        });
    };
    if kemri.kem.parameters.is_some() {
        return Err(Error::malformed(W, "ML-KEM parameters present"));
    }
    if kemri.kem_ct.as_bytes().len() != kem.ciphertext_len() {
        return Err(Error::malformed(W, "kemct length is not the KEM's"));
    }
    if hkdf_for(&kemri.kdf.oid).is_none() {
        return Err(Error::UnsupportedAlgorithm {
            what: "KEM KDF",
            oid: kemri.kdf.oid.to_string(),
        });
    }
    if kemri.kdf.parameters.is_some() {
        return Err(Error::malformed(W, "HKDF parameters present"));
    }
    let Some(len) = kek_len(&kemri.wrap.oid) else {
        return Err(Error::UnsupportedAlgorithm {
            what: "key wrap",
            oid: kemri.wrap.oid.to_string(),
        });
    };
    if kemri.wrap.parameters.is_some() {
        return Err(Error::malformed(W, "key-wrap parameters present"));
    }
    if usize::from(kemri.kek_length) != len {
        return Err(Error::malformed(
            W,
            "kekLength is not the key-wrap's key size",
        ));
    }
    let wrapped = kemri.encrypted_key.as_bytes().len();
    if !(24..=MAX_WRAPPED).contains(&wrapped) || wrapped % 8 != 0 {
        return Err(Error::malformed(W, "encryptedKey length"));
    }
    Ok(Some((kem, kemri)))
}

/// The KEM algorithm and recipient of an id-ori-kem `OtherRecipientInfo` that decodes as a
/// KEMRecipientInfo, before (and whatever) [`parse`]'s profile checks say: so that a message
/// to us with an algorithm we do not read reports that, not "not a recipient".
pub(crate) fn addressee(ori: &OtherRecipientInfo) -> Option<(MlKem, RecipientIdentifier)> {
    if ori.ori_type != ID_ORI_KEM {
        return None;
    }
    let kemri = KemRecipientInfo::from_der(&ori.ori_value.to_der().ok()?).ok()?;
    Some((MlKem::from_oid(&kemri.kem.oid)?, kemri.rid))
}

/// Recovers the content-encryption key from a checked KEMRecipientInfo with the recipient's
/// ML-KEM decapsulation key. Decapsulation and unwrap failures are [`Error::DecryptionFailed`].
pub(crate) fn unwrap(
    kem: MlKem,
    kemri: &KemRecipientInfo,
    key: &DecapsulationKey,
) -> Result<Zeroizing<Vec<u8>>> {
    if key.algorithm().id() != kem.lc_alg().id() {
        return Err(Error::NotARecipient);
    }
    // parse() let only these KDFs through.
    let kdf = hkdf_for(&kemri.kdf.oid).ok_or(Error::UnsupportedAlgorithm {
        what: "KEM KDF",
        oid: kemri.kdf.oid.to_string(),
    })?;
    let ss = key
        .decapsulate(Ciphertext::from(kemri.kem_ct.as_bytes()))
        .map_err(|_| Error::DecryptionFailed)?;
    let kek = derive_kek(
        kdf,
        ss.as_ref(),
        &kemri.wrap,
        usize::from(kemri.kek_length),
        kemri.ukm.as_ref(),
    )?;
    kari::unwrap_key(&kemri.wrap.oid, &kek, kemri.encrypted_key.as_bytes())
        .map_err(|_| Error::DecryptionFailed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cms::cert::x509::ext::pkix::SubjectKeyIdentifier;

    /// OneAsymmetricKey with the expandedKey CHOICE arm, built by hand (independent of
    /// `PrivateKey::to_pkcs8_der`).
    fn expanded_pkcs8(kem: MlKem, dk: &DecapsulationKey) -> Vec<u8> {
        let dkb = dk.key_bytes().unwrap();
        let inner = OctetString::new(dkb.as_ref().to_vec())
            .unwrap()
            .to_der()
            .unwrap();
        let alg = AlgorithmIdentifierOwned {
            oid: kem.oid(),
            parameters: None,
        };
        let mut body = 0u8.to_der().unwrap();
        body.extend(alg.to_der().unwrap());
        body.extend(OctetString::new(inner).unwrap().to_der().unwrap());
        let mut out = vec![0x30, 0x82, (body.len() >> 8) as u8, body.len() as u8];
        out.extend(body);
        out
    }

    /// A seed-form OneAsymmetricKey (RFC 9935 §6) for `kem` with `seed` as the [0] value.
    fn seed_pkcs8(kem: MlKem, seed: &[u8]) -> Vec<u8> {
        let alg = AlgorithmIdentifierOwned {
            oid: kem.oid(),
            parameters: None,
        };
        let mut private = vec![0x80, seed.len() as u8];
        private.extend(seed);
        let mut body = 0u8.to_der().unwrap();
        body.extend(alg.to_der().unwrap());
        body.extend(OctetString::new(private).unwrap().to_der().unwrap());
        let mut der = vec![0x30, body.len() as u8];
        der.extend(body);
        der
    }

    #[test]
    fn seed_form_loads_for_each_parameter_set_and_bad_seeds_are_refused() {
        use crate::keys::PrivateKey;
        let limits = sealgate_mime::Limits::default();
        for kem in [MlKem::MlKem512, MlKem::MlKem768, MlKem::MlKem1024] {
            let key = PrivateKey::from_pkcs8_der(&seed_pkcs8(kem, &[9u8; 64]), &limits).unwrap();
            let (k, dk) = key.ml_kem().unwrap();
            assert_eq!(k, kem);
            // The expanded key aws-lc-rs got works: a KEMRecipientInfo to its public key
            // unwraps.
            let crate::keys::PublicKey::MlKem { key: ek, .. } = key.public_key() else {
                panic!("not an ML-KEM public key")
            };
            let o = ori(wrap_for(kem, ek, rid(), &[7u8; 32]).unwrap());
            let (_, kemri) = parse(&o).unwrap().unwrap();
            assert_eq!(&unwrap(kem, &kemri, dk).unwrap()[..], &[7u8; 32]);
        }
        for bad in [&[9u8; 63][..], &[9u8; 65][..], &[][..]] {
            let e =
                PrivateKey::from_pkcs8_der(&seed_pkcs8(MlKem::MlKem768, bad), &limits).unwrap_err();
            assert!(matches!(e, Error::InvalidKey { .. }), "{e}");
        }
    }

    fn rid() -> RecipientIdentifier {
        RecipientIdentifier::SubjectKeyIdentifier(SubjectKeyIdentifier(
            OctetString::new(vec![7u8; 20]).unwrap(),
        ))
    }

    fn ori(ri: RecipientInfo) -> OtherRecipientInfo {
        match ri {
            RecipientInfo::Ori(o) => o,
            _ => panic!("not an ori"),
        }
    }

    #[test]
    fn round_trip_both_parameter_sets_and_wrong_key_is_coarse() {
        for kem in [MlKem::MlKem512, MlKem::MlKem768, MlKem::MlKem1024] {
            let dk = DecapsulationKey::generate(kem.lc_alg()).unwrap();
            let ek = dk.encapsulation_key().unwrap().key_bytes().unwrap();
            let cek = [0x5au8; 32];
            let o = ori(wrap_for(kem, ek.as_ref(), rid(), &cek).unwrap());
            // Re-encode and decode as a message reader would see it.
            let o = OtherRecipientInfo::from_der(&o.to_der().unwrap()).unwrap();
            let (k, kemri) = parse(&o).unwrap().unwrap();
            assert_eq!(k, kem);
            assert_eq!(kemri.kem_ct.as_bytes().len(), kem.ciphertext_len());
            // RFC 9936 §3: aes128-wrap for ML-KEM-512, aes256-wrap for the others.
            let (wrap, len) = if kem == MlKem::MlKem512 {
                (AES128_WRAP, 16)
            } else {
                (AES256_WRAP, 32)
            };
            assert_eq!(kemri.kek_length, len);
            assert_eq!(kemri.wrap.oid, wrap);
            assert_eq!(&unwrap(k, &kemri, &dk).unwrap()[..], &cek[..]);

            // Another key of the same set: implicit rejection gives a pseudo-random secret,
            // so the unwrap integrity check fails: the coarse error.
            let other = DecapsulationKey::generate(kem.lc_alg()).unwrap();
            assert!(matches!(
                unwrap(k, &kemri, &other),
                Err(Error::DecryptionFailed)
            ));

            // A flipped ciphertext bit: the same coarse error.
            let mut bad = kemri.clone();
            let mut ct = bad.kem_ct.as_bytes().to_vec();
            ct[10] ^= 1;
            bad.kem_ct = OctetString::new(ct).unwrap();
            assert!(matches!(unwrap(k, &bad, &dk), Err(Error::DecryptionFailed)));
        }
    }

    #[test]
    fn parse_rejects_out_of_profile_fields_without_panicking() {
        let kem = MlKem::MlKem768;
        let dk = DecapsulationKey::generate(kem.lc_alg()).unwrap();
        let ek = dk.encapsulation_key().unwrap().key_bytes().unwrap();
        let o = ori(wrap_for(kem, ek.as_ref(), rid(), &[1u8; 16]).unwrap());
        let (_, good) = parse(&o).unwrap().unwrap();
        let reencode = |k: &KemRecipientInfo| OtherRecipientInfo {
            ori_type: ID_ORI_KEM,
            ori_value: Any::from_der(&k.to_der().unwrap()).unwrap(),
        };

        let mut short = good.clone();
        short.kem_ct = OctetString::new(vec![0u8; 1087]).unwrap();
        assert!(matches!(
            parse(&reencode(&short)),
            Err(Error::Malformed { .. })
        ));

        let mut kl = good.clone();
        kl.kek_length = 16;
        assert!(matches!(
            parse(&reencode(&kl)),
            Err(Error::Malformed { .. })
        ));

        // PBKDF2 is no KEM KDF.
        let mut kdf = good.clone();
        kdf.kdf.oid = ObjectIdentifier::new_unwrap("1.2.840.113549.1.5.12");
        assert!(matches!(
            parse(&reencode(&kdf)),
            Err(Error::UnsupportedAlgorithm { .. })
        ));

        let mut v = good.clone();
        v.version = CmsVersion::V2;
        assert!(matches!(parse(&reencode(&v)), Err(Error::Malformed { .. })));

        // Not a KEMRecipientInfo: skipped, not an error.
        let other = OtherRecipientInfo {
            ori_type: ObjectIdentifier::new_unwrap("1.2.3.4"),
            ori_value: Any::from_der(&[5, 0]).unwrap(),
        };
        assert!(parse(&other).unwrap().is_none());

        // Garbage in an id-ori-kem value: an error, no panic.
        let junk = OtherRecipientInfo {
            ori_type: ID_ORI_KEM,
            ori_value: Any::from_der(&[0x30, 0x03, 0x02, 0x01, 0x00]).unwrap(),
        };
        assert!(parse(&junk).is_err());
    }

    /// One EnvelopedData (and AuthEnvelopedData) for an RSA, an EC and an ML-KEM-768
    /// recipient, the ML-KEM certificate issued by our CA code: the RSA and EC recipients
    /// decrypt it through the public API, the ML-KEM recipient recovers the same content key.
    /// With SEALGATE_PQ_OUT set, the CBC message is written there (for the openssl check).
    #[test]
    fn mixed_message_rsa_ec_mlkem() {
        use crate::enveloped::{ContentCipher, Recipient, decrypt, decrypt_in_place, plan};
        use crate::issue::{self, CertificateParams};
        use crate::keys::{Certificate, PrivateKey, PublicKey};
        use sealgate_mime::Limits;

        let dir = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/data/smime/enveloped/"
        );
        let read = |n: &str| std::fs::read(format!("{dir}{n}")).unwrap();
        let cert = |n: &str| Certificate::from_der(&read(&format!("{n}.crt.der"))).unwrap();
        let key = |n: &str| {
            PrivateKey::from_pkcs8_der(&read(&format!("{n}.pk8.der")), &Limits::default()).unwrap()
        };

        let mut rng = rand_core::OsRng;
        let ca_key =
            PrivateKey::generate(crate::keys::KeyKind::Ec(crate::keys::Curve::P256)).unwrap();
        let ca =
            issue::self_signed(&ca_key, &CertificateParams::ca("PQ test CA"), &mut rng).unwrap();
        let dk = DecapsulationKey::generate(&ML_KEM_768).unwrap();
        let pk = PublicKey::MlKem {
            kem: MlKem::MlKem768,
            key: dk
                .encapsulation_key()
                .unwrap()
                .key_bytes()
                .unwrap()
                .as_ref()
                .to_vec(),
        };
        let params = CertificateParams::user("PQ user", "pq@example.test");
        let pq_pk8 = expanded_pkcs8(MlKem::MlKem768, &dk);
        let pq_cert = issue::issue(&pk, &params, &ca, &ca_key, &mut rng).unwrap();
        // The certificate goes through the one loader and gives the key back.
        let reloaded = Certificate::from_der(pq_cert.der()).unwrap();
        assert_eq!(reloaded.public_key().unwrap(), pk);

        let content = b"post-quantum hello\r\n".repeat(50);
        for cipher in [ContentCipher::Aes256Cbc, ContentCipher::Aes256Gcm] {
            let rs = [
                Recipient::new(cert("rsa1")),
                Recipient::new(cert("p256")),
                Recipient::new(reloaded.clone()),
            ];
            let der = crate::enveloped::encrypt(&content, &rs, cipher, &mut rng).unwrap();
            if cipher == ContentCipher::Aes256Cbc
                && let Ok(path) = std::env::var("SEALGATE_PQ_OUT")
            {
                std::fs::write(path, &der).unwrap();
            }
            for who in ["rsa1", "p256"] {
                let c = cert(who);
                let d = decrypt(&der, &key(who), Some(&c), &Limits::default()).unwrap();
                assert_eq!(&d.content[..], &content[..]);
            }
            // ML-KEM recipient: find the KEMRecipientInfo, unwrap, decrypt the content.
            let p = plan(&der, &key("rsa1"), Some(&cert("rsa1")), &Limits::default()).unwrap();
            let parsed = crate::enveloped::parse(&der, &Limits::default()).unwrap();
            let mut found = 0;
            for ri in &parsed.recipients {
                if let RecipientInfo::Ori(o) = ri {
                    let (k, kemri) = parse(o).unwrap().unwrap();
                    let cek = unwrap(k, &kemri, &dk).unwrap();
                    assert_eq!(&cek[..], &p.cek[..]);
                    let mut buf = der[p.ciphertext.clone()].to_vec();
                    let n = decrypt_in_place(&p, &cek, &mut buf).unwrap();
                    assert_eq!(&buf[..n], &content[..]);
                    found += 1;
                }
            }
            assert_eq!(found, 1);
            // And through the public API with the key as PKCS#8 (expandedKey form).
            let pk8 = PrivateKey::from_pkcs8_der(&pq_pk8, &Limits::default()).unwrap();
            assert!(pk8.matches(&reloaded));
            for c in [Some(&reloaded), None] {
                let d = decrypt(&der, &pk8, c, &Limits::default()).unwrap();
                assert_eq!(&d.content[..], &content[..]);
            }
            // Another ML-KEM key: the coarse error.
            let other = DecapsulationKey::generate(&ML_KEM_768).unwrap();
            let other_pk8 = expanded_pkcs8(MlKem::MlKem768, &other);
            let other = PrivateKey::from_pkcs8_der(&other_pk8, &Limits::default()).unwrap();
            assert!(matches!(
                decrypt(&der, &other, None, &Limits::default()),
                Err(Error::DecryptionFailed)
            ));
        }
    }

    /// The RFC 9936 example (Appendix C; files from lamps-wg/cms-kyber, see tests/data/NOTES):
    /// every intermediate value of the ML-KEM-512 KEMRecipientInfo, then the whole
    /// AuthEnvelopedData decrypted through the public API with the key in each form we load.
    mod rfc9936 {
        use super::*;
        use crate::keys::{Certificate, PrivateKey};
        use sealgate_mime::Limits;

        fn file(name: &str) -> Vec<u8> {
            let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/data/rfc9936/");
            std::fs::read(format!("{dir}{name}")).unwrap()
        }

        fn hex_file(name: &str) -> Vec<u8> {
            let text = String::from_utf8(file(name)).unwrap();
            let digits: String = text.split_whitespace().collect();
            crate::enveloped::kari::tests::hex(&digits)
        }

        fn pem_der(name: &str) -> Vec<u8> {
            let blocks = crate::pem::parse_all(&file(name), 4).unwrap();
            assert_eq!(blocks.len(), 1, "{name}");
            blocks[0].der.to_vec()
        }

        fn key(form: &str) -> PrivateKey {
            PrivateKey::from_pkcs8_der(
                &pem_der(&format!("ML-KEM-512-{form}.priv")),
                &Limits::default(),
            )
            .unwrap()
        }

        fn message_kemri() -> (MlKem, KemRecipientInfo) {
            let der = pem_der("ML-KEM-512.cms");
            let parsed = crate::enveloped::parse(&der, &Limits::default()).unwrap();
            let mut found = parsed.recipients.iter().filter_map(|ri| match ri {
                RecipientInfo::Ori(o) => parse(o).unwrap(),
                _ => None,
            });
            let first = found.next().expect("a KEMRecipientInfo");
            assert!(found.next().is_none());
            first
        }

        #[test]
        fn intermediate_values() {
            let (kem, kemri) = message_kemri();
            assert_eq!(kem, MlKem::MlKem512);
            assert_eq!(kemri.kem_ct.as_bytes(), &hex_file("ciphertext.txt")[..]);
            assert_eq!(kemri.wrap.oid, AES128_WRAP);
            assert_eq!(kemri.kek_length, 16);
            match &kemri.rid {
                RecipientIdentifier::SubjectKeyIdentifier(ski) => {
                    assert_eq!(ski.0.as_bytes(), &hex_file("ML-KEM-512.keyid")[..])
                }
                other => panic!("recipient by {other:?}"),
            }
            // Decapsulation with the expanded key gives the example's shared secret.
            let k = key("expanded");
            let (_, dk) = k.ml_kem().unwrap();
            let ss = dk
                .decapsulate(Ciphertext::from(kemri.kem_ct.as_bytes()))
                .unwrap();
            assert_eq!(ss.as_ref(), &hex_file("shared_secret.txt")[..]);
            // CMSORIforKEMOtherInfo as we encode it is the example's ori_info.
            let info = CmsOriForKemOtherInfo {
                wrap: kemri.wrap.clone(),
                kek_length: kemri.kek_length,
                ukm: kemri.ukm.clone(),
            };
            assert_eq!(info.to_der().unwrap(), hex_file("ori_info.txt"));
            let kek = derive_kek(
                HKDF_SHA256,
                ss.as_ref(),
                &kemri.wrap,
                16,
                kemri.ukm.as_ref(),
            )
            .unwrap();
            assert_eq!(&kek[..], &hex_file("kek.txt")[..]);
            assert_eq!(
                kemri.encrypted_key.as_bytes(),
                &hex_file("encrypted_cek.txt")[..]
            );
            let cek = unwrap(kem, &kemri, dk).unwrap();
            assert_eq!(&cek[..], &hex_file("cek.txt")[..]);
        }

        #[test]
        fn seed_both_and_expanded_forms_are_the_same_key() {
            let seed = key("seed");
            let expanded = key("expanded");
            let both = key("both");
            let bytes =
                |k: &PrivateKey| k.ml_kem().unwrap().1.key_bytes().unwrap().as_ref().to_vec();
            assert_eq!(bytes(&seed), bytes(&expanded));
            assert_eq!(bytes(&both), bytes(&expanded));
            // `both` with a seed that does not give its expanded key: refused.
            let mut pk8 = pem_der("ML-KEM-512-both.priv");
            // The seed is 0x00 0x01 .. 0x3f (RFC 9936 Appendix C); change its last byte.
            let at = crate::pem::find(&pk8, &(0u8..64).collect::<Vec<_>>()).unwrap() + 63;
            pk8[at] ^= 0x80;
            let e = PrivateKey::from_pkcs8_der(&pk8, &Limits::default()).unwrap_err();
            assert!(e.to_string().contains("seed"), "{e}");
        }

        #[test]
        fn message_decrypts_with_the_key_in_each_form() {
            let der = pem_der("ML-KEM-512.cms");
            let cert = Certificate::from_der(&pem_der("ML-KEM-512.pem")).unwrap();
            assert!(matches!(
                cert.public_key().unwrap(),
                crate::keys::PublicKey::MlKem {
                    kem: MlKem::MlKem512,
                    ..
                }
            ));
            let plaintext = file("plaintext.txt");
            assert_eq!(plaintext, b"Hello, world!");
            for form in ["seed", "expanded", "both"] {
                let k = key(form);
                assert!(k.matches(&cert), "{form}");
                for c in [Some(&cert), None] {
                    let d = crate::enveloped::decrypt(&der, &k, c, &Limits::default()).unwrap();
                    assert_eq!(&d.content[..], &plaintext[..], "{form}");
                }
            }
            // An expanded key whose H(ek) does not match its ek is refused at load.
            let crate::keys::PublicKey::MlKem { key: ek, .. } = cert.public_key().unwrap() else {
                unreachable!()
            };
            let mut pk8 = pem_der("ML-KEM-512-expanded.priv");
            let h = crate::pem::find(&pk8, &ek).unwrap() + ek.len();
            pk8[h + 5] ^= 1;
            let e = PrivateKey::from_pkcs8_der(&pk8, &Limits::default()).unwrap_err();
            assert!(e.to_string().contains("H(ek)"), "{e}");

            // One flipped bit in the KEM ciphertext: the coarse error.
            let (_, kemri) = message_kemri();
            let ct = kemri.kem_ct.as_bytes();
            let at = crate::pem::find(&der, ct).unwrap() + 100;
            let mut bad = der.clone();
            bad[at] ^= 0x10;
            assert!(matches!(
                crate::enveloped::decrypt(&bad, &key("expanded"), Some(&cert), &Limits::default()),
                Err(Error::DecryptionFailed)
            ));
        }
    }

    /// Messages OpenSSL 3.6 wrote with `cms -encrypt -recip_kdf HKDF-SHA384` and
    /// `-recip_kdf HKDF-SHA512 -recip_ukm .. -aes192-wrap -keyid` (tests/data/NOTES.md): we used
    /// to refuse every KDF but HKDF-SHA256 ("unsupported KEM KDF"), though RFC 9629 lets the
    /// sender choose and OpenSSL offers these. Each decrypts with the OpenSSL-made seed-only key.
    mod openssl36_kdfs {
        use super::*;
        use crate::keys::{Certificate, PrivateKey};
        use sealgate_mime::Limits;

        fn file(name: &str) -> Vec<u8> {
            let dir = concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../tests/data/openssl36-kemri/"
            );
            std::fs::read(format!("{dir}{name}")).unwrap()
        }

        fn pem_der(name: &str) -> Vec<u8> {
            let blocks = crate::pem::parse_all(&file(name), 4).unwrap();
            assert_eq!(blocks.len(), 1, "{name}");
            blocks[0].der.to_vec()
        }

        #[test]
        fn hkdf_sha384_and_sha512_with_ukm_decrypt() {
            let key =
                PrivateKey::from_pkcs8_der(&pem_der("ML-KEM-768.key"), &Limits::default()).unwrap();
            let cert = Certificate::from_der(&pem_der("ML-KEM-768.pem")).unwrap();
            assert!(key.matches(&cert));
            for (name, kdf, wrap, ukm) in [
                ("hkdf-sha384.cms", HKDF_SHA384_OID, AES256_WRAP, None),
                (
                    "hkdf-sha512-ukm.cms",
                    HKDF_SHA512_OID,
                    AES192_WRAP,
                    Some(&b"sealgate"[..]),
                ),
            ] {
                let der = pem_der(name);
                let parsed = crate::enveloped::parse(&der, &Limits::default()).unwrap();
                let [RecipientInfo::Ori(o)] = &parsed.recipients[..] else {
                    panic!("{name}: not one ori")
                };
                let (kem, kemri) = parse(o).unwrap().unwrap();
                assert_eq!(kem, MlKem::MlKem768);
                assert_eq!(kemri.kdf.oid, kdf, "{name}");
                assert_eq!(kemri.wrap.oid, wrap, "{name}");
                assert_eq!(kemri.ukm.as_ref().map(|u| u.as_bytes()), ukm, "{name}");
                for c in [Some(&cert), None] {
                    let d = crate::enveloped::decrypt(&der, &key, c, &Limits::default()).unwrap();
                    assert_eq!(&d.content[..], &file("plaintext.txt")[..], "{name}");
                }
                // The same message with the KDF said to be HKDF-SHA256: another KEK, the
                // unwrap fails with the coarse error (the KDF OID is really used).
                let mut bad = kemri.clone();
                bad.kdf.oid = HKDF_SHA256_OID;
                let (_, dk) = key.ml_kem().unwrap();
                assert!(matches!(
                    unwrap(kem, &bad, dk),
                    Err(Error::DecryptionFailed)
                ));
            }
        }
    }

    /// A message to us whose KEMRecipientInfo names a KDF we do not read says so (it used to
    /// say "not encrypted to this certificate", which sends the user looking for another key);
    /// a key of another parameter set is still not a recipient.
    #[test]
    fn unknown_kdf_for_us_is_unsupported_not_not_a_recipient() {
        use crate::keys::{Certificate, PrivateKey};
        use sealgate_mime::Limits;
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/data/");
        let pem = |name: &str| {
            let blocks =
                crate::pem::parse_all(&std::fs::read(format!("{dir}{name}")).unwrap(), 4).unwrap();
            blocks[0].der.to_vec()
        };
        let key =
            PrivateKey::from_pkcs8_der(&pem("openssl36-kemri/ML-KEM-768.key"), &Limits::default())
                .unwrap();
        let cert = Certificate::from_der(&pem("openssl36-kemri/ML-KEM-768.pem")).unwrap();
        let mut der = pem("openssl36-kemri/hkdf-sha384.cms");
        // id-alg-hkdf-with-sha384 (.3.29) -> .3.31, an OID of the same length nobody defines.
        let sha384 = HKDF_SHA384_OID.to_der().unwrap();
        let at = crate::pem::find(&der, &sha384).unwrap() + sha384.len() - 1;
        der[at] = 31;
        for c in [Some(&cert), None] {
            let e = crate::enveloped::decrypt(&der, &key, c, &Limits::default()).unwrap_err();
            assert!(
                matches!(
                    e,
                    Error::UnsupportedAlgorithm {
                        what: "KEM KDF",
                        ..
                    }
                ),
                "{e:?}"
            );
        }
        let other =
            PrivateKey::from_pkcs8_der(&pem("rfc9936/ML-KEM-512-seed.priv"), &Limits::default())
                .unwrap();
        assert!(matches!(
            crate::enveloped::decrypt(&der, &other, None, &Limits::default()),
            Err(Error::NotARecipient)
        ));
    }

    #[test]
    fn kek_depends_on_other_info() {
        let ss = [3u8; 32];
        let wrap = AlgorithmIdentifierOwned {
            oid: AES256_WRAP,
            parameters: None,
        };
        let a = derive_kek(HKDF_SHA256, &ss, &wrap, 32, None).unwrap();
        let ukm = OctetString::new(vec![1u8]).unwrap();
        let b = derive_kek(HKDF_SHA256, &ss, &wrap, 32, Some(&ukm)).unwrap();
        assert_ne!(a[..], b[..]);
        let c = derive_kek(HKDF_SHA256, &ss, &wrap, 16, None).unwrap();
        assert_eq!(c.len(), 16);
        assert_ne!(a[..16], c[..]);
        let d = derive_kek(HKDF_SHA512, &ss, &wrap, 32, None).unwrap();
        assert_ne!(a[..], d[..]);
    }
}
