//! Any bytes as a TOML rule file: `Policy::from_toml` must return a policy or an error (with
//! line and column for TOML errors), never panic or allocate without bound; a policy that loads
//! is then used to decide a fixed message with an attachment, for three recipients.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sealgate::Limits;
use sealgate::mime::Entity;
use sealgate::policy::{Envelope, Error, Policy, inspect};

const MESSAGE: &[u8] = b"From: Alice <alice@example.com>\r\nTo: bob@partner.example, carol@example.com\r\n\
Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?= confidential\r\nX-Classification: secret\r\n\
Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/html; charset=iso-8859-1\r\n\r\n\
<p>Card 4111 1111 1111 1111, IBAN DE89 3704 0044 0532 0130 00, EMP-123456</p>\r\n--b\r\n\
Content-Type: application/octet-stream; name=run.exe\r\nContent-Transfer-Encoding: base64\r\n\r\nTVqQAAMAAAAEAAAA\r\n--b--\r\n";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Policy::from_toml(text, None) {
        Ok(policy) => {
            let limits = Limits::default();
            let Ok(msg) = Entity::parse(MESSAGE, &limits) else {
                return;
            };
            let inspection = inspect(&msg, &limits);
            let mut envelope = Envelope::from_headers(&msg);
            envelope.rcpt_to.push("dave@else.example".into());
            let d = policy.decide(&msg, &envelope, &inspection);
            assert_eq!(d.recipients.len(), 3);
            for r in &d.recipients {
                assert!(
                    !r.actions.is_empty(),
                    "every recipient gets at least one action"
                );
            }
        }
        Err(Error::Syntax { line, column, .. }) => {
            assert!(line >= 1 && column >= 1);
            assert!(
                line <= text.lines().count().max(1) + 1,
                "line {line} past the end"
            );
        }
        Err(_) => {}
    }
});
