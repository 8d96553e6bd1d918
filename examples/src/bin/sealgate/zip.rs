//! `sealgate zip ...`: password-protected ZIP archives and message packaging.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Component, Path, PathBuf};

use clap::{Args, Subcommand, ValueEnum};
use sealgate::Limits;
use sealgate::zip::{
    self, Encryption, PackageOptions, Password, Scope, WriteOptions, ZipReader, ZipWriter,
};

use super::{Failure, password, printable, read_input, write_output};

#[derive(Subcommand)]
pub(crate) enum ZipCommand {
    /// Make an encrypted ZIP of FILEs (entry names are the file names). With
    /// --generate-password the password is printed once on stdout.
    Create(CreateArgs),
    /// Extract an encrypted (or plain) ZIP into DIR; never writes outside DIR, never
    /// overwrites a file, refuses zip bombs and unsafe names.
    Extract(ExtractArgs),
    /// Package a message for a recipient without keys: its attachments (or, with
    /// --whole-message, all of it) go into an encrypted ZIP; writes the recipient message and
    /// the sender notification that carries the password.
    Mail(MailArgs),
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum Method {
    /// WinZip AES-256: 7-Zip, WinZip, PeaZip, Keka, The Unarchiver.
    Aes256,
    /// Legacy ZipCrypto: weak, but Windows Explorer and macOS open it with nothing installed.
    Zipcrypto,
}

impl From<Method> for Encryption {
    fn from(m: Method) -> Self {
        match m {
            Method::Aes256 => Encryption::Aes256,
            Method::Zipcrypto => Encryption::ZipCrypto,
        }
    }
}

#[derive(Args)]
#[group(required = true, multiple = false)]
pub(crate) struct PasswordArgs {
    /// Environment variable holding the password (passwords are never command-line arguments).
    #[arg(long, value_name = "VAR")]
    password_env: Option<String>,
    /// Generate a password of LEN characters (default 16) from letters and digits without
    /// look-alikes (0 O 1 l I), from the OS random generator.
    // A String, not a number: in `create --generate-password a.txt` the word after the flag is
    // the first FILE, which `create` takes back.
    #[arg(long, value_name = "LEN", num_args = 0..=1, default_missing_value = "")]
    generate_password: Option<String>,
}

impl PasswordArgs {
    /// The length asked for by --generate-password, and a word after it that is no length.
    fn generate_length(&self) -> Result<(Option<usize>, Option<&str>), Failure> {
        match self.generate_password.as_deref() {
            None => Ok((None, None)),
            Some("") => Ok((Some(zip::DEFAULT_LENGTH), None)),
            Some(v) if v.bytes().all(|b| b.is_ascii_digit()) => v
                .parse()
                .map(|n| (Some(n), None))
                .map_err(|_| Failure(2, format!("--generate-password: bad length {v}"))),
            Some(v) => Ok((Some(zip::DEFAULT_LENGTH), Some(v))),
        }
    }
}

#[derive(Args)]
pub(crate) struct CreateArgs {
    /// The archive to write.
    #[arg(long, value_name = "OUT.zip")]
    out: PathBuf,
    #[command(flatten)]
    password: PasswordArgs,
    /// Encryption.
    #[arg(long, value_enum, default_value_t = Method::Aes256)]
    method: Method,
    /// Files to put in the archive.
    #[arg(value_name = "FILE")]
    files: Vec<PathBuf>,
}

#[derive(Args)]
pub(crate) struct ExtractArgs {
    /// Environment variable holding the password.
    #[arg(long, value_name = "VAR")]
    password_env: Option<String>,
    /// Directory to extract into (created if missing).
    #[arg(long, value_name = "DIR")]
    out_dir: PathBuf,
    /// The archive.
    #[arg(value_name = "IN.zip")]
    input: PathBuf,
}

#[derive(Args)]
pub(crate) struct MailArgs {
    /// The original message (RFC 5322; default: stdin).
    #[arg(long = "in", value_name = "MSG.eml")]
    input: Option<PathBuf>,
    /// Where to write the message for the recipients.
    #[arg(long, value_name = "R.eml")]
    recipient_out: PathBuf,
    /// Where to write the notification for the sender (it holds the password).
    #[arg(long, value_name = "S.eml")]
    sender_out: PathBuf,
    #[command(flatten)]
    password: PasswordArgs,
    /// Encryption.
    #[arg(long, value_enum, default_value_t = Method::Aes256)]
    method: Method,
    /// Put the whole message into the ZIP (as message.eml), not only its attachments.
    #[arg(long)]
    whole_message: bool,
    /// From address of the sender notification (default: postmaster@ the sender's domain).
    #[arg(long, value_name = "ADDRESS")]
    notification_from: Option<String>,
}

pub(crate) fn run(c: ZipCommand) -> Result<u8, Failure> {
    match c {
        ZipCommand::Create(a) => create(a),
        ZipCommand::Extract(a) => extract(a),
        ZipCommand::Mail(a) => mail(a),
    }
}

/// The password and whether it was generated.
fn get_password(a: &PasswordArgs) -> Result<(Password, bool), Failure> {
    if let (Some(len), _) = a.generate_length()? {
        let p = Password::generate(len, zip::DEFAULT_ALPHABET, &mut rand_core::OsRng)?;
        return Ok((p, true));
    }
    match password(a.password_env.as_deref())? {
        Some(p) if !zeroize_empty(&p) => Ok((Password::new(p), false)),
        Some(_) => Err(Failure(2, "--password-env: the password is empty".into())),
        None => Err(Failure(
            2,
            "give --password-env VAR or --generate-password".into(),
        )),
    }
}

fn zeroize_empty(p: &secrecy::SecretString) -> bool {
    use secrecy::ExposeSecret;
    p.expose_secret().is_empty()
}

fn create(mut a: CreateArgs) -> Result<u8, Failure> {
    let (pw, generated) = get_password(&a.password)?;
    if let (_, Some(file)) = a.password.generate_length()? {
        a.files.insert(0, PathBuf::from(file));
    }
    if a.files.is_empty() {
        return Err(Failure(2, "no FILE given".into()));
    }
    let file = File::create(&a.out).map_err(|e| Failure(2, format!("{}: {e}", a.out.display())))?;
    let result = (|| -> Result<(), Failure> {
        let mut w = ZipWriter::new(
            BufWriter::new(file),
            pw.clone(),
            WriteOptions::new(a.method.into()),
        );
        for path in &a.files {
            let f = File::open(path).map_err(|e| Failure(2, format!("{}: {e}", path.display())))?;
            let meta = f
                .metadata()
                .map_err(|e| Failure(2, format!("{}: {e}", path.display())))?;
            if !meta.is_file() {
                return Err(Failure(
                    2,
                    format!("{}: not a regular file", path.display()),
                ));
            }
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "file".into());
            w.add(&name, Some(meta.len()), f, &mut rand_core::OsRng)
                .map_err(|e| Failure(2, format!("{}: {e}", path.display())))?;
        }
        w.finish()?
            .flush()
            .map_err(|e| Failure(2, format!("{}: {e}", a.out.display())))?;
        Ok(())
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&a.out);
        return Err(e);
    }
    if generated {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{}", pw.expose())
            .and_then(|()| out.flush())
            .map_err(|e| Failure(2, format!("stdout: {e}")))?;
    }
    Ok(0)
}

/// `dir/name`, refusing any existing symbolic link on the way (a planted link must not lead
/// the write outside `dir`).
fn target_path(dir: &Path, name: &str) -> Result<PathBuf, Failure> {
    let rel = Path::new(name);
    let mut path = dir.to_path_buf();
    for c in rel.components() {
        match c {
            Component::Normal(part) => {
                path.push(part);
                let is_link =
                    std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink());
                if is_link {
                    return Err(Failure(
                        2,
                        format!(
                            "{}: is a symbolic link; refusing to write through it",
                            path.display()
                        ),
                    ));
                }
            }
            Component::CurDir => {}
            _ => {
                return Err(Failure(
                    2,
                    format!("unsafe entry name {:?}", printable(name)),
                ));
            }
        }
    }
    Ok(path)
}

fn extract(a: ExtractArgs) -> Result<u8, Failure> {
    let limits = Limits::default();
    let pw = password(a.password_env.as_deref())?.map(Password::new);
    let file =
        File::open(&a.input).map_err(|e| Failure(2, format!("{}: {e}", a.input.display())))?;
    let in_name = a.input.display().to_string();
    let mut zip = ZipReader::open(std::io::BufReader::new(file), &limits)
        .map_err(|e| Failure(2, format!("{in_name}: {e}")))?;
    std::fs::create_dir_all(&a.out_dir)
        .map_err(|e| Failure(2, format!("{}: {e}", a.out_dir.display())))?;
    let entries: Vec<_> = zip.entries().to_vec();
    let mut count = 0;
    for (i, entry) in entries.iter().enumerate() {
        let target = target_path(&a.out_dir, entry.name.trim_end_matches('/'))?;
        if entry.is_dir {
            std::fs::create_dir_all(&target)
                .map_err(|e| Failure(2, format!("{}: {e}", target.display())))?;
            continue;
        }
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| Failure(2, format!("{}: {e}", parent.display())))?;
            // the directories just made may not have been links, but check what they resolve to
            target_path(&a.out_dir, entry.name.trim_end_matches('/'))?;
        }
        if std::fs::symlink_metadata(&target).is_ok() {
            return Err(Failure(
                2,
                format!("{}: already exists; not overwritten", target.display()),
            ));
        }
        // Written to a new temporary file and renamed only when the MAC and CRC have been
        // checked: no unauthenticated plaintext is left behind under the entry's name.
        let tmp = target.with_file_name(format!(
            ".{}.sealgate-partial",
            target
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        ));
        let out = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(|e| Failure(2, format!("{}: {e}", tmp.display())))?;
        let mut out = BufWriter::new(out);
        let result = zip
            .read_to(i, pw.as_ref(), &mut out)
            .map_err(|e| Failure(2, format!("{in_name}: {}: {e}", printable(&entry.name))))
            .and_then(|_| {
                out.flush()
                    .map_err(|e| Failure(2, format!("{}: {e}", tmp.display())))
            });
        drop(out);
        if let Err(e) = result {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        std::fs::rename(&tmp, &target)
            .map_err(|e| Failure(2, format!("{}: {e}", target.display())))?;
        count += 1;
    }
    eprintln!(
        "sealgate: extracted {count} files into {}",
        a.out_dir.display()
    );
    Ok(0)
}

fn mail(a: MailArgs) -> Result<u8, Failure> {
    let limits = Limits::default();
    let (pw, _) = get_password(&a.password)?;
    if let (_, Some(v)) = a.password.generate_length()? {
        return Err(Failure(2, format!("--generate-password: bad length {v}")));
    }
    let input = read_input(a.input.as_deref(), &limits)?;
    let mut options = PackageOptions::default();
    options.encryption = a.method.into();
    options.scope = if a.whole_message {
        Scope::WholeMessage
    } else {
        Scope::Attachments
    };
    options.notification_from = a.notification_from;
    let out =
        zip::package(&input, &pw, &options, &mut rand_core::OsRng, &limits).map_err(
            |e| {
                match e {
            zip::Error::NoAttachments => Failure(
                2,
                "the message has no attachments; use --whole-message to put all of it into the ZIP"
                    .into(),
            ),
            e => Failure(2, e.to_string()),
        }
            },
        )?;
    write_output(Some(&a.recipient_out), &out.recipient_message)?;
    write_output(Some(&a.sender_out), &out.sender_notification)?;
    Ok(0)
}
