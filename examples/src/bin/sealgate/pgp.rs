//! `sealgate pgp ...`: PGP/MIME encrypt, sign, decrypt and verify of whole messages.

use std::fs::File;
use std::io::{BufRead, Read, Write};
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use sealgate::Limits;
use sealgate::mime::reencode::Reencode;
use sealgate::pgp::{self, Cert, SecretKey};
use zeroize::Zeroizing;

use super::{
    Failure, input_name, one_line, printable, read_file, read_input, read_rest, release_decrypted,
    release_output, usable_spill_dir, write_output,
};

#[derive(Subcommand)]
pub(crate) enum PgpCommand {
    /// Encrypt a message as PGP/MIME (RFC 3156 multipart/encrypted) to one or more recipients,
    /// optionally signing it in the same pass.
    Encrypt(EncryptArgs),
    /// Sign a message as PGP/MIME multipart/signed (detached signature, application/pgp-signature).
    Sign(SignArgs),
    /// Decrypt a PGP/MIME or inline-PGP message with our secret key; with --signer, checks
    /// that it is signed by one of those keys. Exit 0 ok, 1 (--signer given) unsigned or the
    /// signature did not verify, 2 error.
    Decrypt(DecryptArgs),
    /// Verify a PGP/MIME signed message or an inline cleartext signature against --signer
    /// keys; prints each signature and its checks. Exit 0 valid, 1 invalid, 2 error.
    Verify(VerifyArgs),
    /// Generate a key: a secret key file (mode 0600, locked with the passphrase of
    /// --passphrase-env) and its public certificate; prints the fingerprint. The classical v4
    /// kinds are made for GnuPG 2.2 (they advertise SEIPD v1 only, so senders write what gpg
    /// reads); the post-quantum kinds (draft-ietf-openpgp-pqc) get SEIPD v2. No output file
    /// is overwritten. Exit 0 ok, 2 error.
    #[command(name = "generate-key")]
    GenerateKey(GenerateKeyArgs),
}

/// The key kinds of `pgp generate-key --kind`.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum PgpKind {
    /// v4 Ed25519 signing, Cv25519 encryption.
    Ed25519,
    /// v4 RSA 3072.
    Rsa3072,
    /// v4 NIST P-256.
    P256,
    /// v4 NIST P-384.
    P384,
    /// RFC 9580 v6 Ed25519 and X25519.
    #[value(name = "v6-ed25519")]
    V6Ed25519,
    /// v6 ML-DSA-65+Ed25519 signing, ML-KEM-768+X25519 encryption.
    #[value(name = "v6-mldsa65-ed25519")]
    V6MlDsa65Ed25519,
    /// v4 Ed25519 signing, ML-KEM-768+X25519 encryption.
    #[value(name = "ed25519-mlkem768")]
    Ed25519MlKem768,
}

#[derive(Args)]
pub(crate) struct GenerateKeyArgs {
    /// The User ID, "Name <address>".
    #[arg(long, value_name = "USERID")]
    userid: String,
    /// Key kind: ed25519 (default; v4 Ed25519 + Cv25519, as GnuPG makes), rsa3072, p256, p384
    /// (v4, GnuPG-readable); v6-ed25519 (RFC 9580 v6); v6-mldsa65-ed25519 (v6, post-quantum
    /// ML-DSA-65+Ed25519 and ML-KEM-768+X25519); ed25519-mlkem768 (v4 Ed25519 with an
    /// ML-KEM-768+X25519 encryption subkey).
    #[arg(long, value_name = "KIND", default_value = "ed25519")]
    kind: String,
    /// Where to write the secret key (mode 0600).
    #[arg(long, value_name = "KEYFILE")]
    secret_out: PathBuf,
    /// Where to write the public certificate (what you give to senders).
    #[arg(long, value_name = "KEYFILE")]
    cert_out: PathBuf,
    /// Environment variable holding the passphrase that locks the secret key.
    #[arg(long, value_name = "VAR")]
    passphrase_env: Option<String>,
    /// Write binary OpenPGP packets instead of ASCII armor.
    #[arg(long)]
    binary: bool,
}

#[derive(Args)]
pub(crate) struct IoArgs {
    /// Input message (default: stdin).
    #[arg(long = "in", value_name = "FILE")]
    input: Option<PathBuf>,
    /// Output file (default: stdout).
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

#[derive(Args)]
pub(crate) struct EncryptArgs {
    /// Recipient certificate file (armored or binary; every certificate in it is used).
    /// Repeat for more recipients; add your own to keep sent copies readable.
    #[arg(long = "to", value_name = "KEYFILE", required = true)]
    to: Vec<PathBuf>,
    /// Sign with this secret key first (in the same pass: the signature is inside the encryption).
    #[arg(long, value_name = "KEYFILE")]
    sign_key: Option<PathBuf>,
    /// Environment variable holding the passphrase of --sign-key.
    #[arg(long, value_name = "VAR")]
    passphrase_env: Option<String>,
    /// Replace the outer (clear-text) Subject with this text; the real one travels inside.
    #[arg(long, value_name = "TEXT", conflicts_with = "protect_headers")]
    subject: Option<String>,
    /// Header protection (RFC 9788, hp="cipher"): the header fields travel inside the
    /// encryption, the outer Subject becomes "[...]".
    #[arg(long)]
    protect_headers: bool,
    /// With --protect-headers: show the real Subject at the top of the main text body part(s)
    /// (Legacy Display Element, RFC 9788 §4.2: every alternative of a multipart/alternative,
    /// the first part of a multipart/mixed) for clients that do not read header protection.
    #[arg(long, requires = "protect_headers")]
    legacy_display: bool,
    /// Where a binary part of a large message (over 8 MiB, encrypted as a stream) that must be
    /// base64-encoded first waits while it is looked at, when it is over 1 MiB (an unnamed
    /// temporary file): default the directory of --out, else $TMPDIR.
    #[arg(long, value_name = "DIR")]
    spill_dir: Option<PathBuf>,
    #[command(flatten)]
    io: IoArgs,
}

#[derive(Args)]
pub(crate) struct SignArgs {
    /// Secret key file (armored or binary).
    #[arg(long, value_name = "KEYFILE")]
    key: PathBuf,
    /// Environment variable holding the key's passphrase.
    #[arg(long, value_name = "VAR")]
    passphrase_env: Option<String>,
    /// Header protection (RFC 9788, hp="clear"): sign the header fields too.
    #[arg(long)]
    protect_headers: bool,
    /// Where a part of a large message (over 8 MiB, signed as a stream) that must be
    /// re-encoded to 7-bit first waits while it is looked at, when it is over 1 MiB (an
    /// unnamed temporary file): default the directory of --out, else $TMPDIR.
    #[arg(long, value_name = "DIR")]
    spill_dir: Option<PathBuf>,
    #[command(flatten)]
    io: IoArgs,
}

#[derive(Args)]
pub(crate) struct DecryptArgs {
    /// Our secret key file (armored or binary; several keys in it are all tried).
    #[arg(long, value_name = "KEYFILE")]
    key: PathBuf,
    /// Certificate of a sender whose signature is expected; repeat for several.
    #[arg(long, value_name = "KEYFILE")]
    signer: Vec<PathBuf>,
    /// Environment variable holding the key's passphrase.
    #[arg(long, value_name = "VAR")]
    passphrase_env: Option<String>,
    /// Where the decrypted message waits (a 0600 temporary file) until every check has
    /// passed: default the directory of --out (then it is renamed into place), else $TMPDIR.
    #[arg(long, value_name = "DIR")]
    spill_dir: Option<PathBuf>,
    #[command(flatten)]
    io: IoArgs,
}

#[derive(Args)]
pub(crate) struct VerifyArgs {
    /// Certificate of a sender whose signature is accepted; repeat for several.
    #[arg(long, value_name = "KEYFILE", required = true)]
    signer: Vec<PathBuf>,
    /// Input message (default: stdin).
    #[arg(long = "in", value_name = "FILE")]
    input: Option<PathBuf>,
    /// Write the message without its signature here.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Where a large PGP/MIME message (above 8 MiB, verified as a stream) waits (a 0600
    /// temporary file) until its signatures are checked: default the directory of --out
    /// (then it is renamed into place), else $TMPDIR.
    #[arg(long, value_name = "DIR")]
    spill_dir: Option<PathBuf>,
}

pub(crate) fn run(c: PgpCommand) -> Result<u8, Failure> {
    match c {
        PgpCommand::Encrypt(a) => encrypt(a),
        PgpCommand::Sign(a) => sign(a),
        PgpCommand::Decrypt(a) => decrypt(a),
        PgpCommand::Verify(a) => verify(a),
        PgpCommand::GenerateKey(a) => generate_key(a),
    }
}

fn generate_key(a: GenerateKeyArgs) -> Result<u8, Failure> {
    let kind: PgpKind = crate::generate::parse_kind(&a.kind)?;
    if a.userid.trim().is_empty() || a.userid.chars().any(char::is_control) {
        return Err(Failure(
            2,
            "--userid: empty or with control characters".into(),
        ));
    }
    let passphrase = crate::new_password(a.passphrase_env.as_deref(), "--passphrase-env")?;
    let mut files = crate::NewFiles::check(&[&a.secret_out, &a.cert_out])?;
    let (lib_kind, for_gnupg) = match kind {
        PgpKind::Ed25519 => (pgp::KeyKind::Cv25519, true),
        PgpKind::Rsa3072 => (pgp::KeyKind::Rsa3072, true),
        PgpKind::P256 => (pgp::KeyKind::P256, true),
        PgpKind::P384 => (pgp::KeyKind::P384, true),
        PgpKind::V6Ed25519 => (pgp::KeyKind::V6Cv25519, false),
        PgpKind::V6MlDsa65Ed25519 => (pgp::KeyKind::V6MlDsa65Ed25519, false),
        PgpKind::Ed25519MlKem768 => (pgp::KeyKind::Ed25519MlKem768, false),
    };
    let key = if for_gnupg {
        SecretKey::generate_for_gnupg(&a.userid, lib_kind)
    } else {
        SecretKey::generate(&a.userid, lib_kind)
    }?;
    if key.cert().addresses().is_empty() {
        return Err(Failure(
            2,
            format!(
                "--userid: no mail address in \"{}\" (write \"Name <alice@example.com>\")",
                printable(&a.userid)
            ),
        ));
    }
    let encoding = if a.binary {
        pgp::Encoding::Binary
    } else {
        pgp::Encoding::Armored
    };
    let secret = key.export_secret(passphrase.as_ref(), encoding)?;
    files.write(&a.secret_out, &secret, true)?;
    files.write(&a.cert_out, &key.cert().export(encoding)?, false)?;
    files.keep();
    println!("{}", key.cert().fingerprint());
    Ok(0)
}

fn with_path<T>(path: &Path, r: Result<T, pgp::Error>) -> Result<T, Failure> {
    r.map_err(|e| Failure(2, format!("{}: {e}", path.display())))
}

fn certs(paths: &[PathBuf], limits: &Limits) -> Result<Vec<Cert>, Failure> {
    let mut out = Vec::new();
    for p in paths {
        out.extend(with_path(
            p,
            Cert::load_all(&read_file(p, limits)?, limits),
        )?);
    }
    Ok(out)
}

fn secret_key(
    path: &Path,
    passphrase_env: Option<&str>,
    limits: &Limits,
) -> Result<SecretKey, Failure> {
    let pass = super::password(passphrase_env)
        .map_err(|Failure(c, m)| Failure(c, m.replace("--password-env", "--passphrase-env")))?;
    match SecretKey::load(&read_file(path, limits)?, pass.as_ref(), limits) {
        // Without --passphrase-env the user may not know that a passphrase is needed: say how.
        Err(pgp::Error::BadPassphrase) if pass.is_none() => Err(Failure(
            2,
            format!(
                "{}: the key is locked with a passphrase: name the variable holding it with --passphrase-env",
                path.display()
            ),
        )),
        r => with_path(path, r),
    }
}

fn encrypt(a: EncryptArgs) -> Result<u8, Failure> {
    let limits = Limits::default();
    let recipients = certs(&a.to, &limits)?;
    let signer = a
        .sign_key
        .as_deref()
        .map(|p| secret_key(p, a.passphrase_env.as_deref(), &limits))
        .transpose()?;
    let mut opts = pgp::EncryptMessageOptions::default();
    opts.outer_subject = a.subject.clone();
    opts.protect_headers = a.protect_headers;
    opts.legacy_display = a.legacy_display;
    // A large message streams (as `smime encrypt` does above the same size); a small one, or
    // one with header protection (which needs the whole message), is encrypted in memory.
    let input = if a.protect_headers {
        read_input(a.io.input.as_deref(), &limits)?
    } else {
        let path = a.io.input.as_deref();
        let mut reader = open_input(path)?;
        let first = read_first(&mut reader, path)?;
        if first.len() > super::STREAM_ABOVE {
            return encrypt_streaming(
                &first,
                reader,
                &a,
                &recipients,
                signer.as_ref(),
                &opts,
                &limits,
            );
        }
        first
    };
    let out = pgp::encrypt_message(
        &input,
        &recipients,
        signer.as_ref(),
        &opts,
        &mut rand_core::OsRng,
        &limits,
    )?;
    write_output(a.io.out.as_deref(), &out)?;
    Ok(0)
}

/// The first [`STREAM_ABOVE`](super::STREAM_ABOVE) + 1 bytes of `reader`: more than
/// `STREAM_ABOVE` of them choose the streaming path.
fn read_first(reader: &mut impl Read, path: Option<&Path>) -> Result<Zeroizing<Vec<u8>>, Failure> {
    let mut first = Zeroizing::new(Vec::with_capacity(super::STREAM_ABOVE + 1));
    reader
        .take(super::STREAM_ABOVE as u64 + 1)
        .read_to_end(&mut first)
        .map_err(|e| Failure(2, format!("{}: {e}", input_name(path))))?;
    Ok(first)
}

/// Encrypt `first` and the rest of `reader` as a stream, into a temporary file released as the
/// output once complete (no partial output on an error, as with the in-memory path).
fn encrypt_streaming(
    first: &[u8],
    reader: impl BufRead,
    a: &EncryptArgs,
    recipients: &[Cert],
    signer: Option<&SecretKey>,
    opts: &pgp::EncryptMessageOptions,
    limits: &Limits,
) -> Result<u8, Failure> {
    let io = &a.io;
    let spill_dir = usable_spill_dir(a.spill_dir.as_deref(), io.out.as_deref())?;
    let (dir, tmp) = super::output_temp(io.out.as_deref())?;
    let out = std::io::BufWriter::with_capacity(super::STEP, tmp.as_file());
    let mut w = pgp::stream::MessageEncryptor::new(out, recipients, signer, opts, limits)?;
    let input = io.input.as_deref();
    super::feed(
        first,
        reader,
        &mut w,
        Reencode::LineEnds,
        &spill_dir,
        input,
        limits,
    )?;
    let mut out = w.finish()?;
    out.flush()?;
    drop(out);
    release_output(tmp, &dir, io.out.as_deref())?;
    Ok(0)
}

/// Sign `first` and the rest of `reader` as a stream, re-encoded to 7-bit on the way (RFC 3156
/// §5), into a temporary file released as the output once complete. `Ok(false)`: the signer
/// refused the content all the same (nothing is written; sign it in memory instead).
fn sign_streaming(
    first: &[u8],
    reader: impl BufRead,
    key: &SecretKey,
    a: &SignArgs,
    limits: &Limits,
) -> Result<bool, Failure> {
    let (input, out) = (a.io.input.as_deref(), a.io.out.as_deref());
    let spill_dir = usable_spill_dir(a.spill_dir.as_deref(), out)?;
    let (dir, tmp) = super::output_temp(out)?;
    {
        let sink = std::io::BufWriter::with_capacity(super::STEP, tmp.as_file());
        let signer = pgp::stream::MessageSigner::new(sink, key, &mut rand_core::OsRng, limits)?;
        let mut w = Refusable {
            signer,
            refused: false,
        };
        let fed = super::feed(
            first,
            reader,
            &mut w,
            Reencode::SevenBit,
            &spill_dir,
            input,
            limits,
        );
        if w.refused {
            return Ok(false);
        }
        fed?;
        match w.signer.finish() {
            Err(pgp::Error::NotStreamable { .. }) => return Ok(false),
            r => r?.flush()?,
        }
    }
    release_output(tmp, &dir, out)?;
    Ok(true)
}

/// The streaming signer, remembering whether it refused content that is not 7-bit
/// ([`pgp::Error::NotStreamable`] inside a write error).
struct Refusable<'a, W: Write + Send + Sync> {
    signer: pgp::stream::MessageSigner<'a, W>,
    refused: bool,
}

impl<'a, W: Write + Send + Sync + 'a> Write for Refusable<'a, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.signer.write(buf).inspect_err(|e| {
            self.refused |= e
                .get_ref()
                .and_then(|i| i.downcast_ref::<pgp::Error>())
                .is_some_and(|i| matches!(i, pgp::Error::NotStreamable { .. }));
        })
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.signer.flush()
    }
}

/// The input as a buffered reader that the streaming decryption can take (sequoia's readers
/// must be `Send + Sync`).
fn open_input(path: Option<&Path>) -> Result<Box<dyn BufRead + Send + Sync>, Failure> {
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

fn sign(a: SignArgs) -> Result<u8, Failure> {
    let limits = Limits::default();
    let key = secret_key(&a.key, a.passphrase_env.as_deref(), &limits)?;
    // A large message streams (as `encrypt` does above the same size), re-encoded to 7-bit on
    // the way as RFC 3156 §5 wants; a small one, and one with header protection (which needs
    // the whole message), is signed in memory as before. Should the streaming signer refuse
    // the re-encoded content all the same, a file is read again and signed in memory.
    let path = a.io.input.as_deref();
    let input = if a.protect_headers {
        read_input(path, &limits)?
    } else {
        let mut reader = open_input(path)?;
        let first = read_first(&mut reader, path)?;
        if first.len() <= super::STREAM_ABOVE {
            first
        } else if sign_streaming(&first, reader, &key, &a, &limits)? {
            return Ok(0);
        } else if path.is_some() {
            read_input(path, &limits)?
        } else {
            return Err(Failure(
                2,
                "stdin: the message cannot be signed as a stream; give it with --in FILE".into(),
            ));
        }
    };
    let mut opts = pgp::SignMessageOptions::default();
    opts.protect_headers = a.protect_headers;
    let out = pgp::sign_message_with(&input, &key, &opts, &mut rand_core::OsRng, &limits)?;
    write_output(a.io.out.as_deref(), &out)?;
    Ok(0)
}

fn decrypt(a: DecryptArgs) -> Result<u8, Failure> {
    let limits = Limits::default();
    let key = secret_key(&a.key, a.passphrase_env.as_deref(), &limits)?;
    let signers = certs(&a.signer, &limits)?;
    // A PGP/MIME encrypted message streams through a spill file (any size, bounded memory);
    // the rest (inline PGP, or not encrypted at all) is read whole as before.
    let path = a.io.input.as_deref();
    let mut input = open_input(path)?;
    let head = pgp::stream::read_header_block(&mut input)
        .map_err(|e| Failure(2, format!("{}: {e}", input_name(path))))?;
    let d = if pgp::stream::is_pgp_mime_encrypted(&head, &limits) {
        let dir = usable_spill_dir(a.spill_dir.as_deref(), a.io.out.as_deref())?;
        let mut spilled = pgp::stream::decrypt_message(
            std::io::Cursor::new(head).chain(input),
            std::slice::from_ref(&key),
            &signers,
            &dir,
            &limits,
        )?;
        // A multipart/signed entity inside is verified from the spill file (any size); when a
        // signature is asked for, an inline one in a message of up to 8 MiB is looked for in
        // memory, as before; the message is released from the spill file as it is.
        if spilled.is_signed() {
            spilled.verify_inner(&signers, &dir, &limits)?;
        }
        let inline = !spilled.is_signed()
            && !a.signer.is_empty()
            && spilled.len() <= super::STREAM_ABOVE as u64;
        if spilled.verification().signatures.is_empty() && inline {
            spilled.into_decrypted(&signers, &limits)?
        } else {
            let verification = spilled.verification().clone();
            let hp = spilled.header_protection().cloned();
            release_decrypted(spilled, &dir, a.io.out.as_deref())?;
            crate::print_header_protection(hp.as_ref());
            return Ok(report(&a, &verification));
        }
    } else {
        let input = read_rest(&head, input, path, &limits)?;
        pgp::decrypt_message(&input, std::slice::from_ref(&key), &signers, &limits)?
    };
    write_output(a.io.out.as_deref(), &d.message)?;
    crate::print_header_protection(d.header_protection.as_ref());
    Ok(report(&a, &d.verification))
}

/// The signature report of `decrypt` on stderr, and its exit code.
fn report(a: &DecryptArgs, v: &pgp::Verification) -> u8 {
    if a.signer.is_empty() {
        // No signature was asked for: decryption alone succeeded, so exit 0 (the contract),
        // and only say who signed, since without a certificate nothing could be checked.
        for s in &v.signatures {
            eprintln!(
                "signature by {} not checked (no --signer given)",
                s.fingerprint
            );
        }
        return 0;
    }
    if v.signatures.is_empty() {
        eprintln!("signature: none (the decrypted message is not signed)");
        return 1;
    }
    print_verification(v);
    if v.is_valid() { 0 } else { 1 }
}

fn verify(a: VerifyArgs) -> Result<u8, Failure> {
    let limits = Limits::default();
    let signers = certs(&a.signer, &limits)?;
    // A PGP/MIME signed message above 8 MiB streams through a spill file (any size, bounded
    // memory); the rest (a smaller one, an inline signature, not signed at all) is read whole
    // as before.
    let path = a.input.as_deref();
    let mut input = open_input(path)?;
    let head = pgp::stream::read_header_block(&mut input)
        .map_err(|e| Failure(2, format!("{}: {e}", input_name(path))))?;
    let mut first = Zeroizing::new(head);
    if pgp::stream::is_pgp_mime_signed(&first, &limits) {
        let room = (super::STREAM_ABOVE + 1).saturating_sub(first.len());
        input
            .by_ref()
            .take(room as u64)
            .read_to_end(&mut first)
            .map_err(|e| Failure(2, format!("{}: {e}", input_name(path))))?;
        if first.len() > super::STREAM_ABOVE {
            let dir = usable_spill_dir(a.spill_dir.as_deref(), a.out.as_deref())?;
            let input = std::io::Cursor::new(std::mem::take(&mut *first)).chain(input);
            let v = pgp::stream::verify_message(input, &signers, &dir, &limits)?;
            print_verification(v.verification());
            let code = if v.verification().is_valid() { 0 } else { 1 };
            if let Some(out) = a.out.as_deref() {
                release_decrypted(v, &dir, Some(out))?;
            }
            return Ok(code);
        }
    }
    let input = read_rest(&first, input, path, &limits)?;
    let v = pgp::verify_message(&input, &signers, &limits)?;
    print_verification(&v.verification);
    if let Some(out) = a.out.as_deref() {
        write_output(Some(out), &v.message)?;
    }
    Ok(if v.verification.is_valid() { 0 } else { 1 })
}

fn print_verification(v: &pgp::Verification) {
    if v.signatures.is_empty() {
        eprintln!("no signatures");
    }
    for s in &v.signatures {
        eprintln!(
            "signature by {} ({})",
            s.fingerprint,
            if s.known { "known key" } else { "unknown key" }
        );
        if let Some(c) = &s.signer {
            eprintln!("  user ids: {}", printable(&c.addresses().join(", ")));
        }
        for (name, passed, detail) in &s.checks {
            eprintln!(
                "  [{}] {}: {}",
                if *passed { "ok" } else { "FAIL" },
                name,
                printable(&one_line(detail))
            );
        }
    }
    eprintln!(
        "{}",
        if v.is_valid() {
            "signature: valid"
        } else {
            "signature: INVALID"
        }
    );
}
