//! Embedding the gateway: build it from a configuration file (or in code), process one
//! message from stdin, print the outcome. After `sealgate demo`:
//! `cargo run --example embed -- sealgate-demo/gateway.toml alice@example.com bob@partner.example < msg.eml`
//! (CONFIG `-`: an in-memory key store and a one-rule policy, built in code).

use std::io::Read;
use std::sync::Arc;

use sealgate::keystore::{Keyring, MemoryStore};
use sealgate::{Envelope, Gateway, GatewayConfig, Limits, policy::Policy};

const POLICY: &str = r#"internal_domains = ["example.com"]
[[rule]]
name = "outbound-protect"
when = { direction = "outbound" }
action = { encrypt = ["smime", "pgp", "zip"] }"#;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [config, from, to @ ..] = args.as_slice() else {
        return Err("usage: embed CONFIG|- FROM TO... < MESSAGE".into());
    };
    let gateway = if config == "-" {
        let keyring = Keyring::open(Arc::new(MemoryStore::new()), None, Limits::default())?;
        let policy = Policy::from_toml(POLICY, None)?;
        Gateway::builder().policy(policy).keyring(keyring).build()?
    } else {
        GatewayConfig::load(config)?.build()?
    };

    let max = gateway.options().limits.max_message_bytes as u64;
    let mut raw = Vec::new();
    std::io::stdin().take(max + 1).read_to_end(&mut raw)?;
    if raw.len() as u64 > max {
        return Err("message larger than the configured limit".into());
    }
    let envelope = Envelope {
        mail_from: Some(from.clone()),
        rcpt_to: to.to_vec(),
    };
    let outcome = gateway.process(&raw, &envelope)?;

    for d in outcome.deliveries.iter().chain(&outcome.notifications) {
        let (who, n) = (d.recipients.join(","), d.message.len());
        println!("{:<28} to {who} ({n} bytes)", d.treatment);
    }
    for r in &outcome.refused {
        println!("{:<28} {}: {}", "refused", r.recipient, r.reason);
    }
    let rules: Vec<&str> = outcome
        .audit
        .rules
        .iter()
        .map(|r| r.name.as_str())
        .collect();
    println!("rules: {}", rules.join(", "));
    Ok(())
}
