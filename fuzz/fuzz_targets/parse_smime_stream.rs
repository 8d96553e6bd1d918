//! Any bytes as an RFC 5322 message for the streaming decryption (`smime::stream`): header
//! block, base64 on the fly, the incremental BER walk, CBC and GCM in steps, the spill file. Read
//! whole and in 7-byte reads (chunk boundaries everywhere); when the streamed decryption and
//! the one-shot `decrypt_message` both succeed they must give the same bytes, and a failed
//! streamed decryption must leave no spill file behind.
#![no_main]

use std::io::{BufReader, Read};

use libfuzzer_sys::fuzz_target;
use sealgate::smime;

#[path = "fixed_key.rs"]
mod fixed_key;

fuzz_target!(|data: &[u8]| {
    let f = fixed_key::fixed();
    let dir = std::env::temp_dir().join(format!("sealgate-fuzz-stream-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("spill dir");
    let one_shot = smime::decrypt_message(data, &f.key, Some(&f.cert), None, &f.limits);
    for cap in [data.len().max(1), 7] {
        let input = BufReader::with_capacity(cap, data);
        match smime::stream::decrypt_message(input, &f.key, Some(&f.cert), &dir, &f.limits) {
            Ok(mut spilled) => {
                let mut ours = Vec::new();
                spilled
                    .reader()
                    .expect("spill file")
                    .read_to_end(&mut ours)
                    .expect("read spill file");
                assert_eq!(ours.len() as u64, spilled.len());
                if let Ok(d) = &one_shot {
                    assert_eq!(&ours[..], &d.message[..], "streamed and one-shot differ");
                }
                // the inner-signature paths of a streamed result: from the spill file, and
                // in memory
                let _ = spilled.verify_signature(&f.trust, &f.limits);
                let _ = spilled.into_decrypted(Some(&f.trust), &f.limits);
            }
            Err(_) => {
                let left = std::fs::read_dir(&dir).expect("spill dir").count();
                assert_eq!(left, 0, "spill file left behind");
            }
        }
    }
});
