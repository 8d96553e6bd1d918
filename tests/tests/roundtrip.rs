//! Round trips through the whole S/MIME message layer for random MIME trees:
//! sign (detached and opaque) → verify, encrypt (every [`ContentCipher`], RSA and EC
//! recipients, with and without an inner signature) → decrypt → verify.
//!
//! What must survive: every leaf's decoded body (text line ends compared after CRLF
//! canonicalisation, RFC 2046 §4.1.1), the outer From/To/Subject/Date, the signer (this
//! certificate, every check passed) and, for a 7-bit clean message, the whole message byte for
//! byte. Keys and certificates are made once in Rust; no external tool is needed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::OnceLock;

use proptest::prelude::*;
use rand_core::OsRng;
use sealgate::smime::issue::{self, CertificateParams};
use sealgate::smime::{
    self, Certificate, ContentCipher, Curve, EncryptMessageOptions, Identity, KeyKind, PrivateKey,
    Recipient, SignMessageOptions, TrustStore,
};

#[path = "common/trees.rs"]
mod trees;
use trees::*;

// ---------------------------------------------------------------------------------------------
// The test PKI: a P-256 root, an RSA-2048 user and a P-256 user, made once per test binary.

struct Pki {
    trust: TrustStore,
    rsa: Identity,
    ec: Identity,
}

const RSA_ADDRESS: &str = "alice@example.org";
const EC_ADDRESS: &str = "bob@example.org";

fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| {
        let root_key = PrivateKey::generate(KeyKind::Ec(Curve::P256)).unwrap();
        let root = issue::self_signed(
            &root_key,
            &CertificateParams::ca("Sealgate Round-Trip Root"),
            &mut OsRng,
        )
        .unwrap();
        let user = |kind, name, address| {
            let key = PrivateKey::generate(kind).unwrap();
            let cert = issue::issue(
                key.public_key(),
                &CertificateParams::user(name, address),
                &root,
                &root_key,
                &mut OsRng,
            )
            .unwrap();
            Identity::new(key, cert, Vec::new()).unwrap()
        };
        Pki {
            rsa: user(KeyKind::Rsa(2048), "Alice", RSA_ADDRESS),
            ec: user(KeyKind::Ec(Curve::P256), "Bob", EC_ADDRESS),
            trust: TrustStore::new(vec![root.clone()]),
        }
    })
}

/// How one case protects its message.
#[derive(Debug, Clone, Copy)]
struct Protection {
    /// Sign with the RSA user (else the EC user).
    rsa_signer: bool,
    opaque: bool,
    cipher: ContentCipher,
    /// Which users the message is encrypted to: RSA, EC or both.
    to_rsa: bool,
    to_ec: bool,
}

fn protection() -> impl Strategy<Value = Protection> {
    let cipher = prop::sample::select(vec![
        ContentCipher::Aes128Cbc,
        ContentCipher::Aes256Cbc,
        ContentCipher::Aes128Gcm,
        ContentCipher::Aes256Gcm,
    ]);
    let recipients = prop::sample::select(vec![(true, false), (false, true), (true, true)]);
    (any::<bool>(), any::<bool>(), cipher, recipients).prop_map(
        |(rsa_signer, opaque, cipher, (to_rsa, to_ec))| Protection {
            rsa_signer,
            opaque,
            cipher,
            to_rsa,
            to_ec,
        },
    )
}

fn assert_signed_by(v: &smime::VerifiedMessage, signer: &Identity) {
    let [report] = v.verification.signers.as_slice() else {
        panic!("expected one signer, got {}", v.verification.signers.len());
    };
    assert_eq!(
        report.certificate.as_ref().map(Certificate::der),
        Some(signer.cert.der())
    );
    for check in &report.checks {
        assert!(check.passed, "{:?} failed: {}", check.name, check.detail);
    }
    assert!(v.verification.is_valid());
}

// ---------------------------------------------------------------------------------------------
// The round trips.

fn round_trip(root: &Node, p: Protection) {
    let pki = pki();
    let limits = limits();
    let signer = if p.rsa_signer { &pki.rsa } else { &pki.ec };
    let from = if p.rsa_signer {
        RSA_ADDRESS
    } else {
        EC_ADDRESS
    };
    let original = message(from, root);

    // Sign → verify.
    let mut sopts = SignMessageOptions::default();
    sopts.opaque = p.opaque;
    let signed = smime::sign_message(&original, signer, &sopts, &mut OsRng, &limits).unwrap();
    let verified = smime::verify_message(&signed, &pki.trust, None, &limits).unwrap();
    assert_eq!(verified.opaque, p.opaque);
    assert_signed_by(&verified, signer);
    assert_same_content(&original, &verified.message);

    // Encrypt (without and with an inner signature) → decrypt with every recipient's key.
    let mut recipients = Vec::new();
    let mut keys = Vec::new();
    if p.to_rsa {
        recipients.push(Recipient::new(pki.rsa.cert.clone()));
        keys.push(&pki.rsa);
    }
    if p.to_ec {
        recipients.push(Recipient::new(pki.ec.cert.clone()));
        keys.push(&pki.ec);
    }
    let mut eopts = EncryptMessageOptions::default();
    eopts.cipher = p.cipher;
    let gcm = matches!(
        p.cipher,
        ContentCipher::Aes128Gcm | ContentCipher::Aes256Gcm
    );

    let encrypted =
        smime::encrypt_message(&original, &recipients, None, &eopts, &mut OsRng, &limits).unwrap();
    for id in &keys {
        let d = smime::decrypt_message(&encrypted, &id.key, Some(&id.cert), None, &limits).unwrap();
        assert_eq!(d.cipher, p.cipher.algorithm());
        assert_eq!(d.authenticated, gcm);
        assert!(d.signature.is_none());
        assert_same_content(&original, &d.message);
    }

    let both = smime::encrypt_message(
        &original,
        &recipients,
        Some((signer, &sopts)),
        &eopts,
        &mut OsRng,
        &limits,
    )
    .unwrap();
    for id in &keys {
        // Without a certificate: every RecipientInfo that fits the key is tried.
        let d = smime::decrypt_message(&both, &id.key, None, Some(&pki.trust), &limits).unwrap();
        let inner = d.signature.expect("the inner signature is verified");
        assert_eq!(inner.opaque, p.opaque);
        assert_signed_by(&inner, signer);
        assert_same_content(&original, &inner.message);
        // The decrypted message is the signed message; verifying it again gives the same.
        let again = smime::verify_message(&d.message, &pki.trust, None, &limits).unwrap();
        assert_eq!(again.message, inner.message);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, max_shrink_iters: 200, ..ProptestConfig::default() })]

    /// Small and medium trees (leaves up to 4 KiB), every protection.
    #[test]
    fn any_tree_round_trips(root in tree(leaf(4096)), p in protection()) {
        round_trip(&root, p);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, max_shrink_iters: 200, ..ProptestConfig::default() })]

    /// 7-bit clean trees, which must come back byte for byte.
    #[test]
    fn seven_bit_tree_round_trips_exactly(root in tree(seven_bit_leaf(2048)), p in protection()) {
        prop_assert!(seven_bit_clean(&message(EC_ADDRESS, &root)));
        round_trip(&root, p);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 6, max_shrink_iters: 10, ..ProptestConfig::default() })]

    /// Large leaves: a multipart with a text and two attachments of up to 1 MB each.
    #[test]
    fn large_leaves_round_trip(
        seed in any::<u64>(),
        sizes in [0..=1usize << 20, 0..=1usize << 20, 0..=1usize << 20],
        p in protection(),
    ) {
        let root = Node::Multipart {
            alternative: false,
            children: vec![
                Node::Text { html: false, text: prose(seed, sizes[0]) },
                Node::Base64 { data: noise(seed ^ 1, sizes[1]) },
                Node::Binary { data: noise(seed ^ 2, sizes[2]) },
            ],
        };
        round_trip(&root, p);
    }
}

/// Fixed edge cases that random generation may miss.
#[test]
fn edge_cases_round_trip() {
    let p = Protection {
        rsa_signer: true,
        opaque: false,
        cipher: ContentCipher::Aes256Gcm,
        to_rsa: true,
        to_ec: true,
    };
    let cases = [
        // Empty bodies.
        Node::Text {
            html: false,
            text: String::new(),
        },
        Node::Binary { data: Vec::new() },
        // 7-bit clean: must come back byte for byte.
        Node::Multipart {
            alternative: true,
            children: vec![
                Node::Text {
                    html: false,
                    text: "plain\r\ntext".into(),
                },
                Node::Text {
                    html: true,
                    text: "<p>html</p>".into(),
                },
            ],
        },
        // Trailing white space, which quoted-printable must protect (RFC 2045 §6.7 rule 3).
        Node::Text {
            html: false,
            text: "trailing  \r\ntab\t\r\nGrüße ".into(),
        },
        // A line over 998 octets, and binary with every awkward byte at the edges.
        Node::Text {
            html: false,
            text: "x".repeat(5000),
        },
        Node::Binary {
            data: b"\r\0\n\r\n\r\r\n\n".to_vec(),
        },
        // An embedded message holding a multipart.
        Node::Message {
            subject: "inner".into(),
            inner: Box::new(Node::Multipart {
                alternative: false,
                children: vec![Node::Binary {
                    data: vec![0, 13, 10, 255],
                }],
            }),
        },
    ];
    for root in &cases {
        for opaque in [false, true] {
            round_trip(root, Protection { opaque, ..p });
        }
    }
}

#[test]
fn seven_bit_clean_is_what_it_says() {
    assert!(seven_bit_clean(b"a\r\nb"));
    assert!(seven_bit_clean(b"a\r\nb\r\n"));
    assert!(!seven_bit_clean(b"a\nb"));
    assert!(!seven_bit_clean(b"a\rb"));
    assert!(!seven_bit_clean(b"a\0b"));
    assert!(!seven_bit_clean("é".as_bytes()));
    assert!(seven_bit_clean("x".repeat(998).as_bytes()));
    assert!(!seven_bit_clean("x".repeat(999).as_bytes()));
}
