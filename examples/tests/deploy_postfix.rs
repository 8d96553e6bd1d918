//! `sealgate filter` behind a real Postfix (issue 10, acceptance 1): a private Postfix instance
//! (main.cf/master.cf written in a temp dir, loopback ports only) with
//! `content_filter = scan:[127.0.0.1]:FILTER`, a reinjection smtpd with `content_filter=`
//! empty, and relay to an in-process sink. Mail sent to Postfix comes out encrypted as the
//! policy says; a policy rejection reaches the sender as a bounce with the filter's 5xx; a
//! message sent while the filter is down stays queued and is delivered once after the restart; a
//! message the policy says needs TLS is not relayed to a next hop without STARTTLS.
//!
//! Needs root (Postfix's master runs as root) and `/usr/sbin/postfix`: skipped with a notice
//! when either is missing, a failure under `CI=true`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod filter_support;

use std::time::Duration;

use filter_support::postfix::*;
use filter_support::*;
use sealgate_tests::{contains, openssl, run};

#[test]
fn postfix_with_sealgate_as_content_filter() {
    if !Postfix::available() || !sealgate_tests::require("openssl") {
        return;
    }
    let s = setup();
    let sink = Sink::start();
    let filter_addr = free_addr();
    let postfix = Postfix::start(filter_addr, sink.addr);
    let mut filter = Filter::start_on(&s.dir, filter_addr, postfix.reinject());
    let log = || postfix.log();

    // 1. Outbound to bob: through Postfix, the filter, Postfix again, to the sink, encrypted.
    let mut c = Client::connect(postfix.smtpd);
    let (code, text) = c.send(
        "alice@example.com",
        &["bob@partner.example"],
        &message("bob@partner.example", "Postfix", "figures.csv"),
    );
    assert_eq!(code, 250, "{text}");
    wait_for(60, "the encrypted copy", log, || {
        !sink.received().is_empty()
    });
    let got = sink.received();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].rcpts, vec!["bob@partner.example"]);
    assert!(!contains(&got[0].data, MARKER), "clear text went out");
    let out = s.pki.write("pfx-bob.eml", &got[0].data);
    let dec = s.dir.join("pfx-dec.eml");
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
    assert!(contains(&verified.stdout, MARKER));

    // 2. A policy rejection: Postfix queued it, the filter answered 550, the sender gets a
    // bounce that carries the filter's reason.
    let (code, text) = c.send(
        "alice@example.com",
        &["bob@partner.example"],
        &message("bob@partner.example", "Tool", "setup.exe"),
    );
    assert_eq!(code, 250, "{text}");
    wait_for(60, "the bounce", log, || {
        sink.received()
            .iter()
            .any(|m| m.from.is_empty() && m.rcpts == ["alice@example.com"])
    });
    let got = sink.received();
    let bounce = got
        .iter()
        .find(|m| m.from.is_empty() && m.rcpts == ["alice@example.com"])
        .unwrap();
    assert!(contains(&bounce.data, "no executables here"), "{bounce:?}");
    assert!(contains(&bounce.data, "550 5.7.1"), "{bounce:?}");
    assert_eq!(
        got.iter()
            .filter(|m| m.rcpts == ["bob@partner.example"])
            .count(),
        1,
        "the rejected message went out: {got:?}"
    );

    // 3. The filter restarts: a message sent while it is down stays queued in Postfix and is
    // delivered exactly once after the restart.
    filter.terminate();
    assert_eq!(filter.wait(30), Some(0));
    let before = sink.received().len();
    let msg = message("bob@partner.example", "During the restart", "figures.csv");
    let id = message_id(&msg).unwrap();
    let (code, text) = c.send("alice@example.com", &["bob@partner.example"], &msg);
    assert_eq!(code, 250, "{text}");
    assert_eq!(c.cmd("QUIT").0, 221);
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        sink.received().len(),
        before,
        "delivered without the filter"
    );
    assert!(!postfix.queue_is_empty(), "the message is not queued");
    let _filter = Filter::start_on(&s.dir, filter_addr, postfix.reinject());
    postfix.flush();
    let copies = || {
        sink.received()
            .iter()
            .filter(|m| message_id(&m.data).as_deref() == Some(id.as_str()))
            .count()
    };
    wait_for(60, "the queued message after the restart", log, || {
        copies() > 0
    });
    wait_for(30, "an empty queue", log, || postfix.queue_is_empty());
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(copies(), 1, "delivered more than once");
    let delivered = sink.received();
    let last = delivered
        .iter()
        .find(|m| message_id(&m.data).as_deref() == Some(id.as_str()))
        .unwrap();
    assert!(!contains(&last.data, MARKER), "clear text went out");

    // 4. require_tls: the filter marks the copy, the reinjection path's header_checks FILTER
    // sends it through a transport with smtp_tls_security_level=encrypt. The sink offers no
    // STARTTLS, so the message stays queued instead of going out over plain SMTP.
    let before = sink.received().len();
    let mut c = Client::connect(postfix.smtpd);
    let (code, text) = c.send(
        "alice@example.com",
        &["bob@partner.example"],
        &message("bob@partner.example", "tls-only figures", "figures.csv"),
    );
    assert_eq!(code, 250, "{text}");
    assert_eq!(c.cmd("QUIT").0, 221);
    wait_for(60, "the TLS deferral", log, || {
        postfix.queue().contains("TLS is required")
    });
    assert_eq!(sink.received().len(), before, "sent without TLS");
}

#[test]
fn a_filter_killed_mid_load_loses_nothing() {
    if !Postfix::available() || !sealgate_tests::require("openssl") {
        return;
    }
    let s = setup();
    let sink = Sink::start();
    let filter_addr = free_addr();
    let postfix = Postfix::start(filter_addr, sink.addr);
    let mut filter = Filter::start_on(&s.dir, filter_addr, postfix.reinject());
    let log = || postfix.log();
    const N: usize = 30;
    let mut ids = Vec::new();
    let mut c = Client::connect(postfix.smtpd);
    for i in 0..N {
        // Every message its own Message-ID, to count the copies of each.
        let msg = String::from_utf8(message("bob@partner.example", "Load", "figures.csv"))
            .unwrap()
            .replace("Message-ID: <", &format!("Message-ID: <load-{i}-"))
            .into_bytes();
        ids.push(message_id(&msg).unwrap());
        let (code, text) = c.send("alice@example.com", &["bob@partner.example"], &msg);
        assert_eq!(code, 250, "{text}");
        if i == 5 {
            // Some are through, some in the filter, the rest queued: kill it hard.
            wait_for(60, "the first deliveries", log, || {
                !sink.received().is_empty()
            });
            filter.kill();
        }
    }
    assert_eq!(c.cmd("QUIT").0, 221);
    let _filter = Filter::start_on(&s.dir, filter_addr, postfix.reinject());
    postfix.flush();
    let count = |id: &str| {
        sink.received()
            .iter()
            .filter(|m| message_id(&m.data).as_deref() == Some(id))
            .count()
    };
    wait_for(120, "every message", log, || {
        ids.iter().all(|id| count(id) > 0)
    });
    wait_for(30, "an empty queue", log, || postfix.queue_is_empty());
    // Nothing lost. A copy the next hop took just before the kill, whose 250 never reached
    // Postfix, is sent again: at most one per session the kill cut (maxproc 4 here).
    let extra: usize = ids.iter().map(|id| count(id) - 1).sum();
    assert!(extra <= 4, "{extra} duplicates");
    for m in sink.received() {
        assert!(!contains(&m.data, MARKER), "clear text went out");
    }
}
