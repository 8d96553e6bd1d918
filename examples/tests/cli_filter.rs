//! `sealgate filter` as Postfix would use it: mail sent to it over SMTP, the copies received by
//! an in-process SMTP sink standing for the next hop (both written here, independently of the
//! filter's own SMTP code). Checks: S/MIME and password-ZIP outputs as the policy says (read
//! with openssl and our ZIP reader), dot-stuffing round trip, 550 with the reason on a policy
//! rejection, 552 over the size limit, a require_tls decision marked for the next hop, 451 when the next hop fails or is down, /metrics and
//! /health, and SIGTERM finishing the message in flight.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod filter_support;

use std::io::Write;
use std::net::TcpStream;
use std::sync::atomic::Ordering;
use std::time::Duration;

use filter_support::*;
use sealgate::Limits;
use sealgate_tests::{attachment, contains, notification_password, openssl, require, run};

fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in\n{text}"))
}

#[test]
fn filter_delivers_rejects_defers_and_reports() {
    if !require("openssl") {
        return;
    }
    let s = setup();
    let sink = Sink::start();
    let filter = Filter::start(&s.dir, sink.addr);
    let mut c = Client::connect(filter.listen);

    // Outbound to bob: signed and encrypted with his certificate; dot lines survive both hops.
    let (code, text) = c.send(
        "alice@example.com",
        &["bob@partner.example"],
        &message("bob@partner.example", "Figures", "figures.csv"),
    );
    assert_eq!(code, 250, "{text}");
    let got = sink.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].from, "alice@example.com");
    assert_eq!(got[0].rcpts, vec!["bob@partner.example"]);
    assert!(!contains(&got[0].data, MARKER), "clear text went out");
    let out = s.pki.write("bob-copy.eml", &got[0].data);
    let dec = s.dir.join("dec.eml");
    run(openssl(&["cms", "-decrypt", "-in"])
        .arg(&out)
        .arg("-recip")
        .arg(&s.bob.cert)
        .arg("-inkey")
        .arg(&s.bob.key)
        .arg("-out")
        .arg(&dec));
    let verified = run(openssl(&["cms", "-verify", "-in"])
        .arg(&dec)
        .arg("-CAfile")
        .arg(&s.pki.ca_bundle));
    let clear = String::from_utf8_lossy(&verified.stdout).replace("\r\n", "\n");
    assert!(
        clear.contains(&format!("{MARKER}\n.\n..two dots\n.one dot\n")),
        "{clear}"
    );

    // Confidential to dave (no certificate): the attachment in a password ZIP to dave, the
    // password to alice in a notification sent with the null sender.
    let (code, text) = c.send(
        "alice@example.com",
        &["dave@plain.example"],
        &message("dave@plain.example", "confidential figures", "figures.csv"),
    );
    assert_eq!(code, 250, "{text}");
    let got = sink.received();
    assert_eq!(got.len(), 3, "{got:?}");
    let zip_copy = got
        .iter()
        .find(|m| m.rcpts == ["dave@plain.example"])
        .unwrap();
    assert_eq!(zip_copy.from, "alice@example.com");
    let note = got
        .iter()
        .find(|m| m.rcpts == ["alice@example.com"])
        .unwrap();
    assert_eq!(note.from, "");
    let password = notification_password(&note.data);
    let zip = attachment(&zip_copy.data, ".zip");
    let files = sealgate::zip::read_all(
        &zip,
        Some(&sealgate::zip::Password::from(password.as_str())),
        &Limits::default(),
    )
    .unwrap();
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(files[0].name, "figures.csv");
    assert!(contains(&files[0].data, ATTACHED), "{files:?}");
    assert!(
        !contains(&zip_copy.data, ATTACHED),
        "the attachment went out in clear"
    );
    assert!(!contains(&note.data, ATTACHED));

    // A policy rejection: 550 with the rule's reason; nothing goes out.
    let (code, text) = c.send(
        "alice@example.com",
        &["bob@partner.example"],
        &message("bob@partner.example", "Tool", "setup.exe"),
    );
    assert_eq!(code, 550, "{text}");
    assert!(text.contains("no executables here"), "{text}");
    assert_eq!(sink.received().len(), 3);

    // Too big: announced (at MAIL) and not announced (after DATA).
    let (code, _) = c.cmd("MAIL FROM:<alice@example.com> SIZE=900000");
    assert_eq!(code, 552);
    let mut big = message("bob@partner.example", "Big", "big.csv");
    big.splice(
        0..0,
        format!("X-Filler: {}\r\n", "x".repeat(900))
            .repeat(300)
            .into_bytes(),
    );
    let (code, text) = c.send("alice@example.com", &["bob@partner.example"], &big);
    assert_eq!(code, 552, "{text}");
    // The session is still usable after the refused message.
    assert_eq!(c.cmd("NOOP").0, 250);

    // The next hop refuses for now: 451, so Postfix keeps the message and retries.
    sink.fail.store(true, Ordering::SeqCst);
    let (code, text) = c.send(
        "alice@example.com",
        &["bob@partner.example"],
        &message("bob@partner.example", "Retry", "figures.csv"),
    );
    assert_eq!(code, 451, "{text}");
    sink.fail.store(false, Ordering::SeqCst);
    assert_eq!(c.cmd("QUIT").0, 221);

    let (status, body) = filter.http("/metrics");
    assert!(status.contains("200"), "{status}");
    assert_eq!(
        metric(
            &body,
            "sealgate_filter_messages_total{action=\"delivered\"}"
        ),
        2
    );
    assert_eq!(
        metric(&body, "sealgate_filter_messages_total{action=\"rejected\"}"),
        1
    );
    assert_eq!(
        metric(&body, "sealgate_filter_messages_total{action=\"too_big\"}"),
        1
    );
    assert_eq!(
        metric(&body, "sealgate_filter_messages_total{action=\"deferred\"}"),
        1
    );
    assert_eq!(
        metric(&body, "sealgate_filter_errors_total{kind=\"next_hop\"}"),
        1
    );
    assert_eq!(metric(&body, "sealgate_filter_message_seconds_count"), 5);
    assert_eq!(
        metric(&body, "sealgate_filter_message_seconds_bucket{le=\"+Inf\"}"),
        5
    );
    let (status, body) = filter.http("/health");
    assert!(status.contains("200") && body == "ok\n", "{status} {body}");
    assert!(filter.http("/nothing").0.contains("404"));

    // Three delivered or rejected messages went through the gateway, plus the deferred
    // one: four audit records, the chain intact.
    let head = sealgate::audit::verify_file(s.dir.join("audit.jsonl")).unwrap();
    assert_eq!(head.records, 4);
}

#[test]
fn require_tls_is_marked_for_the_next_hop() {
    let s = setup();
    let sink = Sink::start();
    let filter = Filter::start(&s.dir, sink.addr);
    let mut c = Client::connect(filter.listen);
    for subject in ["tls-only figures", "Figures"] {
        let (code, text) = c.send(
            "alice@example.com",
            &["bob@partner.example"],
            &message("bob@partner.example", subject, "figures.csv"),
        );
        assert_eq!(code, 250, "{text}");
    }
    let got = sink.received();
    assert_eq!(got.len(), 2);
    // The policy's require_tls decision travels as the first header field; the copy is still
    // encrypted as the outbound rule says.
    assert!(
        got[0].data.starts_with(b"X-Sealgate-Require-TLS: yes\r\n"),
        "{}",
        String::from_utf8_lossy(&got[0].data[..200])
    );
    assert!(!got[0].clear && !got[1].clear, "clear text went out");
    assert!(
        !contains(&got[1].data, "X-Sealgate-Require-TLS"),
        "marked without require_tls"
    );
}

#[test]
fn next_hop_down_is_a_temporary_failure() {
    if !require("openssl") {
        return;
    }
    let s = setup();
    // Nothing listens on the next hop's port.
    let filter = Filter::start(&s.dir, free_addr());
    let mut c = Client::connect(filter.listen);
    let (code, text) = c.send(
        "alice@example.com",
        &["bob@partner.example"],
        &message("bob@partner.example", "Figures", "figures.csv"),
    );
    assert_eq!(code, 451, "{text}");
    assert!(text.contains("next hop"), "{text}");
}

#[test]
fn sigterm_finishes_the_message_in_flight_then_exits() {
    if !require("openssl") {
        return;
    }
    let s = setup();
    let sink = Sink::start();
    let mut filter = Filter::start(&s.dir, sink.addr);
    let mut busy = Client::connect(filter.listen);
    let mut idle = Client::connect(filter.listen);
    assert_eq!(busy.cmd("MAIL FROM:<alice@example.com>").0, 250);
    assert_eq!(busy.cmd("RCPT TO:<bob@partner.example>").0, 250);
    assert_eq!(busy.cmd("DATA").0, 354);
    let wire = stuffed(&message("bob@partner.example", "In flight", "figures.csv"));
    let (first, rest) = wire.split_at(wire.len() / 2);
    busy.w.write_all(first).unwrap();
    filter.terminate();
    std::thread::sleep(Duration::from_millis(600));
    // No new sessions; the idle one is told to come back later.
    assert!(TcpStream::connect(filter.listen).is_err());
    assert_eq!(idle.reply().0, 421);
    // The message in flight is finished and delivered, then the filter exits cleanly.
    busy.w.write_all(rest).unwrap();
    let (code, text) = busy.reply();
    assert_eq!(code, 250, "{text}");
    assert_eq!(sink.received().len(), 1);
    assert_eq!(busy.reply().0, 421);
    assert_eq!(filter.wait(30), Some(0));
}
