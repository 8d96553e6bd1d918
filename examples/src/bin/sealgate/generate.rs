//! `sealgate smime generate-key`: a private key and its X.509 certificate, self-signed or
//! issued by a CA, for every recipient kind the libraries support (ML-KEM included, which no
//! Debian 12 tool makes).

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use clap::{Args, ValueEnum};
use sealgate::Limits;
use sealgate::smime::{
    self, Certificate, CertificateParams, Curve, Identity, KeyKind, Pkcs12Format, PrivateKey,
};
use zeroize::Zeroizing;

use super::{Failure, NewFiles, new_password, printable, read_file, with_password_hint, with_path};

/// The key kinds of `smime generate-key --kind`.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum SmimeKind {
    /// ECDSA/ECDH P-256.
    #[value(name = "ec-p256")]
    EcP256,
    /// ECDSA/ECDH P-384.
    #[value(name = "ec-p384")]
    EcP384,
    /// RSA 2048.
    Rsa2048,
    /// RSA 3072.
    Rsa3072,
    /// RSA 4096.
    Rsa4096,
    /// ML-KEM-512 (FIPS 203), encryption only.
    #[value(name = "ml-kem-512")]
    MlKem512,
    /// ML-KEM-768, encryption only.
    #[value(name = "ml-kem-768")]
    MlKem768,
    /// ML-KEM-1024, encryption only.
    #[value(name = "ml-kem-1024")]
    MlKem1024,
    /// ML-DSA-44 (FIPS 204), signing only (messages and, with --ca, certificates).
    #[value(name = "ml-dsa-44")]
    MlDsa44,
    /// ML-DSA-65, signing only.
    #[value(name = "ml-dsa-65")]
    MlDsa65,
    /// ML-DSA-87, signing only.
    #[value(name = "ml-dsa-87")]
    MlDsa87,
}

impl SmimeKind {
    fn key_kind(self) -> KeyKind {
        use smime::MlKem;
        match self {
            SmimeKind::EcP256 => KeyKind::Ec(Curve::P256),
            SmimeKind::EcP384 => KeyKind::Ec(Curve::P384),
            SmimeKind::Rsa2048 => KeyKind::Rsa(2048),
            SmimeKind::Rsa3072 => KeyKind::Rsa(3072),
            SmimeKind::Rsa4096 => KeyKind::Rsa(4096),
            SmimeKind::MlKem512 => KeyKind::MlKem(MlKem::MlKem512),
            SmimeKind::MlKem768 => KeyKind::MlKem(MlKem::MlKem768),
            SmimeKind::MlKem1024 => KeyKind::MlKem(MlKem::MlKem1024),
            SmimeKind::MlDsa44 => KeyKind::MlDsa(smime::MlDsa::MlDsa44),
            SmimeKind::MlDsa65 => KeyKind::MlDsa(smime::MlDsa::MlDsa65),
            SmimeKind::MlDsa87 => KeyKind::MlDsa(smime::MlDsa::MlDsa87),
        }
    }

    fn is_ml_kem(self) -> bool {
        matches!(self.key_kind(), KeyKind::MlKem(_))
    }
}

/// `--kind` is checked here rather than by clap, so that a wrong one is one line on stderr like
/// every other error.
pub(crate) fn parse_kind<K: ValueEnum>(s: &str) -> Result<K, Failure> {
    K::from_str(s, true).map_err(|_| {
        let names: Vec<String> = K::value_variants()
            .iter()
            .filter_map(|v| v.to_possible_value())
            .map(|v| v.get_name().to_string())
            .collect();
        Failure(
            2,
            format!(
                "--kind: unknown kind \"{}\" (one of: {})",
                printable(s),
                names.join(", ")
            ),
        )
    })
}

#[derive(Args)]
pub(crate) struct GenerateKeyArgs {
    /// Key kind: ec-p256 (default), ec-p384, rsa2048, rsa3072, rsa4096 (sign and encrypt);
    /// ml-kem-512, ml-kem-768, ml-kem-1024 (post-quantum, encryption only: needs --ca-key and
    /// --ca-cert); ml-dsa-44, ml-dsa-65, ml-dsa-87 (post-quantum, signing only; a CA too).
    #[arg(long, value_name = "KIND", default_value = "ec-p256")]
    kind: String,
    /// The mail address of the certificate (subjectAltName rfc822Name). Required unless --ca.
    #[arg(long, value_name = "ADDRESS")]
    email: Option<String>,
    /// The subject common name (default: the address).
    #[arg(long, value_name = "NAME")]
    name: Option<String>,
    /// Where to write the private key (PKCS#8 PEM, mode 0600).
    #[arg(long, value_name = "KEY.pem")]
    key_out: PathBuf,
    /// Where to write the certificate (PEM).
    #[arg(long, value_name = "CERT.pem")]
    cert_out: PathBuf,
    /// Name of the environment variable with a password: --key-out is then encrypted PKCS#8
    /// (PBES2, PBKDF2-HMAC-SHA256, AES-256-CBC), and --p12-out is protected by it.
    #[arg(long, value_name = "VAR")]
    password_env: Option<String>,
    /// Also write key, certificate and the issuing CA certificate as PKCS#12 (AES-256, as
    /// OpenSSL 3 writes; mode 0600), for mail clients. Needs --password-env.
    #[arg(long, value_name = "FILE.p12")]
    p12_out: Option<PathBuf>,
    /// Make a CA certificate (basicConstraints cA, keyCertSign) instead of a user one, to issue
    /// others with --ca-key/--ca-cert (an ML-KEM user's, for one).
    #[arg(long)]
    ca: bool,
    /// Issue the certificate with this CA private key (PEM or DER) instead of self-signing it.
    #[arg(long, value_name = "KEY", requires = "ca_cert")]
    ca_key: Option<PathBuf>,
    /// The CA certificate of --ca-key (PEM or DER).
    #[arg(long, value_name = "CERT", requires = "ca_key")]
    ca_cert: Option<PathBuf>,
    /// Name of the environment variable with the password of an encrypted --ca-key.
    #[arg(long, value_name = "VAR", requires = "ca_key")]
    ca_password_env: Option<String>,
    /// Validity in days from now (default 365; 3650 with --ca).
    #[arg(long, value_name = "N")]
    days: Option<u32>,
}

/// Longest validity accepted (100 years: beyond it is a typing mistake).
const MAX_DAYS: u32 = 36_500;

pub(crate) fn run(a: GenerateKeyArgs) -> Result<u8, Failure> {
    let limits = Limits::default();
    let kind: SmimeKind = parse_kind(&a.kind)?;
    if kind.is_ml_kem() && a.ca {
        return Err(Failure(
            2,
            "--ca: an ML-KEM key cannot sign, so it cannot be a CA: choose a signing --kind".into(),
        ));
    }
    if kind.is_ml_kem() && a.ca_key.is_none() {
        return Err(Failure(
            2,
            format!(
                "--kind {}: an ML-KEM key cannot sign its own certificate (RFC 9935): give --ca-key and --ca-cert of a signing CA (make one with --ca)",
                a.kind.to_ascii_lowercase()
            ),
        ));
    }
    let email = match (&a.email, a.ca) {
        (Some(e), _) => Some(check_email(e)?),
        (None, true) => None,
        (None, false) => {
            return Err(Failure(
                2,
                "--email: a user certificate needs the mail address (or give --ca)".into(),
            ));
        }
    };
    let name = match (&a.name, &email) {
        (Some(n), _) if n.trim().is_empty() || n.chars().any(char::is_control) => {
            return Err(Failure(
                2,
                "--name: empty or with control characters".into(),
            ));
        }
        (Some(n), _) => n.clone(),
        (None, Some(e)) => e.clone(),
        (None, None) => {
            return Err(Failure(2, "--ca: give the CA's name with --name".into()));
        }
    };
    let days = a.days.unwrap_or(if a.ca { 3650 } else { 365 });
    if days == 0 || days > MAX_DAYS {
        return Err(Failure(
            2,
            format!("--days: {days} is not within 1..={MAX_DAYS}"),
        ));
    }
    if a.p12_out.is_some() && a.password_env.is_none() {
        return Err(Failure(
            2,
            "--p12-out needs --password-env VAR (the variable holding its password)".into(),
        ));
    }
    let password = new_password(a.password_env.as_deref(), "--password-env")?;
    let issuer = match (&a.ca_key, &a.ca_cert) {
        (Some(k), Some(c)) => Some(load_ca(k, c, a.ca_password_env.as_deref(), &limits)?),
        _ => None,
    };
    let mut outputs: Vec<&Path> = vec![&a.key_out, &a.cert_out];
    if let Some(p) = &a.p12_out {
        outputs.push(p);
    }
    let mut files = NewFiles::check(&outputs)?;

    let key = PrivateKey::generate(kind.key_kind())?;
    let mut params = if a.ca {
        CertificateParams::ca(&name)
    } else {
        // `user` needs an address; `email` is Some here (checked above)
        CertificateParams::user(&name, email.as_deref().unwrap_or_default())
    };
    params.email = email;
    let now = SystemTime::now();
    params.not_before = now - Duration::from_secs(3600);
    params.not_after = now + Duration::from_secs(u64::from(days) * 86_400);
    let rng = &mut rand_core::OsRng;
    let (cert, chain) = match &issuer {
        Some((ca_key, ca_cert)) => (
            smime::issue::issue(key.public_key(), &params, ca_cert, ca_key, rng)?,
            vec![ca_cert.clone()],
        ),
        None => (smime::issue::self_signed(&key, &params, rng)?, Vec::new()),
    };

    let key_pem = Zeroizing::new(match &password {
        Some(pw) => smime::pem::encode(
            "ENCRYPTED PRIVATE KEY",
            &smime::encrypt_private_key(&key, pw, rng)?,
        ),
        None => smime::pem::encode("PRIVATE KEY", &key.to_pkcs8_der()?),
    });
    files.write(&a.key_out, key_pem.as_bytes(), true)?;
    files.write(
        &a.cert_out,
        smime::pem::encode("CERTIFICATE", cert.der()).as_bytes(),
        false,
    )?;
    let fingerprint = cert.fingerprint_sha256();
    if let (Some(p12), Some(pw)) = (&a.p12_out, &password) {
        let id = Identity::new(key, cert, chain)?;
        let der = Zeroizing::new(id.to_pkcs12(pw, Pkcs12Format::Aes256, rng)?);
        files.write(p12, &der, true)?;
    }
    files.keep();
    println!("{fingerprint}");
    Ok(0)
}

/// A plain `local@domain` address (ASCII: the certificate's rfc822Name is an IA5String).
fn check_email(e: &str) -> Result<String, Failure> {
    let ok = e.is_ascii()
        && !e
            .chars()
            .any(|c| c.is_ascii_control() || c.is_ascii_whitespace() || c == '<' || c == '>')
        && e.rsplit_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        });
    if ok {
        Ok(e.to_string())
    } else {
        Err(Failure(
            2,
            format!(
                "--email: \"{}\" is not a mail address like alice@example.com",
                printable(e)
            ),
        ))
    }
}

/// The issuing CA: its key and certificate, which must belong together and be a CA.
fn load_ca(
    key_path: &Path,
    cert_path: &Path,
    password_env: Option<&str>,
    limits: &Limits,
) -> Result<(PrivateKey, Certificate), Failure> {
    let pw = super::password(password_env)
        .map_err(|Failure(c, m)| Failure(c, m.replace("--password-env", "--ca-password-env")))?;
    let key = with_password_hint(
        key_path,
        smime::load_private_key(&read_file(key_path, limits)?, pw.as_ref(), limits),
        pw.is_some(),
    )
    .map_err(|Failure(c, m)| Failure(c, m.replace("--password-env", "--ca-password-env")))?;
    let certs = with_path(
        cert_path,
        Certificate::load_all(&read_file(cert_path, limits)?, limits),
    )?;
    let cert = certs.into_iter().find(|c| key.matches(c)).ok_or_else(|| {
        Failure(
            2,
            format!(
                "{}: the CA key {} does not match this certificate",
                cert_path.display(),
                key_path.display()
            ),
        )
    })?;
    if !cert.is_ca() {
        return Err(Failure(
            2,
            format!(
                "{}: not a CA certificate (basicConstraints cA and keyCertSign): it cannot issue others",
                cert_path.display()
            ),
        ));
    }
    if matches!(key.public_key(), smime::PublicKey::MlKem { .. }) {
        return Err(Failure(
            2,
            format!(
                "{}: an ML-KEM key cannot sign certificates",
                key_path.display()
            ),
        ));
    }
    if !cert.is_valid_at(SystemTime::now()) {
        return Err(Failure(
            2,
            format!(
                "{}: the CA certificate is not valid now",
                cert_path.display()
            ),
        ));
    }
    Ok((key, cert))
}
