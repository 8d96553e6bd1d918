//! The content-sniffing reader of key material: whatever a file holds (PEM with any number of
//! blocks, DER certificate, key or CRL, PKCS#12, OpenPGP armored or binary, public or secret),
//! it comes back as [`Material`] items, or as an error that says what was wrong.
//!
//! Formats are told apart by content, never by file name: PEM and OpenPGP armor by their
//! BEGIN lines, DER by its outer structure (a PFX starts with `INTEGER 3`, private keys with a
//! version `INTEGER`, certificates and CRLs are tried as such), binary OpenPGP by its packet
//! tag byte (bit 7 set, which no DER SEQUENCE has). Parsing itself is left to sealgate-smime
//! and sealgate-pgp (ARCHITECTURE: the key store parses no format itself).

use sealgate_mime::Limits;
use sealgate_pgp as pgp;
use sealgate_smime::{self as smime, Certificate, Identity, PrivateKey};
use secrecy::SecretString;
use sequoia_openpgp as openpgp;
use zeroize::Zeroizing;

use crate::crl::Crl;

/// One item found in a key file.
#[non_exhaustive]
pub enum Material {
    /// An X.509 certificate (leaf or CA).
    Certificate(Certificate),
    /// A private key on its own (its certificate must come in the same import).
    PrivateKey(PrivateKey),
    /// A key with its certificate and chain (PKCS#12).
    Identity(Identity),
    /// An OpenPGP certificate (public).
    PgpCertificate(pgp::Cert),
    /// An OpenPGP transferable secret key: its public certificate and the binary TSK as read
    /// (secret keys locked by a passphrase stay locked).
    PgpSecretKey {
        /// The public certificate.
        cert: pgp::Cert,
        /// The binary transferable secret key; wiped when dropped.
        tsk: Zeroizing<Vec<u8>>,
    },
    /// A certificate revocation list (its signature is checked when it is imported).
    Crl(Crl),
}

impl std::fmt::Debug for Material {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Material::Certificate(c) => f.debug_tuple("Certificate").field(c).finish(),
            Material::PrivateKey(_) => f.write_str("PrivateKey([redacted])"),
            Material::Identity(i) => f.debug_tuple("Identity").field(&i.cert).finish(),
            Material::PgpCertificate(c) => f.debug_tuple("PgpCertificate").field(c).finish(),
            Material::PgpSecretKey { cert, .. } => f
                .debug_struct("PgpSecretKey")
                .field("cert", cert)
                .field("tsk", &"[redacted]")
                .finish(),
            Material::Crl(c) => f.debug_tuple("Crl").field(&c.issuer()).finish(),
        }
    }
}

/// Why a file could not be read (no secret material; the caller adds the file name).
pub type Reason = String;

/// Read every item of key material in `data`, detected by content. `password` opens PKCS#12
/// files, encrypted PKCS#8 keys and locked OpenPGP secret keys.
///
/// Any defect fails the whole file: a file that is half understood imports nothing.
pub fn parse_key_material(
    data: &[u8],
    password: Option<&SecretString>,
    limits: &Limits,
) -> Result<Vec<Material>, Reason> {
    if data.is_empty() {
        return Err("empty file".into());
    }
    if data.len() > limits.max_key_file_bytes {
        return Err(format!(
            "larger than the limit of {} bytes for a key file",
            limits.max_key_file_bytes
        ));
    }
    if find(data, b"-----BEGIN PGP ").is_some() {
        return parse_pgp(data, password, limits);
    }
    if smime::pem::is_pem(data) {
        return parse_pem(data, password, limits);
    }
    match data[0] {
        0x30 => parse_der(data, password, limits),
        b if b & 0x80 != 0 => parse_pgp(data, password, limits),
        _ => Err("not a key file: neither PEM, DER, PKCS#12 nor OpenPGP".into()),
    }
}

fn parse_pem(
    data: &[u8],
    password: Option<&SecretString>,
    limits: &Limits,
) -> Result<Vec<Material>, Reason> {
    let blocks = smime::pem::parse_all(data, limits.max_certificates.saturating_mul(2))
        .map_err(|e| e.to_string())?;
    let mut out = Vec::with_capacity(blocks.len());
    for (i, b) in blocks.iter().enumerate() {
        let n = i + 1;
        let item = match b.label.as_str() {
            "CERTIFICATE" | "X509 CERTIFICATE" | "TRUSTED CERTIFICATE" => {
                // A TRUSTED CERTIFICATE carries OpenSSL trust settings after the certificate;
                // the certificate alone is taken (trust comes from the import's --trust).
                let der = if b.label == "TRUSTED CERTIFICATE" {
                    first_tlv(&b.der).ok_or_else(|| format!("PEM block {n}: malformed"))?
                } else {
                    &b.der[..]
                };
                Material::Certificate(
                    Certificate::from_der(der).map_err(|e| format!("PEM block {n}: {e}"))?,
                )
            }
            "PRIVATE KEY" | "ENCRYPTED PRIVATE KEY" | "RSA PRIVATE KEY" | "EC PRIVATE KEY" => {
                // Re-wrap the one block so that the key loader sees exactly it.
                let one = Zeroizing::new(smime::pem::encode(&b.label, &b.der));
                Material::PrivateKey(
                    smime::load_private_key(one.as_bytes(), password, limits)
                        .map_err(|e| format!("PEM block {n} ({}): {e}", b.label))?,
                )
            }
            "X509 CRL" => Material::Crl(
                Crl::from_der(&b.der, limits).map_err(|e| format!("PEM block {n}: {e}"))?,
            ),
            // Curve parameters that OpenSSL writes before an EC key carry nothing we need.
            "EC PARAMETERS" => continue,
            other => return Err(format!("PEM block {n}: unsupported label \"{other}\"")),
        };
        out.push(item);
    }
    if out.is_empty() {
        return Err("no certificate, key or CRL in the PEM file".into());
    }
    Ok(out)
}

fn parse_der(
    data: &[u8],
    password: Option<&SecretString>,
    limits: &Limits,
) -> Result<Vec<Material>, Reason> {
    if let Ok(c) = Certificate::from_der(data) {
        return Ok(vec![Material::Certificate(c)]);
    }
    if looks_like_pfx(data) {
        let empty = SecretString::from("");
        let pw = password.unwrap_or(&empty);
        return match Identity::from_pkcs12(data, pw, limits) {
            Ok(id) => Ok(vec![Material::Identity(id)]),
            Err(smime::Error::BadPassword) if password.is_none() => {
                Err("PKCS#12: a password is needed (--password-env)".into())
            }
            Err(e) => Err(format!("PKCS#12: {e}")),
        };
    }
    if let Ok(crl) = Crl::from_der(data, limits) {
        return Ok(vec![Material::Crl(crl)]);
    }
    match smime::load_private_key(data, password, limits) {
        Ok(k) => Ok(vec![Material::PrivateKey(k)]),
        Err(smime::Error::BadPassword) => {
            Err("encrypted private key: wrong or missing password".into())
        }
        Err(_) => Err("DER that is no certificate, CRL, PKCS#12 file or private key".into()),
    }
}

/// PFX ::= SEQUENCE { version INTEGER (3), authSafe ContentInfo, macData MacData OPTIONAL }
/// (RFC 7292 §4); openssl writes it in BER, so the outer length may be indefinite.
fn looks_like_pfx(data: &[u8]) -> bool {
    let Some(&len0) = data.get(1) else {
        return false;
    };
    let header = match len0 {
        0x80 => 2,
        n if n < 0x80 => 2,
        n => 2 + usize::from(n & 0x7f),
    };
    data.get(header..header + 3) == Some(&[0x02, 0x01, 0x03])
}

/// The first complete TLV of `der` (for TRUSTED CERTIFICATE blocks).
fn first_tlv(der: &[u8]) -> Option<&[u8]> {
    let len0 = *der.get(1)?;
    let (hlen, len) = if len0 < 0x80 {
        (2, usize::from(len0))
    } else {
        let n = usize::from(len0 & 0x7f);
        if n == 0 || n > 4 {
            return None;
        }
        let mut l = 0usize;
        for b in der.get(2..2 + n)? {
            l = (l << 8) | usize::from(*b);
        }
        (2 + n, l)
    };
    der.get(..hlen.checked_add(len)?)
}

fn parse_pgp(
    data: &[u8],
    password: Option<&SecretString>,
    limits: &Limits,
) -> Result<Vec<Material>, Reason> {
    use openpgp::parse::Parse;
    use openpgp::serialize::SerializeInto;
    // sequoia should not panic on any input; if it ever does, the file is refused rather than
    // the process brought down (sealgate-pgp guards its own parsing the same way).
    let parsed = std::panic::catch_unwind(|| -> Result<Vec<openpgp::Cert>, Reason> {
        let parser = openpgp::cert::CertParser::from_bytes(data).map_err(|e| pgp_reason(&e))?;
        let mut certs = Vec::new();
        for c in parser {
            if certs.len() >= limits.max_certificates {
                return Err(format!(
                    "more than {} OpenPGP certificates in one file",
                    limits.max_certificates
                ));
            }
            certs.push(c.map_err(|e| pgp_reason(&e))?);
        }
        Ok(certs)
    })
    .map_err(|_| "OpenPGP: the parser failed on this input".to_string())??;
    if parsed.is_empty() {
        return Err("OpenPGP: no certificate or key found".into());
    }
    let mut out = Vec::with_capacity(parsed.len());
    for c in parsed {
        if c.is_tsk() {
            let tsk = Zeroizing::new(
                c.as_tsk()
                    .to_vec()
                    .map_err(|e| format!("OpenPGP: {}", pgp_reason(&e)))?,
            );
            // Loading checks the passphrase of locked keys and gives the public certificate.
            let sk = pgp::SecretKey::load(&tsk, password, limits).map_err(|e| match e {
                pgp::Error::BadPassphrase => {
                    "OpenPGP secret key: wrong or missing passphrase".to_string()
                }
                e => format!("OpenPGP secret key: {e}"),
            })?;
            out.push(Material::PgpSecretKey {
                cert: sk.cert().clone(),
                tsk,
            });
        } else {
            let bytes = c
                .to_vec()
                .map_err(|e| format!("OpenPGP: {}", pgp_reason(&e)))?;
            let mut certs = pgp::Cert::load_all(&bytes, limits).map_err(|e| e.to_string())?;
            out.extend(certs.drain(..).map(Material::PgpCertificate));
        }
    }
    Ok(out)
}

fn pgp_reason(e: &openpgp::anyhow::Error) -> Reason {
    // The first line only: sequoia's chains can repeat input bytes.
    let s = e.to_string();
    let line = s.lines().next().unwrap_or("malformed OpenPGP data");
    format!("OpenPGP: {}", line.chars().take(200).collect::<String>())
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    smime::pem::find(hay, needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_junk_with_a_reason() {
        let l = Limits::default();
        assert!(
            parse_key_material(b"", None, &l)
                .unwrap_err()
                .contains("empty")
        );
        assert!(
            parse_key_material(b"hello", None, &l)
                .unwrap_err()
                .contains("not a key file")
        );
        assert!(parse_key_material(&[0x30, 0x03, 1, 2, 3], None, &l).is_err());
        assert!(parse_key_material(&[0x99, 0x01], None, &l).is_err());
        let pem = b"-----BEGIN FOO-----\nAAAA\n-----END FOO-----\n";
        assert!(
            parse_key_material(pem, None, &l)
                .unwrap_err()
                .contains("FOO")
        );
    }

    #[test]
    fn reads_generated_material() {
        let l = Limits::default();
        let key = PrivateKey::generate(smime::KeyKind::Ec(smime::Curve::P256)).unwrap();
        let cert = smime::issue::self_signed(
            &key,
            &smime::CertificateParams::user("A", "a@example.com"),
            &mut rand_core::OsRng,
        )
        .unwrap();
        let pkcs8 = key.to_pkcs8_der().unwrap();
        let mut pem = smime::pem::encode("CERTIFICATE", cert.der());
        pem.push_str(&smime::pem::encode("PRIVATE KEY", &pkcs8));
        let items = parse_key_material(pem.as_bytes(), None, &l).unwrap();
        assert!(matches!(&items[0], Material::Certificate(c) if c == &cert));
        assert!(matches!(&items[1], Material::PrivateKey(k) if k.matches(&cert)));
        let der = parse_key_material(cert.der(), None, &l).unwrap();
        assert!(matches!(&der[0], Material::Certificate(c) if c == &cert));
        let k = parse_key_material(&pkcs8, None, &l).unwrap();
        assert!(matches!(&k[0], Material::PrivateKey(k) if k.matches(&cert)));

        let sk = pgp::SecretKey::generate("B <b@example.org>", pgp::KeyKind::Cv25519).unwrap();
        let items = parse_key_material(&sk.to_armored_secret().unwrap(), None, &l).unwrap();
        assert!(
            matches!(&items[0], Material::PgpSecretKey { cert, .. } if cert.fingerprint() == sk.cert().fingerprint())
        );
        let items = parse_key_material(&sk.to_armored_public().unwrap(), None, &l).unwrap();
        assert!(matches!(&items[0], Material::PgpCertificate(c) if c.has_address("b@example.org")));
    }
}
