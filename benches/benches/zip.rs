//! Password ZIP: create and extract a ZIP of one 10 MB file (English-like text, and random
//! data), WinZip AES-256 and ZipCrypto, Sealgate beside `7z` (and `zip -P` for ZipCrypto
//! creation) in the same run.
//!
//! Run: `cargo bench -p sealgate-benches --bench zip`. Before the timings, Sealgate's archives
//! are extracted by `7z x` and compared byte for byte, so that the two sides do the same work.
//!
//! | operation | Sealgate | reference |
//! | --- | --- | --- |
//! | create | `zip::create` of the bytes in memory, deflate level 6 (stored when the data sniffs as compressed) | `7z a -tzip -mem=AES256` (or `-mem=ZipCrypto`) `-mx5` (7-Zip's default) of the file, and `zip -q -P` for ZipCrypto |
//! | extract | `ZipReader::read_to` of 7-Zip's archive (in memory) into `io::sink()`, every check made (MAC, CRC, size) | `7z x -so` of the same archive (a file in the page cache) to /dev/null |
//! | extract, other column | `zip::read_all` of the same archive: the entry returned in a `Vec` | - |
//!
//! The tools' time is the wall time of the process (spawn and start-up included; the start-up
//! of `7z i` is printed for scale). Ratio = the tool's time / Sealgate's (above 1: Sealgate is
//! faster). Size ratio = Sealgate's archive / 7-Zip's. After the table, the peak memory of
//! streaming 64 MiB and 512 MiB through `ZipWriter` and back through `ZipReader` on a file
//! shows that memory does not grow with the archive.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Cursor, Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput};
use sealgate::Limits;
use sealgate::zip::{Encryption, Password, WriteOptions, ZipReader, ZipWriter, create, read_all};
use sealgate_benches::{current_rss, peak_rss, reset_peak_rss};
use sealgate_tests::{pseudo_random, pseudo_text};

const PW: &str = "bench-password-1234";
const SIZE: usize = 10 * 1000 * 1000;

type Op<'a> = Box<dyn FnMut() + 'a>;

fn median_time(op: &mut Op<'_>, runs: usize) -> f64 {
    op();
    let mut t: Vec<f64> = (0..runs)
        .map(|_| {
            let s = Instant::now();
            op();
            s.elapsed().as_secs_f64()
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[t.len() / 2]
}

fn tool(cmd: &mut Command) {
    let out = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn seven_zip_create(dir: &Path, method: &str, out: &Path) {
    let _ = std::fs::remove_file(out);
    tool(
        Command::new("7z")
            .args([
                "a",
                "-tzip",
                &format!("-mem={method}"),
                "-mx5",
                &format!("-p{PW}"),
            ])
            .arg(out)
            .arg("data.bin")
            .current_dir(dir),
    );
}

fn main() {
    for t in ["7z", "zip"] {
        assert!(
            sealgate_tests::require(t),
            "the ZIP bench compares with {t}, which is not installed"
        );
    }
    let tmp = tempfile::tempdir().unwrap();
    let limits = Limits::default();
    let password = Password::from(PW);
    let mut criterion = Criterion::default()
        .configure_from_args()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));

    let mut startup: Op<'_> = Box::new(|| tool(Command::new("7z").arg("i")));
    let startup = median_time(&mut startup, 11);

    let mut table = Vec::new();
    for (label, data) in [
        ("text", pseudo_text(SIZE, 7)),
        ("random", pseudo_random(SIZE, 8)),
    ] {
        let dir = tmp.path().join(label);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("data.bin"), &data).unwrap();
        for (enc, method) in [
            (Encryption::Aes256, "AES256"),
            (Encryption::ZipCrypto, "ZipCrypto"),
        ] {
            let opts = WriteOptions::new(enc);
            // Ours, checked by 7z.
            let ours = create(
                &[("data.bin", &data[..])],
                &password,
                &opts,
                &mut rand_core::OsRng,
            )
            .unwrap();
            let ours_path = dir.join(format!("ours-{method}.zip"));
            std::fs::write(&ours_path, &ours).unwrap();
            let check = Command::new("7z")
                .args(["x", "-so", &format!("-p{PW}")])
                .arg(&ours_path)
                .output()
                .unwrap();
            assert!(
                check.status.success() && check.stdout == data,
                "7z did not read ours back"
            );
            // 7-Zip's archive, read by us.
            let theirs_path = dir.join(format!("7z-{method}.zip"));
            seven_zip_create(&dir, method, &theirs_path);
            let theirs = std::fs::read(&theirs_path).unwrap();
            assert!(read_all(&theirs, Some(&password), &limits).unwrap()[0].data[..] == data[..]);

            let mut ops: Vec<(&str, &str, Op<'_>)> = vec![
                (
                    "create",
                    "sealgate",
                    Box::new(|| {
                        let z = create(
                            &[("data.bin", &data[..])],
                            &password,
                            &opts,
                            &mut rand_core::OsRng,
                        )
                        .unwrap();
                        std::hint::black_box(z);
                    }),
                ),
                (
                    "create",
                    "7z",
                    Box::new(|| seven_zip_create(&dir, method, &dir.join("t.zip"))),
                ),
                (
                    "extract",
                    "sealgate",
                    Box::new(|| {
                        // Like `7z x -so` to /dev/null: decrypt, check and drop the bytes.
                        let mut r = ZipReader::open(Cursor::new(&theirs[..]), &limits).unwrap();
                        let n = r.read_to(0, Some(&password), &mut std::io::sink()).unwrap();
                        assert_eq!(n as usize, SIZE);
                    }),
                ),
                (
                    "extract",
                    "read_all",
                    Box::new(|| {
                        let out = read_all(&theirs, Some(&password), &limits).unwrap();
                        std::hint::black_box(out);
                    }),
                ),
                (
                    "extract",
                    "7z",
                    Box::new(|| {
                        tool(
                            Command::new("7z")
                                .args(["x", "-so", &format!("-p{PW}")])
                                .arg(&theirs_path),
                        )
                    }),
                ),
            ];
            if enc == Encryption::ZipCrypto {
                let zp = dir.join("zip-P.zip");
                let data_file = dir.join("data.bin");
                ops.push((
                    "create",
                    "zip -P",
                    Box::new(move || {
                        let _ = std::fs::remove_file(&zp);
                        tool(
                            Command::new("zip")
                                .args(["-q", "-P", PW])
                                .arg(&zp)
                                .arg(&data_file),
                        );
                    }),
                ));
            }
            let mut group = criterion.benchmark_group(format!("zip-{label}-{method}"));
            group.throughput(Throughput::Bytes(data.len() as u64));
            for (op, who, f) in ops.iter_mut() {
                group.bench_function(BenchmarkId::new(*op, *who), |b| b.iter(&mut *f));
            }
            group.finish();
            let mut times = Vec::new();
            for (op, who, f) in ops.iter_mut() {
                times.push((*op, *who, median_time(f, 5)));
            }
            let seven_size = std::fs::metadata(dir.join("7z-".to_string() + method + ".zip"))
                .unwrap()
                .len();
            table.push((label, method, times, ours.len() as u64, seven_size));
        }
    }
    criterion.final_summary();
    println!();
    println!(
        "7z start-up (`7z i`, median of 11): {:.1} ms",
        startup * 1e3
    );
    println!();
    println!(
        "| data | method | operation | sealgate | 7z | ratio | other | archive sealgate / 7z |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- |");
    let mbs = |t: f64| format!("{:.0} MB/s", SIZE as f64 / t / 1e6);
    for (label, method, times, ours_size, seven_size) in &table {
        for op in ["create", "extract"] {
            let get = |who: &str| {
                times
                    .iter()
                    .find(|(o, w, _)| *o == op && *w == who)
                    .map(|t| t.2)
            };
            let (Some(a), Some(b)) = (get("sealgate"), get("7z")) else {
                continue;
            };
            let other = if op == "create" {
                get("zip -P").map_or("-".to_string(), |t| {
                    format!("zip -P {} ({:.2}x)", mbs(t), t / a)
                })
            } else {
                get("read_all").map_or("-".to_string(), |t| {
                    format!("read_all (in memory) {} ({:.2}x)", mbs(t), b / t)
                })
            };
            let size = if op == "create" {
                format!(
                    "{ours_size} / {seven_size} = {:.3}",
                    *ours_size as f64 / *seven_size as f64
                )
            } else {
                "-".to_string()
            };
            println!(
                "| {label} | {method} | {op} | {} | {} | {:.2}x | {other} | {size} |",
                mbs(a),
                mbs(b),
                b / a
            );
        }
    }
    memory(tmp.path(), &password, &limits);
}

/// Peak RSS growth while streaming N bytes through the writer into a file, and back out of the
/// file through the reader into a sink.
fn memory(dir: &Path, password: &Password, limits: &Limits) {
    println!();
    println!("| streamed | create: peak RSS growth | extract: peak RSS growth |");
    println!("| --- | --- | --- |");
    let chunk = pseudo_text(1 << 20, 3);
    for mib in [64u64, 512] {
        let path = dir.join("stream.zip");
        let base = current_rss();
        reset_peak_rss();
        {
            let file = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
            let mut w = ZipWriter::new(
                file,
                password.clone(),
                WriteOptions::new(Encryption::Aes256),
            );
            let reader = Repeat {
                chunk: &chunk,
                left: mib << 20,
                pos: 0,
            };
            w.add("big.txt", Some(mib << 20), reader, &mut rand_core::OsRng)
                .unwrap();
            w.finish().unwrap().flush().unwrap();
        }
        let create_peak = peak_rss().saturating_sub(base);
        let base = current_rss();
        reset_peak_rss();
        {
            let mut big = limits.clone();
            big.max_zip_ratio = 10_000;
            let mut r = ZipReader::open(std::fs::File::open(&path).unwrap(), &big).unwrap();
            let n = r.read_to(0, Some(password), &mut std::io::sink()).unwrap();
            assert_eq!(n, mib << 20);
        }
        let extract_peak = peak_rss().saturating_sub(base);
        println!(
            "| {mib} MiB | {:.1} MiB | {:.1} MiB |",
            create_peak as f64 / 1048576.0,
            extract_peak as f64 / 1048576.0
        );
    }
}

struct Repeat<'a> {
    chunk: &'a [u8],
    left: u64,
    pos: usize,
}

impl Read for Repeat<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let avail = &self.chunk[self.pos..];
        let n = avail
            .len()
            .min(buf.len())
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        buf[..n].copy_from_slice(&avail[..n]);
        self.pos = (self.pos + n) % self.chunk.len();
        self.left -= n as u64;
        Ok(n)
    }
}
