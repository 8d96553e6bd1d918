//! OpenPGP encrypt, decrypt, sign and verify of a 10 KB and a 10 MB message, Sealgate beside
//! the `gpg` command line (GnuPG 2.2) doing the same work in the same run, on the same key.
//!
//! Run: `cargo bench -p sealgate-benches --bench pgp`. The key is made by `gpg` at start in a
//! throwaway GNUPGHOME (RSA-3072 primary and encryption subkey, gpg's default; set
//! `SEALGATE_BENCH_PGP_KEY=ed25519` for Ed25519/Cv25519) and loaded by Sealgate from gpg's
//! export, so both sides encrypt SEIPD v1 (AES-256 CFB + SHA-1 MDC: a gpg-made key advertises
//! no AEAD) and sign with SHA-256.
//!
//! Two layers are measured:
//!
//! | layer | Sealgate | gpg |
//! | --- | --- | --- |
//! | `openpgp` | `encrypt` / `decrypt` / `sign_detached` / `verify_detached` of the message bytes, binary OpenPGP (no armor) | `gpg -z 0 --encrypt -r FPR`, `--decrypt`, `--detach-sign`, `--verify` of the same bytes in a file, binary, output to /dev/null |
//! | `pgp-mime` | `encrypt_message` / `decrypt_message` / `sign_message` / `verify_message`: whole RFC 5322 message in, whole message out (header split, canonical checks, armor, MIME) | the same gpg commands with `--armor` (gpg builds no MIME) |
//!
//! Both sides get the same input: gpg decrypts and verifies what Sealgate made. gpg's time is
//! the wall time of the process (spawn, start-up, agent round trip for the secret key, the
//! work); it is reported as measured and, for a second ratio, minus the median wall time of
//! `gpg --version` (pure start-up). Ratio = gpg's time / Sealgate's (above 1: Sealgate faster).
//! A third ratio uses CPU time (this process's threads, and the gpg children's, from
//! /proc/self/stat, 10 ms ticks summed over all runs): on a machine shared with other builds it
//! compares the work rather than the wait for a core. One-shot encryption of more than 1 MiB
//! hashes the MDC on a second thread, so its CPU time counts both threads.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput};
use sealgate::Limits;
use sealgate::pgp::{self, Cert, EncryptMessageOptions, EncryptOptions, SecretKey};
use sealgate_benches::message;
use sealgate_tests::{Gpg, GpgAlgo};

struct Fixture {
    gpg: Gpg,
    fpr: String,
    key: SecretKey,
    cert: Cert,
}

fn fixture() -> Fixture {
    let gpg = Gpg::new();
    let algo = match std::env::var("SEALGATE_BENCH_PGP_KEY").as_deref() {
        Ok("ed25519") => GpgAlgo::Ed25519,
        _ => GpgAlgo::Rsa3072,
    };
    let k = gpg.gen_key("Bench", "bench@example.com", algo);
    let limits = Limits::default();
    let key = SecretKey::load(&std::fs::read(&k.secret).unwrap(), None, &limits).unwrap();
    let cert = Cert::load_all(&std::fs::read(&k.public).unwrap(), &limits)
        .unwrap()
        .remove(0);
    Fixture {
        gpg,
        fpr: k.fingerprint,
        key,
        cert,
    }
}

/// Inputs for one layer and size: what each operation reads, for both sides (files for gpg).
struct Inputs {
    data: Vec<u8>,
    encrypted: Vec<u8>,
    signed: Vec<u8>,
    sig: Vec<u8>,
    data_file: PathBuf,
    encrypted_file: PathBuf,
    sig_file: PathBuf,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Layer {
    OpenPgp,
    PgpMime,
}

impl Layer {
    fn name(self) -> &'static str {
        match self {
            Layer::OpenPgp => "openpgp",
            Layer::PgpMime => "pgp-mime",
        }
    }
}

fn prepare(f: &Fixture, layer: Layer, label: &str, msg: &[u8]) -> Inputs {
    let limits = Limits::default();
    let certs = [f.cert.clone()];
    let (encrypted, signed, sig) = match layer {
        Layer::OpenPgp => {
            let e = pgp::encrypt(msg, &certs, None, &binary()).unwrap();
            let s = pgp::sign_detached(msg, &f.key, false).unwrap();
            (e, Vec::new(), s)
        }
        Layer::PgpMime => {
            let e = pgp::encrypt_message(
                msg,
                &certs,
                None,
                &EncryptMessageOptions::default(),
                &mut rand_core::OsRng,
                &limits,
            )
            .unwrap();
            let s = pgp::sign_message(msg, &f.key, &mut rand_core::OsRng, &limits).unwrap();
            // gpg gets the armored OpenPGP message inside ours, and our signature.
            let armored = pgp::encrypt(
                msg,
                &certs,
                None,
                &EncryptOptions {
                    armor: true,
                    ..EncryptOptions::default()
                },
            )
            .unwrap();
            let sig = pgp::sign_detached(msg, &f.key, true).unwrap();
            f.gpg
                .write(&format!("{label}-{}.asc", layer.name()), &armored);
            (e, s, sig)
        }
    };
    let tag = format!("{label}-{}", layer.name());
    let data_file = f.gpg.write(&format!("{tag}.data"), msg);
    let encrypted_file = match layer {
        Layer::OpenPgp => f.gpg.write(&format!("{tag}.gpg"), &encrypted),
        Layer::PgpMime => f.gpg.home.path().join(format!("{tag}.asc")),
    };
    let sig_file = f.gpg.write(&format!("{tag}.sig"), &sig);
    Inputs {
        data: msg.to_vec(),
        encrypted,
        signed,
        sig,
        data_file,
        encrypted_file,
        sig_file,
    }
}

fn binary() -> EncryptOptions {
    EncryptOptions {
        armor: false,
        ..EncryptOptions::default()
    }
}

type Op<'a> = Box<dyn FnMut() + 'a>;

/// A gpg run that must succeed; its output goes to /dev/null.
fn gpg_op<'a>(f: &'a Fixture, args: Vec<String>) -> Op<'a> {
    Box::new(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let st = f
            .gpg
            .cmd(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(st.success(), "gpg {args:?} failed");
    })
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

fn operations<'a>(
    f: &'a Fixture,
    layer: Layer,
    i: &'a Inputs,
) -> Vec<(&'static str, Op<'a>, Op<'a>)> {
    let limits: &'static Limits = Box::leak(Box::new(Limits::default()));
    let certs: &'a [Cert] = std::slice::from_ref(&f.cert);
    let keys: &'a [SecretKey] = std::slice::from_ref(&f.key);
    let armor: Vec<String> = match layer {
        Layer::OpenPgp => vec![],
        Layer::PgpMime => vec!["--armor".into()],
    };
    let gpg = |mut a: Vec<String>| {
        let mut v = armor.clone();
        v.append(&mut a);
        gpg_op(f, v)
    };
    let dn = || "/dev/null".to_string();
    let theirs_encrypt = gpg(vec![
        "-z".into(),
        "0".into(),
        "-o".into(),
        dn(),
        "--encrypt".into(),
        "-r".into(),
        f.fpr.clone(),
        s(&i.data_file),
    ]);
    let theirs_decrypt = gpg(vec![
        "-o".into(),
        dn(),
        "--decrypt".into(),
        s(&i.encrypted_file),
    ]);
    let theirs_sign = gpg(vec![
        "--digest-algo".into(),
        "SHA256".into(),
        "-o".into(),
        dn(),
        "--detach-sign".into(),
        s(&i.data_file),
    ]);
    let theirs_verify = gpg(vec!["--verify".into(), s(&i.sig_file), s(&i.data_file)]);
    match layer {
        Layer::OpenPgp => vec![
            (
                "encrypt",
                Box::new(move || {
                    black_box(pgp::encrypt(&i.data, certs, None, &binary()).unwrap());
                }) as Op<'a>,
                theirs_encrypt,
            ),
            (
                "decrypt",
                Box::new(move || {
                    let d = pgp::decrypt(&i.encrypted, keys, &[], limits).unwrap();
                    assert_eq!(d.plaintext.len(), i.data.len());
                }),
                theirs_decrypt,
            ),
            (
                "sign",
                Box::new(move || {
                    black_box(pgp::sign_detached(&i.data, &f.key, false).unwrap());
                }),
                theirs_sign,
            ),
            (
                "verify",
                Box::new(move || {
                    let v = pgp::verify_detached(&i.data, &i.sig, certs, limits).unwrap();
                    assert!(v.is_valid());
                }),
                theirs_verify,
            ),
        ],
        Layer::PgpMime => vec![
            (
                "encrypt",
                Box::new(move || {
                    black_box(
                        pgp::encrypt_message(
                            &i.data,
                            certs,
                            None,
                            &EncryptMessageOptions::default(),
                            &mut rand_core::OsRng,
                            limits,
                        )
                        .unwrap(),
                    );
                }) as Op<'a>,
                theirs_encrypt,
            ),
            (
                "decrypt",
                Box::new(move || {
                    black_box(pgp::decrypt_message(&i.encrypted, keys, &[], limits).unwrap());
                }),
                theirs_decrypt,
            ),
            (
                "sign",
                Box::new(move || {
                    black_box(
                        pgp::sign_message(&i.data, &f.key, &mut rand_core::OsRng, limits).unwrap(),
                    );
                }),
                theirs_sign,
            ),
            (
                "verify",
                Box::new(move || {
                    let v = pgp::verify_message(&i.signed, certs, limits).unwrap();
                    assert!(v.verification.is_valid());
                }),
                theirs_verify,
            ),
        ],
    }
}

/// Median wall seconds per call over `runs` calls (after one warm-up call), and the mean CPU
/// seconds per call (see [`cpu_ticks`]).
fn median_time(op: &mut Op<'_>, runs: usize) -> (f64, f64) {
    op();
    let cpu_before = cpu_ticks();
    let mut t: Vec<f64> = (0..runs)
        .map(|_| {
            let s = Instant::now();
            op();
            s.elapsed().as_secs_f64()
        })
        .collect();
    let cpu = (cpu_ticks() - cpu_before) as f64 / clock_ticks_per_second() / runs as f64;
    t.sort_by(f64::total_cmp);
    (t[t.len() / 2], cpu)
}

/// CPU time used so far by this process (all its threads) and by its waited-for children (the
/// gpg processes), in clock ticks: `utime + stime + cutime + cstime` of /proc/self/stat. On a
/// machine shared with other builds, wall time mostly measures the wait for a core; CPU time
/// compares the work itself (resolution: one tick, 10 ms, over all runs together).
fn cpu_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the parenthesised command name; utime is field 14 (index 11 here).
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    rest.split_whitespace()
        .skip(11)
        .take(4)
        .filter_map(|v| v.parse::<u64>().ok())
        .sum()
}

fn clock_ticks_per_second() -> f64 {
    static TCK: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TCK.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

fn main() {
    assert!(
        sealgate_tests::require("gpg"),
        "the PGP bench compares with gpg, which is not installed"
    );
    let f = fixture();
    let sizes = [("10KB", 10 * 1024), ("10MB", 10 * 1024 * 1024)];
    let mut criterion = Criterion::default()
        .configure_from_args()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    let mut startup_op = gpg_op(&f, vec!["--version".into()]);
    let (startup, _) = median_time(&mut startup_op, 21);
    let mut table = Vec::new();
    for (label, size) in sizes {
        let msg = message(size);
        for layer in [Layer::OpenPgp, Layer::PgpMime] {
            let inputs = prepare(&f, layer, label, &msg);
            let mut ops = operations(&f, layer, &inputs);
            let mut group = criterion.benchmark_group(format!("pgp-{label}-{}", layer.name()));
            group.throughput(Throughput::Bytes(msg.len() as u64));
            for (name, ours, theirs) in ops.iter_mut() {
                group.bench_function(BenchmarkId::new(*name, "sealgate"), |b| b.iter(&mut *ours));
                group.bench_function(BenchmarkId::new(*name, "gpg"), |b| b.iter(&mut *theirs));
            }
            group.finish();
            let runs = if size > 1_000_000 { 15 } else { 31 };
            for (name, ours, theirs) in ops.iter_mut() {
                let (a, a_cpu) = median_time(ours, runs);
                let (b, b_cpu) = median_time(theirs, runs);
                table.push((label, layer.name(), *name, msg.len(), a, b, a_cpu, b_cpu));
            }
        }
    }
    criterion.final_summary();
    println!();
    println!(
        "gpg start-up (`gpg --version`, median of 21): {:.1} ms",
        startup * 1e3
    );
    println!();
    println!(
        "| size | layer | operation | sealgate | gpg (process) | ratio | gpg minus start-up | ratio without start-up | CPU time: sealgate | CPU time: gpg | CPU-time ratio |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for (label, layer, name, len, ours, theirs, ours_cpu, theirs_cpu) in table {
        let fmt = |t: f64| {
            if t <= 0.0 {
                "-".to_string()
            } else if len > 1_000_000 {
                format!("{:.0} MB/s", len as f64 / t / 1e6)
            } else {
                format!("{:.0} ops/s", 1.0 / t)
            }
        };
        let net = theirs - startup;
        let cpu_ratio = if ours_cpu > 0.0 {
            format!("{:.2}x", theirs_cpu / ours_cpu)
        } else {
            "-".into()
        };
        println!(
            "| {label} | {layer} | {name} | {} | {} | {:.2}x | {} | {:.2}x | {} | {} | {cpu_ratio} |",
            fmt(ours),
            fmt(theirs),
            theirs / ours,
            fmt(net),
            net.max(0.0) / ours,
            fmt(ours_cpu),
            fmt(theirs_cpu),
        );
    }
}
