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

/// [`measured`] for one of our own commands: fails the test when its peak RSS reaches
/// [`MAX_RSS_KIB`].
pub fn bounded(dir: &Path, label: &str, cmd: &mut Command) -> Measured {
    let m = measured(dir, label, cmd);
    assert!(
        m.peak_kib < MAX_RSS_KIB,
        "{label}: peak RSS {} KiB, over the {MAX_RSS_KIB} KiB bound",
        m.peak_kib
    );
    m
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

/// What [`write_eight_bit_message`] wrote, to compare decoded parts with.
pub struct EightBit {
    /// SHA-256 (hex) of the text part's body, line ends as LF, without the last one.
    pub text_sha: String,
    /// SHA-256 (hex) of the attachment's bytes.
    pub attachment_sha: String,
}

/// The attachment's file name: 8-bit in the message, which a 7-bit entity carries as an
/// RFC 2231 parameter.
pub const ATTACHMENT_NAME: &str = "Bericht-M\u{e4}rz.bin";

/// Write a message that cannot be signed as it is (RFC 8551 §3.1.2, RFC 3156 §5) nor have its
/// line ends made canonical: a `multipart/mixed` of a UTF-8 text part of `text_mib` MiB
/// (`8bit`) and an attachment of `bin_mib` MiB (`binary`: every octet value, bare CR and LF,
/// NUL) with an 8-bit file name.
pub fn write_eight_bit_message(path: &Path, text_mib: u64, bin_mib: u64) -> EightBit {
    let mut out = BufWriter::with_capacity(1 << 20, File::create(path).unwrap());
    write!(
        out,
        "From: Alice <alice@example.com>\r\nTo: Bob <bob@example.org>\r\n\
         Subject: Gr\u{fc}\u{df}e\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"b-8bit\"\r\n\r\n\
         This is a multi-part message in MIME format.\r\n--b-8bit\r\n\
         Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
    )
    .unwrap();
    let mut text = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    let (mut written, mut n) = (0u64, 0u64);
    while written < text_mib << 20 {
        let line = format!(
            "{n:07} Gr\u{fc}\u{df}e aus M\u{fc}nchen, d\u{e9}j\u{e0} vu \u{2014} \u{20ac}5"
        );
        if n > 0 {
            out.write_all(b"\r\n").unwrap();
            text.update(b"\n");
        }
        out.write_all(line.as_bytes()).unwrap();
        text.update(line.as_bytes());
        written += line.len() as u64 + 2;
        n += 1;
    }
    write!(
        out,
        "\r\n--b-8bit\r\nContent-Type: application/octet-stream\r\n\
         Content-Disposition: attachment; filename=\"{ATTACHMENT_NAME}\"\r\n\
         Content-Transfer-Encoding: binary\r\n\r\n"
    )
    .unwrap();
    let mut bin = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    // xorshift bytes: every value, CR and LF alone and together, NUL
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut block = vec![0u8; 1 << 20];
    for _ in 0..bin_mib {
        for b in block.iter_mut() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = (x >> 24) as u8;
        }
        out.write_all(&block).unwrap();
        bin.update(&block);
    }
    out.write_all(b"\r\n--b-8bit--\r\n").unwrap();
    out.flush().unwrap();
    let hex = |d: aws_lc_rs::digest::Digest| {
        d.as_ref()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    EightBit {
        text_sha: hex(text.finish()),
        attachment_sha: hex(bin.finish()),
    }
}

/// The leaves of the message at `path` as python's `email` package decodes them, one line
/// each: content type, file name (RFC 2231 decoded), SHA-256 of the decoded body (a text
/// body's line ends as LF, without the last).
pub fn python_parts(path: &Path) -> Vec<String> {
    let script = "import email, email.policy, hashlib, sys\n\
        m = email.message_from_binary_file(open(sys.argv[1], 'rb'), policy=email.policy.default)\n\
        for p in m.walk():\n\
        \x20   if p.is_multipart():\n\
        \x20       continue\n\
        \x20   b = p.get_payload(decode=True)\n\
        \x20   if p.get_content_maintype() == 'text':\n\
        \x20       b = b.replace(b'\\r\\n', b'\\n').rstrip(b'\\n')\n\
        \x20   print(p.get_content_type(), p.get_filename(), hashlib.sha256(b).hexdigest())\n";
    let out = run(Command::new("python3").arg("-c").arg(script).arg(path));
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

impl EightBit {
    /// The lines [`python_parts`] gives for the message as written (or re-encoded).
    pub fn expected(&self) -> Vec<String> {
        vec![
            format!("text/plain None {}", self.text_sha),
            format!(
                "application/octet-stream {ATTACHMENT_NAME} {}",
                self.attachment_sha
            ),
        ]
    }
}

/// Whether a file holds only 7-bit octets (no NUL, nothing above 127).
pub fn is_seven_bit(path: &Path) -> bool {
    let mut f = File::open(path).unwrap();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).unwrap();
        if n == 0 {
            return true;
        }
        if buf[..n].iter().any(|&b| b == 0 || b >= 0x80) {
            return false;
        }
    }
}
