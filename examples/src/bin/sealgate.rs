//! `sealgate`: the command-line face of the Sealgate libraries.
//!
//! Exit codes: 0 success, 1 a "no" answer (the signature is invalid), 2 an error (bad input,
//! wrong key or password, unreadable file). Errors are one line on stderr, never a backtrace.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};
use sealgate::Limits;
use sealgate::smime::{
    self, Certificate, DigestAlgorithm, EncryptMessageOptions, Identity, Recipient,
    SignMessageOptions, TrustStore,
};
use zeroize::Zeroizing;

#[derive(Parser)]
#[command(
    name = "sealgate",
    version,
    about = "Sealgate secure email gateway tools"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// S/MIME: sign, verify, encrypt and decrypt whole RFC 5322 messages.
    #[command(subcommand)]
    Smime(SmimeCommand),
}

#[derive(Subcommand)]
enum SmimeCommand {
    /// Sign a message (multipart/signed by default, --opaque for pkcs7-mime signed-data).
    Sign(SignArgs),
    /// Verify a signed message; prints the signer and each check.
    /// Exit 0 valid, 1 invalid, 2 error.
    Verify(VerifyArgs),
    /// Encrypt a message to one or more recipient certificates, optionally signing first.
    Encrypt(EncryptArgs),
    /// Decrypt a message with our key; verifies an inner signature when --trust is given.
    Decrypt(DecryptArgs),
}

/// Our key and certificate: --key/--cert (PEM or DER) or --p12.
#[derive(Args)]
struct IdentityArgs {
    /// Private key file (PEM or DER: PKCS#8, encrypted PKCS#8, PKCS#1, SEC1).
    #[arg(long, value_name = "KEY", requires = "cert", conflicts_with = "p12")]
    key: Option<PathBuf>,
    /// Certificate file (PEM or DER) belonging to --key.
    #[arg(long, value_name = "CERT", requires = "key", conflicts_with = "p12")]
    cert: Option<PathBuf>,
    /// PKCS#12 file with key and certificate (replaces --key/--cert).
    #[arg(long, value_name = "FILE")]
    p12: Option<PathBuf>,
    /// Name of the environment variable holding the PKCS#12 or key password.
    #[arg(long, value_name = "VAR")]
    password_env: Option<String>,
}

#[derive(Args)]
struct InOut {
    /// Input message (default: stdin).
    #[arg(long = "in", value_name = "FILE")]
    input: Option<PathBuf>,
    /// Output file (default: stdout).
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

#[derive(Args)]
struct SignArgs {
    #[command(flatten)]
    id: IdentityArgs,
    /// PEM file with intermediate certificates to include.
    #[arg(long, value_name = "PEM")]
    chain: Option<PathBuf>,
    /// Opaque signing: application/pkcs7-mime; smime-type=signed-data.
    #[arg(long)]
    opaque: bool,
    /// Digest for RSA keys (ECDSA keys use their curve's digest).
    #[arg(long, value_enum, default_value_t = Digest::Sha256)]
    digest: Digest,
    /// Use RSASSA-PSS instead of PKCS#1 v1.5 (RSA keys).
    #[arg(long)]
    pss: bool,
    #[command(flatten)]
    io: InOut,
}

#[derive(Args)]
struct VerifyArgs {
    /// PEM file of trust anchors (CA certificates).
    #[arg(long, value_name = "CA_PEM")]
    trust: PathBuf,
    /// Input message (default: stdin).
    #[arg(long = "in", value_name = "FILE")]
    input: Option<PathBuf>,
    /// Write the message without its signature here.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

#[derive(Args)]
struct EncryptArgs {
    /// Recipient certificate (PEM or DER); repeat for several recipients.
    #[arg(long = "to", value_name = "CERT", required = true)]
    to: Vec<PathBuf>,
    /// Content cipher.
    #[arg(long, value_enum, default_value_t = Cipher::Aes256Cbc)]
    cipher: Cipher,
    /// Use RSAES-OAEP (SHA-256) instead of PKCS#1 v1.5 for RSA recipients.
    #[arg(long)]
    oaep: bool,
    /// Replace the outer (clear-text) Subject with this text.
    #[arg(long, value_name = "TEXT")]
    subject: Option<String>,
    /// Sign first with this key (sign-then-encrypt).
    #[arg(long, value_name = "KEY", requires = "sign_cert")]
    sign_key: Option<PathBuf>,
    /// Certificate of --sign-key.
    #[arg(long, value_name = "CERT", requires = "sign_key")]
    sign_cert: Option<PathBuf>,
    /// PEM file with intermediate certificates to include in the signature.
    #[arg(long, value_name = "PEM")]
    chain: Option<PathBuf>,
    /// Sign first with this PKCS#12 identity (replaces --sign-key/--sign-cert).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["sign_key", "sign_cert"])]
    p12: Option<PathBuf>,
    /// Environment variable holding the signing key or PKCS#12 password.
    #[arg(long, value_name = "VAR")]
    password_env: Option<String>,
    #[command(flatten)]
    io: InOut,
}

#[derive(Args)]
struct DecryptArgs {
    #[command(flatten)]
    id: IdentityArgs,
    /// Verify an inner signature against these trust anchors.
    #[arg(long, value_name = "CA_PEM")]
    trust: Option<PathBuf>,
    #[command(flatten)]
    io: InOut,
}

#[derive(Clone, Copy, ValueEnum)]
enum Digest {
    Sha256,
    Sha384,
    Sha512,
}

#[derive(Clone, Copy, ValueEnum)]
enum Cipher {
    #[value(name = "aes-256-gcm")]
    Aes256Gcm,
    #[value(name = "aes-256-cbc")]
    Aes256Cbc,
    #[value(name = "aes-128-cbc")]
    Aes128Cbc,
}

/// A failure with the exit code it maps to.
struct Failure(u8, String);

impl<E: std::fmt::Display> From<E> for Failure {
    fn from(e: E) -> Self {
        Failure(2, e.to_string())
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Smime(c) => match c {
            SmimeCommand::Sign(a) => sign(a),
            SmimeCommand::Verify(a) => verify(a),
            SmimeCommand::Encrypt(a) => encrypt(a),
            SmimeCommand::Decrypt(a) => decrypt(a),
        },
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(Failure(code, msg)) => {
            eprintln!("sealgate: {msg}");
            ExitCode::from(code)
        }
    }
}

fn read_file(path: &Path) -> Result<Vec<u8>, Failure> {
    std::fs::read(path).map_err(|e| Failure(2, format!("{}: {e}", path.display())))
}

fn read_input(path: Option<&Path>) -> Result<Vec<u8>, Failure> {
    match path {
        Some(p) => read_file(p),
        None => {
            let mut buf = Vec::new();
            std::io::stdin()
                .read_to_end(&mut buf)
                .map_err(|e| Failure(2, format!("stdin: {e}")))?;
            Ok(buf)
        }
    }
}

fn write_output(path: Option<&Path>, data: &[u8]) -> Result<(), Failure> {
    match path {
        Some(p) => std::fs::write(p, data).map_err(|e| Failure(2, format!("{}: {e}", p.display()))),
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(data)
                .and_then(|()| out.flush())
                .map_err(|e| Failure(2, format!("stdout: {e}")))
        }
    }
}

fn password(var: Option<&str>) -> Result<Option<secrecy::SecretString>, Failure> {
    match var {
        None => Ok(None),
        Some(v) => {
            let value = Zeroizing::new(
                std::env::var(v)
                    .map_err(|_| Failure(2, format!("environment variable {v} is not set")))?,
            );
            Ok(Some(secrecy::SecretString::from(value.as_str())))
        }
    }
}

fn with_path<T>(path: &Path, r: Result<T, smime::Error>) -> Result<T, Failure> {
    r.map_err(|e| Failure(2, format!("{}: {e}", path.display())))
}

/// Like [`with_path`] for files that may be password-protected: when no password was given,
/// say how to give one.
fn with_password_hint<T>(
    path: &Path,
    r: Result<T, smime::Error>,
    password_given: bool,
) -> Result<T, Failure> {
    match r {
        Err(smime::Error::BadPassword) if !password_given => Err(Failure(
            2,
            format!(
                "{}: the file is password-protected: name the variable holding the password with --password-env",
                path.display()
            ),
        )),
        r => with_path(path, r),
    }
}

/// Our identity from --p12, or from --key and --cert (+ --chain). Each file is read and parsed
/// on its own so that an error names the file at fault.
fn load_identity(
    key: Option<&Path>,
    cert: Option<&Path>,
    p12: Option<&Path>,
    chain: Option<&Path>,
    password_env: Option<&str>,
    limits: &Limits,
) -> Result<Identity, Failure> {
    let pw = password(password_env)?;
    let extra = match chain {
        Some(chain) => with_path(chain, Certificate::load_all(&read_file(chain)?, limits))?,
        None => Vec::new(),
    };
    if let Some(p12) = p12 {
        let pw = pw.ok_or_else(|| {
            Failure(
                2,
                "--p12 needs --password-env VAR (the variable holding its password)".into(),
            )
        })?;
        let mut id = with_path(p12, Identity::from_pkcs12(&read_file(p12)?, &pw, limits))?;
        id.chain.extend(extra);
        return Ok(id);
    }
    let (Some(key_path), Some(cert_path)) = (key, cert) else {
        return Err(Failure(2, "give --key and --cert, or --p12".into()));
    };
    let key = with_password_hint(
        key_path,
        smime::load_private_key(&read_file(key_path)?, pw.as_ref(), limits),
        pw.is_some(),
    )?;
    // The certificate is the one in the file that belongs to the key, so a "full chain" PEM
    // works in any order; its other certificates go with the chain.
    let mut certs = with_path(
        cert_path,
        Certificate::load_all(&read_file(cert_path)?, limits),
    )?;
    let pos = certs.iter().position(|c| key.matches(c)).ok_or_else(|| {
        Failure(
            2,
            format!(
                "{}: the private key {} does not match this certificate",
                cert_path.display(),
                key_path.display()
            ),
        )
    })?;
    let cert = certs.remove(pos);
    certs.extend(extra);
    if certs.len() >= limits.max_certificates {
        return Err(Failure(
            2,
            format!(
                "too many certificates in --cert and --chain (limit {})",
                limits.max_certificates
            ),
        ));
    }
    with_path(cert_path, Identity::new(key, cert, certs))
}

fn load_trust(path: &Path, limits: &Limits) -> Result<TrustStore, Failure> {
    let anchors = with_path(path, Certificate::load_all(&read_file(path)?, limits))?;
    Ok(TrustStore::new(anchors))
}

fn sign(a: SignArgs) -> Result<u8, Failure> {
    let limits = Limits::default();
    let id = load_identity(
        a.id.key.as_deref(),
        a.id.cert.as_deref(),
        a.id.p12.as_deref(),
        a.chain.as_deref(),
        a.id.password_env.as_deref(),
        &limits,
    )?;
    let input = read_input(a.io.input.as_deref())?;
    let mut opts = SignMessageOptions::default();
    opts.opaque = a.opaque;
    opts.cms.digest = match a.digest {
        Digest::Sha256 => DigestAlgorithm::Sha256,
        Digest::Sha384 => DigestAlgorithm::Sha384,
        Digest::Sha512 => DigestAlgorithm::Sha512,
    };
    opts.cms.rsa_pss = a.pss;
    let out = smime::sign_message(&input, &id, &opts, &mut rand_core::OsRng, &limits)?;
    write_output(a.io.out.as_deref(), &out)?;
    Ok(0)
}

fn verify(a: VerifyArgs) -> Result<u8, Failure> {
    let limits = Limits::default();
    let trust = load_trust(&a.trust, &limits)?;
    let input = read_input(a.input.as_deref())?;
    let v = smime::verify_message(&input, &trust, None, &limits)?;
    print_verification(&v.verification);
    if let Some(out) = a.out.as_deref() {
        write_output(Some(out), &v.message)?;
    }
    Ok(if v.verification.is_valid() { 0 } else { 1 })
}

fn print_verification(v: &smime::Verification) {
    let mut err = std::io::stderr().lock();
    if v.signers.is_empty() {
        let _ = writeln!(err, "no signers");
    }
    for s in &v.signers {
        match &s.certificate {
            Some(c) => {
                let _ = writeln!(err, "signer: {}", c.subject());
                let _ = writeln!(err, "  addresses: {}", c.email_addresses().join(", "));
                let _ = writeln!(err, "  sha256 fingerprint: {}", c.fingerprint_sha256());
            }
            None => {
                let _ = writeln!(err, "signer: certificate not found");
            }
        }
        for c in s.chain.iter().skip(1) {
            let _ = writeln!(err, "  chain: {}", c.subject());
        }
        for check in &s.checks {
            let _ = writeln!(
                err,
                "  [{}] {:?}: {}",
                if check.passed { "ok" } else { "FAIL" },
                check.name,
                check.detail
            );
        }
    }
    let _ = writeln!(
        err,
        "{}",
        if v.is_valid() {
            "signature: valid"
        } else {
            "signature: INVALID"
        }
    );
}

fn encrypt(a: EncryptArgs) -> Result<u8, Failure> {
    let limits = Limits::default();
    let mut recipients = Vec::with_capacity(a.to.len());
    for path in &a.to {
        let cert = with_path(path, Certificate::load(&read_file(path)?, &limits))?;
        let mut r = Recipient::new(cert);
        if a.oaep {
            r = r.with_oaep(DigestAlgorithm::Sha256);
        }
        recipients.push(r);
    }
    if a.chain.is_some() && a.sign_key.is_none() && a.p12.is_none() {
        return Err(Failure(
            2,
            "--chain is for the signature: give --sign-key/--sign-cert or --p12 too".into(),
        ));
    }
    let signer = if a.sign_key.is_some() || a.p12.is_some() {
        Some(load_identity(
            a.sign_key.as_deref(),
            a.sign_cert.as_deref(),
            a.p12.as_deref(),
            a.chain.as_deref(),
            a.password_env.as_deref(),
            &limits,
        )?)
    } else {
        None
    };
    let input = read_input(a.io.input.as_deref())?;
    let mut opts = EncryptMessageOptions::default();
    opts.cipher = match a.cipher {
        Cipher::Aes256Gcm => smime::ContentCipher::Aes256Gcm,
        Cipher::Aes256Cbc => smime::ContentCipher::Aes256Cbc,
        Cipher::Aes128Cbc => smime::ContentCipher::Aes128Cbc,
    };
    opts.outer_subject = a.subject;
    let sopts = SignMessageOptions::default();
    let out = smime::encrypt_message(
        &input,
        &recipients,
        signer.as_ref().map(|id| (id, &sopts)),
        &opts,
        &mut rand_core::OsRng,
        &limits,
    )?;
    write_output(a.io.out.as_deref(), &out)?;
    Ok(0)
}

fn decrypt(a: DecryptArgs) -> Result<u8, Failure> {
    let limits = Limits::default();
    let id = load_identity(
        a.id.key.as_deref(),
        a.id.cert.as_deref(),
        a.id.p12.as_deref(),
        None,
        a.id.password_env.as_deref(),
        &limits,
    )?;
    let trust = a
        .trust
        .as_deref()
        .map(|p| load_trust(p, &limits))
        .transpose()?;
    let input = read_input(a.io.input.as_deref())?;
    let d = smime::decrypt_message(&input, &id.key, Some(&id.cert), trust.as_ref(), &limits)?;
    write_output(a.io.out.as_deref(), &d.message)?;
    match &d.signature {
        Some(v) => {
            print_verification(&v.verification);
            Ok(if v.verification.is_valid() { 0 } else { 1 })
        }
        None => Ok(0),
    }
}
