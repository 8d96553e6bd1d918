//! Generate a small PKI, then sign, encrypt, decrypt and verify a message with Sealgate,
//! printing what happened at each step.
//!
//! Run with `cargo run --example sign_and_encrypt`.

use sealgate::Limits;
use sealgate::smime::{
    self, CertificateParams, ContentCipher, Curve, EncryptMessageOptions, Identity, KeyKind,
    PrivateKey, Recipient, SignMessageOptions, TrustStore,
};

fn main() -> Result<(), sealgate::Error> {
    let mut rng = rand_core::OsRng;
    let limits = Limits::default();

    // A CA, a sender with an RSA key and a recipient with a P-256 key.
    let ca_key = PrivateKey::generate(KeyKind::Rsa(2048))?;
    let ca = smime::issue::self_signed(&ca_key, &CertificateParams::ca("Example CA"), &mut rng)?;
    let alice_key = PrivateKey::generate(KeyKind::Rsa(2048))?;
    let alice_cert = smime::issue::issue(
        alice_key.public_key(),
        &CertificateParams::user("Alice", "alice@example.com"),
        &ca,
        &ca_key,
        &mut rng,
    )?;
    let bob_key = PrivateKey::generate(KeyKind::Ec(Curve::P256))?;
    let bob_cert = smime::issue::issue(
        bob_key.public_key(),
        &CertificateParams::user("Bob", "bob@example.org"),
        &ca,
        &ca_key,
        &mut rng,
    )?;
    println!("CA:        {}", ca.subject());
    println!(
        "sender:    {} <{}>",
        alice_cert.subject(),
        alice_cert.email_addresses().join(",")
    );
    println!(
        "recipient: {} <{}>",
        bob_cert.subject(),
        bob_cert.email_addresses().join(",")
    );

    let message = "From: Alice <alice@example.com>\r\n\
        To: Bob <bob@example.org>\r\n\
        Subject: Contract draft\r\n\
        Date: Mon, 23 Nov 2026 10:00:00 +0000\r\n\
        Content-Type: text/plain; charset=utf-8\r\n\
        Content-Transfer-Encoding: 8bit\r\n\
        \r\n\
        Hello Bob, the draft is ready. Grüße, Alice\r\n"
        .as_bytes();

    // Sign, then encrypt to Bob and to Alice herself (so her sent copy stays readable).
    let alice = Identity::new(alice_key, alice_cert.clone(), vec![])?;
    let recipients = [
        Recipient::new(bob_cert.clone()),
        Recipient::new(alice_cert.clone()),
    ];
    let mut enc_opts = EncryptMessageOptions::default();
    enc_opts.cipher = ContentCipher::Aes256Gcm;
    enc_opts.outer_subject = Some("Encrypted message".into());
    let encrypted = smime::encrypt_message(
        message,
        &recipients,
        Some((&alice, &SignMessageOptions::default())),
        &enc_opts,
        &mut rng,
        &limits,
    )?;
    println!(
        "\nsigned and encrypted ({} bytes, AES-256-GCM, 2 recipients):",
        encrypted.len()
    );
    for line in String::from_utf8_lossy(&encrypted).lines().take(9) {
        println!("  | {line}");
    }

    // Bob decrypts and verifies against the CA.
    let trust = TrustStore::new(vec![ca]);
    let decrypted =
        smime::decrypt_message(&encrypted, &bob_key, Some(&bob_cert), Some(&trust), &limits)?;
    println!(
        "\ndecrypted by Bob: {:?} (authenticated: {})",
        decrypted.cipher, decrypted.authenticated
    );
    let Some(signature) = decrypted.signature else {
        println!("no inner signature found");
        std::process::exit(1);
    };
    for signer in &signature.verification.signers {
        if let Some(cert) = &signer.certificate {
            println!("signed by: {}", cert.subject());
        }
        for check in &signer.checks {
            println!(
                "  [{}] {:?}: {}",
                if check.passed { "ok" } else { "FAIL" },
                check.name,
                check.detail
            );
        }
    }
    println!(
        "signature: {}",
        if signature.verification.is_valid() {
            "valid"
        } else {
            "INVALID"
        }
    );
    println!("\nthe message Bob reads:");
    for line in String::from_utf8_lossy(&signature.message).lines() {
        println!("  | {line}");
    }
    if !signature.verification.is_valid() {
        std::process::exit(1);
    }
    Ok(())
}
