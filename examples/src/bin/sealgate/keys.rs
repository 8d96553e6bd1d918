//! `sealgate keys ...`: the key store (import, list, lookup, export-p12, expiring, crl import).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use clap::{Args, Subcommand};
use sealgate::Limits;
use sealgate::keystore::{
    self, Candidate, ImportOptions, Keyring, Material, SqliteStore, StoreSecret, Trust, format_time,
};
use sealgate::smime::{self, Pkcs12Format};

use super::{Failure, read_file};

/// The variable that holds the store passphrase unless --passphrase-env names another.
const PASSPHRASE_VAR: &str = "SEALGATE_STORE_PASSPHRASE";
/// A raw 256-bit store key (64 hex digits), used instead of a passphrase when set.
const KEY_VAR: &str = "SEALGATE_STORE_KEY";

#[derive(Args)]
pub(crate) struct KeysArgs {
    /// The store file (SQLite; created if missing).
    #[arg(long, value_name = "FILE.db")]
    store: PathBuf,
    /// Environment variable with the store passphrase (default SEALGATE_STORE_PASSPHRASE;
    /// SEALGATE_STORE_KEY may hold a raw key as 64 hex digits instead). Needed for private keys.
    #[arg(long, value_name = "VAR")]
    passphrase_env: Option<String>,
    #[command(subcommand)]
    command: KeysCommand,
}

#[derive(Subcommand)]
pub(crate) enum KeysCommand {
    /// Import certificates, keys and CRLs (PEM, DER, PKCS#12, OpenPGP; detected by content).
    /// A directory imports every file in it. All in one transaction: a broken file imports
    /// nothing and is named.
    Import(ImportArgs),
    /// List the store's certificates, OpenPGP keys and CRLs.
    List(JsonArg),
    /// Find the certificate or key to encrypt to ADDRESS; prints why every other candidate
    /// is not usable. Exit 0 found, 1 none usable, 2 error.
    Lookup(LookupArgs),
    /// Export the private key of ADDRESS with its certificate and chain as PKCS#12
    /// (AES-256-CBC + PBKDF2-SHA256, as OpenSSL 3 writes; --legacy: 3DES for gpgsm and old
    /// clients).
    #[command(name = "export-p12")]
    ExportP12(ExportArgs),
    /// List certificates that expire within the next N days.
    Expiring(ExpiringArgs),
    /// Certificate revocation lists.
    #[command(subcommand)]
    Crl(CrlCommand),
}

#[derive(Args)]
pub(crate) struct ImportArgs {
    /// Files or directories.
    #[arg(value_name = "FILE", required = true)]
    files: Vec<PathBuf>,
    /// Environment variable with the password of PKCS#12 files and encrypted keys.
    #[arg(long, value_name = "VAR")]
    password_env: Option<String>,
    /// The CA certificates of these files are trust anchors.
    #[arg(long)]
    trust: bool,
}

#[derive(Args)]
pub(crate) struct JsonArg {
    /// Machine-readable output (certificates named by the SHA-256 of their DER, lowercase hex).
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub(crate) struct LookupArgs {
    /// The mail address.
    #[arg(value_name = "ADDRESS")]
    address: String,
    /// S/MIME certificates only.
    #[arg(long, conflicts_with = "pgp")]
    smime: bool,
    /// OpenPGP certificates only.
    #[arg(long)]
    pgp: bool,
    /// Machine-readable output.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub(crate) struct ExportArgs {
    /// The address whose key is exported (our own signing identity for it).
    #[arg(value_name = "ADDRESS")]
    address: String,
    /// The PKCS#12 file to write.
    #[arg(long, value_name = "FILE.p12")]
    out: PathBuf,
    /// Environment variable with the password for the PKCS#12 file.
    #[arg(long, value_name = "VAR")]
    password_env: String,
    /// 3DES and SHA-1 MAC instead of AES-256 (for gpgsm and old clients).
    #[arg(long)]
    legacy: bool,
}

#[derive(Args)]
pub(crate) struct ExpiringArgs {
    /// The window, in days from now.
    #[arg(long, value_name = "N")]
    days: u32,
}

#[derive(Subcommand)]
pub(crate) enum CrlCommand {
    /// Import a CRL (PEM or DER); its signature must verify with its issuer's certificate in
    /// the store.
    Import {
        /// The CRL file.
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
}

pub(crate) fn run(a: KeysArgs) -> Result<u8, Failure> {
    let limits = Limits::default();
    let secret = store_secret(a.passphrase_env.as_deref())?;
    let store = Arc::new(SqliteStore::open(&a.store).map_err(|e| in_store(&a, e))?);
    let keys = Keyring::open(store, secret.as_ref(), limits).map_err(|e| in_store(&a, e))?;
    match a.command {
        KeysCommand::Import(i) => import(&keys, i),
        KeysCommand::List(j) => list(&keys, j.json),
        KeysCommand::Lookup(l) => lookup(&keys, l),
        KeysCommand::ExportP12(e) => export_p12(&keys, e),
        KeysCommand::Expiring(e) => expiring(&keys, e.days),
        KeysCommand::Crl(CrlCommand::Import { file }) => crl_import(&keys, file),
    }
}

fn in_store(a: &KeysArgs, e: keystore::Error) -> Failure {
    Failure(2, format!("{}: {e}", a.store.display()))
}

fn store_secret(var: Option<&str>) -> Result<Option<StoreSecret>, Failure> {
    if var.is_none()
        && let Ok(hex) = std::env::var(KEY_VAR)
    {
        let hex = zeroize::Zeroizing::new(hex);
        return StoreSecret::raw_key_from_hex(&hex)
            .map(Some)
            .map_err(|_| Failure(2, format!("{KEY_VAR} must be 64 hex digits")));
    }
    let name = var.unwrap_or(PASSPHRASE_VAR);
    match std::env::var(name) {
        Ok(_) => super::password(Some(name))
            .map(|p| p.map(StoreSecret::Passphrase))
            .map_err(|Failure(c, m)| Failure(c, m.replace("--password-env", "--passphrase-env"))),
        // Without a passphrase the store opens for public material only.
        Err(std::env::VarError::NotPresent) if var.is_none() => Ok(None),
        Err(_) => Err(Failure(
            2,
            format!("--passphrase-env: environment variable {name} is not set or not UTF-8"),
        )),
    }
}

fn import(keys: &Keyring, a: ImportArgs) -> Result<u8, Failure> {
    let password = super::password(a.password_env.as_deref())?;
    let opts = ImportOptions {
        password,
        trust_anchors: a.trust,
        by: std::env::var("USER").unwrap_or_default(),
    };
    let r = keys.import_paths(&a.files, &opts)?;
    println!(
        "imported {} certificate(s), {} private key(s), {} OpenPGP certificate(s), {} CRL(s): {} new, {} merged",
        r.certificates,
        r.private_keys,
        r.pgp_certificates,
        r.crls,
        r.outcome.added,
        r.outcome.merged
    );
    Ok(0)
}

fn crl_import(keys: &Keyring, file: PathBuf) -> Result<u8, Failure> {
    let data = read_file(&file, keys.limits())?;
    let items = keystore::parse_key_material(&data, None, keys.limits())
        .map_err(|r| Failure(2, format!("{}: {r}", file.display())))?;
    if items.is_empty() || !items.iter().all(|m| matches!(m, Material::Crl(_))) {
        return Err(Failure(2, format!("{}: not a CRL", file.display())));
    }
    keys.import_paths(&[file], &ImportOptions::default())?;
    println!("imported {} CRL(s)", items.len());
    Ok(0)
}

fn trust_name(t: Trust) -> &'static str {
    t.as_str()
}

fn list(keys: &Keyring, json: bool) -> Result<u8, Failure> {
    let store = keys.store();
    let certs = store.certificates()?;
    let pgp = store.pgp_certificates()?;
    let crls = store.crls()?;
    if json {
        let mut out = String::from("{\"certificates\":[");
        for (i, c) in certs.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(&format!(
                "{{\"sha256\":{},\"subject\":{},\"addresses\":{},\"ca\":{},\"trust\":{},\"not_before\":{},\"not_after\":{},\"has_key\":{}}}",
                js(&c.id),
                js(&c.subject),
                js_list(&c.addresses),
                c.is_ca,
                js(trust_name(c.trust)),
                js(&format_time(c.not_before)),
                js(&format_time(c.not_after)),
                c.has_key
            ));
        }
        out.push_str("],\"pgp\":[");
        for (i, p) in pgp.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(&format!(
                "{{\"fingerprint\":{},\"addresses\":{},\"trust\":{},\"has_secret\":{}}}",
                js(&p.fingerprint),
                js_list(&p.addresses),
                js(trust_name(p.trust)),
                p.has_secret
            ));
        }
        out.push_str("],\"crls\":[");
        for (i, c) in crls.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(&format!(
                "{{\"issuer\":{},\"this_update\":{},\"next_update\":{}}}",
                js(&c.issuer),
                js(&format_time(c.this_update)),
                c.next_update
                    .map(|t| js(&format_time(t)))
                    .unwrap_or_else(|| "null".into())
            ));
        }
        out.push_str("]}");
        println!("{out}");
        return Ok(0);
    }
    for c in &certs {
        println!(
            "x509 {} {}{} trust={} until {} \"{}\" {}",
            c.id,
            if c.is_ca { "ca" } else { "user" },
            if c.has_key { "+key" } else { "" },
            trust_name(c.trust),
            format_time(c.not_after),
            c.subject,
            c.addresses.join(",")
        );
    }
    for p in &pgp {
        println!(
            "pgp  {} {} trust={} {}",
            p.fingerprint,
            if p.has_secret { "secret" } else { "public" },
            trust_name(p.trust),
            p.addresses.join(",")
        );
    }
    for c in &crls {
        println!(
            "crl  \"{}\" this_update {}",
            c.issuer,
            format_time(c.this_update)
        );
    }
    Ok(0)
}

fn lookup(keys: &Keyring, a: LookupArgs) -> Result<u8, Failure> {
    let now = SystemTime::now();
    let (want_smime, want_pgp) = match (a.smime, a.pgp) {
        (false, false) => (true, true),
        x => x,
    };
    let smime = want_smime
        .then(|| keys.lookup_smime(&a.address, now))
        .transpose()?;
    let pgp = want_pgp
        .then(|| keys.lookup_pgp(&a.address, now))
        .transpose()?;
    let found = smime.as_ref().is_some_and(|l| l.selected.is_some())
        || pgp.as_ref().is_some_and(|l| l.selected.is_some());
    if a.json {
        let mut out = format!("{{\"address\":{},\"found\":{found}", js(&a.address));
        if let Some(l) = &smime {
            let sel = l
                .selected
                .as_ref()
                .map(|(c, _)| js(&keystore::certificate_id(c)))
                .unwrap_or_else(|| "null".into());
            out.push_str(&format!(
                ",\"smime\":{{\"selected\":{sel},\"candidates\":{}}}",
                js_candidates(&l.candidates, "sha256")
            ));
        }
        if let Some(l) = &pgp {
            let sel = l
                .selected
                .as_ref()
                .map(|c| js(&c.fingerprint()))
                .unwrap_or_else(|| "null".into());
            out.push_str(&format!(
                ",\"pgp\":{{\"selected\":{sel},\"candidates\":{}}}",
                js_candidates(&l.candidates, "fingerprint")
            ));
        }
        out.push('}');
        println!("{out}");
    } else {
        if let Some(l) = &smime {
            print_candidates("smime", &a.address, &l.candidates);
        }
        if let Some(l) = &pgp {
            print_candidates("pgp", &a.address, &l.candidates);
        }
    }
    Ok(if found { 0 } else { 1 })
}

fn print_candidates(kind: &str, address: &str, cands: &[Candidate]) {
    if cands.is_empty() {
        println!("{kind}: no certificate for {address}");
    }
    let mut chosen = false;
    for c in cands {
        match &c.verdict {
            Ok(()) if !chosen => {
                chosen = true;
                println!("{kind}: selected {} \"{}\"", c.id, c.subject);
            }
            Ok(()) => println!("{kind}: also usable {} \"{}\"", c.id, c.subject),
            Err(r) => println!("{kind}: rejected {} \"{}\": {r}", c.id, c.subject),
        }
    }
    if !chosen && !cands.is_empty() {
        println!("{kind}: none usable for {address}");
    }
}

fn js_candidates(cands: &[Candidate], id_name: &str) -> String {
    let items: Vec<String> = cands
        .iter()
        .map(|c| {
            let (usable, code, reason) = match &c.verdict {
                Ok(()) => (true, "null".to_string(), "null".to_string()),
                Err(r) => (false, js(r.code()), js(&r.to_string())),
            };
            format!(
                "{{{}:{},\"subject\":{},\"addresses\":{},\"trust\":{},\"usable\":{usable},\"code\":{code},\"reason\":{reason}}}",
                js(id_name),
                js(&c.id),
                js(&c.subject),
                js_list(&c.addresses),
                js(trust_name(c.trust)),
            )
        })
        .collect();
    format!("[{}]", items.join(","))
}

fn export_p12(keys: &Keyring, a: ExportArgs) -> Result<u8, Failure> {
    let password = super::password(Some(&a.password_env))?
        .ok_or_else(|| Failure(2, "--password-env is required".into()))?;
    let id = keys
        .signing_identity(&a.address, SystemTime::now())?
        .ok_or_else(|| {
            Failure(
                2,
                format!("no private key with a valid certificate for {}", a.address),
            )
        })?;
    let format = if a.legacy {
        Pkcs12Format::Legacy3Des
    } else {
        Pkcs12Format::Aes256
    };
    let p12 = smime::pkcs12::export(&id, &password, format, &mut rand_core::OsRng)?;
    std::fs::write(&a.out, &p12).map_err(|e| Failure(2, format!("{}: {e}", a.out.display())))?;
    println!(
        "wrote {} (key, certificate and {} chain certificate(s))",
        a.out.display(),
        id.chain.len()
    );
    Ok(0)
}

fn expiring(keys: &Keyring, days: u32) -> Result<u8, Failure> {
    for c in keys.expiring(days, SystemTime::now())? {
        println!(
            "{} {} \"{}\" {}",
            format_time(c.not_after),
            c.id,
            c.subject,
            c.addresses.join(",")
        );
    }
    Ok(0)
}

/// A JSON string (RFC 8259 §7).
fn js(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('"');
    for ch in s.chars() {
        match ch {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            '\r' => o.push_str("\\r"),
            '\t' => o.push_str("\\t"),
            c if (c as u32) < 0x20 => o.push_str(&format!("\\u{:04x}", c as u32)),
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

fn js_list(v: &[String]) -> String {
    let items: Vec<String> = v.iter().map(|s| js(s)).collect();
    format!("[{}]", items.join(","))
}
