//! The gateway: one call processes a message by policy, with the keys of the store.
//!
//! [`Gateway::process`] parses the message once, lets the policy decide per recipient, finds the
//! keys, has the engines carry the decision out, and returns every message to deliver (recipients
//! treated alike share one copy), the notifications for the sender, the recipients refused and
//! why, and the audit record. The gateway itself does no cryptography: it joins
//! [`crate::policy`], [`crate::keystore`] and the engines.
//!
//! Fail closed: a recipient for whom the policy demands encryption and no method can be applied
//! (no usable certificate or key, ZIP not allowed, an engine error) is refused with the reason;
//! no copy in clear text is ever produced for them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use rand_core::CryptoRngCore;
use sealgate_keystore::directory::FetchReport;
use sealgate_keystore::{KeyDirectory, KeyKind, Keyring, store::index_key};
use sealgate_mime::{Entity, HeaderField, Limits};
use sealgate_policy::{
    Action, Decision, Envelope, Inspection, Method, Policy, RecipientDecision, SignMethod,
    ZipSettings,
};
use sealgate_smime as smime;

use crate::audit::{AuditRecord, AuditSink, KeyRecord, RecipientRecord, RuleRecord};
use crate::mike::{self, MikeKind, RateLimiter};
use crate::{Error, Result};

/// The result fields the gateway adds to inbound messages. Fields of these names that arrive
/// from outside are removed first, so they can be trusted downstream.
pub const RESULT_FIELDS: [&str; 3] = [
    "Sealgate-Signature",
    "Sealgate-Decrypted",
    "Sealgate-Harvested",
];

/// Settings of a [`Gateway`] beyond the policy and the key store.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Options {
    /// The MIKE responder address (`keys@example.com`): a message to it asks for a key.
    pub mike_address: Option<String>,
    /// Encrypt outbound S/MIME and OpenPGP also to the sender's own certificate or key, when the
    /// store has one, so that copies in the sent folder stay readable.
    pub sender_copy: bool,
    /// Replace the outer Subject of encrypted messages with this text (the real Subject travels
    /// inside the encryption). `None` leaves the Subject as it is.
    pub outer_subject: Option<String>,
    /// The host name used in Message-IDs of the messages the gateway writes itself.
    pub hostname: String,
    /// Resource limits for every parser.
    pub limits: Limits,
    /// After the key directories found nothing for an address, do not ask them again for it
    /// for this long (a negative cache, so that mail to a partner without keys does not query
    /// LDAP/WKD/HKP per message). Directory *errors* are not cached.
    pub directory_negative_ttl: Duration,
    /// When a key directory fails (unreachable, timeout) while looking for a recipient's key,
    /// hold the message for that recipient (a temporary [`Refusal`]: the MTA answers 4xx and
    /// retries) instead of falling back to the next method the policy allows (e.g. password
    /// ZIP). Default `false`: fall back, and say so in the audit record.
    pub hold_on_directory_error: bool,
    /// Header protection (RFC 9788) on outbound S/MIME and OpenPGP encryption: the real
    /// Subject, From, To, Cc, Date, Message-ID... travel inside, the outer Subject is `[...]`.
    pub protect_headers: bool,
    /// With `protect_headers`: a Legacy Display Element (the real Subject at the top of a
    /// single-part text body) for recipients whose clients do not read header protection.
    pub legacy_display: bool,
    /// Autocrypt: harvesting, use of what was learnt, emitted headers.
    pub autocrypt: crate::autocrypt::AutocryptOptions,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            mike_address: None,
            sender_copy: true,
            outer_subject: None,
            hostname: "sealgate.invalid".into(),
            limits: Limits::default(),
            directory_negative_ttl: Duration::from_secs(600),
            hold_on_directory_error: false,
            protect_headers: false,
            legacy_display: false,
            autocrypt: crate::autocrypt::AutocryptOptions::default(),
        }
    }
}

/// Builds a [`Gateway`].
#[derive(Default)]
pub struct GatewayBuilder {
    policy: Option<Policy>,
    keyring: Option<Keyring>,
    options: Options,
    audit: Option<Arc<dyn AuditSink>>,
    mike_limit: Option<RateLimiter>,
    directories: Vec<Arc<dyn KeyDirectory>>,
}

impl std::fmt::Debug for GatewayBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayBuilder")
            .field("policy", &self.policy.is_some())
            .field("keyring", &self.keyring.is_some())
            .field("options", &self.options)
            .field(
                "directories",
                &self
                    .directories
                    .iter()
                    .map(|d| d.name())
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl GatewayBuilder {
    /// The rules (required).
    pub fn policy(mut self, policy: Policy) -> Self {
        self.policy = Some(policy);
        self
    }

    /// The key store with our identities and the partners' certificates (required).
    pub fn keyring(mut self, keyring: Keyring) -> Self {
        self.keyring = Some(keyring);
        self
    }

    /// Options (internal domains come from the policy).
    pub fn options(mut self, options: Options) -> Self {
        self.options = options;
        self
    }

    /// Where audit records go (each record is also in the [`Outcome`]).
    pub fn audit(mut self, sink: Arc<dyn AuditSink>) -> Self {
        self.audit = Some(sink);
        self
    }

    /// How many MIKE replies one sender may get (default: 5 an hour).
    pub fn mike_rate_limit(mut self, burst: usize, window: Duration) -> Self {
        self.mike_limit = Some(RateLimiter::new(burst, window));
        self
    }

    /// A key directory (LDAP, WKD, HKP or your own [`KeyDirectory`]) asked, in the order
    /// added, when the store has no usable certificate or key for an outbound recipient. What
    /// it returns for the address is kept in the store (provenance: the directory's name, trust
    /// unverified) and used under the same rules as any stored key.
    pub fn directory(mut self, directory: Arc<dyn KeyDirectory>) -> Self {
        self.directories.push(directory);
        self
    }

    /// The gateway.
    pub fn build(self) -> Result<Gateway> {
        let policy = self.policy.ok_or(Error::Config {
            reason: "a gateway needs a policy".into(),
        })?;
        let keyring = self.keyring.ok_or(Error::Config {
            reason: "a gateway needs a key store".into(),
        })?;
        Ok(Gateway {
            inner: Arc::new(Inner {
                policy,
                keyring,
                options: self.options,
                audit: self.audit,
                mike_limit: self.mike_limit.unwrap_or_default(),
                directories: self.directories,
                not_found: Mutex::new(HashMap::new()),
            }),
        })
    }
}

/// Policy + key store + engines. `Send + Sync`; cloning is cheap (one `Arc`).
#[derive(Clone)]
pub struct Gateway {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("options", &self.inner.options)
            .finish_non_exhaustive()
    }
}

struct Inner {
    policy: Policy,
    keyring: Keyring,
    options: Options,
    audit: Option<Arc<dyn AuditSink>>,
    mike_limit: RateLimiter,
    directories: Vec<Arc<dyn KeyDirectory>>,
    /// (address, kind) → when the directories last found nothing for it.
    not_found: Mutex<HashMap<(String, KeyKind), Instant>>,
}

/// One message to hand to the next hop.
#[derive(Clone)]
#[non_exhaustive]
pub struct Delivery {
    /// The envelope recipients of this copy.
    pub recipients: Vec<String>,
    /// The whole RFC 5322 message.
    pub message: Vec<u8>,
    /// The next hop must use TLS for these recipients.
    pub require_tls: bool,
    /// What was done to this copy (`smime`, `pgp`, `zip`, `signed`, `clear`, `decrypted`...).
    pub treatment: String,
}

impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The message may be a sender notification with a password in it.
        f.debug_struct("Delivery")
            .field("recipients", &self.recipients)
            .field("bytes", &self.message.len())
            .field("require_tls", &self.require_tls)
            .field("treatment", &self.treatment)
            .finish()
    }
}

/// A recipient the message is not delivered to.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Refusal {
    /// The recipient.
    pub recipient: String,
    /// Why (a policy rejection text, or why no protection the policy demands was possible).
    pub reason: String,
    /// `true` for a policy rejection (answer 5xx); `false` when the message is held because
    /// protection failed (an MTA may answer 4xx and retry, e.g. after a certificate arrives).
    pub by_policy: bool,
    /// The hold has a temporary cause (a key directory could not be asked): retrying later
    /// may well succeed. Always `false` when `by_policy`.
    pub temporary: bool,
}

/// Everything [`Gateway::process`] produced.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Outcome {
    /// The messages to deliver, each with its recipients.
    pub deliveries: Vec<Delivery>,
    /// Messages the gateway writes itself: ZIP password notifications to the sender, MIKE
    /// replies.
    pub notifications: Vec<Delivery>,
    /// Recipients the message is not delivered to, with the reason.
    pub refused: Vec<Refusal>,
    /// The policy's decision (absent for MIKE requests).
    pub decision: Option<Decision>,
    /// The audit record (also handed to the audit sink).
    pub audit: AuditRecord,
}

impl Outcome {
    /// Whether every recipient was refused.
    pub fn is_rejected(&self) -> bool {
        self.deliveries.is_empty() && !self.refused.is_empty()
    }
}

/// How one group's copy is protected.
#[derive(Clone, PartialEq, Eq)]
enum Treatment {
    Clear,
    Smime,
    Pgp,
    /// A password ZIP; `true`: the whole message goes into it (encryption by ZIP), `false`: the
    /// attachments (a ZIP rule), or the whole message when it has none.
    Zip(ZipSettings, bool),
}

impl Treatment {
    fn name(&self) -> &'static str {
        match self {
            Self::Clear => "clear",
            Self::Smime => "smime",
            Self::Pgp => "pgp",
            Self::Zip(..) => "zip",
        }
    }
}

/// Recipients that share a treatment, and so one copy.
struct Group {
    sign: Option<SignMethod>,
    treatment: Treatment,
    require_tls: bool,
    headers: Vec<(String, String)>,
    recipients: Vec<String>,
    smime_certs: Vec<smime::Certificate>,
    pgp_certs: Vec<crate::pgp::Cert>,
    records: Vec<RecipientRecord>,
}

impl Group {
    fn same_treatment(&self, other: &Group) -> bool {
        self.sign == other.sign
            && self.require_tls == other.require_tls
            && self.headers == other.headers
            && self.treatment == other.treatment
    }

    fn absorb(&mut self, other: Group) {
        self.recipients.extend(other.recipients);
        self.smime_certs.extend(other.smime_certs);
        self.pgp_certs.extend(other.pgp_certs);
        self.records.extend(other.records);
    }
}

fn overall_direction(decision: &Decision) -> &'static str {
    let mut dirs = decision.recipients.iter().map(|r| r.direction);
    match dirs.next() {
        None => "none",
        Some(first) if dirs.all(|d| d == first) => first.name(),
        Some(_) => "mixed",
    }
}

fn refusal(recipient: &str, reason: impl Into<String>, by_policy: bool) -> Refusal {
    Refusal {
        recipient: recipient.to_string(),
        reason: reason.into(),
        by_policy,
        temporary: false,
    }
}

/// SHA-256 of a certificate's DER, the name the store and the audit trail use.
fn cert_fingerprint(cert: &smime::Certificate) -> String {
    sealgate_keystore::certificate_id(cert)
}

impl Gateway {
    /// What to do for one recipient, with the keys found; `Err` when the recipient is refused.
    /// What the directories did goes to `lookups` (on refusal too, for the audit record).
    fn plan(
        &self,
        rd: &RecipientDecision,
        now: SystemTime,
        lookups: &mut Lookups,
    ) -> std::result::Result<Group, Refusal> {
        let rcpt = rd.recipient.as_str();
        let mut record = RecipientRecord {
            address: rcpt.to_string(),
            ..RecipientRecord::default()
        };
        let mut group = Group {
            sign: None,
            treatment: Treatment::Clear,
            require_tls: false,
            headers: Vec::new(),
            recipients: vec![rcpt.to_string()],
            smime_certs: Vec::new(),
            pgp_certs: Vec::new(),
            records: Vec::new(),
        };
        let mut fallbacks: Vec<String> = Vec::new();
        for action in &rd.actions {
            match action {
                Action::None => {}
                Action::RequireTls => {
                    group.require_tls = true;
                    record.actions.push("require_tls".into());
                }
                Action::Reject { text } => return Err(refusal(rcpt, text.clone(), true)),
                Action::AddHeader { name, value } => {
                    group.headers.push((name.clone(), value.clone()));
                    record.actions.push(format!("add_header:{name}"));
                }
                Action::Sign { method } => {
                    group.sign = Some(*method);
                    record.actions.push(format!("sign:{}", sign_name(*method)));
                }
                Action::Zip { zip } => {
                    group.treatment = Treatment::Zip(zip.clone(), false);
                    record.actions.push(format!("zip:{}", zip_name(zip)));
                }
                Action::Encrypt { methods, zip, .. } => {
                    let mut chosen = None;
                    for m in methods {
                        match m {
                            Method::Smime => match self.find_smime(rcpt, now, lookups) {
                                Ok(l) => match l.selected {
                                    Some((cert, _chain)) => {
                                        chosen = Some(Treatment::Smime);
                                        record.keys.push(KeyRecord {
                                            kind: "smime".into(),
                                            role: "encrypt".into(),
                                            fingerprint: cert_fingerprint(&cert),
                                        });
                                        group.smime_certs.push(cert);
                                    }
                                    None => fallbacks.push(format!(
                                        "smime: {}",
                                        rejection_summary(&l.candidates)
                                    )),
                                },
                                Err(e) => fallbacks.push(format!("smime: key store: {e}")),
                            },
                            Method::Pgp => match self.find_pgp(rcpt, now, lookups) {
                                Ok(l) => match l.selected {
                                    Some(cert) => {
                                        chosen = Some(Treatment::Pgp);
                                        record.keys.push(KeyRecord {
                                            kind: "pgp".into(),
                                            role: "encrypt".into(),
                                            fingerprint: cert.fingerprint().to_ascii_lowercase(),
                                        });
                                        group.pgp_certs.push(cert);
                                    }
                                    None => fallbacks
                                        .push(format!("pgp: {}", rejection_summary(&l.candidates))),
                                },
                                Err(e) => fallbacks.push(format!("pgp: key store: {e}")),
                            },
                            Method::Zip => {
                                if self.inner.options.hold_on_directory_error && lookups.failed {
                                    // A directory may hold the key: hold rather than ZIP.
                                    return Err(Refusal {
                                        temporary: true,
                                        ..refusal(
                                            rcpt,
                                            format!(
                                                "held: a key directory failed ({})",
                                                fallbacks.join("; ")
                                            ),
                                            false,
                                        )
                                    });
                                }
                                chosen = Some(Treatment::Zip(zip.clone(), true));
                            }
                        }
                        if chosen.is_some() {
                            break;
                        }
                    }
                    match chosen {
                        Some(t) => {
                            record.actions.push(match &t {
                                Treatment::Zip(z, _) => format!("zip:{}", zip_name(z)),
                                other => format!("encrypt:{}", other.name()),
                            });
                            group.treatment = t;
                        }
                        None => {
                            // Fail closed: no method the policy allows can be applied.
                            return Err(Refusal {
                                temporary: lookups.failed,
                                ..refusal(
                                    rcpt,
                                    format!(
                                        "encryption required and no allowed method is usable ({})",
                                        fallbacks.join("; ")
                                    ),
                                    false,
                                )
                            });
                        }
                    }
                }
                _ => {
                    return Err(refusal(
                        rcpt,
                        format!("unsupported policy action: {action}"),
                        false,
                    ));
                }
            }
        }
        if !fallbacks.is_empty() {
            record.fallback = Some(fallbacks.join("; "));
        }
        record.lookups = std::mem::take(&mut lookups.notes);
        if record.actions.is_empty() {
            record.actions.push("deliver".into());
        }
        group.records.push(record);
        Ok(group)
    }
}

/// What the key directories did while planning one recipient.
#[derive(Default)]
struct Lookups {
    /// A directory failed (so a key may exist that we could not get).
    failed: bool,
    /// For the audit record: `ldap://…: stored 1`, `wkd: error: …`.
    notes: Vec<String>,
}

impl Lookups {
    fn add(&mut self, kind: KeyKind, report: &FetchReport) {
        let kind = match kind {
            KeyKind::Smime => "smime",
            KeyKind::Pgp => "pgp",
        };
        for (dir, n) in &report.stored {
            self.notes.push(format!("{kind}: {dir}: stored {n}"));
        }
        for (dir, e) in &report.errors {
            self.failed = true;
            self.notes.push(format!("{kind}: {dir}: error: {e}"));
        }
        for s in &report.skipped {
            self.notes.push(format!("{kind}: skipped: {s}"));
        }
    }
}

impl Gateway {
    /// Whether the directories should be asked for `address` now (some are configured and they
    /// did not recently find nothing for it).
    fn ask_directories(&self, address: &str, kind: KeyKind) -> bool {
        if self.inner.directories.is_empty() {
            return false;
        }
        let ttl = self.inner.options.directory_negative_ttl;
        let mut cache = self
            .inner
            .not_found
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let key = (index_key(address), kind);
        match cache.get(&key) {
            Some(at) if at.elapsed() < ttl => false,
            Some(_) => {
                cache.remove(&key);
                true
            }
            None => true,
        }
    }

    /// Remember that the directories had nothing for `address` (bounded: the oldest half of
    /// the entries goes when the cache is full).
    fn remember_not_found(&self, address: &str, kind: KeyKind) {
        const MAX_ENTRIES: usize = 100_000;
        let mut cache = self
            .inner
            .not_found
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if cache.len() >= MAX_ENTRIES {
            let ttl = self.inner.options.directory_negative_ttl;
            cache.retain(|_, at| at.elapsed() < ttl);
            if cache.len() >= MAX_ENTRIES {
                cache.clear();
            }
        }
        cache.insert((index_key(address), kind), Instant::now());
    }

    fn directory_refs(&self) -> Vec<&dyn KeyDirectory> {
        self.inner.directories.iter().map(|d| d.as_ref()).collect()
    }

    /// The store's S/MIME lookup, then the directories when the store has nothing usable.
    fn find_smime(
        &self,
        address: &str,
        now: SystemTime,
        lookups: &mut Lookups,
    ) -> sealgate_keystore::Result<sealgate_keystore::SmimeLookup> {
        let keyring = &self.inner.keyring;
        let local = keyring.lookup_smime(address, now)?;
        if local.selected.is_some() || !self.ask_directories(address, KeyKind::Smime) {
            return Ok(local);
        }
        let (found, report) =
            keyring.lookup_or_fetch_smime(address, now, &self.directory_refs())?;
        lookups.add(KeyKind::Smime, &report);
        if found.selected.is_none() && report.errors.is_empty() {
            self.remember_not_found(address, KeyKind::Smime);
        }
        Ok(found)
    }

    /// The store's OpenPGP lookup, then the directories when the store has nothing usable.
    fn find_pgp(
        &self,
        address: &str,
        now: SystemTime,
        lookups: &mut Lookups,
    ) -> sealgate_keystore::Result<sealgate_keystore::PgpLookup> {
        let keyring = &self.inner.keyring;
        let autocrypt = self.inner.options.autocrypt.use_for_encryption;
        let local = keyring.lookup_pgp_trusted(address, now, autocrypt)?;
        if local.selected.is_some() || !self.ask_directories(address, KeyKind::Pgp) {
            return Ok(local);
        }
        let (mut found, report) =
            keyring.lookup_or_fetch_pgp(address, now, &self.directory_refs())?;
        // The directory lookup ranks every stored key: keep Autocrypt-only keys out here too.
        if !autocrypt
            && found.candidates.first().is_some_and(|c| {
                c.verdict.is_ok() && c.trust == sealgate_keystore::Trust::Autocrypt
            })
        {
            found.selected = None;
        }
        lookups.add(KeyKind::Pgp, &report);
        if found.selected.is_none() && report.errors.is_empty() {
            self.remember_not_found(address, KeyKind::Pgp);
        }
        Ok(found)
    }
}

fn sign_name(m: SignMethod) -> &'static str {
    match m {
        SignMethod::Smime => "smime",
        SignMethod::Pgp => "pgp",
    }
}

fn zip_name(z: &ZipSettings) -> &'static str {
    match z.method {
        sealgate_policy::ZipMethod::Aes256 => "aes256",
        sealgate_policy::ZipMethod::Zipcrypto => "zipcrypto",
    }
}

/// "expired (ab12…), wrong key usage (cd34…)" or "no certificate for this address".
fn rejection_summary(candidates: &[sealgate_keystore::Candidate]) -> String {
    let reasons: Vec<String> = candidates
        .iter()
        .filter_map(|c| match &c.verdict {
            Err(r) => Some(format!("{r} ({})", c.id.get(..12).unwrap_or(&c.id))),
            Ok(()) => None,
        })
        .collect();
    if reasons.is_empty() {
        "no key for this address in the store".into()
    } else {
        format!("no usable key: {}", reasons.join(", "))
    }
}

/// The id-aes256-GCM OID (RFC 5084), as SMIMECapabilities advertise it.
const AES256_GCM_OID: &str = "2.16.840.1.101.3.4.1.46";

impl Gateway {
    /// The sender: MAIL FROM, else the first From mailbox of the (already parsed) message.
    fn sender_of(entity: &Entity<'_>, envelope: &Envelope) -> Option<String> {
        if let Some(s) = envelope.mail_from.as_deref().filter(|s| !s.is_empty()) {
            return Some(s.to_string());
        }
        let from = entity.header_field("From")?;
        sealgate_mime::mailboxes(from.raw_value())
            .into_iter()
            .next()
    }

    fn smime_signer(&self, sender: &str, now: SystemTime) -> Result<smime::Identity> {
        self.inner
            .keyring
            .signing_identity(sender, now)?
            .ok_or_else(|| Error::NoSigningIdentity {
                sender: sender.to_string(),
                kind: "S/MIME",
            })
    }

    fn pgp_signer(&self, sender: &str) -> Result<crate::pgp::SecretKey> {
        let store = self.inner.keyring.store();
        for rec in store.pgp_by_address(&index_key(sender))? {
            if rec.has_secret
                && let Some(key) = self.inner.keyring.pgp_secret_key(&rec.fingerprint, None)?
            {
                return Ok(key);
            }
        }
        Err(Error::NoSigningIdentity {
            sender: sender.to_string(),
            kind: "OpenPGP",
        })
    }

    /// AES-256-GCM only when every recipient is known to read it (SMIMECapabilities seen in a
    /// verified signature of theirs); AES-256-CBC, which every client reads, otherwise.
    fn smime_cipher(&self, certs: &[smime::Certificate]) -> smime::ContentCipher {
        let all_gcm = !certs.is_empty()
            && certs.iter().all(|c| {
                self.capabilities(&cert_fingerprint(c))
                    .is_some_and(|caps| caps.iter().any(|o| o == AES256_GCM_OID))
            });
        if all_gcm {
            smime::ContentCipher::Aes256Gcm
        } else {
            smime::ContentCipher::Aes256Cbc
        }
    }

    fn capabilities(&self, cert_id: &str) -> Option<Vec<String>> {
        let raw = self
            .inner
            .keyring
            .store()
            .meta(&format!("{CAPS_META}{cert_id}"))
            .ok()??;
        Some(parse_capabilities(&raw).1)
    }

    fn sign_smime(
        &self,
        msg: &[u8],
        sender: &str,
        now: SystemTime,
        rng: &mut impl CryptoRngCore,
    ) -> Result<(Vec<u8>, KeyRecord)> {
        let id = self.smime_signer(sender, now)?;
        let signed = smime::sign_message(
            msg,
            &id,
            &Default::default(),
            rng,
            &self.inner.options.limits,
        )?;
        Ok((
            signed,
            key_record("smime", "sign", cert_fingerprint(&id.cert)),
        ))
    }

    fn sign_pgp(
        &self,
        msg: &[u8],
        sender: &str,
        rng: &mut impl CryptoRngCore,
    ) -> Result<(Vec<u8>, KeyRecord)> {
        let key = self.pgp_signer(sender)?;
        let signed = crate::pgp::sign_message(msg, &key, rng, &self.inner.options.limits)?;
        Ok((
            signed,
            key_record("pgp", "sign", key.cert().fingerprint().to_ascii_lowercase()),
        ))
    }

    /// Carry out one group's treatment. Returns the copy to deliver, a notification for the
    /// sender (ZIP password) and the keys used.
    fn execute(
        &self,
        raw: &[u8],
        sender: Option<&str>,
        group: &Group,
        now: SystemTime,
        rng: &mut impl CryptoRngCore,
    ) -> Result<Made> {
        let limits = &self.inner.options.limits;
        let mut keys = Vec::new();
        let with_headers;
        let msg: &[u8] = if group.headers.is_empty() {
            raw
        } else {
            let add: Vec<(&str, &str)> = group
                .headers
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_str()))
                .collect();
            with_headers = sealgate_mime::rewrite_header(raw, |_| false, &add, limits)?;
            &with_headers
        };
        let sender_or_err = || {
            sender.map(str::to_string).ok_or(Error::NoSigningIdentity {
                sender: "(no sender address)".into(),
                kind: "any",
            })
        };
        match &group.treatment {
            Treatment::Clear => match group.sign {
                None => Ok((msg.to_vec(), None, keys)),
                Some(SignMethod::Smime) => {
                    let (m, k) = self.sign_smime(msg, &sender_or_err()?, now, rng)?;
                    Ok((m, None, vec![k]))
                }
                Some(SignMethod::Pgp) => {
                    let (m, k) = self.sign_pgp(msg, &sender_or_err()?, rng)?;
                    Ok((m, None, vec![k]))
                }
            },
            Treatment::Smime => {
                let mut certs = group.smime_certs.clone();
                if self.inner.options.sender_copy
                    && let Some(s) = &sender
                    && let Ok(l) = self.inner.keyring.lookup_smime(s, now)
                    && let Some((own, _)) = l.selected
                    && !certs.iter().any(|c| c.der() == own.der())
                {
                    keys.push(key_record("smime", "sender-copy", cert_fingerprint(&own)));
                    certs.push(own);
                }
                let cipher = self.smime_cipher(&group.smime_certs);
                let mut opts = smime::EncryptMessageOptions::default();
                opts.cipher = cipher;
                opts.outer_subject = self.inner.options.outer_subject.clone();
                opts.protect_headers = self.inner.options.protect_headers;
                opts.legacy_display = self.inner.options.legacy_display;
                let recipients: Vec<smime::Recipient> =
                    certs.into_iter().map(smime::Recipient::new).collect();
                let pre_signed;
                let (input, signer) = match group.sign {
                    Some(SignMethod::Smime) => {
                        let id = self.smime_signer(&sender_or_err()?, now)?;
                        keys.push(key_record("smime", "sign", cert_fingerprint(&id.cert)));
                        (msg, Some(id))
                    }
                    Some(SignMethod::Pgp) => {
                        let (m, k) = self.sign_pgp(msg, &sender_or_err()?, rng)?;
                        keys.push(k);
                        pre_signed = m;
                        (&pre_signed[..], None)
                    }
                    None => (msg, None),
                };
                let sign_opts = smime::SignMessageOptions::default();
                let out = smime::encrypt_message(
                    input,
                    &recipients,
                    signer.as_ref().map(|id| (id, &sign_opts)),
                    &opts,
                    rng,
                    limits,
                )?;
                Ok((out, None, keys))
            }
            Treatment::Pgp => {
                let mut certs = group.pgp_certs.clone();
                if self.inner.options.sender_copy
                    && let Some(s) = &sender
                    && let Ok(l) = self.inner.keyring.lookup_pgp(s, now)
                    && let Some(own) = l.selected
                    && !certs.iter().any(|c| c.fingerprint() == own.fingerprint())
                {
                    keys.push(key_record(
                        "pgp",
                        "sender-copy",
                        own.fingerprint().to_ascii_lowercase(),
                    ));
                    certs.push(own);
                }
                let mut opts = crate::pgp::EncryptMessageOptions::default();
                opts.outer_subject = self.inner.options.outer_subject.clone();
                opts.protect_headers = self.inner.options.protect_headers;
                opts.legacy_display = self.inner.options.legacy_display;
                opts.inner_headers = self.gossip_headers(msg, sender, group, now);
                let pre_signed;
                let (input, signer) = match group.sign {
                    Some(SignMethod::Pgp) => {
                        let key = self.pgp_signer(&sender_or_err()?)?;
                        keys.push(key_record(
                            "pgp",
                            "sign",
                            key.cert().fingerprint().to_ascii_lowercase(),
                        ));
                        (msg, Some(key))
                    }
                    Some(SignMethod::Smime) => {
                        let (m, k) = self.sign_smime(msg, &sender_or_err()?, now, rng)?;
                        keys.push(k);
                        pre_signed = m;
                        (&pre_signed[..], None)
                    }
                    None => (msg, None),
                };
                let out = crate::pgp::encrypt_message(
                    input,
                    &certs,
                    signer.as_ref(),
                    &opts,
                    rng,
                    limits,
                )?;
                Ok((out, None, keys))
            }
            Treatment::Zip(settings, whole) => {
                let (recipient_msg, notification) =
                    self.package_zip(msg, settings, *whole, now, rng)?;
                let recipient_msg = match group.sign {
                    None => recipient_msg,
                    Some(SignMethod::Smime) => {
                        let (m, k) =
                            self.sign_smime(&recipient_msg, &sender_or_err()?, now, rng)?;
                        keys.push(k);
                        m
                    }
                    Some(SignMethod::Pgp) => {
                        let (m, k) = self.sign_pgp(&recipient_msg, &sender_or_err()?, rng)?;
                        keys.push(k);
                        m
                    }
                };
                Ok((recipient_msg, Some(notification), keys))
            }
        }
    }
}

impl Gateway {
    /// The `Autocrypt-Gossip:` fields (Level 1 §2.3) for an OpenPGP copy, when gossip is on:
    /// one for each To/Cc address (never Bcc, never the sender) that is a recipient of this
    /// copy, with the key the copy is encrypted to for it; none unless that makes two or more
    /// (gossip to a single recipient would only tell it its own key).
    fn gossip_headers(
        &self,
        msg: &[u8],
        sender: Option<&str>,
        group: &Group,
        now: SystemTime,
    ) -> Vec<(String, String)> {
        use sealgate_keystore::autocrypt;
        if !self.inner.options.autocrypt.gossip {
            return Vec::new();
        }
        let mut seen: Vec<String> = Vec::new();
        let mut out = Vec::new();
        for addr in to_and_cc(msg, &self.inner.options.limits) {
            let lower = addr.to_ascii_lowercase();
            if seen.contains(&lower)
                || sender.is_some_and(|s| s.eq_ignore_ascii_case(&addr))
                || !group
                    .recipients
                    .iter()
                    .any(|r| r.eq_ignore_ascii_case(&addr))
            {
                continue;
            }
            seen.push(lower);
            let keydata = group
                .pgp_certs
                .iter()
                .find_map(|c| autocrypt::minimal_keydata(c, &addr, now).ok());
            if let Some(kd) = keydata {
                let value =
                    autocrypt::header_value(&addr, autocrypt::PreferEncrypt::NoPreference, &kd);
                out.push(("Autocrypt-Gossip".to_string(), value));
            }
        }
        if out.len() < 2 {
            out.clear();
        }
        out
    }

    /// The ZIP copy and the sender notification with its password.
    fn package_zip(
        &self,
        msg: &[u8],
        settings: &ZipSettings,
        whole: bool,
        now: SystemTime,
        rng: &mut impl CryptoRngCore,
    ) -> Result<(Vec<u8>, Vec<u8>)> {
        use sealgate_policy::{Alphabet, ZipMethod, ZipPassword};
        use sealgate_zip::{Encryption, PackageOptions, Password, Scope};
        let password = match &settings.password {
            ZipPassword::Fixed(secret) => Password::new(secret.clone()),
            ZipPassword::Generate => {
                let alphabet = match settings.alphabet {
                    // letters and digits without the look-alikes 0 O 1 l I
                    Alphabet::Alphanumeric => sealgate_zip::DEFAULT_ALPHABET,
                    Alphabet::AlphanumericSymbols => {
                        "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789!#$%&*+-=?@^_~"
                    }
                    Alphabet::Digits => "0123456789",
                };
                Password::generate(settings.length, alphabet, rng)?
            }
        };
        let mut opts = PackageOptions::default();
        opts.encryption = match settings.method {
            ZipMethod::Zipcrypto => Encryption::ZipCrypto,
            _ => Encryption::Aes256,
        };
        opts.now = now;
        opts.scope = if whole {
            Scope::WholeMessage
        } else {
            Scope::Attachments
        };
        let limits = &self.inner.options.limits;
        let packaged = match sealgate_zip::package(msg, &password, &opts, rng, limits) {
            Err(sealgate_zip::Error::NoAttachments) if !whole => {
                opts.scope = Scope::WholeMessage;
                sealgate_zip::package(msg, &password, &opts, rng, limits)?
            }
            other => other?,
        };
        Ok((
            packaged.recipient_message,
            packaged.sender_notification.to_vec(),
        ))
    }
}

/// What [`Gateway::execute`] made for one group: the copy, a notification for the sender (a
/// ZIP password), the keys used.
type Made = (Vec<u8>, Option<Vec<u8>>, Vec<KeyRecord>);

/// Store meta key prefix for a certificate's SMIMECapabilities (comma-separated OIDs).
pub(crate) const CAPS_META: &str = "smime-capabilities:";

fn key_record(kind: &str, role: &str, fingerprint: String) -> KeyRecord {
    KeyRecord {
        kind: kind.into(),
        role: role.into(),
        fingerprint,
    }
}

impl Gateway {
    /// Start building a gateway.
    pub fn builder() -> GatewayBuilder {
        GatewayBuilder::default()
    }

    /// The key store.
    pub fn keyring(&self) -> &Keyring {
        &self.inner.keyring
    }

    /// The policy.
    pub fn policy(&self) -> &Policy {
        &self.inner.policy
    }

    /// The options.
    pub fn options(&self) -> &Options {
        &self.inner.options
    }

    /// Process one message as an MTA hands it over (see the module docs), now, with the OS RNG.
    pub fn process(&self, raw: &[u8], envelope: &Envelope) -> Result<Outcome> {
        self.process_at(raw, envelope, SystemTime::now(), &mut rand_core::OsRng)
    }

    /// [`Gateway::process`] at a given time with a given RNG (tests, replays).
    pub fn process_at(
        &self,
        raw: &[u8],
        envelope: &Envelope,
        now: SystemTime,
        rng: &mut impl CryptoRngCore,
    ) -> Result<Outcome> {
        let limits = &self.inner.options.limits;
        let entity = Entity::parse(raw, limits)?;
        let mut audit = AuditRecord::new(now);
        audit.message_id = entity.header("Message-ID");
        audit.mail_from = envelope.mail_from.clone();
        audit.rcpt_to = envelope.rcpt_to.clone();
        let mut outcome = Outcome {
            deliveries: Vec::new(),
            notifications: Vec::new(),
            refused: Vec::new(),
            decision: None,
            audit: AuditRecord::default(),
        };

        let sender = Self::sender_of(&entity, envelope);

        // MIKE requests are answered, not delivered.
        let mut rcpts: Vec<String> = Vec::with_capacity(envelope.rcpt_to.len());
        for r in &envelope.rcpt_to {
            if self.is_mike(r) {
                let requester = sender.as_deref();
                self.answer_mike(&entity, requester, r, now, rng, &mut outcome, &mut audit);
            } else {
                rcpts.push(r.clone());
            }
        }
        if rcpts.is_empty() {
            audit.direction = "inbound".into();
            return self.finish(outcome, audit);
        }
        let envelope = Envelope {
            mail_from: envelope.mail_from.clone(),
            rcpt_to: rcpts,
        };

        // From outside: result fields removed, decrypted, verified, harvested, results added.
        let external = sender
            .as_deref()
            .is_none_or(|s| !self.inner.policy.is_internal(s));
        let inbound_copy;
        let raw: &[u8] = if external {
            inbound_copy = self.inbound(raw, &envelope, sender.as_deref(), now, &mut audit)?;
            &inbound_copy
        } else {
            raw
        };
        // Autocrypt: our opted-in senders announce a key (Level 1 §2.1); an Autocrypt header
        // the client wrote is replaced, so the announced key is always the configured one.
        let announced;
        let raw: &[u8] = match sender.as_deref() {
            Some(s) if !external && self.inner.options.autocrypt.emits_for(s) => {
                match self.autocrypt_header(s, now) {
                    Some(value) => {
                        let value = if raw.windows(2).any(|w| w == b"\r\n") {
                            value
                        } else {
                            value.replace("\r\n", "\n")
                        };
                        announced = sealgate_mime::rewrite_header(
                            raw,
                            |f| f.is_named("Autocrypt"),
                            &[("Autocrypt", value.as_str())],
                            limits,
                        )?;
                        &announced
                    }
                    None => {
                        audit
                            .errors
                            .push(format!("autocrypt: no OpenPGP key to announce for {s}"));
                        raw
                    }
                }
            }
            _ => raw,
        };
        let entity = Entity::parse(raw, limits)?;

        let inspection: Inspection = sealgate_policy::inspect(&entity, limits);
        let decision = self.inner.policy.decide(&entity, &envelope, &inspection);
        audit.direction = overall_direction(&decision).into();
        for name in &decision.fired {
            let reasons: std::collections::BTreeSet<String> = decision
                .recipients
                .iter()
                .flat_map(|r| r.reasons.iter())
                .filter(|reason| &reason.rule == name)
                .flat_map(|reason| {
                    reason
                        .triggers
                        .iter()
                        .map(|t| format!("{}: {} ({:?})", t.condition, t.matched, t.location))
                })
                .collect();
            audit.rules.push(RuleRecord {
                name: name.clone(),
                reasons: reasons.into_iter().collect(),
            });
        }

        let mut groups: Vec<Group> = Vec::new();
        for rd in &decision.recipients {
            let mut lookups = Lookups::default();
            match self.plan(rd, now, &mut lookups) {
                Ok(group) => match groups.iter_mut().find(|g| g.same_treatment(&group)) {
                    Some(g) => g.absorb(group),
                    None => groups.push(group),
                },
                Err(refusal) => {
                    audit.recipients.push(RecipientRecord {
                        address: refusal.recipient.clone(),
                        actions: vec![if refusal.by_policy { "reject" } else { "hold" }.into()],
                        keys: Vec::new(),
                        fallback: Some(refusal.reason.clone()),
                        lookups: lookups.notes,
                    });
                    outcome.refused.push(refusal);
                }
            }
        }
        for group in groups {
            match self.execute(raw, sender.as_deref(), &group, now, rng) {
                Ok((message, notification, keys)) => {
                    for mut rec in group.records {
                        rec.keys.extend(keys.iter().cloned());
                        audit.recipients.push(rec);
                    }
                    if let Some(note) = notification
                        && let Some(sender) = &sender
                    {
                        outcome.notifications.push(Delivery {
                            recipients: vec![sender.clone()],
                            message: note,
                            require_tls: false,
                            treatment: "zip-password-notification".into(),
                        });
                    }
                    outcome.deliveries.push(Delivery {
                        recipients: group.recipients,
                        message,
                        require_tls: group.require_tls,
                        treatment: treatment_label(&group.treatment, group.sign),
                    });
                }
                Err(e) => {
                    // Fail closed: the copy could not be made as the policy says; hold it.
                    let reason = format!(
                        "{} failed: {e}",
                        treatment_label(&group.treatment, group.sign)
                    );
                    audit.errors.push(reason.clone());
                    for mut rec in group.records {
                        rec.actions = vec!["hold".into()];
                        rec.fallback = Some(reason.clone());
                        audit.recipients.push(rec);
                    }
                    for r in group.recipients {
                        outcome.refused.push(refusal(&r, reason.clone(), false));
                    }
                }
            }
        }
        outcome.decision = Some(decision);
        self.finish(outcome, audit)
    }

    fn finish(&self, mut outcome: Outcome, audit: AuditRecord) -> Result<Outcome> {
        if let Some(sink) = &self.inner.audit {
            sink.record(&audit)?;
        }
        outcome.audit = audit;
        Ok(outcome)
    }

    fn is_mike(&self, rcpt: &str) -> bool {
        self.inner
            .options
            .mike_address
            .as_deref()
            .is_some_and(|m| smime::keys::addresses_equal(m, rcpt))
    }
}

fn treatment_label(t: &Treatment, sign: Option<SignMethod>) -> String {
    match (t, sign) {
        (Treatment::Clear, None) => "clear".into(),
        (Treatment::Clear, Some(s)) => format!("signed:{}", sign_name(s)),
        (t, None) => t.name().into(),
        (t, Some(s)) => format!("signed:{}+{}", sign_name(s), t.name()),
    }
}

impl Gateway {
    /// S/MIME identities (key + certificate) the store holds for `address`.
    fn decryption_identities(&self, address: &str) -> Vec<smime::Identity> {
        let keyring = &self.inner.keyring;
        let Ok(records) = keyring.store().certificates_by_address(&index_key(address)) else {
            return Vec::new();
        };
        records
            .into_iter()
            .filter(|r| r.has_key && !r.is_ca)
            .filter_map(|r| keyring.identity(&r.id).ok().flatten())
            .collect()
    }

    /// OpenPGP secret keys the store holds for `address`.
    fn pgp_secret_keys(&self, address: &str) -> Vec<crate::pgp::SecretKey> {
        let keyring = &self.inner.keyring;
        let Ok(records) = keyring.store().pgp_by_address(&index_key(address)) else {
            return Vec::new();
        };
        records
            .into_iter()
            .filter(|r| r.has_secret)
            .filter_map(|r| keyring.pgp_secret_key(&r.fingerprint, None).ok().flatten())
            .collect()
    }

    /// The `Autocrypt:` header value announcing the configured key, or else `sender`'s own
    /// key (one whose secret key the store holds), in minimal form.
    fn autocrypt_header(&self, sender: &str, now: SystemTime) -> Option<String> {
        use sealgate_keystore::autocrypt;
        let o = &self.inner.options.autocrypt;
        let own;
        let cert = match &o.key {
            Some(k) => k,
            None => {
                own = self.pgp_secret_keys(sender).into_iter().next()?;
                own.cert()
            }
        };
        // The configured organisation key carries its own User ID: announce it for the
        // sender's address only when it has one, else for its first address.
        let keydata = autocrypt::minimal_keydata(cert, sender, now)
            .or_else(|_| {
                let first = cert.addresses().into_iter().next().unwrap_or_default();
                autocrypt::minimal_keydata(cert, &first, now)
            })
            .ok()?;
        Some(autocrypt::header_value(sender, o.prefer_encrypt, &keydata))
    }

    /// OpenPGP certificates the store holds for `address` (to check its signatures).
    fn pgp_certs_of(&self, address: &str) -> Vec<crate::pgp::Cert> {
        let limits = &self.inner.options.limits;
        let Ok(records) = self
            .inner
            .keyring
            .store()
            .pgp_by_address(&index_key(address))
        else {
            return Vec::new();
        };
        records
            .into_iter()
            .filter_map(|r| crate::pgp::Cert::load_all(&r.data, limits).ok())
            .flatten()
            .collect()
    }

    /// Inbound handling: result fields from outside removed; S/MIME or OpenPGP addressed to
    /// our keys decrypted; signatures verified; verified certificates harvested; our result
    /// fields added. A message we cannot decrypt is passed on as it came, with a result field
    /// saying so.
    fn inbound(
        &self,
        raw: &[u8],
        envelope: &Envelope,
        sender: Option<&str>,
        now: SystemTime,
        audit: &mut AuditRecord,
    ) -> Result<Vec<u8>> {
        let limits = &self.inner.options.limits;
        let keyring = &self.inner.keyring;
        // Result fields are ours to write; `Autocrypt-Gossip` belongs inside the encryption
        // (Level 1 §2.3): in the clear outer header anyone on the path may have written it,
        // and decryption would carry it into the message the gossip harvester reads.
        let mut message = sealgate_mime::rewrite_header(
            raw,
            |f| is_result_field(f) || f.is_named("Autocrypt-Gossip"),
            &[],
            limits,
        )?;
        let mut results: Vec<(&'static str, String)> = Vec::new();
        let trust = keyring.trust_store()?;
        let mut signature: Option<String> = None;
        // Whether `message` is now plaintext we decrypted (Autocrypt gossip is read only there).
        let mut decrypted = false;

        // S/MIME enveloped to one of our recipients.
        if smime::classify(&message, limits)? == smime::SmimeKind::Encrypted {
            let mut done = false;
            'rcpt: for rcpt in &envelope.rcpt_to {
                for id in self.decryption_identities(rcpt) {
                    if let Ok(d) = smime::decrypt_message(
                        &message,
                        &id.key,
                        Some(&id.cert),
                        Some(&trust),
                        limits,
                    ) {
                        audit.recipients.push(RecipientRecord {
                            address: rcpt.clone(),
                            actions: vec!["decrypt:smime".into()],
                            keys: vec![key_record("smime", "decrypt", cert_fingerprint(&id.cert))],
                            fallback: None,
                            lookups: Vec::new(),
                        });
                        results.push((
                            "Sealgate-Decrypted",
                            format!(
                                "smime; cipher={:?}; authenticated={}",
                                d.cipher, d.authenticated
                            )
                            .to_ascii_lowercase(),
                        ));
                        if let Some(v) = &d.signature {
                            signature = Some(self.smime_signature_result(v, now, audit));
                        }
                        message = d.message.to_vec();
                        decrypted = true;
                        done = true;
                        break 'rcpt;
                    }
                }
            }
            if !done {
                results.push((
                    "Sealgate-Decrypted",
                    "no; smime; no key of ours opens it".into(),
                ));
                audit
                    .errors
                    .push("inbound S/MIME: no key of ours decrypts it".into());
            }
        }

        // OpenPGP (PGP/MIME or inline) to one of our keys.
        let is_pgp_encrypted = sealgate_mime::parse_pgp_encrypted(&message, limits)?.is_some()
            || sealgate_mime::find_inline_pgp(&message, limits)?
                .is_some_and(|i| i.kind == sealgate_mime::InlinePgpKind::Message);
        if is_pgp_encrypted {
            let keys: Vec<crate::pgp::SecretKey> = envelope
                .rcpt_to
                .iter()
                .flat_map(|r| self.pgp_secret_keys(r))
                .collect();
            let signers = sender.map(|s| self.pgp_certs_of(s)).unwrap_or_default();
            match crate::pgp::decrypt_message(&message, &keys, &signers, limits) {
                Ok(d) if !keys.is_empty() => {
                    results.push((
                        "Sealgate-Decrypted",
                        format!("pgp; {}", if d.aead { "seipdv2" } else { "seipdv1-mdc" }),
                    ));
                    // Which of our keys opened it is not reported: name them all.
                    audit.recipients.push(RecipientRecord {
                        address: envelope.rcpt_to.join(","),
                        actions: vec!["decrypt:pgp".into()],
                        keys: keys
                            .iter()
                            .map(|k| {
                                key_record(
                                    "pgp",
                                    "decrypt",
                                    k.cert().fingerprint().to_ascii_lowercase(),
                                )
                            })
                            .collect(),
                        fallback: None,
                        lookups: Vec::new(),
                    });
                    if !d.verification.signatures.is_empty() {
                        signature = Some(pgp_signature_result(&d.verification));
                    }
                    message = d.message.to_vec();
                    decrypted = true;
                }
                _ => {
                    results.push((
                        "Sealgate-Decrypted",
                        "no; pgp; no key of ours opens it".into(),
                    ));
                    audit
                        .errors
                        .push("inbound OpenPGP: no key of ours decrypts it".into());
                }
            }
        }

        // Signatures on what we now have (unless decryption already reported the inner one).
        if signature.is_none() {
            match smime::classify(&message, limits)? {
                smime::SmimeKind::DetachedSigned | smime::SmimeKind::OpaqueSigned => {
                    signature = Some(
                        match smime::verify_message(&message, &trust, Some(now), limits) {
                            Ok(v) => self.smime_signature_result(&v, now, audit),
                            Err(e) => format!("invalid; smime; reason=\"{e}\""),
                        },
                    );
                }
                _ => {
                    let pgp_signed = sealgate_mime::parse_multipart_signed(&message, limits)?
                        .is_some_and(|m| m.protocol == sealgate_mime::PGP_SIGNATURE)
                        || sealgate_mime::find_inline_pgp(&message, limits)?
                            .is_some_and(|i| i.kind == sealgate_mime::InlinePgpKind::SignedMessage);
                    if pgp_signed {
                        let signers = sender.map(|s| self.pgp_certs_of(s)).unwrap_or_default();
                        signature = Some(
                            match crate::pgp::verify_message(&message, &signers, limits) {
                                Ok(v) => pgp_signature_result(&v.verification),
                                Err(e) => format!("invalid; pgp; reason=\"{e}\""),
                            },
                        );
                    }
                }
            }
        }
        if let Some(s) = signature {
            results.insert(0, ("Sealgate-Signature", s));
        }

        // Harvest what verified signatures and attached keys teach us; Autocrypt headers only
        // when the configuration says so, gossip only from what we decrypted.
        let autocrypt = &self.inner.options.autocrypt;
        let harvested = if autocrypt.harvest {
            keyring.harvest_message(&message, now).and_then(|mut h| {
                if decrypted {
                    let recipients = to_and_cc(raw, limits);
                    let id = Entity::parse(raw, limits)
                        .ok()
                        .and_then(|e| e.header("Message-ID"))
                        .unwrap_or_default();
                    let g = keyring.harvest_gossip(&message, &recipients, id.trim())?;
                    h.pgp_certificates.extend(g.pgp_certificates);
                    h.skipped.extend(g.skipped);
                }
                Ok(h)
            })
        } else {
            sealgate_mime::rewrite_header(&message, |f| f.is_named("Autocrypt"), &[], limits)
                .map_err(|e| sealgate_keystore::Error::Backend(format!("harvest: {e}")))
                .and_then(|m| keyring.harvest_message(&m, now))
        };
        match harvested {
            Ok(h) => {
                let mut keys: Vec<KeyRecord> = h
                    .certificates
                    .iter()
                    .map(|id| key_record("smime", "harvest", id.clone()))
                    .collect();
                keys.extend(
                    h.pgp_certificates
                        .iter()
                        .map(|f| key_record("pgp", "harvest", f.to_ascii_lowercase())),
                );
                if !keys.is_empty() {
                    results.push((
                        "Sealgate-Harvested",
                        keys.iter()
                            .map(|k| format!("{}:{}", k.kind, k.fingerprint))
                            .collect::<Vec<_>>()
                            .join(", "),
                    ));
                    audit.recipients.push(RecipientRecord {
                        address: sender.unwrap_or_default().to_string(),
                        actions: vec!["harvest".into()],
                        keys,
                        fallback: None,
                        lookups: Vec::new(),
                    });
                }
            }
            Err(e) => audit.errors.push(format!("harvest: {e}")),
        }

        let add: Vec<(&str, &str)> = results.iter().map(|(n, v)| (*n, v.as_str())).collect();
        // Result fields are removed once more: a decrypted message's header holds the fields
        // of the encrypted content, which anyone who has our certificate can write (a forged
        // `Sealgate-Signature: valid` inside the envelope).
        Ok(sealgate_mime::rewrite_header(
            &message,
            is_result_field,
            &add,
            limits,
        )?)
    }

    /// `valid; smime; signer=...; fingerprint=...` and the signer's SMIMECapabilities remembered.
    fn smime_signature_result(
        &self,
        v: &smime::VerifiedMessage,
        now: SystemTime,
        audit: &mut AuditRecord,
    ) -> String {
        let valid = v.verification.is_valid();
        let Some(signer) = v.verification.signers.first() else {
            return "invalid; smime; reason=\"no signer\"".into();
        };
        let Some(cert) = &signer.certificate else {
            return "invalid; smime; reason=\"signer certificate not in the message\"".into();
        };
        let fpr = cert_fingerprint(cert);
        if valid {
            audit.recipients.push(RecipientRecord {
                address: cert.email_addresses().join(","),
                actions: vec!["verify:smime".into()],
                keys: vec![key_record("smime", "verify", fpr.clone())],
                fallback: None,
                lookups: Vec::new(),
            });
            let caps: Vec<String> = signer.capabilities.iter().map(|o| o.to_string()).collect();
            self.remember_capabilities(&fpr, &caps, signer.signing_time, now);
        }
        let failed: Vec<String> = signer
            .checks
            .iter()
            .filter(|c| !c.passed)
            .map(|c| format!("{:?}", c.name))
            .collect();
        format!(
            "{}; smime; signer={}; fingerprint={fpr}{}",
            if valid { "valid" } else { "invalid" },
            cert.email_addresses()
                .first()
                .cloned()
                .unwrap_or_else(|| cert.subject()),
            if failed.is_empty() {
                String::new()
            } else {
                format!("; failed={}", failed.join(","))
            }
        )
    }

    /// Keep the SMIMECapabilities of the newest signed message seen from this certificate
    /// (by its signing time, never later than now; without one, now): a partner who upgrades
    /// its client, or downgrades it, is followed; an older message read later changes nothing,
    /// nor does a message without the attribute.
    fn remember_capabilities(
        &self,
        cert_id: &str,
        caps: &[String],
        signed_at: Option<SystemTime>,
        now: SystemTime,
    ) {
        if caps.is_empty() {
            // no SMIMECapabilities attribute: the message says nothing about what the client
            // reads, so what an earlier message said stands
            return;
        }
        let name = format!("{CAPS_META}{cert_id}");
        let at = signed_at.map_or(now, |t| t.min(now));
        let secs = at
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let store = self.inner.keyring.store();
        if let Ok(Some(raw)) = store.meta(&name) {
            let (seen, old) = parse_capabilities(&raw);
            if seen > secs || (seen == secs && old == caps) {
                return;
            }
        }
        let _ = store.apply(sealgate_keystore::store::Batch {
            changes: vec![sealgate_keystore::store::Change::Meta(
                name,
                format!("{secs};{}", caps.join(",")).into_bytes(),
            )],
        });
    }
}

/// A remembered capabilities value: `SECS;oid,oid,...` (the signing time it came with), or the
/// older form without the time (taken as time 0).
fn parse_capabilities(raw: &[u8]) -> (u64, Vec<String>) {
    let text = String::from_utf8_lossy(raw);
    let (secs, list) = match text.split_once(';') {
        Some((t, rest)) => (t.parse().unwrap_or(0), rest),
        None => (0, text.as_ref()),
    };
    (
        secs,
        list.split(',')
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect(),
    )
}

/// The addresses of the To and Cc fields of a message (the recipients gossip may be about).
fn to_and_cc(raw: &[u8], limits: &Limits) -> Vec<String> {
    Entity::parse(raw, limits)
        .map(|e| {
            e.headers()
                .iter()
                .filter(|h| h.is_named("To") || h.is_named("Cc"))
                .flat_map(|h| sealgate_mime::mailboxes(h.raw_value()))
                .collect()
        })
        .unwrap_or_default()
}

fn is_result_field(f: &HeaderField<'_>) -> bool {
    RESULT_FIELDS.iter().any(|n| f.is_named(n))
}

fn pgp_signature_result(v: &crate::pgp::Verification) -> String {
    let valid = v.is_valid();
    let sig = v
        .signatures
        .iter()
        .find(|s| s.valid)
        .or(v.signatures.first());
    match sig {
        None => "none; pgp".into(),
        Some(s) => format!(
            "{}; pgp; signer={}; fingerprint={}{}",
            if valid { "valid" } else { "invalid" },
            s.signer
                .as_ref()
                .and_then(|c| c.addresses().first().cloned())
                .unwrap_or_else(|| "unknown".into()),
            s.fingerprint.to_ascii_lowercase(),
            if s.known { "" } else { "; key=unknown" }
        ),
    }
}

impl Gateway {
    /// Answer a MIKE request (see [`crate::mike`]): a reply to the sender with the public key
    /// asked for, only for addresses of our own domains; a polite explanation otherwise.
    #[allow(clippy::too_many_arguments)]
    fn answer_mike(
        &self,
        entity: &Entity<'_>,
        requester: Option<&str>,
        responder: &str,
        now: SystemTime,
        rng: &mut impl CryptoRngCore,
        outcome: &mut Outcome,
        audit: &mut AuditRecord,
    ) {
        use sealgate_mime::{MessageBuilder, Part, format_date, message_id};
        let limits = &self.inner.options.limits;
        let mut record = RecipientRecord {
            address: responder.to_string(),
            actions: vec!["mike".into()],
            ..RecipientRecord::default()
        };
        let Some(requester) = requester.map(str::to_string) else {
            record.fallback = Some("no sender to answer".into());
            audit.recipients.push(record);
            return;
        };
        if !self.inner.mike_limit.allow(&requester, now) {
            record.fallback = Some(format!("rate limit reached for {requester}; no reply"));
            audit.recipients.push(record);
            return;
        }
        let subject = entity.header("Subject").unwrap_or_default();
        let request = mike::parse_request(&subject);
        let mut attachment: Option<(String, String, Vec<u8>)> = None;
        let text = match &request {
            Some(req) if !self.inner.policy.is_internal(&req.address) => format!(
                "Keys are only given out for addresses of this organisation; {} is not one of them.\r\n",
                req.address
            ),
            Some(req) => match req.kind {
                MikeKind::Smime => match self
                    .inner
                    .keyring
                    .lookup_smime(&req.address, now)
                    .ok()
                    .and_then(|l| l.selected)
                {
                    Some((cert, chain)) => {
                        let mut certs = vec![cert.clone()];
                        certs.extend(chain);
                        match smime::certs_only::certs_only(&certs) {
                            Ok(der) => {
                                record.keys.push(key_record(
                                    "smime",
                                    "mike",
                                    cert_fingerprint(&cert),
                                ));
                                attachment = Some((
                                    "application/pkcs7-mime; smime-type=certs-only".into(),
                                    "smime.p7c".into(),
                                    der,
                                ));
                                format!(
                                    "Attached is the S/MIME certificate of {} (SHA-256 fingerprint {}).\r\n",
                                    req.address,
                                    cert_fingerprint(&cert)
                                )
                            }
                            Err(e) => {
                                audit.errors.push(format!("mike: {e}"));
                                "The certificate could not be prepared; please try again later.\r\n"
                                    .into()
                            }
                        }
                    }
                    None => format!(
                        "There is no S/MIME certificate for {} here. Ask with the subject \"{} PGP\" for an OpenPGP key.\r\n",
                        req.address, req.address
                    ),
                },
                MikeKind::Pgp => match self
                    .inner
                    .keyring
                    .lookup_pgp(&req.address, now)
                    .ok()
                    .and_then(|l| l.selected)
                {
                    Some(cert) => match cert.to_armored() {
                        Ok(armored) => {
                            record.keys.push(key_record(
                                "pgp",
                                "mike",
                                cert.fingerprint().to_ascii_lowercase(),
                            ));
                            attachment = Some((
                                "application/pgp-keys".into(),
                                format!("{}.asc", req.address),
                                armored,
                            ));
                            format!(
                                "Attached is the OpenPGP key of {} (fingerprint {}).\r\n",
                                req.address,
                                cert.fingerprint()
                            )
                        }
                        Err(e) => {
                            audit.errors.push(format!("mike: {e}"));
                            "The key could not be prepared; please try again later.\r\n".into()
                        }
                    },
                    None => format!(
                        "There is no OpenPGP key for {} here. Ask with the subject \"{} SMIME\" for an S/MIME certificate.\r\n",
                        req.address, req.address
                    ),
                },
            },
            None => "This address hands out public keys. Send a message whose subject is an \
                     address of this organisation and a key type, for example\r\n\r\n    \
                     alice@example.com SMIME\r\n    alice@example.com PGP\r\n"
                .to_string(),
        };
        let domain = responder
            .rsplit_once('@')
            .map_or("sealgate.invalid", |d| d.1);
        let mut builder = MessageBuilder::new()
            .raw("From", responder)
            .raw("To", &requester)
            .text(
                "Subject",
                &match &request {
                    Some(r) => format!("Key for {}", r.address),
                    None => "How to ask for a key".into(),
                },
            )
            .raw("Date", &format_date(now))
            .raw("Message-ID", &message_id(domain, rng))
            .raw("Auto-Submitted", "auto-replied");
        if let Some(id) = entity.header("Message-ID") {
            builder = builder.raw("In-Reply-To", &id).raw("References", &id);
        }
        let body = match &attachment {
            Some((ct, name, data)) => Part::multipart(
                "mixed",
                vec![
                    Part::plain(text.clone()),
                    Part::attachment(ct.as_str(), name.as_str(), &data[..]),
                ],
            ),
            None => Part::plain(text.clone()),
        };
        let mut reply = builder.build(&body, rng);
        // S/MIME replies are signed by the responder's (or the domain's) identity when we have one.
        if matches!(request.as_ref().map(|r| r.kind), Some(MikeKind::Smime))
            && let Ok(Some(id)) = self.inner.keyring.signing_identity(responder, now)
        {
            match smime::sign_message(&reply, &id, &Default::default(), rng, limits) {
                Ok(signed) => {
                    record
                        .keys
                        .push(key_record("smime", "sign", cert_fingerprint(&id.cert)));
                    reply = signed;
                }
                Err(e) => audit.errors.push(format!("mike: signing the reply: {e}")),
            }
        }
        audit.recipients.push(record);
        outcome.notifications.push(Delivery {
            recipients: vec![requester],
            message: reply,
            require_tls: false,
            treatment: "mike-reply".into(),
        });
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use sealgate_keystore::{ImportOptions, MemoryStore, StoreSecret};
    use std::io::Write as _;

    fn fixture(name: &str) -> Vec<u8> {
        let p = format!(
            "{}/../../tests/data/fuzz/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read(&p).unwrap_or_else(|e| panic!("{p}: {e}"))
    }

    /// The fuzz target's identity: `fuzz@example.com`, issued by a CA the store trusts.
    fn gateway() -> Gateway {
        let limits = Limits::default();
        let secret = StoreSecret::raw_key_from_hex(&"07".repeat(32)).unwrap();
        let keyring =
            Keyring::open(Arc::new(MemoryStore::new()), Some(&secret), limits.clone()).unwrap();
        let (ca, cert, key) = (
            fixture("gateway/ca.der"),
            fixture("gateway/fuzz.der"),
            fixture("key.der"),
        );
        keyring
            .import(
                &[("ca", &ca), ("cert", &cert), ("key", &key)],
                &ImportOptions {
                    trust_anchors: true,
                    ..Default::default()
                },
            )
            .unwrap();
        Gateway::builder()
            .policy(Policy::from_toml("internal_domains = [\"example.com\"]\n", None).unwrap())
            .keyring(keyring)
            .build()
            .unwrap()
    }

    /// Regression: the header of a decrypted message comes from the encrypted content, which
    /// anyone can write; result fields in it were passed on as if the gateway had written them.
    #[test]
    fn result_fields_inside_the_encrypted_content_are_removed() {
        let gw = gateway();
        let inner = b"Sealgate-Signature: valid; smime; signer=ceo@example.com\r\n\
            Sealgate-Harvested: smime:00\r\nContent-Type: text/plain\r\n\r\nPay invoice 42.\r\n";
        let cert = smime::Certificate::from_der(&fixture("gateway/fuzz.der")).unwrap();
        let der = smime::enveloped::encrypt(
            inner,
            &[smime::enveloped::Recipient::new(cert)],
            smime::enveloped::ContentCipher::Aes256Cbc,
            &mut rand_core::OsRng,
        )
        .unwrap();
        let mut msg = b"From: Mallory <mallory@evil.example>\r\nTo: fuzz@example.com\r\n\
            Subject: invoice\r\nMIME-Version: 1.0\r\nContent-Type: application/pkcs7-mime; \
            smime-type=enveloped-data; name=smime.p7m\r\nContent-Transfer-Encoding: base64\r\n\r\n"
            .to_vec();
        let mut b64 = sealgate_mime::Base64Writer::new(&mut msg);
        b64.write_all(&der).unwrap();
        b64.finish().unwrap();
        let envelope = Envelope {
            mail_from: Some("mallory@evil.example".into()),
            rcpt_to: vec!["fuzz@example.com".into()],
        };
        let out = gw.process(&msg, &envelope).unwrap();
        assert_eq!(out.deliveries.len(), 1, "{out:?}");
        let delivered = &out.deliveries[0].message;
        let e = Entity::parse(delivered, &Limits::default()).unwrap();
        // It was decrypted (so the forged fields were in the header we got back) ...
        let decrypted = e.header("Sealgate-Decrypted").unwrap();
        assert!(decrypted.starts_with("smime; "), "{decrypted}");
        assert!(e.body().windows(11).any(|w| w == b"invoice 42."));
        // ... and neither forged field is left; nothing was signed, so no signature result.
        assert_eq!(e.header("Sealgate-Signature"), None);
        assert_eq!(e.header("Sealgate-Harvested"), None);
    }
}
