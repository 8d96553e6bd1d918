//! `sealgate`: the command-line face of the Sealgate libraries.
//!
//! Exit codes: 0 success, 1 a "no" answer (the signature is invalid), 2 an error (bad input,
//! wrong key or password, unreadable file). Errors are one line on stderr, never a backtrace.

use std::fs::File;
use std::io::{BufRead, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use clap::{Args, Parser, Subcommand, ValueEnum};
use sealgate::Limits;
use sealgate::mime::reencode::{Reencode, reencode};
use sealgate::smime::{
    self, Certificate, DigestAlgorithm, EncryptMessageOptions, Identity, Recipient,
    SignMessageOptions, TrustStore,
};
use zeroize::Zeroizing;

#[path = "sealgate/audit.rs"]
mod audit;
#[path = "sealgate/demo.rs"]
mod demo;
#[path = "sealgate/filter.rs"]
mod filter;
#[path = "sealgate/generate.rs"]
mod generate;
#[path = "sealgate/keys.rs"]
mod keys;
#[path = "sealgate/pgp.rs"]
mod pgp;
#[path = "sealgate/policy.rs"]
mod policy;
#[path = "sealgate/process.rs"]
mod process;
#[path = "sealgate/smtp.rs"]
mod smtp;
#[path = "sealgate/zip.rs"]
mod zip;

const EXIT_CODES: &str = "Exit status: 0 success, 2 error (one line on stderr).";

#[derive(Parser)]
#[command(
    name = "sealgate",
    version,
    about = "Sealgate secure email gateway tools",
    after_help = "Run `sealgate smime <COMMAND> --help` for the options of each command."
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
    /// OpenPGP (PGP/MIME, RFC 3156): encrypt, sign, decrypt and verify whole RFC 5322 messages.
    #[command(subcommand)]
    Pgp(pgp::PgpCommand),
    /// The audit trail: verify the hash chain of an audit file.
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// The key store: import, list, lookup by address, PKCS#12 export, expiry, CRLs.
    Keys(keys::KeysArgs),
    /// Policy: what the rules decide for a message, per recipient, and why.
    #[command(subcommand)]
    Policy(policy::PolicyCommand),
    /// Password ZIP (WinZip AES-256 or ZipCrypto): create, extract, and package a message with
    /// its sender notification.
    #[command(subcommand)]
    Zip(zip::ZipCommand),
    /// The example gateway: make a demo CA, keys, a key store, a policy and sample mail in DIR,
    /// process it all, print what was done and how to check it with openssl, gpg and 7z.
    #[command(after_help = EXIT_CODES)]
    Demo(demo::DemoArgs),
    /// Process one message with a gateway configuration (gateway.toml); writes every output.
    #[command(
        after_help = "Exit status: 0 delivered to every recipient, 1 some recipient refused by policy or held (the reasons on stdout), 2 error (one line on stderr)."
    )]
    Process(process::ProcessArgs),
    /// SMTP content filter for Postfix (after-queue, FILTER_README): SMTP in on --listen, each
    /// message processed with gateway.toml, the copies out over SMTP to --next-hop.
    #[command(
        after_help = "Replies: 250 once every copy was accepted by the next hop; 550 when policy rejects a recipient (the reason follows); 451 on a temporary failure (key store, next hop, a recipient held); 552 over the size limit. SIGTERM: stop accepting, finish the messages in flight, exit 0."
    )]
    Filter(filter::FilterArgs),
}

#[derive(Subcommand)]
enum SmimeCommand {
    /// Sign a message (multipart/signed by default, --opaque for pkcs7-mime signed-data).
    ///
    /// Reads a whole RFC 5322 message and writes it signed: the header fields stay outside,
    /// the MIME entity (Content-* fields and body) is signed (RFC 8551 §3.5). Detached
    /// signing first re-encodes 8-bit parts so that the signature survives transport.
    #[command(after_help = EXIT_CODES)]
    Sign(SignArgs),
    /// Verify a signed message; prints the signer and each check on stderr.
    ///
    /// Reads a detached (multipart/signed) or opaque (pkcs7-mime signed-data) message, checks
    /// the signature, the certificate chain up to --trust, validity, key usage and that the
    /// signer's address is the From address, and prints each check on stderr. On a
    /// triple-wrapped message (RFC 2634) this checks the outer signature without any key, and
    /// --out writes the encrypted message that it covers.
    #[command(
        after_help = "Exit status: 0 valid, 1 invalid (the report on stderr says which check failed), 2 error (one line on stderr)."
    )]
    Verify(VerifyArgs),
    /// Encrypt a message to one or more recipient certificates, optionally signing first.
    ///
    /// The MIME entity is encrypted (RFC 8551 §3.3); the header fields stay in clear, so use
    /// --subject to hide the Subject. With --sign-key/--sign-cert or --p12 the message is
    /// signed first, then encrypted (RFC 8551 §3.7); with --triple-wrap the encrypted part is
    /// signed again (RFC 2634).
    #[command(after_help = EXIT_CODES)]
    Encrypt(EncryptArgs),
    /// Decrypt a message with our key; verifies an inner signature when --trust is given.
    ///
    /// Writes the header fields and the decrypted entity. Every decryption failure (wrong
    /// key, bad padding, bad authentication tag) gives the same error on purpose. A
    /// triple-wrapped message (signed, encrypted, signed: RFC 2634) needs --trust: the outer
    /// and the inner signature are both checked and reported.
    #[command(
        after_help = "Exit status: 0 decrypted (and, with --trust, the inner signature valid; for a triple wrap, both signatures valid), 1 decrypted but a signature is invalid or missing (the message is still written), 2 error (one line on stderr)."
    )]
    Decrypt(DecryptArgs),
    /// Generate a key and its certificate: self-signed, or issued by --ca-key/--ca-cert.
    ///
    /// Writes the private key as PKCS#8 PEM (0600; encrypted under the password of
    /// --password-env), the certificate as PEM, and prints its SHA-256 fingerprint. ML-KEM keys
    /// (post-quantum recipients, RFC 9935/9936) cannot sign, so their certificate must come
    /// from a signing CA: make one with --ca, or use your own. No output file is overwritten.
    #[command(name = "generate-key", after_help = EXIT_CODES)]
    GenerateKey(generate::GenerateKeyArgs),
}

/// Our key and certificate: --key/--cert (PEM or DER) or --p12.
#[derive(Args)]
struct IdentityArgs {
    /// Private key file (PEM or DER: PKCS#8, encrypted PKCS#8, PKCS#1, SEC1).
    #[arg(long, value_name = "KEY", requires = "cert", conflicts_with = "p12")]
    key: Option<PathBuf>,
    /// Certificate file (PEM or DER) of --key; other certificates in it are sent as the chain.
    #[arg(long, value_name = "CERT", requires = "key", conflicts_with = "p12")]
    cert: Option<PathBuf>,
    /// PKCS#12 file (.p12/.pfx) with key, certificate and chain (replaces --key/--cert).
    #[arg(long, value_name = "FILE")]
    p12: Option<PathBuf>,
    /// Name of the environment variable that holds the password of --p12 or of an encrypted
    /// --key (passwords are never taken on the command line).
    #[arg(long, value_name = "VAR")]
    password_env: Option<String>,
}

#[derive(Args)]
struct InOut {
    /// Input message (default: stdin).
    #[arg(long = "in", value_name = "FILE")]
    input: Option<PathBuf>,
    /// Output message (default: stdout).
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

#[derive(Args)]
struct SignArgs {
    #[command(flatten)]
    id: IdentityArgs,
    /// PEM or DER file with intermediate CA certificates to include in the signature.
    #[arg(long, value_name = "PEM")]
    chain: Option<PathBuf>,
    /// Opaque signing: application/pkcs7-mime; smime-type=signed-data (readable only by
    /// S/MIME clients) instead of multipart/signed.
    #[arg(long)]
    opaque: bool,
    /// Digest for RSA keys (ECDSA keys use their curve's digest: SHA-256 for P-256, SHA-384
    /// for P-384; ML-DSA keys SHA-512, RFC 9882).
    #[arg(long, value_enum, default_value_t = Digest::Sha256)]
    digest: Digest,
    /// Use RSASSA-PSS instead of PKCS#1 v1.5 (RSA keys only).
    #[arg(long)]
    pss: bool,
    /// Header protection (RFC 9788, hp="clear"): sign the header fields too.
    #[arg(long)]
    protect_headers: bool,
    /// Where a part of a large message (over 8 MiB, signed as a stream) that must be
    /// re-encoded to 7-bit first waits while it is looked at, when it is over 1 MiB (an
    /// unnamed temporary file): default the directory of --out, else $TMPDIR.
    #[arg(long, value_name = "DIR")]
    spill_dir: Option<PathBuf>,
    #[command(flatten)]
    io: InOut,
}

#[derive(Args)]
struct VerifyArgs {
    /// PEM or DER file of trust anchors (CA certificates).
    #[arg(long, value_name = "CA_PEM")]
    trust: PathBuf,
    /// Take this time as "now" (RFC 3339, e.g. 2026-11-23T10:00:00Z): for the validity-now
    /// check, which only warns, and for the validity of signatures without a signingTime.
    #[arg(long, value_name = "TIME", value_parser = parse_rfc3339)]
    at: Option<SystemTime>,
    /// Input message (default: stdin).
    #[arg(long = "in", value_name = "FILE")]
    input: Option<PathBuf>,
    /// Write the message without its signature here (also when the signature is invalid:
    /// check the exit status).
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// A certificate (PEM or DER; repeat for several) allowed to sign the outer layer of a
    /// triple wrap for an author whose address it does not carry (a gateway or mail list
    /// agent, RFC 2634 §1.1): only the signer-address check is excused, for it alone.
    #[arg(long, value_name = "CERT")]
    outer_signer: Vec<PathBuf>,
    /// Directory for the spill file of a large message (over 8 MiB), which is verified as a
    /// stream (default: the directory of --out, else $TMPDIR).
    #[arg(long, value_name = "DIR")]
    spill_dir: Option<PathBuf>,
}

#[derive(Args)]
struct EncryptArgs {
    /// Recipient certificate (PEM or DER); repeat for several recipients. RSA and EC
    /// (P-256, P-384) keys.
    #[arg(long = "to", value_name = "CERT", required = true)]
    to: Vec<PathBuf>,
    /// Content cipher (aes-256-gcm gives AuthEnvelopedData, RFC 5083; not every client
    /// reads it).
    #[arg(long, value_enum, default_value_t = Cipher::Aes256Cbc)]
    cipher: Cipher,
    /// Use RSAES-OAEP (SHA-256) instead of PKCS#1 v1.5 for RSA recipients.
    #[arg(long)]
    oaep: bool,
    /// Post-quantum only: refuse to encrypt unless every --to certificate has an ML-KEM key
    /// (each then gets a KEMRecipientInfo, RFC 9629/9936). Without it, each certificate
    /// decides: ML-KEM gets KEMRecipientInfo, RSA key transport, EC key agreement.
    #[arg(long)]
    pq: bool,
    /// Replace the outer Subject, which travels in clear, with this text.
    #[arg(long, value_name = "TEXT", conflicts_with = "protect_headers")]
    subject: Option<String>,
    /// Header protection (RFC 9788, hp="cipher"): the header fields travel inside the
    /// encryption (inside the signature when signing), the outer Subject becomes "[...]".
    #[arg(long)]
    protect_headers: bool,
    /// With --protect-headers: show the real Subject at the top of the main text body part(s)
    /// (Legacy Display Element, RFC 9788 §4.2: every alternative of a multipart/alternative,
    /// the first part of a multipart/mixed) for clients that do not read header protection.
    #[arg(long, requires = "protect_headers")]
    legacy_display: bool,
    /// Sign first with this private key (sign-then-encrypt); needs --sign-cert.
    #[arg(long, value_name = "KEY", requires = "sign_cert")]
    sign_key: Option<PathBuf>,
    /// Certificate of --sign-key.
    #[arg(long, value_name = "CERT", requires = "sign_key")]
    sign_cert: Option<PathBuf>,
    /// PEM or DER file with intermediate CA certificates to include in the signature.
    #[arg(long, value_name = "PEM")]
    chain: Option<PathBuf>,
    /// Sign first with this PKCS#12 identity (replaces --sign-key/--sign-cert).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["sign_key", "sign_cert"])]
    p12: Option<PathBuf>,
    /// Name of the environment variable that holds the password of --p12 or of an
    /// encrypted --sign-key.
    #[arg(long, value_name = "VAR")]
    password_env: Option<String>,
    /// Triple wrap (RFC 2634): sign, encrypt, then sign the encrypted part again, so that a
    /// gateway can check the outer signature without decrypting. Needs a signer
    /// (--sign-key/--sign-cert or --p12); the outer signer is the same one unless
    /// --outer-key/--outer-cert or --outer-p12 name another (e.g. the gateway's).
    #[arg(long)]
    triple_wrap: bool,
    /// With --triple-wrap: the outer signature's private key; needs --outer-cert.
    #[arg(long, value_name = "KEY", requires_all = ["outer_cert", "triple_wrap"])]
    outer_key: Option<PathBuf>,
    /// Certificate of --outer-key.
    #[arg(long, value_name = "CERT", requires = "outer_key")]
    outer_cert: Option<PathBuf>,
    /// With --triple-wrap: the outer signer as a PKCS#12 file (password in the variable of
    /// --password-env).
    #[arg(long, value_name = "FILE", requires = "triple_wrap", conflicts_with_all = ["outer_key", "outer_cert"])]
    outer_p12: Option<PathBuf>,
    /// Where a part of a large message (over 8 MiB, encrypted as a stream) that must be
    /// re-encoded first (a binary part in base64; any 8-bit part when signed inside) waits
    /// while it is looked at, when it is over 1 MiB (an unnamed temporary file): default the
    /// directory of --out, else $TMPDIR.
    #[arg(long, value_name = "DIR")]
    spill_dir: Option<PathBuf>,
    #[command(flatten)]
    io: InOut,
}

#[derive(Args)]
struct DecryptArgs {
    #[command(flatten)]
    id: IdentityArgs,
    /// Verify an inner signature against these trust anchors (PEM or DER CA certificates).
    #[arg(long, value_name = "CA_PEM")]
    trust: Option<PathBuf>,
    /// Where the decrypted message waits (a 0600 temporary file) until every check has
    /// passed: default the directory of --out (then it is renamed into place), else $TMPDIR.
    #[arg(long, value_name = "DIR")]
    spill_dir: Option<PathBuf>,
    /// For a triple wrap: a certificate (repeatable) allowed to sign its outer layer for an
    /// author whose address it does not carry (see `verify --outer-signer`).
    #[arg(long, value_name = "CERT")]
    outer_signer: Vec<PathBuf>,
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
    // A panic is a bug, but even then the contract holds: one line on stderr, exit 2, no
    // backtrace (whatever RUST_BACKTRACE says).
    std::panic::set_hook(Box::new(|info| {
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        let place = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        eprintln!(
            "sealgate: internal error (a bug, please report it): {}{place}",
            one_line(&msg)
        );
    }));
    let result = std::panic::catch_unwind(|| match cli.command {
        Command::Smime(c) => match c {
            SmimeCommand::Sign(a) => sign(a),
            SmimeCommand::Verify(a) => verify(a),
            SmimeCommand::Encrypt(a) => encrypt(a),
            SmimeCommand::Decrypt(a) => decrypt(a),
            SmimeCommand::GenerateKey(a) => generate::run(a),
        },
        Command::Pgp(c) => pgp::run(c),
        Command::Audit(c) => audit::run(c),
        Command::Keys(a) => keys::run(a),
        Command::Policy(c) => policy::run(c),
        Command::Zip(c) => zip::run(c),
        Command::Demo(a) => demo::run(a),
        Command::Process(a) => process::run(a),
        Command::Filter(a) => filter::run(a),
    });
    match result {
        Ok(Ok(code)) => ExitCode::from(code),
        Ok(Err(Failure(code, msg))) => {
            eprintln!("sealgate: {}", one_line(&msg));
            ExitCode::from(code)
        }
        // the hook has printed the one line
        Err(_) => ExitCode::from(2),
    }
}

/// Errors are one line on stderr, whatever an underlying message holds.
fn one_line(msg: &str) -> String {
    msg.split(['\r', '\n'])
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Read at most `max` bytes from `r`; more is an error, so that no input can make us allocate
/// beyond the configured [`Limits`]. `size_hint` (a file's length) sizes the buffer once, so
/// that secrets read into it are not left behind in a reallocated copy.
fn read_bounded(
    mut r: impl Read,
    size_hint: u64,
    max: usize,
    what: &dyn std::fmt::Display,
) -> Result<Zeroizing<Vec<u8>>, Failure> {
    let cap = usize::try_from(size_hint).unwrap_or(max).min(max);
    let mut buf = Zeroizing::new(Vec::with_capacity(cap.saturating_add(1)));
    r.by_ref()
        .take(u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1))
        .read_to_end(&mut buf)
        .map_err(|e| Failure(2, format!("{what}: {e}")))?;
    if buf.len() > max {
        return Err(Failure(
            2,
            format!("{what}: larger than the limit of {max} bytes"),
        ));
    }
    Ok(buf)
}

/// A key, certificate, PKCS#12 or trust file (wiped from memory when dropped: it may hold a
/// private key).
fn read_file(path: &Path, limits: &Limits) -> Result<Zeroizing<Vec<u8>>, Failure> {
    read_path(path, limits.max_cms_bytes)
}

fn read_path(path: &Path, max: usize) -> Result<Zeroizing<Vec<u8>>, Failure> {
    let f = File::open(path).map_err(|e| Failure(2, format!("{}: {e}", path.display())))?;
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    read_bounded(f, len, max, &path.display())
}

fn read_input(path: Option<&Path>, limits: &Limits) -> Result<Zeroizing<Vec<u8>>, Failure> {
    match path {
        Some(p) => read_path(p, limits.max_message_bytes),
        None => read_bounded(
            std::io::stdin().lock(),
            0,
            limits.max_message_bytes,
            &"stdin",
        ),
    }
}

/// The input as a buffered reader, for the streaming paths (nothing is read yet).
fn open_input(path: Option<&Path>) -> Result<Box<dyn BufRead>, Failure> {
    match path {
        Some(p) => {
            let f = File::open(p).map_err(|e| Failure(2, format!("{}: {e}", p.display())))?;
            Ok(Box::new(std::io::BufReader::with_capacity(256 * 1024, f)))
        }
        None => Ok(Box::new(std::io::BufReader::with_capacity(
            256 * 1024,
            std::io::stdin(),
        ))),
    }
}

fn input_name(path: Option<&Path>) -> String {
    path.map_or_else(|| "stdin".to_string(), |p| p.display().to_string())
}

/// The rest of a streamed input after `head`, whole and bounded as [`read_input`] reads it:
/// for the commands (and message kinds) that need the whole message in memory.
fn read_rest(
    head: &[u8],
    rest: impl Read,
    path: Option<&Path>,
    limits: &Limits,
) -> Result<Zeroizing<Vec<u8>>, Failure> {
    let size_hint = path
        .and_then(|p| std::fs::metadata(p).ok())
        .map_or(0, |m| m.len());
    read_bounded(
        std::io::Cursor::new(head).chain(rest),
        size_hint,
        limits.max_message_bytes,
        &input_name(path),
    )
}

/// Where a streamed result waits until it is complete: `dir`, else the directory of `out`
/// (so that it can be renamed into place) when `out` can take a rename, else the temporary
/// directory.
fn spill_dir(dir: Option<&Path>, out: Option<&Path>) -> PathBuf {
    match (dir, out) {
        (Some(d), _) => d.to_path_buf(),
        (None, Some(o)) if renamable(o) => match o.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        },
        (None, _) => std::env::temp_dir(),
    }
}

/// Whether a finished temporary file may be renamed to `out`: when `out` does not exist or is
/// a regular file. A device (`--out /dev/null`, a terminal), a FIFO or a symbolic link is
/// written to instead: a rename would replace the device node or the link itself.
fn renamable(out: &Path) -> bool {
    match std::fs::symlink_metadata(out) {
        Ok(m) => m.file_type().is_file(),
        Err(e) => e.kind() == std::io::ErrorKind::NotFound,
    }
}

/// [`spill_dir`], checked to take a file: an unwritable place is reported before any input is
/// read, against --out (or the spill directory when it was given or there is no --out).
fn usable_spill_dir(dir: Option<&Path>, out: Option<&Path>) -> Result<PathBuf, Failure> {
    let chosen = spill_dir(dir, out);
    tempfile::tempfile_in(&chosen).map_err(|e| {
        let name = match (dir, out) {
            (None, Some(out)) => out.display().to_string(),
            _ => chosen.display().to_string(),
        };
        Failure(2, format!("{name}: {e}"))
    })?;
    Ok(chosen)
}

/// Write a finished temporary file as the output: renamed into place when it is in the
/// output's directory, else copied (to stdout when there is no --out).
fn release_output(
    file: tempfile::NamedTempFile,
    in_dir: &Path,
    out: Option<&Path>,
) -> Result<(), Failure> {
    match out {
        Some(p) if renamable(p) && spill_dir(None, Some(p)) == in_dir => file
            .persist(p)
            .map(drop)
            .map_err(|e| Failure(2, format!("{}: {}", p.display(), e.error))),
        Some(p) => {
            let mut from = file.reopen()?;
            let mut to =
                File::create(p).map_err(|e| Failure(2, format!("{}: {e}", p.display())))?;
            std::io::copy(&mut from, &mut to)
                .and_then(|_| to.flush())
                .map(drop)
                .map_err(|e| Failure(2, format!("{}: {e}", p.display())))
        }
        None => {
            let mut from = file.reopen()?;
            let mut stdout = std::io::stdout().lock();
            std::io::copy(&mut from, &mut stdout)
                .and_then(|_| stdout.flush())
                .map(drop)
                .map_err(|e| Failure(2, format!("stdout: {e}")))
        }
    }
}

/// A decrypted or verified message waiting in its spill file: S/MIME's or OpenPGP's
/// `SpilledMessage`, OpenPGP's `SpilledVerified`.
trait Spilled {
    /// Keep it as `path` (a rename within the spill directory's file system).
    fn persist_as(self, path: &Path) -> Result<(), String>;
    /// Copy it to `out`.
    fn copy_into(&mut self, out: &mut dyn Write) -> std::io::Result<u64>;
}

impl Spilled for smime::stream::SpilledMessage {
    fn persist_as(self, path: &Path) -> Result<(), String> {
        self.persist(path).map(drop).map_err(|e| e.to_string())
    }
    fn copy_into(&mut self, mut out: &mut dyn Write) -> std::io::Result<u64> {
        self.copy_to(&mut out)
    }
}

impl Spilled for smime::stream::SpilledVerified {
    fn persist_as(self, path: &Path) -> Result<(), String> {
        self.persist(path).map(drop).map_err(|e| e.to_string())
    }
    fn copy_into(&mut self, mut out: &mut dyn Write) -> std::io::Result<u64> {
        self.copy_to(&mut out)
    }
}

impl Spilled for sealgate::pgp::stream::SpilledMessage {
    fn persist_as(self, path: &Path) -> Result<(), String> {
        self.persist(path).map(drop).map_err(|e| e.to_string())
    }
    fn copy_into(&mut self, mut out: &mut dyn Write) -> std::io::Result<u64> {
        self.copy_to(&mut out)
    }
}

impl Spilled for sealgate::pgp::stream::SpilledVerified {
    fn persist_as(self, path: &Path) -> Result<(), String> {
        self.persist(path).map(drop).map_err(|e| e.to_string())
    }
    fn copy_into(&mut self, mut out: &mut dyn Write) -> std::io::Result<u64> {
        self.copy_to(&mut out)
    }
}

/// [`release_output`] for a decrypted or verified message in its spill file: renamed
/// into place when the spill file is in the output's directory, else copied (to stdout when
/// there is no --out).
fn release_decrypted(
    mut spilled: impl Spilled,
    in_dir: &Path,
    out: Option<&Path>,
) -> Result<(), Failure> {
    match out {
        Some(p) if renamable(p) && spill_dir(None, Some(p)) == in_dir => spilled
            .persist_as(p)
            .map_err(|e| Failure(2, format!("{}: {e}", p.display()))),
        Some(p) => {
            let mut to =
                File::create(p).map_err(|e| Failure(2, format!("{}: {e}", p.display())))?;
            spilled
                .copy_into(&mut to)
                .map(drop)
                .map_err(|e| Failure(2, format!("{}: {e}", p.display())))
        }
        None => spilled
            .copy_into(&mut std::io::stdout().lock())
            .map(drop)
            .map_err(|e| Failure(2, format!("stdout: {e}"))),
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

/// The output files of a key generation: none may exist beforehand (nothing is overwritten),
/// secret ones are 0600 from their creation, and when a later step fails the files already
/// written are removed again, so that no key is left without its certificate.
pub(crate) struct NewFiles {
    written: Vec<PathBuf>,
}

impl NewFiles {
    /// Refuse when one of `paths` exists or two of them are the same.
    pub(crate) fn check(paths: &[&Path]) -> Result<NewFiles, Failure> {
        for (i, p) in paths.iter().enumerate() {
            if paths.get(..i).is_some_and(|before| before.contains(p)) {
                return Err(Failure(
                    2,
                    format!("{}: named for two outputs", p.display()),
                ));
            }
            if std::fs::symlink_metadata(p).is_ok() {
                return Err(Failure(
                    2,
                    format!("{}: exists already (it is never overwritten)", p.display()),
                ));
            }
        }
        Ok(NewFiles {
            written: Vec::new(),
        })
    }

    /// Create `path` (never an existing one: O_EXCL) and write `data`; mode 0600 when
    /// `secret`.
    pub(crate) fn write(&mut self, path: &Path, data: &[u8], secret: bool) -> Result<(), Failure> {
        let mut o = std::fs::OpenOptions::new();
        o.write(true).create_new(true);
        #[cfg(unix)]
        if secret {
            use std::os::unix::fs::OpenOptionsExt;
            o.mode(0o600);
        }
        #[cfg(not(unix))]
        let _ = secret;
        let io = |e: std::io::Error| Failure(2, format!("{}: {e}", path.display()));
        let mut f = o.open(path).map_err(io)?;
        self.written.push(path.to_path_buf());
        f.write_all(data).and_then(|()| f.sync_all()).map_err(io)
    }

    /// Every file is written: keep them.
    pub(crate) fn keep(mut self) {
        self.written.clear();
    }
}

impl Drop for NewFiles {
    fn drop(&mut self) {
        for p in &self.written {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// The password in `var` for protecting a new file: as [`password`] (errors name `flag`), and
/// never empty.
pub(crate) fn new_password(
    var: Option<&str>,
    flag: &str,
) -> Result<Option<secrecy::SecretString>, Failure> {
    use secrecy::ExposeSecret;
    let pw =
        password(var).map_err(|Failure(c, m)| Failure(c, m.replace("--password-env", flag)))?;
    if let (Some(pw), Some(var)) = (&pw, var)
        && pw.expose_secret().is_empty()
    {
        return Err(Failure(
            2,
            format!("{flag}: environment variable {var} is empty"),
        ));
    }
    Ok(pw)
}

fn password(var: Option<&str>) -> Result<Option<secrecy::SecretString>, Failure> {
    let Some(var) = var else { return Ok(None) };
    match std::env::var(var) {
        Ok(value) => {
            let value = Zeroizing::new(value);
            Ok(Some(secrecy::SecretString::from(value.as_str())))
        }
        Err(std::env::VarError::NotPresent) => Err(Failure(
            2,
            format!("--password-env: environment variable {var} is not set"),
        )),
        Err(std::env::VarError::NotUnicode(value)) => {
            drop(Zeroizing::new(value.into_encoded_bytes()));
            Err(Failure(
                2,
                format!("--password-env: environment variable {var} is not valid UTF-8"),
            ))
        }
    }
}

/// Parse an RFC 3339 date-time (`2026-11-23T10:00:00Z`, `2026-11-23 11:00:00+01:00`;
/// fractions of a second are ignored).
fn parse_rfc3339(s: &str) -> Result<SystemTime, String> {
    let bad = || format!("not an RFC 3339 time (like 2026-11-23T10:00:00Z): {s}");
    let num = |range: std::ops::Range<usize>| -> Result<i64, String> {
        let part = s.get(range).ok_or_else(bad)?;
        if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        part.parse::<i64>().map_err(|_| bad())
    };
    let sep = |i: usize, allowed: &[u8]| -> Result<(), String> {
        match s.as_bytes().get(i) {
            Some(b) if allowed.contains(b) => Ok(()),
            _ => Err(bad()),
        }
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    sep(4, b"-")?;
    sep(7, b"-")?;
    sep(10, b"Tt ")?;
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    sep(13, b":")?;
    sep(16, b":")?;
    // RFC 3339 §5.6: time-secfrac = "." 1*DIGIT
    let mut rest = s.get(19..).ok_or_else(bad)?;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(bad());
        }
        rest = frac.get(digits..).ok_or_else(bad)?;
    }
    let offset_secs = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first() {
                Some(b'+') => 1,
                Some(b'-') => -1,
                _ => return Err(bad()),
            };
            let (oh, om) = (rest.get(1..3), rest.get(4..6));
            let ok = rest.len() == 6 && rest.as_bytes().get(3) == Some(&b':');
            let parse = |p: Option<&str>| {
                p.filter(|p| p.bytes().all(|b| b.is_ascii_digit()))
                    .and_then(|p| p.parse::<i64>().ok())
            };
            match (ok, parse(oh), parse(om)) {
                (true, Some(h), Some(m)) if h < 24 && m < 60 => sign * (h * 3600 + m * 60),
                _ => return Err(bad()),
            }
        }
    };
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let month_days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return Err(bad()),
    };
    // second 60 is a leap second (RFC 3339 §5.7)
    if day < 1 || day > month_days || hour > 23 || minute > 59 || second > 60 {
        return Err(bad());
    }
    // Days since 1970-01-01 in the proleptic Gregorian calendar (H. Hinnant's days_from_civil).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_secs;
    let t = if secs >= 0 {
        SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(secs.unsigned_abs()))
    } else {
        SystemTime::UNIX_EPOCH.checked_sub(Duration::from_secs(secs.unsigned_abs()))
    };
    t.ok_or_else(bad)
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
        Some(chain) => with_path(
            chain,
            Certificate::load_all(&read_file(chain, limits)?, limits),
        )?,
        None => Vec::new(),
    };
    if let Some(p12) = p12 {
        let pw = pw.ok_or_else(|| {
            Failure(
                2,
                "--p12 needs --password-env VAR (the variable holding its password)".into(),
            )
        })?;
        let mut id = with_path(
            p12,
            Identity::from_pkcs12(&read_file(p12, limits)?, &pw, limits),
        )?;
        id.chain.extend(extra);
        return Ok(id);
    }
    let (Some(key_path), Some(cert_path)) = (key, cert) else {
        return Err(Failure(2, "give --key and --cert, or --p12".into()));
    };
    let key = with_password_hint(
        key_path,
        smime::load_private_key(&read_file(key_path, limits)?, pw.as_ref(), limits),
        pw.is_some(),
    )?;
    // The certificate is the one in the file that belongs to the key, so a "full chain" PEM
    // works in any order; its other certificates go with the chain.
    let mut certs = with_path(
        cert_path,
        Certificate::load_all(&read_file(cert_path, limits)?, limits),
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
    let anchors = with_path(
        path,
        Certificate::load_all(&read_file(path, limits)?, limits),
    )?;
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
    let mut opts = SignMessageOptions::default();
    opts.opaque = a.opaque;
    opts.cms.digest = match a.digest {
        Digest::Sha256 => DigestAlgorithm::Sha256,
        Digest::Sha384 => DigestAlgorithm::Sha384,
        Digest::Sha512 => DigestAlgorithm::Sha512,
    };
    opts.cms.rsa_pss = a.pss;
    opts.protect_headers = a.protect_headers;
    // A large message is signed as a stream (detached, no header protection: what
    // MessageSigner does), re-encoded to 7-bit on the way as RFC 8551 §3.1.2 wants; a small
    // one, or an opaque or header-protected signature, in memory as before.
    let input = if !a.opaque && !a.protect_headers {
        let path = a.io.input.as_deref();
        let mut reader = open_input(path)?;
        let mut first = Zeroizing::new(Vec::with_capacity(STREAM_ABOVE + 1));
        reader
            .by_ref()
            .take(STREAM_ABOVE as u64 + 1)
            .read_to_end(&mut first)
            .map_err(|e| Failure(2, format!("{}: {e}", input_name(path))))?;
        if first.len() > STREAM_ABOVE {
            let spill = usable_spill_dir(a.spill_dir.as_deref(), a.io.out.as_deref())?;
            let (dir, tmp) = output_temp(a.io.out.as_deref())?;
            let out = std::io::BufWriter::with_capacity(STEP, tmp.as_file());
            let mut w = smime::MessageSigner::new(out, &id, &opts, &mut rand_core::OsRng, &limits)?;
            feed(
                &first,
                reader,
                &mut w,
                Reencode::SevenBit,
                &spill,
                path,
                &limits,
            )?;
            let mut out = w.finish()?;
            out.flush()?;
            drop(out);
            release_output(tmp, &dir, a.io.out.as_deref())?;
            return Ok(0);
        }
        first
    } else {
        read_input(a.io.input.as_deref(), &limits)?
    };
    let out = smime::sign_message(&input, &id, &opts, &mut rand_core::OsRng, &limits)?;
    write_output(a.io.out.as_deref(), &out)?;
    Ok(0)
}

fn verify(a: VerifyArgs) -> Result<u8, Failure> {
    let limits = Limits::default();
    let trust = load_trust(&a.trust, &limits)?;
    let outer_signers = load_certs(&a.outer_signer, &limits)?;
    // A large message is verified as a stream through a spill file (any size, bounded
    // memory); a small one in memory as before.
    let path = a.input.as_deref();
    let mut reader = open_input(path)?;
    let mut first = Zeroizing::new(Vec::with_capacity(STREAM_ABOVE + 1));
    reader
        .by_ref()
        .take(STREAM_ABOVE as u64 + 1)
        .read_to_end(&mut first)
        .map_err(|e| Failure(2, format!("{}: {e}", input_name(path))))?;
    let input = if first.len() > STREAM_ABOVE {
        let dir = spill_dir(a.spill_dir.as_deref(), a.out.as_deref());
        let streamed = smime::stream::verify_message(
            std::io::Cursor::new(&first[..]).chain(reader),
            &trust,
            a.at,
            &dir,
            &limits,
        );
        match streamed {
            Ok(v) => return verify_streamed(v, &dir, &a, &outer_signers, &limits),
            // A signer that cannot be checked in a stream (no signed attributes, a digest
            // the message did not announce): a file is read again, whole, within the
            // message size limit. Standard input has gone by: the error stands.
            Err(smime::Error::NotStreamable { .. }) if path.is_some() => read_input(path, &limits)?,
            Err(e) => return Err(e.into()),
        }
    } else {
        first
    };
    let v = smime::verify_message(&input, &trust, a.at, &limits)?;
    print_verification(&v.verification);
    if let Some(out) = a.out.as_deref() {
        write_output(Some(out), &v.message)?;
    }
    // The outer layer of a triple wrap may be signed by an allowed gateway identity.
    let valid = if !outer_signers.is_empty()
        && smime::classify(&v.message, &limits)? == smime::SmimeKind::Encrypted
    {
        smime::outer_is_valid(&v, &outer_signers)
    } else {
        v.verification.is_valid()
    };
    Ok(if valid { 0 } else { 1 })
}

/// The rest of `verify` for a message verified as a stream: the report, the message (from
/// the spill file) to --out, the exit status.
fn verify_streamed(
    mut v: smime::stream::SpilledVerified,
    dir: &Path,
    a: &VerifyArgs,
    outer_signers: &[Certificate],
    limits: &Limits,
) -> Result<u8, Failure> {
    print_verification(v.verification());
    // The outer layer of a triple wrap may be signed by an allowed gateway identity.
    let valid = if outer_signers.is_empty() {
        v.verification().is_valid()
    } else {
        let head = smime::stream::read_header_block(&mut std::io::BufReader::new(v.reader()?))?;
        if smime::classify(&head, limits)? == smime::SmimeKind::Encrypted {
            smime::triple::outer_verification_is_valid(v.verification(), outer_signers)
        } else {
            v.verification().is_valid()
        }
    };
    if let Some(out) = a.out.as_deref() {
        release_decrypted(v, dir, Some(out))?;
    }
    Ok(if valid { 0 } else { 1 })
}

/// Certificates from files (PEM or DER, one or more per file), in order.
fn load_certs(paths: &[PathBuf], limits: &Limits) -> Result<Vec<Certificate>, Failure> {
    let mut certs = Vec::new();
    for path in paths {
        certs.extend(with_path(
            path,
            Certificate::load_all(&read_file(path, limits)?, limits),
        )?);
    }
    Ok(certs)
}

/// The report of a verification, on stderr: the signer, its chain, and each check. A failed
/// check that does not make the signature invalid (validity now, when the certificate was
/// valid at signing time) is a warning.
fn print_verification(v: &smime::Verification) {
    let mut err = std::io::stderr().lock();
    if v.signers.is_empty() {
        let _ = writeln!(err, "no signers");
    }
    for s in &v.signers {
        match &s.certificate {
            Some(c) => {
                let _ = writeln!(err, "signer: {}", printable(&c.subject()));
                let mut addresses: Vec<String> = Vec::new();
                for a in c.email_addresses() {
                    // SAN and subject emailAddress often name the same address
                    if !addresses.iter().any(|b| b.eq_ignore_ascii_case(&a)) {
                        addresses.push(a);
                    }
                }
                let _ = writeln!(err, "  addresses: {}", printable(&addresses.join(", ")));
                let _ = writeln!(err, "  sha256 fingerprint: {}", c.fingerprint_sha256());
            }
            None => {
                let _ = writeln!(err, "signer: certificate not found");
            }
        }
        for c in s.chain.iter().skip(1) {
            let _ = writeln!(err, "  chain: {}", printable(&c.subject()));
        }
        for check in &s.checks {
            let label = match (check.passed, check.name) {
                (true, _) => "ok",
                (false, smime::CheckName::ValidNow) if s.is_valid() => "warn",
                (false, _) => "FAIL",
            };
            let _ = writeln!(
                err,
                "  [{label}] {:?}: {}",
                check.name,
                printable(&check.detail)
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

/// Names and details come from certificates, that is from the sender: control characters
/// (line breaks, terminal escape sequences) are shown escaped, never sent to the terminal.
fn printable(s: &str) -> String {
    s.chars()
        .flat_map(|c| {
            let escaped: Vec<char> = if c.is_control() {
                c.escape_default().collect()
            } else {
                vec![c]
            };
            escaped
        })
        .collect()
}

fn encrypt(a: EncryptArgs) -> Result<u8, Failure> {
    let limits = Limits::default();
    let mut recipients = Vec::with_capacity(a.to.len());
    for path in &a.to {
        let cert = with_path(path, Certificate::load(&read_file(path, &limits)?, &limits))?;
        if a.pq && !matches!(cert.public_key(), Ok(smime::PublicKey::MlKem { .. })) {
            return Err(Failure(
                2,
                format!(
                    "--pq: {} has no ML-KEM key (it would get a non-post-quantum RecipientInfo)",
                    path.display()
                ),
            ));
        }
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
    let mut opts = EncryptMessageOptions::default();
    opts.cipher = match a.cipher {
        Cipher::Aes256Gcm => smime::ContentCipher::Aes256Gcm,
        Cipher::Aes256Cbc => smime::ContentCipher::Aes256Cbc,
        Cipher::Aes128Cbc => smime::ContentCipher::Aes128Cbc,
    };
    opts.outer_subject = a.subject;
    opts.protect_headers = a.protect_headers;
    opts.legacy_display = a.legacy_display;
    let outer = if a.outer_key.is_some() || a.outer_p12.is_some() {
        Some(load_identity(
            a.outer_key.as_deref(),
            a.outer_cert.as_deref(),
            a.outer_p12.as_deref(),
            None,
            a.password_env.as_deref(),
            &limits,
        )?)
    } else {
        None
    };
    // A large message streams (CBC or GCM, no legacy display element: what MessageEncryptor
    // does), signed inside and for a triple wrap outside too as it goes (MessageSigner, with
    // the header protection of a signed message left to the in-memory path, which puts it
    // inside the inner signature); a small one, or one that needs the whole message, is
    // encrypted in memory as before.
    let streamable = !a.legacy_display
        && match &signer {
            None => !a.triple_wrap,
            Some(_) => !a.protect_headers,
        };
    let input = if streamable {
        let path = a.io.input.as_deref();
        let mut reader = open_input(path)?;
        let mut first = Zeroizing::new(Vec::with_capacity(STREAM_ABOVE + 1));
        reader
            .by_ref()
            .take(STREAM_ABOVE as u64 + 1)
            .read_to_end(&mut first)
            .map_err(|e| Failure(2, format!("{}: {e}", input_name(path))))?;
        if first.len() > STREAM_ABOVE {
            let spill = usable_spill_dir(a.spill_dir.as_deref(), a.io.out.as_deref())?;
            let signers = Signers {
                inner: signer.as_ref(),
                outer: a
                    .triple_wrap
                    .then(|| outer.as_ref().or(signer.as_ref()))
                    .flatten(),
            };
            return encrypt_streaming(
                &first,
                reader,
                &recipients,
                signers,
                &opts,
                &a.io,
                &spill,
                &limits,
            );
        }
        first
    } else {
        read_input(a.io.input.as_deref(), &limits)?
    };
    if a.triple_wrap {
        let Some(signer) = signer.as_ref() else {
            return Err(Failure(
                2,
                "--triple-wrap signs the message: give --sign-key/--sign-cert or --p12".into(),
            ));
        };
        let mut topts = smime::TripleWrapOptions::default();
        topts.encrypt = opts;
        let out = smime::triple_wrap(
            &input,
            signer,
            &recipients,
            outer.as_ref().unwrap_or(signer),
            &topts,
            &mut rand_core::OsRng,
            &limits,
        )?;
        write_output(a.io.out.as_deref(), &out)?;
        return Ok(0);
    }
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

/// Messages larger than this are encrypted as a stream (when they can be).
const STREAM_ABOVE: usize = 8 * 1024 * 1024;

/// Read and write size of the streaming paths.
const STEP: usize = 256 * 1024;

/// The temporary output file of a streamed encryption, in the directory of `out` (renamed into
/// place by [`release_output`]) or $TMPDIR; returns that directory too.
pub(crate) fn output_temp(
    out: Option<&Path>,
) -> Result<(PathBuf, tempfile::NamedTempFile), Failure> {
    let dir = spill_dir(None, out);
    let tmp = tempfile::Builder::new()
        .prefix(".sealgate-encrypted-")
        .tempfile_in(&dir)
        .map_err(|e| {
            let name = out.unwrap_or(&dir);
            Failure(2, format!("{}: {e}", name.display()))
        })?;
    Ok((dir, tmp))
}

/// Write `first` (what was read to choose the streaming path) and the rest of `reader` to `w`,
/// re-encoded as `what` says ([`reencode`]): the streaming signers need a 7-bit entity, the
/// encryptors binary parts that canonical CRLF line ends leave intact, and neither can
/// re-encode a part it has already written. A message that needs no change goes through as
/// it is; a leaf over 1 MiB that needs re-encoding waits in an unnamed temporary file in
/// `spill_dir`. An error reading the input names `input`.
pub(crate) fn feed(
    first: &[u8],
    reader: impl BufRead,
    w: &mut impl Write,
    what: Reencode,
    spill_dir: &Path,
    input: Option<&Path>,
    limits: &Limits,
) -> Result<(), Failure> {
    let mut src = Watched {
        inner: std::io::Cursor::new(first).chain(reader),
        failed: false,
    };
    match reencode(&mut src, w, what, spill_dir, limits) {
        Ok(_) => Ok(()),
        Err(sealgate::mime::Error::Io(e)) if src.failed => {
            Err(Failure(2, format!("{}: {e}", input_name(input))))
        }
        // the signer's or encryptor's own error, or the output's
        Err(sealgate::mime::Error::Io(e)) => Err(e.into()),
        Err(e) => Err(Failure(2, format!("{}: {e}", input_name(input)))),
    }
}

/// A reader that remembers whether reading it failed, to tell input errors from output errors.
struct Watched<R> {
    inner: R,
    failed: bool,
}

impl<R: BufRead> Read for Watched<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.inner.read(buf).inspect_err(|_| self.failed = true)
    }
}

impl<R: BufRead> BufRead for Watched<R> {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        match self.inner.fill_buf() {
            Ok(b) => Ok(b),
            Err(e) => {
                self.failed = true;
                Err(e)
            }
        }
    }

    fn consume(&mut self, n: usize) {
        self.inner.consume(n);
    }
}

/// Encrypt `first` and the rest of `reader` as a stream, into a temporary file released as the
/// output once complete (no partial output on an error, as with the in-memory path).
#[allow(clippy::too_many_arguments)]
fn encrypt_streaming(
    first: &[u8],
    reader: impl BufRead,
    recipients: &[Recipient],
    signers: Signers<'_>,
    opts: &EncryptMessageOptions,
    io: &InOut,
    spill_dir: &Path,
    limits: &Limits,
) -> Result<u8, Failure> {
    let (dir, tmp) = output_temp(io.out.as_deref())?;
    let out = std::io::BufWriter::with_capacity(STEP, tmp.as_file());
    let input = io.input.as_deref();
    let sopts = SignMessageOptions::default();
    let rng = &mut rand_core::OsRng;
    let feed_in =
        |mut w: &mut dyn Write, what| feed(first, reader, &mut w, what, spill_dir, input, limits);
    // Each layer writes into the next: the inner signer into the encryptor, the encryptor into
    // the outer signer (RFC 2634 §1.1: sign, encrypt, sign), as triple_wrap nests them.
    let mut out = match signers.outer {
        Some(outer) => {
            let signed = smime::MessageSigner::new(out, outer, &sopts, rng, limits)?;
            let enc = smime::MessageEncryptor::new(signed, recipients, opts, rng, limits)?;
            encrypt_signed(enc, signers.inner, &sopts, feed_in, limits)?.finish()?
        }
        None => {
            let enc = smime::MessageEncryptor::new(out, recipients, opts, rng, limits)?;
            encrypt_signed(enc, signers.inner, &sopts, feed_in, limits)?
        }
    };
    out.flush()?;
    drop(out);
    release_output(tmp, &dir, io.out.as_deref())?;
    Ok(0)
}

/// Who signs a streamed encryption: inside (sign, then encrypt), and outside for a triple wrap.
#[derive(Clone, Copy)]
struct Signers<'k> {
    inner: Option<&'k Identity>,
    outer: Option<&'k Identity>,
}

/// Feed the message (with `feed_in`) into `enc`, through a signer first when `inner` is given
/// (re-encoded to 7-bit for it; otherwise only what CRLF line ends would break), and finish.
fn encrypt_signed<W: Write>(
    mut enc: smime::MessageEncryptor<W>,
    inner: Option<&Identity>,
    sopts: &SignMessageOptions,
    feed_in: impl FnOnce(&mut dyn Write, Reencode) -> Result<(), Failure>,
    limits: &Limits,
) -> Result<W, Failure> {
    match inner {
        Some(id) => {
            let mut signer =
                smime::MessageSigner::new(enc, id, sopts, &mut rand_core::OsRng, limits)?;
            feed_in(&mut signer, Reencode::SevenBit)?;
            Ok(signer.finish()?.finish()?)
        }
        None => {
            feed_in(&mut enc, Reencode::LineEnds)?;
            Ok(enc.finish()?)
        }
    }
}

/// One line on stderr saying how the header was protected, when it was.
pub(crate) fn print_header_protection(hp: Option<&sealgate::mime::HeaderProtection>) {
    if let Some(hp) = hp {
        eprintln!(
            "header protection: {}; protected={}; confidential={}{}",
            hp.scheme,
            hp.protected.join(","),
            hp.confidential.join(","),
            if hp.legacy_display_removed {
                "; legacy display element removed"
            } else {
                ""
            }
        );
    }
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
    // An encrypted message streams through a spill file (any size, bounded memory); the
    // rest (a triple wrap, or not encrypted at all) is read whole as before.
    let path = a.io.input.as_deref();
    let mut input = open_input(path)?;
    let head = smime::stream::read_header_block(&mut input)
        .map_err(|e| Failure(2, format!("{}: {e}", input_name(path))))?;
    let d = if matches!(
        smime::classify(&head, &limits),
        Ok(smime::SmimeKind::Encrypted)
    ) {
        let dir = usable_spill_dir(a.spill_dir.as_deref(), a.io.out.as_deref())?;
        let streamed = smime::stream::decrypt_message(
            std::io::Cursor::new(head).chain(input),
            &id.key,
            Some(&id.cert),
            &dir,
            &limits,
        );
        let spilled = match streamed {
            // AuthEnvelopedData with authAttrs (the GCM AAD after the ciphertext) cannot
            // stream: a file is read again, whole, within the message size limit, as before
            // streaming. Standard input has gone by: the error stands.
            Err(smime::Error::NotStreamable { .. }) if path.is_some() => None,
            r => Some(r?),
        };
        match (spilled, &trust) {
            (None, _) => {
                let input = read_input(path, &limits)?;
                smime::decrypt_message(&input, &id.key, Some(&id.cert), trust.as_ref(), &limits)?
            }
            // the inner signature is checked from the spill file, in a stream too; a
            // signer that cannot be (see `smime verify`) on the message in memory, as before
            (Some(mut spilled), Some(trust)) if spilled.is_signed() => {
                match spilled.verify_signature(trust, &limits) {
                    Ok(v) => {
                        let hp = spilled.header_protection().cloned();
                        release_decrypted(spilled, &dir, a.io.out.as_deref())?;
                        print_header_protection(hp.as_ref());
                        return Ok(match v {
                            Some(v) => {
                                print_verification(&v);
                                if v.is_valid() { 0 } else { 1 }
                            }
                            None => 0,
                        });
                    }
                    Err(smime::Error::NotStreamable { .. }) => {
                        spilled.into_decrypted(Some(trust), &limits)?
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            (Some(spilled), _) => {
                let hp = spilled.header_protection().cloned();
                release_decrypted(spilled, &dir, a.io.out.as_deref())?;
                print_header_protection(hp.as_ref());
                if trust.is_some() {
                    eprintln!("signature: none (the decrypted message is not signed)");
                }
                return Ok(0);
            }
        }
    } else if let (
        Some(trust),
        Ok(smime::SmimeKind::DetachedSigned | smime::SmimeKind::OpaqueSigned),
    ) = (&trust, smime::classify(&head, &limits))
    {
        // Signed outside: a triple wrap, unwrapped as a stream (outer signature, decryption,
        // inner signature, each through a spill file). What cannot stream, and what turns out
        // not to be a triple wrap, takes the in-memory path below when the input is a file
        // (its errors are the ones the command always gave).
        let dir = spill_dir(a.spill_dir.as_deref(), a.io.out.as_deref());
        let streamed = smime::stream::unwrap_triple(
            std::io::Cursor::new(head).chain(input),
            &id.key,
            Some(&id.cert),
            trust,
            None,
            &dir,
            &limits,
        );
        match streamed {
            Ok(t) => {
                let outer_signers = load_certs(&a.outer_signer, &limits)?;
                let valid = t.is_valid_with_outer_signers(&outer_signers);
                let hp = t.decrypted.header_protection().cloned();
                release_decrypted(t.decrypted, &dir, a.io.out.as_deref())?;
                print_header_protection(hp.as_ref());
                eprintln!("outer signature (over the encrypted part):");
                print_verification(&t.outer);
                match &t.inner {
                    Some(v) => {
                        eprintln!("inner signature:");
                        print_verification(v);
                    }
                    None => {
                        eprintln!("inner signature: none (the decrypted message is not signed)")
                    }
                }
                return Ok(if valid { 0 } else { 1 });
            }
            Err(smime::Error::NotStreamable { .. } | smime::Error::WrongMessageType { .. })
                if path.is_some() =>
            {
                let input = read_input(path, &limits)?;
                return decrypt_in_memory(&input, &id, Some(trust), &a, &limits);
            }
            Err(e) => return Err(e.into()),
        }
    } else {
        let input = read_rest(&head, input, path, &limits)?;
        return decrypt_in_memory(&input, &id, trust.as_ref(), &a, &limits);
    };
    finish_decrypt(&d, trust.is_some(), a.io.out.as_deref())
}

/// `smime decrypt` of a message in memory: a triple wrap, or what the one-shot function reads.
fn decrypt_in_memory(
    input: &[u8],
    id: &Identity,
    trust: Option<&TrustStore>,
    a: &DecryptArgs,
    limits: &Limits,
) -> Result<u8, Failure> {
    let d = {
        if smime::is_triple_wrapped(input, limits)? {
            let outer_signers = load_certs(&a.outer_signer, limits)?;
            return decrypt_triple(
                input,
                id,
                trust,
                &outer_signers,
                a.io.out.as_deref(),
                limits,
            );
        }
        smime::decrypt_message(input, &id.key, Some(&id.cert), trust, limits)?
    };
    finish_decrypt(&d, trust.is_some(), a.io.out.as_deref())
}

/// The end of `smime decrypt` for a message decrypted in memory: the output, the header
/// protection and inner-signature report, the exit status.
fn finish_decrypt(
    d: &smime::DecryptedMessage,
    with_trust: bool,
    out: Option<&Path>,
) -> Result<u8, Failure> {
    write_output(out, &d.message)?;
    print_header_protection(d.header_protection.as_ref());
    match &d.signature {
        Some(v) => {
            print_verification(&v.verification);
            Ok(if v.verification.is_valid() { 0 } else { 1 })
        }
        None => {
            if with_trust {
                // --trust asked for a signature check: say that there was nothing to check
                eprintln!("signature: none (the decrypted message is not signed)");
            }
            Ok(0)
        }
    }
}

/// Decrypt a signed message whose signed content is encrypted (a triple wrap, RFC 2634):
/// the outer signature, then the inner one, each reported on stderr.
fn decrypt_triple(
    input: &[u8],
    id: &Identity,
    trust: Option<&TrustStore>,
    outer_signers: &[Certificate],
    out: Option<&Path>,
    limits: &Limits,
) -> Result<u8, Failure> {
    let Some(trust) = trust else {
        return Err(Failure(
            2,
            "the message is signed outside the encryption (triple wrap): give --trust to check both signatures".into(),
        ));
    };
    let u = smime::unwrap_triple(input, &id.key, Some(&id.cert), trust, None, limits)?;
    write_output(out, &u.decrypted.message)?;
    print_header_protection(u.decrypted.header_protection.as_ref());
    eprintln!("outer signature (over the encrypted part):");
    print_verification(&u.outer.verification);
    match u.inner() {
        Some(v) => {
            eprintln!("inner signature:");
            print_verification(&v.verification);
        }
        None => eprintln!("inner signature: none (the decrypted message is not signed)"),
    }
    Ok(if u.is_valid_with_outer_signers(outer_signers) {
        0
    } else {
        1
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unix(s: &str) -> i128 {
        match parse_rfc3339(s)
            .unwrap()
            .duration_since(SystemTime::UNIX_EPOCH)
        {
            Ok(d) => i128::from(d.as_secs()),
            Err(e) => -i128::from(e.duration().as_secs()),
        }
    }

    #[test]
    fn rfc3339_times() {
        // values from `date -u -d ... +%s`
        assert_eq!(unix("1970-01-01T00:00:00Z"), 0);
        assert_eq!(unix("2026-11-23T10:00:00Z"), 1_795_428_000);
        assert_eq!(unix("2026-11-23 11:00:00+01:00"), 1_795_428_000);
        assert_eq!(unix("2026-11-23t09:30:00.999-00:30"), 1_795_428_000);
        assert_eq!(unix("2000-02-29T12:00:00Z"), 951_825_600);
        assert_eq!(unix("1969-12-31T23:59:59Z"), -1);
        assert_eq!(unix("2038-01-19T03:14:08Z"), 2_147_483_648);
    }

    #[test]
    fn rfc3339_rejects() {
        for s in [
            "",
            "2026-11-23",
            "2026-11-23T10:00:00",
            "2026-13-01T00:00:00Z",
            "2026-02-29T00:00:00Z",
            "2026-11-31T00:00:00Z",
            "2026-11-23T24:00:00Z",
            "2026-11-23T10:60:00Z",
            "2026-11-23T10:00:00+1:00",
            "2026-11-23T10:00:00+01:00x",
            "2026-11-23T10:00:00.Z",
            "+026-11-23T10:00:00Z",
            "2026-11-23T10:00:0\u{e9}Z",
            "2026-11-23T10:00:00\u{e9}",
            "2026\u{e9}11-23T10:00:00Z",
        ] {
            assert!(parse_rfc3339(s).is_err(), "{s}");
        }
    }

    #[test]
    fn printable_escapes_control_characters() {
        assert_eq!(
            printable("CN=a\u{1b}]0;x\u{7}\r\nb, é"),
            "CN=a\\u{1b}]0;x\\u{7}\\r\\nb, é"
        );
    }

    #[test]
    fn one_line_joins_lines() {
        assert_eq!(one_line("a\nb\r\n  c\n"), "a b c");
        assert_eq!(one_line("plain"), "plain");
    }

    #[test]
    fn read_bounded_refuses_more_than_the_limit() {
        let ok = read_bounded(&b"12345"[..], 0, 5, &"x").ok().unwrap();
        assert_eq!(&ok[..], b"12345");
        let Err(Failure(code, msg)) = read_bounded(&b"123456"[..], 6, 5, &"x") else {
            panic!("accepted more than the limit");
        };
        assert_eq!(code, 2);
        assert_eq!(msg, "x: larger than the limit of 5 bytes");
    }
}
