//! Policy triggers over real documents generated at test time (Python's standard library
//! writes OOXML, ODF, ZIP, PDF, gzip and tar files; OLE, PE and ELF headers are built by
//! hand; 7-Zip writes a password ZIP) and over messages in the charsets mail really uses.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

use sealgate::Limits;
use sealgate::mime::{Entity, build_base64_entity};
use sealgate::policy::{Action, Decision, Envelope, FileType, Location, Method, Policy, inspect};
use sealgate_tests::{require, run};

const GENERATOR: &str = include_str!("policy_gen_docs.py");

/// Every document, by file name.
fn documents() -> Option<(tempfile::TempDir, HashMap<String, Vec<u8>>)> {
    if !require("python3") {
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("gen.py");
    std::fs::write(&script, GENERATOR).unwrap();
    let out = dir.path().join("docs");
    std::fs::create_dir(&out).unwrap();
    run(Command::new("python3").arg(&script).arg(&out));
    let mut docs = HashMap::new();
    for e in std::fs::read_dir(&out).unwrap() {
        let e = e.unwrap();
        docs.insert(
            e.file_name().to_string_lossy().into_owned(),
            std::fs::read(e.path()).unwrap(),
        );
    }
    Some((dir, docs))
}

/// A multipart/mixed message from a@example.com to b@partner.example with a text body and
/// the given attachments (name as sent, content type as declared, bytes).
fn message(subject: &str, body: &str, attachments: &[(&str, &str, &[u8])]) -> Vec<u8> {
    let mut m = format!(
        "From: Alice <a@example.com>\r\nTo: b@partner.example\r\nSubject: {subject}\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"XyZ\"\r\n\r\n--XyZ\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
    )
    .into_bytes();
    for (name, ct, data) in attachments {
        m.extend_from_slice(b"--XyZ\r\n");
        m.extend_from_slice(&build_base64_entity(ct, Some(name), data));
        m.extend_from_slice(b"\r\n");
    }
    m.extend_from_slice(b"--XyZ--\r\n");
    m
}

/// One rule per trigger we test, none stopping, so `fired` lists exactly what matched.
const RULES: &str = r#"
internal_domains = ["example.com"]

[[rule]]
name = "excel"
when = { all = [ { direction = "outbound" }, { attachment_type = "excel" } ] }
action = { encrypt = ["smime", "pgp", "zip"] }
stop = false

[[rule]]
name = "word"
when = { attachment_type = "word" }
action = "require_tls"
stop = false

[[rule]]
name = "powerpoint"
when = { attachment_type = "powerpoint" }
action = "require_tls"
stop = false

[[rule]]
name = "pdf"
when = { attachment_type = "pdf" }
action = "require_tls"
stop = false

[[rule]]
name = "odf"
when = { attachment_type = ["odt", "ods", "odp"] }
action = "require_tls"
stop = false

[[rule]]
name = "archive"
when = { attachment_type = "archive" }
action = "require_tls"
stop = false

[[rule]]
name = "image"
when = { attachment_type = "image" }
action = "none"
stop = false

[[rule]]
name = "script"
when = { attachment_type = "script" }
action = { reject = "Scripts are not allowed" }
stop = false

[[rule]]
name = "no-exe"
when = { attachment_type = "executable" }
action = { reject = "Executable attachments are not allowed" }
stop = false

[[rule]]
name = "keywords-in-attachments"
when = { attachment_contains = ["Projekt Falke", "Operation Bluebird", "Roadmap Orion", "Nordlicht", "Kundenliste vertraulich", "Zephyr", "Pelican", "Marlin"] }
action = { zip = { password = "generate", length = 16, method = "aes256" } }
stop = false

[[rule]]
name = "finance-author"
when = { attachment_property = { author = "Finance*" } }
action = "require_tls"
stop = false

[[rule]]
name = "company"
when = { attachment_property = { company = "ACME*" } }
action = "none"
stop = false

[[rule]]
name = "cards"
when = { sensitive = "payment_card", min_count = 1 }
action = { encrypt = ["smime", "zip"] }
stop = false

[[rule]]
name = "iban"
when = { sensitive = "iban" }
action = { encrypt = ["smime", "zip"] }
stop = false

[[rule]]
name = "my-number"
when = { sensitive = "my_number" }
action = { encrypt = ["smime", "zip"] }
stop = false

[[rule]]
name = "name-glob"
when = { attachment_name = ["*.exe", "*.scr"] }
action = "none"
stop = false

[[rule]]
name = "uninspectable"
when = { uninspectable = true }
action = { reject = "Content that cannot be inspected is not allowed" }
stop = false

[[rule]]
name = "encrypted"
when = { uninspectable = "encrypted" }
action = "none"
stop = false

[[rule]]
name = "subject-secret"
when = { subject_contains = ["秘密", "confidential"] }
action = { encrypt = ["smime", "pgp", "zip"] }
stop = false

[[rule]]
name = "body-keyword"
when = { body_contains = ["Übernahme", "極秘"] }
action = "require_tls"
stop = false

[[rule]]
name = "body-regex"
when = { body_matches = "(?i)project\\s+\\d{3}" }
action = "require_tls"
stop = false
"#;

fn policy() -> Policy {
    Policy::from_toml(RULES, None).unwrap()
}

fn decide_with(raw: &[u8], limits: &Limits) -> Decision {
    let msg = Entity::parse(raw, limits).unwrap();
    policy().decide(&msg, &Envelope::from_headers(&msg), &inspect(&msg, limits))
}

fn decide(raw: &[u8]) -> Decision {
    decide_with(raw, &Limits::default())
}

/// The rules that fired, without the default.
fn fired(d: &Decision) -> Vec<&str> {
    d.fired
        .iter()
        .map(String::as_str)
        .filter(|r| *r != "default")
        .collect()
}

fn triggers<'a>(d: &'a Decision, rule: &str) -> Vec<&'a sealgate::policy::Trigger> {
    d.recipients[0]
        .reasons
        .iter()
        .filter(|r| r.rule == rule)
        .flat_map(|r| r.triggers.iter())
        .collect()
}

fn attachment_path(t: &sealgate::policy::Trigger) -> (String, Vec<String>) {
    match &t.location {
        Location::Attachment { name, path, .. } => (name.clone(), path.clone()),
        other => panic!("not an attachment: {other:?}"),
    }
}

#[test]
fn xlsx_renamed_to_txt_is_still_excel() {
    let Some((_dir, docs)) = documents() else {
        return;
    };
    let raw = message(
        "figures",
        "see attached",
        &[("notes.txt", "text/plain", &docs["book.xlsx"])],
    );
    let d = decide(&raw);
    assert_eq!(fired(&d), ["excel", "finance-author", "cards"], "{d:#?}");
    let t = triggers(&d, "excel");
    assert!(
        t.iter()
            .any(|t| t.matched == "excel (xlsx)"
                && attachment_path(t) == ("notes.txt".into(), vec![]))
    );
    // The card sits in a worksheet cell: found, and shown masked only.
    assert_eq!(
        triggers(&d, "cards")[0].matched,
        "payment_card 4111 **** **** 1111"
    );
    assert!(
        matches!(&d.recipients[0].actions[..], [Action::Encrypt { methods, .. }, Action::RequireTls]
        if methods == &[Method::Smime, Method::Pgp, Method::Zip])
    );
    let json = serde_json_like(&d);
    assert!(!json.contains("4111111111111111"));
}

/// The decision as JSON without pulling serde_json into this crate: Debug is enough to check
/// that no clear card number is anywhere in the decision.
fn serde_json_like(d: &Decision) -> String {
    format!("{d:?}")
}

#[test]
fn keyword_in_docx_inside_zip() {
    let Some((_dir, docs)) = documents() else {
        return;
    };
    let raw = message(
        "docs",
        "bundle",
        &[("bundle.zip", "application/zip", &docs["bundle.zip"])],
    );
    let d = decide(&raw);
    assert_eq!(
        fired(&d),
        ["word", "archive", "keywords-in-attachments", "company"],
        "{d:#?}"
    );
    let t = triggers(&d, "keywords-in-attachments");
    assert_eq!(t[0].matched, "Operation Bluebird");
    assert_eq!(
        attachment_path(t[0]),
        ("bundle.zip".into(), vec!["docs/inner.docx".into()])
    );
    let w = triggers(&d, "word");
    assert_eq!(w[0].matched, "word (docx)");
}

#[test]
fn docx_keyword_split_over_runs_and_author_property() {
    let Some((_dir, docs)) = documents() else {
        return;
    };
    let raw = message(
        "report",
        "attached",
        &[(
            "report.docx",
            "application/octet-stream",
            &docs["report.docx"],
        )],
    );
    let d = decide(&raw);
    assert_eq!(
        fired(&d),
        [
            "word",
            "keywords-in-attachments",
            "finance-author",
            "company"
        ],
        "{d:#?}"
    );
    assert_eq!(
        triggers(&d, "finance-author")[0].matched,
        "author = Finance Team"
    );
    assert_eq!(
        triggers(&d, "keywords-in-attachments")[0].matched,
        "Projekt Falke"
    );
}

#[test]
fn author_that_does_not_match_does_not_fire() {
    let Some((_dir, docs)) = documents() else {
        return;
    };
    let raw = message(
        "x",
        "y",
        &[("bundle.zip", "application/zip", &docs["bundle.zip"])],
    );
    let d = decide(&raw);
    assert!(
        !d.fired.contains(&"finance-author".to_string()),
        "inner.docx is by Alice Writer"
    );
}

#[test]
fn pptx_odt_pdf_text_and_properties() {
    let Some((_dir, docs)) = documents() else {
        return;
    };
    let raw = message(
        "three",
        "three documents",
        &[
            (
                "deck.pptx",
                "application/vnd.openxmlformats-officedocument.presentationml.presentation",
                &docs["slides.pptx"],
            ),
            (
                "plan.odt",
                "application/vnd.oasis.opendocument.text",
                &docs["plan.odt"],
            ),
            (
                "figures.bin",
                "application/octet-stream",
                &docs["figures.pdf"],
            ),
        ],
    );
    let d = decide(&raw);
    assert_eq!(
        fired(&d),
        [
            "powerpoint",
            "pdf",
            "odf",
            "keywords-in-attachments",
            "finance-author"
        ],
        "{d:#?}"
    );
    let kw: Vec<&str> = triggers(&d, "keywords-in-attachments")
        .iter()
        .map(|t| t.matched.as_str())
        .collect();
    assert_eq!(
        kw,
        ["Roadmap Orion", "Nordlicht", "Kundenliste vertraulich"]
    );
    let authors: Vec<&str> = triggers(&d, "finance-author")
        .iter()
        .map(|t| t.matched.as_str())
        .collect();
    assert_eq!(
        authors,
        ["author = Finance Office", "author = Finance Reporting"]
    );
    let limits = Limits::default();
    let msg = Entity::parse(&raw, &limits).unwrap();
    let ins = inspect(&msg, &limits);
    let pdf = ins.files.iter().find(|f| f.name == "figures.bin").unwrap();
    assert_eq!(pdf.file_type, FileType::Pdf);
    assert_eq!(
        pdf.properties.title.as_deref(),
        Some("Annual figures"),
        "title from XMP"
    );
    let odt = ins.files.iter().find(|f| f.name == "plan.odt").unwrap();
    assert_eq!(
        odt.properties.last_modified_by.as_deref(),
        Some("Editor Two")
    );
}

#[test]
fn legacy_office_by_stream_names() {
    let Some((_dir, docs)) = documents() else {
        return;
    };
    let raw = message(
        "legacy",
        "old files",
        &[
            ("a.doc", "application/msword", &docs["legacy.doc"]),
            ("b.dat", "application/octet-stream", &docs["legacy.xls"]),
        ],
    );
    let limits = Limits::default();
    let msg = Entity::parse(&raw, &limits).unwrap();
    let ins = inspect(&msg, &limits);
    let types: Vec<FileType> = ins.files.iter().map(|f| f.file_type).collect();
    assert_eq!(types, [FileType::Doc, FileType::Xls]);
    let d = decide(&raw);
    assert_eq!(
        fired(&d),
        ["excel", "word", "keywords-in-attachments"],
        "{d:#?}"
    );
    assert_eq!(triggers(&d, "keywords-in-attachments")[0].matched, "Zephyr");
}

#[test]
fn executables_scripts_images_by_content() {
    let Some((_dir, docs)) = documents() else {
        return;
    };
    for (name, doc, rules) in [
        (
            "invoice.pdf.exe",
            "invoice.pdf.exe",
            &["no-exe", "name-glob"][..],
        ),
        ("report.pdf", "invoice.pdf.exe", &["no-exe"][..]),
        ("tool.txt", "tool", &["no-exe"][..]),
        ("install.txt", "install", &["script"][..]),
        ("photo.dat", "photo.png", &["image"][..]),
    ] {
        let raw = message("x", "y", &[(name, "application/pdf", &docs[doc])]);
        let d = decide(&raw);
        assert_eq!(fired(&d), rules, "{name}: {d:#?}");
    }
    let raw = message(
        "x",
        "y",
        &[("report.pdf", "application/pdf", &docs["invoice.pdf.exe"])],
    );
    let d = decide(&raw);
    assert!(
        matches!(&d.recipients[0].actions[..], [Action::Reject { text }] if text == "Executable attachments are not allowed")
    );
}

#[test]
fn uninspectable_content_is_a_trigger() {
    let Some((_dir, docs)) = documents() else {
        return;
    };
    let cases: [(&str, &str, &[&str], &str); 4] = [
        (
            "encrypted.docx",
            "encrypted.docx",
            &["uninspectable", "encrypted"],
            "encrypted",
        ),
        (
            "broken.docx",
            "broken.docx",
            &["archive", "uninspectable"],
            "corrupt",
        ),
        (
            "archive.7z",
            "archive.7z",
            &["archive", "uninspectable"],
            "not inspected (7z)",
        ),
        (
            "bomb.zip",
            "bomb.zip",
            &["archive", "uninspectable"],
            "limit reached (compression ratio)",
        ),
    ];
    for (name, doc, rules, reason) in cases {
        let raw = message("x", "y", &[(name, "application/octet-stream", &docs[doc])]);
        let d = decide(&raw);
        assert_eq!(fired(&d), rules, "{name}: {d:#?}");
        let t = triggers(&d, "uninspectable");
        assert!(t[0].matched.starts_with(reason), "{name}: {}", t[0].matched);
        assert!(matches!(
            d.recipients[0].actions[..],
            [Action::Reject { .. }]
        ));
    }
}

#[test]
fn archive_depth_is_bounded_and_reported() {
    let Some((_dir, docs)) = documents() else {
        return;
    };
    let raw = message(
        "x",
        "y",
        &[("deep.zip", "application/zip", &docs["deep.zip"])],
    );
    let d = decide(&raw);
    // level5.txt is five archives down; the default depth is 3.
    assert_eq!(fired(&d), ["archive", "uninspectable"], "{d:#?}");
    assert!(
        triggers(&d, "uninspectable")[0]
            .matched
            .contains("archive depth")
    );
    let mut deep = Limits::default();
    deep.max_archive_depth = 6;
    let d = decide_with(&raw, &deep);
    assert_eq!(fired(&d), ["archive", "keywords-in-attachments"], "{d:#?}");
    let t = triggers(&d, "keywords-in-attachments");
    assert_eq!(
        attachment_path(t[0]).1,
        [
            "level1.zip",
            "level2.zip",
            "level3.zip",
            "level4.zip",
            "level5.txt"
        ]
    );
}

#[test]
fn gzip_and_tar_members() {
    let Some((_dir, docs)) = documents() else {
        return;
    };
    let raw = message(
        "x",
        "y",
        &[
            ("notes.txt.gz", "application/gzip", &docs["notes.txt.gz"]),
            ("bank.tar", "application/x-tar", &docs["bank.tar"]),
        ],
    );
    let d = decide(&raw);
    assert_eq!(
        fired(&d),
        ["archive", "keywords-in-attachments", "iban"],
        "{d:#?}"
    );
    let iban = triggers(&d, "iban");
    assert_eq!(iban[0].matched, "iban DE89 **** **** **** ** 3000");
    assert_eq!(attachment_path(iban[0]).1, ["data/bank.txt"]);
}

#[test]
fn password_zip_made_by_7z_is_encrypted_content() {
    let Some((dir, _docs)) = documents() else {
        return;
    };
    if !require("7z") {
        return;
    }
    let secret = dir.path().join("secret.txt");
    std::fs::write(&secret, "Operation Bluebird").unwrap();
    let zip = dir.path().join("enc.zip");
    run(Command::new("7z")
        .args(["a", "-tzip", "-pS3cret-pass", "-mem=ZipCrypto"])
        .arg(&zip)
        .arg(&secret));
    let raw = message(
        "x",
        "y",
        &[("enc.zip", "application/zip", &std::fs::read(&zip).unwrap())],
    );
    let d = decide(&raw);
    assert_eq!(
        fired(&d),
        ["archive", "uninspectable", "encrypted"],
        "{d:#?}"
    );
    let t = triggers(&d, "encrypted");
    assert_eq!(
        attachment_path(t[0]),
        ("enc.zip".into(), vec!["secret.txt".into()])
    );
}

#[test]
fn cards_valid_and_invalid() {
    let valid = message(
        "x",
        "Please charge 4111 1111 1111 1111 and 5555-5555-5555-4444.",
        &[],
    );
    let d = decide(&valid);
    assert_eq!(fired(&d), ["cards"]);
    let masked: Vec<&str> = triggers(&d, "cards")
        .iter()
        .map(|t| t.matched.as_str())
        .collect();
    assert_eq!(
        masked,
        [
            "payment_card 4111 **** **** 1111",
            "payment_card 5555 **** **** 4444"
        ]
    );
    let invalid = message(
        "x",
        "Please charge 4111 1111 1111 1112 (bad Luhn) or 1234 5678 9012 3452.",
        &[],
    );
    assert_eq!(fired(&decide(&invalid)), Vec::<&str>::new());
}

#[test]
fn my_number_and_iban_in_body() {
    let d = decide(&message(
        "x",
        "個人番号 1234 5678 9018 / IBAN GB82 WEST 1234 5698 7654 32",
        &[],
    ));
    assert_eq!(fired(&d), ["iban", "my-number"]);
    assert_eq!(
        triggers(&d, "my-number")[0].matched,
        "my_number **** **** 9018"
    );
    let d = decide(&message(
        "x",
        "個人番号 1234 5678 9012 / IBAN GB82 WEST 1234 5698 7654 33",
        &[],
    ));
    assert_eq!(fired(&d), Vec::<&str>::new());
}

#[test]
fn iso_2022_jp_subject_and_charset_bodies() {
    // Subject "秘密の資料" in ISO-2022-JP, RFC 2047 B encoding, as Japanese mailers send it.
    let raw = b"From: a@example.com\r\nTo: b@partner.example\r\nSubject: =?ISO-2022-JP?B?GyRCSGtMKSROO3FOQRsoQg==?=\r\n\r\nhello\r\n";
    let d = decide(raw);
    assert_eq!(fired(&d), ["subject-secret"], "{d:#?}");
    assert_eq!(triggers(&d, "subject-secret")[0].matched, "秘密");
    assert_eq!(
        triggers(&d, "subject-secret")[0].location,
        Location::Subject
    );
    // Body "極秘" in Shift_JIS, and "Übernahme" in quoted-printable Latin-1 HTML.
    let raw = b"From: a@example.com\r\nTo: b@partner.example\r\nSubject: x\r\nContent-Type: multipart/alternative; boundary=b\r\n\r\n\
--b\r\nContent-Type: text/plain; charset=Shift_JIS\r\nContent-Transfer-Encoding: base64\r\n\r\ni8mU6SBwcm9qZWN0IDQyMQ==\r\n\
--b\r\nContent-Type: text/html; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n<p>Die <b>=DCbernahme</b> ist geheim</p>\r\n--b--\r\n";
    let d = decide(raw);
    assert_eq!(fired(&d), ["body-keyword", "body-regex"], "{d:#?}");
    let kw: Vec<&str> = triggers(&d, "body-keyword")
        .iter()
        .map(|t| t.matched.as_str())
        .collect();
    assert_eq!(
        kw,
        ["Übernahme", "極秘"],
        "in the order the rule lists them"
    );
    assert_eq!(triggers(&d, "body-regex")[0].matched, "project 421");
    assert_eq!(
        triggers(&d, "body-regex")[0].location,
        Location::Body { part: "1".into() }
    );
}

#[test]
fn every_rule_file_in_examples_loads() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/policies");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let path = e.unwrap().path();
        if path.extension().is_some_and(|x| x == "toml") {
            let text = std::fs::read_to_string(&path).unwrap();
            let p = Policy::from_toml(&text, Some(&dir))
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert!(p.rule_names().count() > 0, "{}", path.display());
            n += 1;
        }
    }
    assert!(n >= 4, "expected the four example policies, found {n}");
}
