//! `sealgate demo`: a whole gateway in one directory, with no other setup.
//!
//! The first run makes every key in-process (a demo CA and S/MIME certificates with
//! sealgate-smime's issuer, OpenPGP keys with sequoia), a SQLite key store, a commented
//! policy and a gateway configuration; every run then builds sample messages (real xlsx, docx
//! and pdf attachments, a confidential keyword, a card number, MIKE requests, signed and
//! encrypted inbound mail), processes them all through one `Gateway` built from that
//! configuration, writes every output to `DIR/out/`, appends to `DIR/audit.jsonl`, and prints
//! a table and the commands that check the outputs with openssl, gpg and 7z. A second run
//! reuses the keys, the store and the policy, overwrites the outputs and continues the audit
//! chain.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use clap::Args;
use rand_core::{OsRng, RngCore};
use sealgate::config::GatewayConfig;
use sealgate::keystore::ImportOptions;
use sealgate::mime::{Entity, MessageBuilder, Part, format_date, message_id};
use sealgate::smime::{self, Certificate, CertificateParams, Curve, Identity, KeyKind, PrivateKey};
use sealgate::{Envelope, Limits, Outcome, pgp};
use zeroize::Zeroizing;

use super::Failure;
use super::process::{Written, write_outcome};

/// Written last by the first run: a directory with it is a demo directory to reuse.
const MARKER: &str = ".sealgate-demo";
const MARKER_TEXT: &str = "sealgate demo directory, format 1\n";

#[derive(Args)]
pub(crate) struct DemoArgs {
    /// The demo directory (created on the first run, reused by later runs).
    #[arg(long, value_name = "DIR", default_value = "sealgate-demo")]
    dir: PathBuf,
}

/// The people of the demo. Ours: alice (S/MIME + OpenPGP), the newsletter sender (S/MIME),
/// the domain identity and the MIKE responder. Partners: bob (S/MIME), carol (OpenPGP), dave
/// (nothing), erin (S/MIME, not in the store: the gateway learns her certificate from her
/// signed message).
const ALICE: &str = "alice@example.com";
const NEWSLETTER: &str = "newsletter@example.com";
const GATEWAY: &str = "gateway@example.com";
const MIKE: &str = "keys@example.com";
const BOB: &str = "bob@partner.example";
const CAROL: &str = "carol@pgp.example";
const DAVE: &str = "dave@plain.example";
const ERIN: &str = "erin@harvest.example";

pub(crate) const POLICY: &str = r#"# Sealgate demo policy (sealgate-policy rule file). Rules are tried in order for each
# recipient; the first that matches decides (stop = true is the default), else [default].
# Directions: outbound (ours -> outside), inbound (outside -> ours), internal, relay.

# Mail of these domains is ours.
internal_domains = ["example.com"]

# Executables and scripts are refused in every direction, recognised by their content
# (a renamed .exe is still an executable) and by their names.
[[rule]]
name = "reject-executables"
when = { any = [
    { attachment_type = ["executable", "script"] },
    { attachment_name = ["*.exe", "*.scr", "*.bat", "*.cmd", "*.js", "*.vbs", "*.ps1"] },
] }
action = { reject = "Executable attachments are not allowed" }

# Bulk signing: the newsletter is S/MIME signed so that recipients can tell it from spoofed
# mail, and tagged. Not encrypted: it goes to many people who have no certificates.
[[rule]]
name = "newsletter-signing"
when = { sender = "newsletter@example.com" }
action = [{ sign = "smime" }, { add_header = { name = "X-Sealgate-Signed", value = "bulk" } }]

# Card numbers (validated: Luhn and issuer range) must be encrypted with a certificate or an
# OpenPGP key. No ZIP fallback: a recipient with neither is held, never sent in clear.
[[rule]]
name = "card-numbers"
when = { all = [{ direction = "outbound" }, { sensitive = "payment_card" }] }
action = [{ sign = "smime" }, { encrypt = ["smime", "pgp"] }]

# Confidential content goes out as a password ZIP (the sender gets the password to pass on
# by another channel), whatever keys the recipient has: the keyword in the subject, the body
# or inside an attachment (xlsx, docx, pdf text is looked at).
[[rule]]
name = "confidential-zip"
when = { all = [{ direction = "outbound" }, { any = [
    { subject_contains = "confidential" },
    { body_contains = "confidential" },
    { attachment_contains = "confidential" },
] }] }
action = { zip = { password = "generate", length = 16, method = "aes256" } }

# Partners that use OpenPGP: signed and encrypted with OpenPGP (PGP/MIME).
[[rule]]
name = "pgp-partners"
when = { all = [{ direction = "outbound" }, { recipient = "*@pgp.example" }] }
action = [{ sign = "pgp" }, { encrypt = ["pgp"] }]

# Everything else leaving us: signed, and encrypted best effort: S/MIME when we hold a usable
# certificate, else OpenPGP when we hold a usable key, else a password ZIP.
[[rule]]
name = "outbound-best-effort"
when = { direction = "outbound" }
action = [
    { sign = "smime" },
    { encrypt = ["smime", "pgp", "zip"], zip = { password = "generate", length = 16, method = "aes256" } },
]

# Inbound and internal mail: delivered as it is (the gateway still decrypts what is
# addressed to our keys, verifies signatures and learns the signers' certificates).
[default]
action = "none"
"#;

struct Paths {
    dir: PathBuf,
    check: PathBuf,
    out: PathBuf,
    messages: PathBuf,
}

impl Paths {
    fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
            check: dir.join("check"),
            out: dir.join("out"),
            messages: dir.join("messages"),
        }
    }
    fn config(&self) -> PathBuf {
        self.dir.join("gateway.toml")
    }
}

fn io_err(path: &Path, e: std::io::Error) -> Failure {
    Failure(2, format!("{}: {e}", path.display()))
}

fn write(path: &Path, data: &[u8]) -> Result<(), Failure> {
    std::fs::write(path, data).map_err(|e| io_err(path, e))
}

/// A file only the owner may read (keys, the store key).
fn write_secret(path: &Path, data: &[u8]) -> Result<(), Failure> {
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    let mut f = o.open(path).map_err(|e| io_err(path, e))?;
    f.write_all(data).map_err(|e| io_err(path, e))
}

fn read(path: &Path) -> Result<Zeroizing<Vec<u8>>, Failure> {
    super::read_path(path, 16 * 1024 * 1024)
}

pub(crate) fn run(a: DemoArgs) -> Result<u8, Failure> {
    let p = Paths::new(&a.dir);
    let fresh = !p.dir.join(MARKER).exists();
    if fresh {
        if p.dir.exists()
            && std::fs::read_dir(&p.dir)
                .map_err(|e| io_err(&p.dir, e))?
                .next()
                .is_some()
        {
            return Err(Failure(
                2,
                format!(
                    "{} exists and is not a demo directory (no {MARKER}); give an empty or new --dir",
                    p.dir.display()
                ),
            ));
        }
        println!("Creating the demo in {} ...", p.dir.display());
        setup(&p)?;
    } else {
        println!(
            "Reusing the demo in {} (keys, store and policy kept) ...",
            p.dir.display()
        );
    }
    process_samples(&p)
}

fn pem_cert(c: &Certificate) -> String {
    smime::pem::encode("CERTIFICATE", c.der())
}

fn pem_key(k: &PrivateKey) -> Result<Zeroizing<String>, Failure> {
    Ok(Zeroizing::new(smime::pem::encode(
        "PRIVATE KEY",
        &k.to_pkcs8_der()?,
    )))
}

/// Keys, store, policy, configuration, check files.
fn setup(p: &Paths) -> Result<(), Failure> {
    for d in [&p.dir, &p.check, &p.out, &p.messages] {
        std::fs::create_dir_all(d).map_err(|e| io_err(d, e))?;
    }
    let rng = &mut OsRng;
    let limits = Limits::default();

    // The demo CA (ECDSA P-256) and the S/MIME certificates it issues.
    let ca_key = PrivateKey::generate(KeyKind::Ec(Curve::P256))?;
    let mut ca_params = CertificateParams::ca("Sealgate Demo CA");
    ca_params.organization = Some("Sealgate demo".into());
    let ca = smime::issue::self_signed(&ca_key, &ca_params, rng)?;
    let mut user = |cn: &str, org: &str, email: &str, kind: KeyKind| -> Result<Identity, Failure> {
        let key = PrivateKey::generate(kind)?;
        let mut params = CertificateParams::user(cn, email);
        params.organization = Some(org.into());
        let cert = smime::issue::issue(key.public_key(), &params, &ca, &ca_key, rng)?;
        Ok(Identity::new(key, cert, Vec::new())?)
    };
    let rsa = KeyKind::Rsa(2048);
    let alice = user("Alice Example", "Example Corp", ALICE, rsa)?;
    let newsletter = user("Example Newsletter", "Example Corp", NEWSLETTER, rsa)?;
    let domain = user("Example Corp mail gateway", "Example Corp", GATEWAY, rsa)?;
    let bob = user("Bob Partner", "Partner Ltd", BOB, rsa)?;
    let erin = user(
        "Erin Harvest",
        "Harvest GmbH",
        ERIN,
        KeyKind::Ec(Curve::P256),
    )?;
    // Keys as GnuPG 2.2 makes them (SEIPD v1 only), so that gpg reads what is sent to them.
    let alice_pgp = pgp::SecretKey::generate_for_gnupg(
        "Alice Example <alice@example.com>",
        pgp::KeyKind::Cv25519,
    )?;
    let carol = pgp::SecretKey::generate_for_gnupg(
        "Carol Partner <carol@pgp.example>",
        pgp::KeyKind::Cv25519,
    )?;

    // What a person checking the outputs by hand needs: the partners' keys (they are the
    // recipients), the CA and our public certificate and key.
    let c = &p.check;
    write(&c.join("ca.pem"), pem_cert(&ca).as_bytes())?;
    for (name, id) in [("bob", &bob), ("erin", &erin)] {
        write(
            &c.join(format!("{name}.pem")),
            pem_cert(&id.cert).as_bytes(),
        )?;
        write_secret(&c.join(format!("{name}.key")), pem_key(&id.key)?.as_bytes())?;
    }
    write(&c.join("alice.pem"), pem_cert(&alice.cert).as_bytes())?;
    write(
        &c.join("newsletter.pem"),
        pem_cert(&newsletter.cert).as_bytes(),
    )?;
    write(&c.join("alice-pgp.asc"), &alice_pgp.to_armored_public()?)?;
    write(&c.join("carol.asc"), &carol.to_armored_public()?)?;
    write_secret(
        &c.join("carol-secret.asc"),
        &Zeroizing::new(carol.to_armored_secret()?),
    )?;
    write(
        &c.join("README.txt"),
        b"Keys to check the demo's outputs by hand (made by `sealgate demo`, for the demo only).\n\n\
ca.pem                 the demo CA (trust anchor for openssl cms -verify)\n\
bob.pem, bob.key       partner bob@partner.example: S/MIME certificate and private key\n\
erin.pem, erin.key     partner erin@harvest.example: S/MIME certificate and private key\n\
carol.asc              partner carol@pgp.example: OpenPGP certificate\n\
carol-secret.asc       ... and her secret key (gpg --import it into a scratch GNUPGHOME)\n\
alice.pem              our alice@example.com S/MIME certificate (her key is in the store only)\n\
alice-pgp.asc          our alice@example.com OpenPGP certificate\n\
newsletter.pem         our newsletter@example.com S/MIME certificate\n",
    )?;

    // The key store: a random raw store key in a file only we can read.
    let mut raw = Zeroizing::new([0u8; 32]);
    rng.fill_bytes(raw.as_mut());
    let hex: Zeroizing<String> = Zeroizing::new(raw.iter().map(|b| format!("{b:02x}")).collect());
    write_secret(&p.dir.join("store.key"), hex.as_bytes())?;
    write(&p.dir.join("policy.toml"), POLICY.as_bytes())?;
    let domain_id = sealgate::keystore::certificate_id(&domain.cert);
    write(
        &p.config(),
        format!(
            "# Sealgate gateway configuration written by `sealgate demo` (format: the sealgate\n\
# crate's README). Paths are relative to this file. Try:\n\
#   sealgate process --config gateway.toml --from alice@example.com --to bob@partner.example \\\n\
#       --in messages/01-best-effort.eml --out-dir out-process\n\
hostname = \"gw.example.com\"\n\
policy = \"policy.toml\"\n\
audit = \"audit.jsonl\"\n\
mike_address = \"{MIKE}\"\n\
sender_copy = true\n\
\n\
[store]\n\
path = \"keys.db\"\n\
# the store key: 64 hex digits in a file (or passphrase_env / key_env)\n\
key_file = \"store.key\"\n\
\n\
[domain_identities]\n\
# senders of example.com without their own certificate sign as {GATEWAY}\n\
\"example.com\" = \"{domain_id}\"\n"
        )
        .as_bytes(),
    )?;

    let config = GatewayConfig::load(p.config())?;
    let keyring = config.open_keyring()?;
    keyring.import(
        &[("ca.pem", pem_cert(&ca).as_bytes())],
        &ImportOptions {
            trust_anchors: true,
            by: "sealgate demo".into(),
            ..Default::default()
        },
    )?;
    let mut ours: Vec<(String, Zeroizing<Vec<u8>>)> = Vec::new();
    for (name, id) in [
        ("alice", &alice),
        ("newsletter", &newsletter),
        ("gateway", &domain),
    ] {
        let mut bundle = Zeroizing::new(pem_cert(&id.cert).into_bytes());
        bundle.extend_from_slice(pem_key(&id.key)?.as_bytes());
        ours.push((format!("{name}.pem"), bundle));
    }
    ours.push((
        "alice-pgp-secret.asc".into(),
        Zeroizing::new(alice_pgp.to_armored_secret()?),
    ));
    ours.push((
        "bob.pem".into(),
        Zeroizing::new(pem_cert(&bob.cert).into_bytes()),
    ));
    ours.push((
        "carol.asc".into(),
        Zeroizing::new(carol.to_armored_public()?),
    ));
    let files: Vec<(&str, &[u8])> = ours
        .iter()
        .map(|(n, d)| (n.as_str(), d.as_slice()))
        .collect();
    keyring.import(
        &files,
        &ImportOptions {
            by: "sealgate demo".into(),
            ..Default::default()
        },
    )?;
    drop(keyring);
    let _ = limits;
    write(&p.dir.join(MARKER), MARKER_TEXT.as_bytes())?;
    Ok(())
}

/// One sample message and its envelope.
struct Sample {
    name: &'static str,
    what: &'static str,
    from: &'static str,
    to: Vec<&'static str>,
    raw: Vec<u8>,
}

fn builder(from: &str, to: &[&str], subject: &str, rng: &mut impl RngCore) -> MessageBuilder {
    let domain = from.rsplit_once('@').map_or("example.com", |d| d.1);
    MessageBuilder::new()
        .raw("From", from)
        .raw("To", &to.join(", "))
        .text("Subject", subject)
        .raw("Date", &format_date(SystemTime::now()))
        .raw("Message-ID", &message_id(domain, rng))
}

const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";
const DOCX: &str = "application/vnd.openxmlformats-officedocument.wordprocessingml.document";

fn samples(p: &Paths, limits: &Limits) -> Result<Vec<Sample>, Failure> {
    let rng = &mut OsRng;
    let bob = Identity::from_files(
        &read(&p.check.join("bob.key"))?,
        &read(&p.check.join("bob.pem"))?,
        None,
        None,
        limits,
    )?;
    let erin = Identity::from_files(
        &read(&p.check.join("erin.key"))?,
        &read(&p.check.join("erin.pem"))?,
        None,
        None,
        limits,
    )?;
    let alice_cert = Certificate::load(&read(&p.check.join("alice.pem"))?, limits)?;
    let mut v = Vec::new();

    let to = vec![BOB, CAROL, DAVE];
    let raw = builder(ALICE, &to, "Project plan for Q1", rng).build(
        &Part::multipart(
            "mixed",
            vec![
                Part::plain("Hello all,\n\nattached are the plan, the budget and the overview for Q1.\n\nAlice\n"),
                Part::attachment(DOCX, "plan.docx", docx("Project plan Q1: milestones and owners", "Alice Example")?),
                Part::attachment(XLSX, "budget.xlsx", xlsx(&[("Item", "Cost"), ("Design", "12000"), ("Build", "48000")])?),
                Part::attachment("application/pdf", "overview.pdf", pdf("Q1 overview: on track")),
            ],
        ),
        rng,
    );
    v.push(Sample {
        name: "01-best-effort",
        what: "outbound, three partners, docx+xlsx+pdf",
        from: ALICE,
        to,
        raw,
    });

    let to = vec![BOB, DAVE];
    let raw = builder(ALICE, &to, "Acquisition terms", rng).build(
        &Part::multipart(
            "mixed",
            vec![
                Part::plain("The terms we discussed are in the attached sheet.\n"),
                Part::attachment(
                    XLSX,
                    "terms.xlsx",
                    xlsx(&[
                        ("CONFIDENTIAL", "draft"),
                        ("Price", "41000000"),
                        ("Closing", "2027-03-31"),
                    ])?,
                ),
            ],
        ),
        rng,
    );
    v.push(Sample {
        name: "02-confidential",
        what: "keyword inside an xlsx",
        from: ALICE,
        to,
        raw,
    });

    let to = vec![BOB, DAVE];
    let raw = builder(ALICE, &to, "Hotel booking", rng).build(
        &Part::plain(
            "Please book the rooms with the company card 4111 1111 1111 1111, valid 12/28.\n",
        ),
        rng,
    );
    v.push(Sample {
        name: "03-card-number",
        what: "a payment card number",
        from: ALICE,
        to,
        raw,
    });

    let to = vec![DAVE, CAROL];
    let raw = builder(NEWSLETTER, &to, "Example Corp news, December", rng).build(
        &Part::multipart(
            "alternative",
            vec![
                Part::plain("This month: our new office opens.\n"),
                Part::html("<p>This month: <b>our new office opens</b>.</p>"),
            ],
        ),
        rng,
    );
    v.push(Sample {
        name: "04-newsletter",
        what: "bulk sender",
        from: NEWSLETTER,
        to,
        raw,
    });

    let to = vec![BOB];
    let raw = builder(ALICE, &to, "The tool you asked for", rng).build(
        &Part::multipart(
            "mixed",
            vec![
                Part::plain("Run the attached installer.\n"),
                // a PE executable named as a PDF: recognised by its content
                Part::attachment("application/pdf", "report.pdf", pe_executable()),
            ],
        ),
        rng,
    );
    v.push(Sample {
        name: "05-executable",
        what: "a renamed .exe",
        from: ALICE,
        to,
        raw,
    });

    let to = vec![MIKE];
    let raw = builder(BOB, &to, "alice@example.com SMIME", rng)
        .build(&Part::plain("Please send me Alice's certificate.\n"), rng);
    v.push(Sample {
        name: "06-mike-smime",
        what: "key request (S/MIME)",
        from: BOB,
        to,
        raw,
    });

    let to = vec![MIKE];
    let raw = builder(CAROL, &to, "alice@example.com PGP", rng)
        .build(&Part::plain("Please send me Alice's OpenPGP key.\n"), rng);
    v.push(Sample {
        name: "07-mike-pgp",
        what: "key request (OpenPGP)",
        from: CAROL,
        to,
        raw,
    });

    let to = vec![ALICE];
    let inner = builder(ERIN, &to, "Hello from Harvest GmbH", rng).build(
        &Part::plain("Hi Alice, this is my new address. Erin\n"),
        rng,
    );
    let mut raw =
        b"Sealgate-Signature: valid; smime; signer=ceo@example.com; forged from outside\r\n"
            .to_vec();
    raw.extend_from_slice(&smime::sign_message(
        &inner,
        &erin,
        &Default::default(),
        rng,
        limits,
    )?);
    v.push(Sample {
        name: "08-inbound-signed",
        what: "signed by a new partner, forged result field",
        from: ERIN,
        to,
        raw,
    });

    let to = vec![ERIN];
    let raw = builder(ALICE, &to, "Re: Hello from Harvest GmbH", rng)
        .build(&Part::plain("Hi Erin, thanks, noted. Alice\n"), rng);
    v.push(Sample {
        name: "09-reply-to-erin",
        what: "reply: harvested certificate",
        from: ALICE,
        to,
        raw,
    });

    let to = vec![ALICE];
    let inner = builder(BOB, &to, "Contract draft", rng).build(
        &Part::multipart(
            "mixed",
            vec![
                Part::plain("Alice, the draft is attached.\n"),
                Part::attachment(
                    DOCX,
                    "contract.docx",
                    docx(
                        "Contract draft between Partner Ltd and Example Corp",
                        "Bob Partner",
                    )?,
                ),
            ],
        ),
        rng,
    );
    let mut opts = smime::EncryptMessageOptions::default();
    opts.cipher = smime::ContentCipher::Aes256Gcm;
    let raw = smime::encrypt_message(
        &inner,
        &[smime::Recipient::new(alice_cert)],
        Some((&bob, &Default::default())),
        &opts,
        rng,
        limits,
    )?;
    v.push(Sample {
        name: "10-inbound-encrypted",
        what: "S/MIME signed+encrypted to alice",
        from: BOB,
        to,
        raw,
    });
    Ok(v)
}

/// Every sample through one gateway; outputs, table, commands.
fn process_samples(p: &Paths) -> Result<u8, Failure> {
    let config = GatewayConfig::load(p.config())?;
    let limits = config.limits.clone();
    let samples = samples(p, &limits)?;
    // Outputs are overwritten: the previous run's go first.
    if p.out.exists() {
        std::fs::remove_dir_all(&p.out).map_err(|e| io_err(&p.out, e))?;
    }
    std::fs::create_dir_all(&p.out).map_err(|e| io_err(&p.out, e))?;
    std::fs::create_dir_all(&p.messages).map_err(|e| io_err(&p.messages, e))?;
    let gateway = config.build()?;
    println!("Sample messages (in {}):", p.messages.display());
    for s in &samples {
        println!(
            "  {:<22} {:<24} -> {:<40} {}",
            s.name,
            s.from,
            s.to.join(","),
            s.what
        );
    }

    let mut rows: Vec<[String; 5]> = Vec::new();
    let mut checks: Vec<String> = Vec::new();
    for s in &samples {
        write(&p.messages.join(format!("{}.eml", s.name)), &s.raw)?;
        let envelope = Envelope {
            mail_from: Some(s.from.to_string()),
            rcpt_to: s.to.iter().map(|t| t.to_string()).collect(),
        };
        let outcome = gateway.process(&s.raw, &envelope)?;
        let written = write_outcome(&outcome, &p.out, &format!("{}-", s.name))?;
        table_rows(s, &outcome, &mut rows);
        check_commands(p, s, &outcome, &written, &limits, &mut checks)?;
    }
    drop(gateway);

    print_table(&rows);
    let head = sealgate::audit::verify_file(p.dir.join("audit.jsonl"))?;
    println!();
    println!(
        "Outputs in {}, inputs in {}, audit trail {} ({} records, chain intact, head {}).",
        p.out.display(),
        p.messages.display(),
        p.dir.join("audit.jsonl").display(),
        head.records,
        head.head
    );
    println!(
        "Check the outputs by hand (partner keys in {}):",
        p.check.display()
    );
    println!(
        "  export GNUPGHOME=$(mktemp -d) && gpg --import {0}/carol-secret.asc {0}/alice-pgp.asc",
        p.check.display()
    );
    for c in &checks {
        println!("  {c}");
    }
    println!(
        "  sealgate audit verify {}",
        p.dir.join("audit.jsonl").display()
    );
    Ok(0)
}

fn short(fpr: &str) -> &str {
    fpr.get(..12).unwrap_or(fpr)
}

fn table_rows(s: &Sample, outcome: &Outcome, rows: &mut Vec<[String; 5]>) {
    let audit = &outcome.audit;
    // The rules that decided for this recipient (the policy decides per recipient).
    let rules_for = |addr: &str| -> String {
        let names: Vec<&str> = outcome
            .decision
            .iter()
            .flat_map(|d| d.recipients.iter())
            .filter(|rd| rd.recipient.eq_ignore_ascii_case(addr))
            .flat_map(|rd| rd.reasons.iter().map(|r| r.rule.as_str()))
            .filter(|n| *n != "default")
            .collect();
        if names.is_empty() {
            "-".to_string()
        } else {
            names.join(",")
        }
    };
    for r in &audit.recipients {
        let keys: Vec<String> = r
            .keys
            .iter()
            .map(|k| format!("{}:{}:{}", k.role, k.kind, short(&k.fingerprint)))
            .collect();
        let mut action = r.actions.join("+");
        if let Some(f) = &r.fallback
            && matches!(
                r.actions.first().map(String::as_str),
                Some("hold" | "reject")
            )
        {
            action.push_str(&format!(": {f}"));
        }
        rows.push([
            s.name.to_string(),
            r.address.clone(),
            rules_for(&r.address),
            action,
            if keys.is_empty() {
                "-".into()
            } else {
                keys.join(" ")
            },
        ]);
    }
}

fn print_table(rows: &[[String; 5]]) {
    let head = ["message", "recipient", "rules", "action", "keys"];
    let mut w = head.map(str::len);
    for r in rows {
        for (i, c) in r.iter().enumerate().take(4) {
            w[i] = w[i].max(c.chars().count()).min(48);
        }
    }
    let line = |cells: [&str; 5]| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i < 4 {
                s.push_str(&format!("{:<width$}  ", super::printable(c), width = w[i]));
            } else {
                s.push_str(&super::printable(c));
            }
        }
        s.trim_end().to_string()
    };
    println!();
    println!("{}", line(head));
    for r in rows {
        println!("{}", line([&r[0], &r[1], &r[2], &r[3], &r[4]]));
    }
}

/// The decoded body of the first part whose file name ends with `suffix`.
fn attachment(raw: &[u8], suffix: &str, limits: &Limits) -> Option<Vec<u8>> {
    fn walk(e: &Entity<'_>, suffix: &str, limits: &Limits) -> Option<Vec<u8>> {
        if e.content_type().is_multipart() {
            return e
                .parts(limits)
                .ok()?
                .iter()
                .find_map(|p| walk(p, suffix, limits));
        }
        match e.filename() {
            Some(n) if n.ends_with(suffix) => e.decoded_body(limits).ok(),
            _ => None,
        }
    }
    walk(&Entity::parse(raw, limits).ok()?, suffix, limits)
}

/// The password in a ZIP sender notification (the line after "The password that opens").
pub(crate) fn notification_password(raw: &[u8], limits: &Limits) -> Option<String> {
    fn texts(e: &Entity<'_>, limits: &Limits, out: &mut String) {
        if e.content_type().is_multipart() {
            for p in e.parts(limits).unwrap_or_default() {
                texts(&p, limits, out);
            }
        } else if e.content_type().mime_type == "text/plain"
            && let Ok(b) = e.decoded_body(limits)
        {
            out.push_str(&String::from_utf8_lossy(&b));
        }
    }
    let mut text = String::new();
    texts(&Entity::parse(raw, limits).ok()?, limits, &mut text);
    text.lines()
        .skip_while(|l| !l.contains("password that opens the archive"))
        .skip(1)
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(str::to_string)
}

fn armored_block(raw: &[u8], kind: &str) -> Option<Vec<u8>> {
    let text = String::from_utf8_lossy(raw);
    let begin = format!("-----BEGIN PGP {kind}-----");
    let end = format!("-----END PGP {kind}-----");
    let s = text.find(&begin)?;
    let e = text[s..].find(&end)? + s + end.len();
    let mut v = text[s..e].replace("\r\n", "\n").into_bytes();
    v.push(b'\n');
    Some(v)
}

/// The commands that check each output of `s` by hand; side files (the ZIP, the PGP armor)
/// are written next to the outputs.
fn check_commands(
    p: &Paths,
    s: &Sample,
    outcome: &Outcome,
    written: &[Written],
    limits: &Limits,
    out: &mut Vec<String>,
) -> Result<(), Failure> {
    let check = p.check.display();
    let ca = format!("{check}/ca.pem");
    let mut passwords = outcome
        .notifications
        .iter()
        .filter(|n| n.treatment == "zip-password-notification")
        .filter_map(|n| notification_password(&n.message, limits));
    for w in written {
        let f = w.path.display();
        let t = w.treatment.as_str();
        let first = w.recipients.first().map(String::as_str).unwrap_or_default();
        if t.ends_with("zip") && w.kind == "deliver" {
            let zip_path = w.path.with_extension("zip");
            if let Some(zip) = attachment(
                &std::fs::read(&w.path).map_err(|e| io_err(&w.path, e))?,
                ".zip",
                limits,
            ) {
                write(&zip_path, &zip)?;
                let pw = passwords.next().unwrap_or_else(|| "PASSWORD".into());
                if t.starts_with("signed:smime") {
                    out.push(format!(
                        "openssl cms -verify -in {f} -CAfile {ca} -out /dev/null"
                    ));
                }
                out.push(format!(
                    "7z x -p'{pw}' -o{} {}   # password from the notification to the sender",
                    zip_path.with_extension("d").display(),
                    zip_path.display()
                ));
            }
        } else if t.ends_with("+smime") || t == "smime" {
            let who = match first {
                BOB => "bob",
                ERIN => "erin",
                _ => continue,
            };
            let verify = if t.starts_with("signed:smime") {
                format!(" | openssl cms -verify -CAfile {ca}")
            } else {
                String::new()
            };
            out.push(format!(
                "openssl cms -decrypt -in {f} -recip {check}/{who}.pem -inkey {check}/{who}.key{verify}"
            ));
        } else if t.ends_with("pgp") {
            if let Some(block) = armored_block(
                &std::fs::read(&w.path).map_err(|e| io_err(&w.path, e))?,
                "MESSAGE",
            ) {
                let asc = w.path.with_extension("asc");
                write(&asc, &block)?;
                out.push(format!(
                    "gpg --decrypt {}   # as carol; the signature is alice's",
                    asc.display()
                ));
            }
        } else if t == "signed:smime" || (t == "mike-reply" && s.name.contains("smime")) {
            out.push(format!("openssl cms -verify -in {f} -CAfile {ca}"));
        } else if t == "mike-reply" {
            let raw = std::fs::read(&w.path).map_err(|e| io_err(&w.path, e))?;
            if let Some(key) = attachment(&raw, ".asc", limits) {
                let asc = w.path.with_extension("asc");
                write(&asc, &key)?;
                out.push(format!(
                    "gpg --show-keys {}   # the key MIKE sent",
                    asc.display()
                ));
            }
        } else if w.kind == "deliver" && s.to.contains(&ALICE) {
            out.push(format!("grep '^Sealgate-' {f}   # the gateway's verdicts"));
        }
    }
    Ok(())
}

// --- sample documents, made in code -------------------------------------------------------

fn zip_stored(files: &[(&str, String)]) -> Result<Vec<u8>, Failure> {
    use zip::write::SimpleFileOptions;
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (name, data) in files {
        w.start_file(*name, opts)?;
        w.write_all(data.as_bytes())
            .map_err(|e| Failure(2, e.to_string()))?;
    }
    Ok(w.finish()?.into_inner())
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

const XML: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n";
const RELS_NS: &str = "http://schemas.openxmlformats.org/package/2006/relationships";
const CORE: &str = "application/vnd.openxmlformats-package.core-properties+xml";

fn core_props(author: &str) -> String {
    format!(
        "{XML}<cp:coreProperties xmlns:cp=\"http://schemas.openxmlformats.org/package/2006/metadata/core-properties\" \
xmlns:dc=\"http://purl.org/dc/elements/1.1/\"><dc:creator>{}</dc:creator></cp:coreProperties>",
        xml_escape(author)
    )
}

/// A minimal valid Word document (one paragraph) with an author.
fn docx(text: &str, author: &str) -> Result<Vec<u8>, Failure> {
    zip_stored(&[
        (
            "[Content_Types].xml",
            format!(
                "{XML}<Types xmlns=\"http://schemas.openxmlformats.org/package/2006/content-types\">\
<Default Extension=\"rels\" ContentType=\"application/vnd.openxmlformats-package.relationships+xml\"/>\
<Default Extension=\"xml\" ContentType=\"application/xml\"/>\
<Override PartName=\"/word/document.xml\" ContentType=\"application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml\"/>\
<Override PartName=\"/docProps/core.xml\" ContentType=\"{CORE}\"/></Types>"
            ),
        ),
        (
            "_rels/.rels",
            format!(
                "{XML}<Relationships xmlns=\"{RELS_NS}\">\
<Relationship Id=\"rId1\" Type=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument\" Target=\"word/document.xml\"/>\
<Relationship Id=\"rId2\" Type=\"http://schemas.openxmlformats.org/package/2006/relationships/metadata/core-properties\" Target=\"docProps/core.xml\"/></Relationships>"
            ),
        ),
        (
            "word/document.xml",
            format!(
                "{XML}<w:document xmlns:w=\"http://schemas.openxmlformats.org/wordprocessingml/2006/main\">\
<w:body><w:p><w:r><w:t>{}</w:t></w:r></w:p></w:body></w:document>",
                xml_escape(text)
            ),
        ),
        ("docProps/core.xml", core_props(author)),
    ])
}

/// A minimal valid Excel workbook: one sheet of inline-string rows.
fn xlsx(rows: &[(&str, &str)]) -> Result<Vec<u8>, Failure> {
    let mut data = String::new();
    for (i, (a, b)) in rows.iter().enumerate() {
        let r = i + 1;
        data.push_str(&format!(
            "<row r=\"{r}\"><c r=\"A{r}\" t=\"inlineStr\"><is><t>{}</t></is></c><c r=\"B{r}\" t=\"inlineStr\"><is><t>{}</t></is></c></row>",
            xml_escape(a),
            xml_escape(b)
        ));
    }
    let ns = "http://schemas.openxmlformats.org/spreadsheetml/2006/main";
    let officedoc = "http://schemas.openxmlformats.org/officeDocument/2006/relationships";
    zip_stored(&[
        (
            "[Content_Types].xml",
            format!(
                "{XML}<Types xmlns=\"http://schemas.openxmlformats.org/package/2006/content-types\">\
<Default Extension=\"rels\" ContentType=\"application/vnd.openxmlformats-package.relationships+xml\"/>\
<Default Extension=\"xml\" ContentType=\"application/xml\"/>\
<Override PartName=\"/xl/workbook.xml\" ContentType=\"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml\"/>\
<Override PartName=\"/xl/worksheets/sheet1.xml\" ContentType=\"application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml\"/>\
<Override PartName=\"/docProps/core.xml\" ContentType=\"{CORE}\"/></Types>"
            ),
        ),
        (
            "_rels/.rels",
            format!(
                "{XML}<Relationships xmlns=\"{RELS_NS}\">\
<Relationship Id=\"rId1\" Type=\"{officedoc}/officeDocument\" Target=\"xl/workbook.xml\"/>\
<Relationship Id=\"rId2\" Type=\"http://schemas.openxmlformats.org/package/2006/relationships/metadata/core-properties\" Target=\"docProps/core.xml\"/></Relationships>"
            ),
        ),
        (
            "xl/workbook.xml",
            format!(
                "{XML}<workbook xmlns=\"{ns}\" xmlns:r=\"{officedoc}\"><sheets><sheet name=\"Sheet1\" sheetId=\"1\" r:id=\"rId1\"/></sheets></workbook>"
            ),
        ),
        (
            "xl/_rels/workbook.xml.rels",
            format!(
                "{XML}<Relationships xmlns=\"{RELS_NS}\">\
<Relationship Id=\"rId1\" Type=\"{officedoc}/worksheet\" Target=\"worksheets/sheet1.xml\"/></Relationships>"
            ),
        ),
        (
            "xl/worksheets/sheet1.xml",
            format!("{XML}<worksheet xmlns=\"{ns}\"><sheetData>{data}</sheetData></worksheet>"),
        ),
        ("docProps/core.xml", core_props("Alice Example")),
    ])
}

/// A minimal valid one-page PDF showing `text` (uncompressed content stream, exact xref).
fn pdf(text: &str) -> Vec<u8> {
    let esc: String = text
        .chars()
        .filter(|c| c.is_ascii() && !c.is_ascii_control())
        .flat_map(|c| match c {
            '(' | ')' | '\\' => vec!['\\', c],
            c => vec![c],
        })
        .collect();
    let content = format!("BT /F1 18 Tf 72 720 Td ({esc}) Tj ET\n");
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>".to_string(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_string(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>".to_string(),
        format!("<< /Length {} >>\nstream\n{content}endstream", content.len()),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_string(),
        "<< /Title (Overview) /Author (Alice Example) >>".to_string(),
    ];
    let mut out = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n".to_vec();
    let mut offsets = Vec::new();
    for (i, o) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n{o}\nendobj\n", i + 1).as_bytes());
    }
    let xref = out.len();
    out.extend_from_slice(
        format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes(),
    );
    for off in offsets {
        out.extend_from_slice(format!("{off:010} 00000 n \n").as_bytes());
    }
    out.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R /Info 6 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    out
}

/// The headers of a PE executable (DOS stub pointing at a PE signature and a COFF header):
/// enough for any content sniffer, runs nowhere.
fn pe_executable() -> Vec<u8> {
    let mut v = vec![0u8; 0x80];
    v[0] = b'M';
    v[1] = b'Z';
    v[0x3c] = 0x40;
    v[0x40..0x44].copy_from_slice(b"PE\0\0");
    v[0x44..0x46].copy_from_slice(&0x8664u16.to_le_bytes()); // x86-64
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pdf_xref_offsets_point_at_their_objects() {
        // the binary comment line made ASCII byte for byte, so that offsets stay as they are
        let p: Vec<u8> = pdf("Hello (world)")
            .into_iter()
            .map(|b| if b.is_ascii() { b } else { b'?' })
            .collect();
        let text = String::from_utf8(p).unwrap();
        let xref = text.find("xref\n").unwrap();
        let start: usize = text
            .rsplit("startxref\n")
            .next()
            .unwrap()
            .lines()
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(start, xref);
        for (i, line) in text[xref..].lines().skip(3).take(6).enumerate() {
            let off: usize = line[..10].parse().unwrap();
            assert!(
                text[off..].starts_with(&format!("{} 0 obj", i + 1)),
                "{line}"
            );
        }
        assert!(text.contains("(Hello \\(world\\)) Tj"));
    }

    #[test]
    fn office_files_are_zip_archives_with_their_parts() {
        let x = xlsx(&[("a", "b<")]).ok().unwrap();
        assert!(x.starts_with(b"PK\x03\x04"));
        let d = docx("hello", "me").ok().unwrap();
        let find = |hay: &[u8], n: &str| hay.windows(n.len()).any(|w| w == n.as_bytes());
        assert!(find(&x, "xl/worksheets/sheet1.xml") && find(&x, "b&lt;"));
        assert!(find(&d, "word/document.xml") && find(&d, "<dc:creator>me</dc:creator>"));
    }
}
