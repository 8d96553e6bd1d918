//! What the large-message tests (`cli_bigmsg`, `cli_bigmsg_pgp`) share: the message size, a
//! test message written as a stream, SHA-256 of large files, and each child's peak RSS and
//! wall time measured with GNU time (`/usr/bin/time -f "%M %e"`).

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use sealgate_tests::run;

/// The bound the issue sets for our processes.
pub const MAX_RSS_KIB: u64 = 64 * 1024;

/// The message size in MiB: 256, or `SEALGATE_BIG_MIB`.
pub fn size_mib() -> u64 {
    std::env::var("SEALGATE_BIG_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

/// What GNU time measured of one child.
pub struct Measured {
    /// Peak resident set size in KiB.
    pub peak_kib: u64,
    /// Wall time in seconds.
    pub seconds: f64,
}

/// Run `cmd` under `/usr/bin/time` and return its peak RSS and wall time.
pub fn measured(dir: &Path, label: &str, cmd: &mut Command) -> Measured {
    let report = dir.join(format!("{label}.time"));
    let program = cmd.get_program().to_owned();
    let args: Vec<_> = cmd.get_args().map(|a| a.to_owned()).collect();
    let mut timed = Command::new("/usr/bin/time");
    timed
        .arg("-f")
        .arg("%M %e")
        .arg("-o")
        .arg(&report)
        .arg(program)
        .args(args);
    // the child's environment too (gpg's GNUPGHOME)
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => timed.env(k, v),
            None => timed.env_remove(k),
        };
    }
    let start = Instant::now();
    run(&mut timed);
    let wall = start.elapsed().as_secs_f64();
    let text = std::fs::read_to_string(&report).unwrap();
    let mut fields = text.split_whitespace();
    let peak_kib: u64 = fields.next().unwrap().parse().unwrap();
    let seconds = fields.next().and_then(|s| s.parse().ok()).unwrap_or(wall);
    eprintln!(
        "bigmsg {label}: {seconds:.2} s, peak RSS {:.1} MiB",
        peak_kib as f64 / 1024.0
    );
    Measured { peak_kib, seconds }
}

/// SHA-256 of a file, read in 1 MiB steps (optionally from an offset).
pub fn sha256_file(path: &Path, skip: u64) -> Vec<u8> {
    let mut f = File::open(path).unwrap();
    std::io::copy(&mut Read::by_ref(&mut f).take(skip), &mut std::io::sink()).unwrap();
    let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        ctx.update(&buf[..n]);
    }
    ctx.finish().as_ref().to_vec()
}

/// Write the test message: outer header fields, then the entity (Content-Type and `mib` MiB
/// of varied CRLF text). Returns the SHA-256 of the whole message and of the entity, and the
/// entity's offset.
pub fn write_message(path: &Path, mib: u64) -> (Vec<u8>, Vec<u8>, u64) {
    let outer = b"From: Alice <alice@example.com>\r\nTo: Bob <bob@example.org>\r\n\
        Subject: A large message\r\nMIME-Version: 1.0\r\n";
    let entity_head = b"Content-Type: text/plain; charset=us-ascii\r\n\r\n";
    let mut whole = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    let mut entity = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    let mut out = BufWriter::with_capacity(1 << 20, File::create(path).unwrap());
    out.write_all(outer).unwrap();
    whole.update(outer);
    out.write_all(entity_head).unwrap();
    whole.update(entity_head);
    entity.update(entity_head);
    // 1 MiB blocks of numbered lines, each block different (its number in every line)
    let mut block = Vec::with_capacity((1 << 20) + 100);
    for b in 0..mib {
        block.clear();
        let mut line = 0u32;
        while block.len() < (1 << 20) - 80 {
            write!(
                block,
                "block {b:06} line {line:05}: the quick brown fox jumps over the lazy dog\r\n"
            )
            .unwrap();
            line += 1;
        }
        out.write_all(&block).unwrap();
        whole.update(&block);
        entity.update(&block);
    }
    out.flush().unwrap();
    (
        whole.finish().as_ref().to_vec(),
        entity.finish().as_ref().to_vec(),
        outer.len() as u64,
    )
}
