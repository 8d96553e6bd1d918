//! Any bytes as an RFC 5322 message for the streaming verification
//! (`smime::stream::verify_message`): header block, the streaming multipart reader of
//! sealgate-mime, base64 on the fly, the incremental BER walk of SignedData, the digests and
//! the spill file. Read whole and in 7-byte reads; when the streamed and the one-shot
//! `verify_message` both succeed they must give the same message and the same validity, and
//! a failed streamed verification must leave no spill file behind.
#![no_main]

use std::io::{BufReader, Read};
use std::time::SystemTime;

use libfuzzer_sys::fuzz_target;
use sealgate::smime;

#[path = "fixed_key.rs"]
mod fixed_key;

fuzz_target!(|data: &[u8]| {
    let f = fixed_key::fixed();
    let dir = std::env::temp_dir().join(format!("sealgate-fuzz-verify-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("spill dir");
    let at = Some(SystemTime::now());
    let one_shot = smime::verify_message(data, &f.trust, at, &f.limits);
    for cap in [data.len().max(1), 7] {
        let input = BufReader::with_capacity(cap, data);
        match smime::stream::verify_message(input, &f.trust, at, &dir, &f.limits) {
            Ok(mut spilled) => {
                let mut ours = Vec::new();
                spilled
                    .reader()
                    .expect("spill file")
                    .read_to_end(&mut ours)
                    .expect("read spill file");
                assert_eq!(ours.len() as u64, spilled.len());
                if let Ok(v) = &one_shot {
                    assert_eq!(ours, v.message, "streamed and one-shot differ");
                    assert_eq!(
                        spilled.verification().is_valid(),
                        v.verification.is_valid(),
                        "streamed and one-shot judge differently"
                    );
                }
            }
            Err(_) => {
                let left = std::fs::read_dir(&dir).expect("spill dir").count();
                assert_eq!(left, 0, "spill file left behind");
            }
        }
    }
});
