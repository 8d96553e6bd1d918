//! Policy decision time for a 1 MB message with a 500 KB .docx attachment, under 1 rule and
//! under 1,000 rules (500 keyword rules, 500 regex rules), in the same run.
//!
//! Run: `cargo bench -p sealgate-benches --bench policy`. The measured work is what the
//! gateway does per message: parse the MIME once (`Entity::parse`), `inspect` (decode the
//! bodies and the base64 attachment, open the docx, inflate and parse its XML, scan all text
//! for card numbers, IBANs and My Numbers) and `Policy::decide` for two recipients. Each of the
//! 1,000 rules searches the body and the attachment text (`any = [{ body_contains = K },
//! { attachment_contains = K }]`, and the same with `*_matches` for the regexes), none stops,
//! so every rule is evaluated. The 1-rule policy has one such keyword rule.
//!
//! There is no reference tool that makes the same decisions, so the comparison is with
//! ourselves: the target is that 1,000 rules cost less than twice one rule. After criterion's
//! report the bench prints the medians of 15 interleaved runs of each, MB/s of the message, and
//! the ratio.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::io::Write;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput};
use sealgate::Limits;
use sealgate::mime::{Entity, build_base64_entity};
use sealgate::policy::{Decision, Envelope, Policy, inspect};

/// Deterministic word stream (a small LCG over a vocabulary), so that the docx compresses like
/// real prose rather than like repeated text.
struct Words {
    state: u64,
    vocab: Vec<String>,
}

impl Words {
    fn new() -> Self {
        let syllables = [
            "ka", "lo", "mi", "ne", "ru", "ta", "shi", "po", "ve", "gan", "dor", "el", "is", "um",
            "ber",
        ];
        let mut vocab = Vec::new();
        for a in syllables {
            for b in syllables {
                for c in ["", "s", "en", "ing", "er"] {
                    vocab.push(format!("{a}{b}{c}"));
                }
            }
        }
        Self {
            state: 0x2545_F491_4F6C_DD1D,
            vocab,
        }
    }

    fn next(&mut self) -> &str {
        self.state = self
            .state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let i = (self.state >> 33) as usize % self.vocab.len();
        &self.vocab[i]
    }

    fn sentence(&mut self, n: usize) -> String {
        let mut s = String::new();
        for i in 0..n {
            if i > 0 {
                s.push(' ');
            }
            s.push_str(self.next());
        }
        s.push('.');
        s
    }
}

/// A .docx of about `target` bytes (compressed), with document properties.
fn docx(words: &mut Words, target: usize) -> Vec<u8> {
    let mut paragraphs = String::new();
    let mut out = Vec::new();
    while out.len() < target {
        for _ in 0..500 {
            paragraphs.push_str(&format!(
                "<w:p><w:r><w:t>{}</w:t></w:r></w:p>",
                words.sentence(14)
            ));
        }
        let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        zip.start_file("[Content_Types].xml", opts).unwrap();
        zip.write_all(br#"<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>"#).unwrap();
        zip.start_file("docProps/core.xml", opts).unwrap();
        zip.write_all(br#"<cp:coreProperties xmlns:cp="c" xmlns:dc="d"><dc:creator>Finance Team</dc:creator><dc:title>Report</dc:title></cp:coreProperties>"#).unwrap();
        zip.start_file("word/document.xml", opts).unwrap();
        write!(
            zip,
            r#"<w:document xmlns:w="w"><w:body>{paragraphs}</w:body></w:document>"#
        )
        .unwrap();
        out = zip.finish().unwrap().into_inner();
    }
    out
}

/// About 1 MB: a text body of prose with a few numbers in it, and the docx in base64.
fn message() -> Vec<u8> {
    let mut words = Words::new();
    let doc = docx(&mut words, 500 * 1024);
    let attachment = build_base64_entity(
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        Some("report.docx"),
        &doc,
    );
    let mut body = String::new();
    let body_len = (1024 * 1024usize).saturating_sub(attachment.len() + 400);
    let mut line = 0;
    while body.len() < body_len {
        body.push_str(&words.sentence(12));
        line += 1;
        if line % 200 == 0 {
            body.push_str(&format!(
                " Reference project-{line:05} invoice 2027-{line:04}."
            ));
        }
        body.push_str("\r\n");
    }
    let mut m = format!(
        "From: Alice <alice@example.com>\r\nTo: bob@partner.example, carol@example.com\r\nSubject: Quarterly report\r\n\
MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n--b1\r\n"
    )
    .into_bytes();
    m.extend_from_slice(&attachment);
    m.extend_from_slice(b"\r\n--b1--\r\n");
    m
}

fn one_rule() -> String {
    "internal_domains = [\"example.com\"]\n[[rule]]\nname = \"kw\"\nwhen = { any = [ { body_contains = \"confidential\" }, { attachment_contains = \"confidential\" } ] }\naction = \"require_tls\"\nstop = false\n".to_string()
}

fn thousand_rules() -> String {
    let mut words = Words::new();
    let mut s = String::from("internal_domains = [\"example.com\"]\n");
    for i in 0..500 {
        // Keywords that may or may not occur: vocabulary pairs and made-up terms.
        let k = if i % 2 == 0 {
            let a = words.next().to_string();
            format!("{a} {}", words.next())
        } else {
            format!("codename-{i}")
        };
        s.push_str(&format!(
            "[[rule]]\nname = \"kw-{i}\"\nwhen = {{ any = [ {{ body_contains = \"{k}\" }}, {{ attachment_contains = \"{k}\" }} ] }}\naction = \"require_tls\"\nstop = false\n"
        ));
    }
    for i in 0..500 {
        let r = match i % 4 {
            0 => format!("project-{:03}\\\\d{{2}}", i),
            1 => format!("(?i)invoice\\\\s+{:02}\\\\d\\\\d-\\\\d{{4}}", i % 100),
            2 => {
                let a = words.next().to_string();
                format!("\\\\b{a}[a-z]*{}\\\\b", words.next())
            }
            _ => format!("REF[:-]?{i}[0-9]{{3}}"),
        };
        s.push_str(&format!(
            "[[rule]]\nname = \"re-{i}\"\nwhen = {{ any = [ {{ body_matches = \"{r}\" }}, {{ attachment_matches = \"{r}\" }} ] }}\naction = \"require_tls\"\nstop = false\n"
        ));
    }
    s
}

fn decide(policy: &Policy, raw: &[u8], limits: &Limits) -> Decision {
    let msg = Entity::parse(raw, limits).unwrap();
    let inspection = inspect(&msg, limits);
    policy.decide(&msg, &Envelope::from_headers(&msg), &inspection)
}

fn median(mut f: impl FnMut(), runs: usize) -> Duration {
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    times.sort();
    times[runs / 2]
}

fn main() {
    let limits = Limits::default();
    let raw = message();
    let one = Policy::from_toml(&one_rule(), None).unwrap();
    let t = Instant::now();
    let thousand = Policy::from_toml(&thousand_rules(), None).unwrap();
    let load = t.elapsed();
    assert_eq!(thousand.rule_names().count(), 1000);
    // The decisions are real: the 1,000-rule policy finds some of its terms.
    let d = decide(&thousand, &raw, &limits);
    let fired = d.fired.len();
    assert!(fired > 1, "expected some of the 1,000 rules to fire");
    assert!(d.uninspectable.is_empty(), "{:?}", d.uninspectable);
    let msg = Entity::parse(&raw, &limits).unwrap();
    let inspection = inspect(&msg, &limits);
    let attachment_text: usize = inspection
        .texts
        .iter()
        .filter(|t| t.source == sealgate::policy::TextSource::Attachment)
        .map(|t| t.text.len())
        .sum();

    let mut criterion = Criterion::default()
        .configure_from_args()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    let mut group = criterion.benchmark_group("policy-1MB-with-500KB-docx");
    group.throughput(Throughput::Bytes(raw.len() as u64));
    group.bench_function(BenchmarkId::new("decide", "1-rule"), |b| {
        b.iter(|| black_box(decide(&one, &raw, &limits)))
    });
    group.bench_function(BenchmarkId::new("decide", "1000-rules"), |b| {
        b.iter(|| black_box(decide(&thousand, &raw, &limits)))
    });
    group.bench_function(BenchmarkId::new("rules-only", "1-rule"), |b| {
        b.iter(|| black_box(one.decide(&msg, &Envelope::from_headers(&msg), &inspection)))
    });
    group.bench_function(BenchmarkId::new("rules-only", "1000-rules"), |b| {
        b.iter(|| black_box(thousand.decide(&msg, &Envelope::from_headers(&msg), &inspection)))
    });
    group.finish();
    criterion.final_summary();

    let runs = 15;
    let mut t1 = Vec::new();
    let mut t1000 = Vec::new();
    // interleaved so that both see the same machine state
    for _ in 0..runs {
        t1.push(median(|| drop(black_box(decide(&one, &raw, &limits))), 1));
        t1000.push(median(
            || drop(black_box(decide(&thousand, &raw, &limits))),
            1,
        ));
    }
    t1.sort();
    t1000.sort();
    let (a, b) = (t1[runs / 2], t1000[runs / 2]);
    let inspect_only = median(|| drop(black_box(inspect(&msg, &limits))), runs);
    let mb = raw.len() as f64 / 1e6;
    println!();
    println!(
        "message {} bytes (docx attachment, {} bytes of text extracted from it); 1,000-rule policy loads in {:.1} ms, {fired} of its rules fire",
        raw.len(),
        attachment_text,
        load.as_secs_f64() * 1e3
    );
    println!(
        "| policy | decision time (parse + inspect + decide) | MB/s | ratio to 1 rule | target | holds |"
    );
    println!("| --- | --- | --- | --- | --- | --- |");
    println!(
        "| 1 rule | {:.1} ms | {:.1} | 1.00x | | |",
        a.as_secs_f64() * 1e3,
        mb / a.as_secs_f64()
    );
    let ratio = b.as_secs_f64() / a.as_secs_f64();
    println!(
        "| 1,000 rules (500 keyword, 500 regex) | {:.1} ms | {:.1} | {ratio:.2}x | < 2x | {} |",
        b.as_secs_f64() * 1e3,
        mb / b.as_secs_f64(),
        if ratio < 2.0 { "yes" } else { "no" }
    );
    println!(
        "| inspection alone | {:.1} ms | {:.1} | | | |",
        inspect_only.as_secs_f64() * 1e3,
        mb / inspect_only.as_secs_f64()
    );
}
