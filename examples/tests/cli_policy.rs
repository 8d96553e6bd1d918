//! `sealgate policy check`: the command line of issue 7, flag by flag, text and JSON output.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_sealgate");

const RULES: &str = r#"
internal_domains = ["example.com"]

[lists]
vip = { file = "vip.txt" }

[[rule]]
name = "tag-vip"
when = { recipient = { list = "vip" } }
action = { add_header = { name = "X-VIP", value = "yes" } }
stop = false

[[rule]]
name = "cards"
when = { sensitive = "payment_card", min_count = 1 }
action = { encrypt = ["smime", "zip"] }

[[rule]]
name = "never-fires"
when = { subject_contains = "zebra-unicorn" }
action = { reject = "no" }

[[rule]]
name = "newsletter"
when = { sender = "news@example.com" }
action = { sign = "smime" }
"#;

const MESSAGE: &[u8] = b"From: Alice <alice@example.com>\r\nTo: bob@partner.example\r\nCc: Carol <carol@example.com>\r\nSubject: order\r\n\r\nPlease charge 4111 1111 1111 1111.\r\n";

fn sg(args: &[&str], dir: &Path) -> Output {
    Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

fn setup() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("rules.toml"), RULES).unwrap();
    std::fs::write(
        dir.path().join("vip.txt"),
        "# very important\nbob@partner.example\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("msg.eml"), MESSAGE).unwrap();
    dir
}

fn stdout(o: &Output) -> String {
    assert!(o.status.success(), "{o:?}");
    String::from_utf8(o.stdout.clone()).unwrap()
}

#[test]
fn text_output_names_fired_rules_only() {
    let dir = setup();
    let o = sg(
        &[
            "policy",
            "check",
            "--rules",
            "rules.toml",
            "--in",
            "msg.eml",
        ],
        dir.path(),
    );
    let out = stdout(&o);
    assert!(out.starts_with("rules fired: tag-vip, cards\n"), "{out}");
    assert!(
        out.contains("recipient bob@partner.example (outbound)"),
        "{out}"
    );
    assert!(
        out.contains("recipient carol@example.com (internal)"),
        "{out}"
    );
    assert!(out.contains("action: add header X-VIP: yes"), "{out}");
    assert!(
        out.contains("action: encrypt, best effort in order [smime, zip], never clear text"),
        "{out}"
    );
    assert!(
        out.contains("rule cards: sensitive payment_card 4111 **** **** 1111 in body (part 1)"),
        "{out}"
    );
    assert!(
        !out.contains("never-fires") && !out.contains("newsletter"),
        "{out}"
    );
    assert!(
        !out.contains("4111 1111 1111 1111") && !out.contains("4111111111111111"),
        "{out}"
    );
}

#[test]
fn json_output_and_envelope_flags() {
    let dir = setup();
    let o = sg(
        &[
            "policy",
            "check",
            "--rules",
            "rules.toml",
            "--in",
            "msg.eml",
            "--from",
            "news@example.com",
            "--to",
            "dave@other.example",
            "--to",
            "bob@partner.example",
            "--json",
        ],
        dir.path(),
    );
    let out = stdout(&o);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["version"], 1);
    let fired: Vec<&str> = v["fired"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap())
        .collect();
    assert_eq!(fired, ["tag-vip", "cards"]);
    for name in fired {
        assert!(out.contains(&format!("\"{name}\"")));
    }
    assert!(!out.contains("never-fires") && !out.contains("newsletter"));
    let r = v["recipients"].as_array().unwrap();
    assert_eq!(r.len(), 2);
    assert_eq!(r[0]["recipient"], "dave@other.example");
    assert_eq!(r[0]["direction"], "outbound");
    assert_eq!(r[0]["actions"][0]["action"], "encrypt");
    assert_eq!(
        r[0]["actions"][0]["methods"],
        serde_json::json!(["smime", "zip"])
    );
    assert_eq!(r[0]["actions"][0]["if_none_usable"], "reject");
    assert_eq!(r[0]["reasons"][0]["triggers"][0]["where"]["kind"], "body");
    assert_eq!(r[1]["actions"][0]["action"], "add_header");
    assert_eq!(v["sensitive"][0]["masked"], "4111 **** **** 1111");
    // Without a card the newsletter rule decides: sign.
    std::fs::write(
        dir.path().join("plain.eml"),
        b"From: news@example.com\r\nTo: x@other.example\r\nSubject: News\r\n\r\nHello\r\n",
    )
    .unwrap();
    let o = sg(
        &[
            "policy",
            "check",
            "--rules",
            "rules.toml",
            "--in",
            "plain.eml",
            "--json",
        ],
        dir.path(),
    );
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["fired"], serde_json::json!(["newsletter"]));
    assert_eq!(
        v["recipients"][0]["actions"],
        serde_json::json!([{ "action": "sign", "method": "smime" }])
    );
}

#[test]
fn stdin_and_errors() {
    let dir = setup();
    let mut child = Command::new(BIN)
        .args(["policy", "check", "--rules", "rules.toml"])
        .current_dir(dir.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(MESSAGE).unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(stdout(&o).starts_with("rules fired: tag-vip, cards"));

    std::fs::write(
        dir.path().join("bad.toml"),
        "[[rule]]\nname = \"x\"\nwhen = { body_contain = \"a\" }\naction = \"none\"\n",
    )
    .unwrap();
    let o = sg(
        &["policy", "check", "--rules", "bad.toml", "--in", "msg.eml"],
        dir.path(),
    );
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8(o.stderr).unwrap();
    assert!(
        err.starts_with("sealgate: bad.toml: policy line 3, column "),
        "{err}"
    );
    assert!(err.contains("body_contain"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");

    std::fs::write(
        dir.path().join("norcpt.eml"),
        b"From: a@example.com\r\nSubject: x\r\n\r\nhi\r\n",
    )
    .unwrap();
    let o = sg(
        &[
            "policy",
            "check",
            "--rules",
            "rules.toml",
            "--in",
            "norcpt.eml",
        ],
        dir.path(),
    );
    assert_eq!(o.status.code(), Some(2));
    let o = sg(
        &[
            "policy",
            "check",
            "--rules",
            "missing.toml",
            "--in",
            "msg.eml",
        ],
        dir.path(),
    );
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn example_policies_decide_as_documented() {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
    let dir = setup();
    let check = |rules: &str, msg: &[u8]| -> serde_json::Value {
        std::fs::write(dir.path().join("m.eml"), msg).unwrap();
        let rules = examples.join(rules);
        let o = sg(
            &[
                "policy",
                "check",
                "--rules",
                rules.to_str().unwrap(),
                "--in",
                "m.eml",
                "--json",
            ],
            dir.path(),
        );
        serde_json::from_str(&stdout(&o)).unwrap()
    };
    let v = check("outbound-best-effort.toml", b"From: a@example.com\r\nTo: x@other.example, y@bank.example, z@sales.example.com\r\n\r\nhi\r\n");
    assert_eq!(
        v["recipients"][0]["actions"][0]["methods"],
        serde_json::json!(["smime", "pgp", "zip"])
    );
    assert_eq!(v["recipients"][1]["actions"][0]["action"], "require_tls");
    assert_eq!(v["recipients"][2]["actions"][0]["action"], "none");
    let v = check(
        "newsletter-signing.toml",
        b"From: newsletter@example.com\r\nTo: x@other.example\r\n\r\nhi\r\n",
    );
    assert_eq!(v["fired"], serde_json::json!(["newsletter-sign"]));
    let v = check("confidential-zip.toml", b"From: a@example.com\r\nTo: x@other.example\r\nSubject: Strictly CONFIDENTIAL numbers\r\n\r\nhi\r\n");
    assert_eq!(v["fired"], serde_json::json!(["confidential-keyword"]));
    assert_eq!(v["recipients"][0]["actions"][0]["action"], "zip");
    let exe = b"From: a@example.com\r\nTo: x@other.example\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\nhi\r\n--b\r\nContent-Type: application/pdf; name=\"invoice.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\nTVqQAAMAAAAEAAAA//8AALgAAAAAAAAAQAAAAAAAAAA=\r\n--b--\r\n";
    let v = check("reject-executables.toml", exe);
    assert_eq!(v["fired"], serde_json::json!(["no-executables"]));
    assert_eq!(
        v["recipients"][0]["actions"][0]["text"],
        "Executable attachments are not allowed"
    );
}
