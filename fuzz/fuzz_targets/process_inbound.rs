//! The whole gateway (`sealgate::Gateway::process_at`) on any bytes as a message, with a fixed
//! store and policy: inbound (an external sender to three of our identities: decrypt, verify,
//! harvest, result fields) and outbound (our S/MIME identity to two external recipients: sign,
//! encrypt or password ZIP). Invariants checked on every outcome:
//!
//! - every envelope recipient is either delivered to exactly once or refused;
//! - inbound: each result field (`Sealgate-Signature`, `-Decrypted`, `-Harvested`) appears at
//!   most once in a delivered header, in the gateway's own grammar, and `valid; smime` only when
//!   the audit record holds our own S/MIME verification of it (a field from outside, or from
//!   inside the decrypted content, must never get through);
//! - outbound: no copy leaves without encryption (the policy says encrypt, best effort, never
//!   clear text).
//!
//! The store is an in-memory one built once; harvesting and remembered capabilities write to
//! it, so it is rebuilt when an input changed it: every input starts from the same state and a
//! crash reproduces from its input alone.
#![no_main]

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use libfuzzer_sys::fuzz_target;
use sealgate::keystore::{ImportOptions, Keyring, MemoryStore, StoreSecret};
use sealgate::mime::Entity;
use sealgate::policy::Policy;
use sealgate::{Envelope, Gateway, Limits, Options, Outcome};

const POLICY: &str = r#"
internal_domains = ["example.com", "example.org"]

[[rule]]
name = "inbound-executables"
when = { all = [ { direction = "inbound" }, { any = [ { attachment_type = "executable" }, { attachment_name = "*.exe" } ] } ] }
action = { reject = "executables are not accepted" }

[[rule]]
name = "inbound-flag"
when = { all = [ { direction = "inbound" }, { any = [ { subject_contains = "confidential" }, { sensitive = "payment_card" }, { uninspectable = true } ] } ] }
action = [ { add_header = { name = "X-Sealgate-Flag", value = "confidential" } }, "require_tls" ]
stop = false

[[rule]]
name = "outbound-protect"
when = { direction = "outbound" }
action = [ { sign = "smime" }, { encrypt = ["smime", "pgp", "zip"] } ]
"#;

const RESULT_FIELDS: [&str; 3] = [
    "Sealgate-Signature",
    "Sealgate-Decrypted",
    "Sealgate-Harvested",
];

/// 2026-11-18: fixed, so that certificate validity does not depend on the day of the run.
fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_000_000)
}

fn limits() -> Limits {
    let mut limits = Limits::default();
    // Keep every input fast: small messages, a tight inspection budget.
    limits.max_message_bytes = 4 << 20;
    limits.max_inspect_millis = 2_000;
    limits.max_kdf_iterations = 2048;
    limits
}

fn build() -> (Gateway, u64) {
    let limits = limits();
    let secret = StoreSecret::raw_key_from_hex(&"07".repeat(32)).expect("fixed store key");
    let keyring =
        Keyring::open(Arc::new(MemoryStore::new()), Some(&secret), limits.clone()).expect("store");
    keyring
        .import(
            &[
                (
                    "ca.der",
                    &include_bytes!("../../tests/data/fuzz/gateway/ca.der")[..],
                ),
                (
                    "fuzz.der",
                    &include_bytes!("../../tests/data/fuzz/gateway/fuzz.der")[..],
                ),
                (
                    "key.der",
                    &include_bytes!("../../tests/data/fuzz/key.der")[..],
                ),
                (
                    "rsa.sec.asc",
                    &include_bytes!("../../tests/data/pgp/rsa.sec.asc")[..],
                ),
                (
                    "ed.sec.asc",
                    &include_bytes!("../../tests/data/pgp/ed.sec.asc")[..],
                ),
            ],
            &ImportOptions {
                trust_anchors: true,
                ..Default::default()
            },
        )
        .expect("fixed identities");
    let mut options = Options::default();
    options.hostname = "gw.example.com".into();
    options.limits = limits;
    let gateway = Gateway::builder()
        .policy(Policy::from_toml(POLICY, None).expect("fixed policy"))
        .keyring(keyring)
        .options(options)
        .build()
        .expect("gateway");
    let generation = gateway.keyring().store().generation().expect("generation");
    (gateway, generation)
}

fn envelope(from: &str, to: &[&str]) -> Envelope {
    Envelope {
        mail_from: Some(from.into()),
        rcpt_to: to.iter().map(|s| s.to_string()).collect(),
    }
}

/// Every recipient delivered to once or refused, none lost, none twice.
fn check_recipients(out: &Outcome, env: &Envelope) {
    for r in &env.rcpt_to {
        let delivered = out
            .deliveries
            .iter()
            .filter(|d| d.recipients.contains(r))
            .count();
        let refused = out.refused.iter().filter(|x| &x.recipient == r).count();
        assert_eq!(
            delivered + refused,
            1,
            "{r}: {delivered} deliveries, {refused} refusals"
        );
    }
}

fn check_inbound(out: &Outcome, limits: &Limits) {
    let verified_smime = out
        .audit
        .recipients
        .iter()
        .any(|r| r.actions.iter().any(|a| a == "verify:smime"));
    for d in &out.deliveries {
        let e = Entity::parse(&d.message, limits).expect("a delivered message parses");
        for name in RESULT_FIELDS {
            let values: Vec<String> = e
                .headers()
                .iter()
                .filter(|h| h.is_named(name))
                .map(|h| h.value().trim().to_string())
                .collect();
            assert!(
                values.len() <= 1,
                "{name} {} times: {values:?}",
                values.len()
            );
            let Some(v) = values.first() else { continue };
            match name {
                "Sealgate-Signature" => {
                    assert!(
                        ["valid; ", "invalid; ", "none; "]
                            .iter()
                            .any(|p| v.starts_with(p)),
                        "{name}: {v}"
                    );
                    if v.starts_with("valid; smime") {
                        assert!(verified_smime, "{name}: {v} without our verification");
                    }
                }
                "Sealgate-Decrypted" => assert!(
                    ["smime; ", "pgp; ", "no; "]
                        .iter()
                        .any(|p| v.starts_with(p)),
                    "{name}: {v}"
                ),
                _ => assert!(
                    v.split(", ")
                        .all(|k| k.starts_with("smime:") || k.starts_with("pgp:")),
                    "{name}: {v}"
                ),
            }
        }
    }
}

fn check_outbound(out: &Outcome) {
    for d in &out.deliveries {
        let method = d.treatment.rsplit('+').next().unwrap_or_default();
        assert!(
            matches!(method, "smime" | "pgp" | "zip"),
            "outbound copy {} to {:?}",
            d.treatment,
            d.recipients
        );
    }
}

fuzz_target!(|data: &[u8]| {
    static GATEWAY: Mutex<Option<(Gateway, u64)>> = Mutex::new(None);
    let mut slot = GATEWAY.lock().unwrap_or_else(|e| e.into_inner());
    let (gateway, generation) = slot.get_or_insert_with(build);
    let limits = gateway.options().limits.clone();

    let inbound = envelope(
        "partner@partner.example",
        &["fuzz@example.com", "rsa@example.org", "ed@example.org"],
    );
    if let Ok(out) = gateway.process_at(data, &inbound, now(), &mut rand_core::OsRng) {
        check_recipients(&out, &inbound);
        check_inbound(&out, &limits);
    }

    let outbound = envelope(
        "fuzz@example.com",
        &["partner@partner.example", "nokey@elsewhere.example"],
    );
    if let Ok(out) = gateway.process_at(data, &outbound, now(), &mut rand_core::OsRng) {
        check_recipients(&out, &outbound);
        check_outbound(&out);
    }

    // Harvested certificates or remembered capabilities: start the next input afresh.
    if gateway.keyring().store().generation().ok() != Some(*generation) {
        *slot = None;
    }
});
