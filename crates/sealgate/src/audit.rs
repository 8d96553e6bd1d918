//! The audit trail: one structured record per processed message, hash-chained.
//!
//! A record says what the gateway did and why (rules fired, action per recipient, fingerprints of
//! the keys used, fallback reasons, errors) and nothing a reader of the log should not learn: no
//! password, no key, no message content beyond header fields. The gateway builds records; an
//! [`AuditSink`] stores them. [`JsonLinesSink`] writes one JSON object per line, each carrying the
//! SHA-256 of the line before it, so [`verify_chain`] (and `sealgate audit verify FILE`) detects
//! a record that was edited, removed or reordered. Truncating the file at its end cannot be seen
//! from the file alone: keep the head hash that `verify_chain` reports somewhere else (a ticket,
//! another host) and compare.
//!
//! The line format (version 1), field order fixed:
//!
//! ```text
//! {"v":1,"seq":N,"prev":"<64 hex>","hash":"<64 hex>","record":{...}}
//! ```
//!
//! `seq` counts from 1; `prev` is the `hash` of the line before (64 zeros for the first);
//! `hash` is SHA-256 over `sealgate-audit-v1\n{seq}\n{prev}\n` followed by the exact bytes of the
//! `record` value as they appear in the line.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::{Error, Result};

/// The `prev` of the first record of a chain.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Longest audit line [`verify_chain`] and [`JsonLinesSink::open`] accept (a record is header
/// fields and reasons; anything longer is not ours).
pub const MAX_LINE: usize = 1 << 20;

/// What the gateway did with one message.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct AuditRecord {
    /// When processing finished, RFC 3339 UTC (`2026-12-02T06:30:00Z`).
    pub time: String,
    /// The Message-ID header field of the input, if any.
    pub message_id: Option<String>,
    /// The envelope sender (MAIL FROM).
    pub mail_from: Option<String>,
    /// The envelope recipients (RCPT TO).
    pub rcpt_to: Vec<String>,
    /// `inbound`, `outbound` or `internal`.
    pub direction: String,
    /// Every rule that fired, in order, with what matched (sensitive values masked).
    pub rules: Vec<RuleRecord>,
    /// What was done for each recipient.
    pub recipients: Vec<RecipientRecord>,
    /// Errors met while processing (one line each; never secrets).
    pub errors: Vec<String>,
}

/// A rule that fired.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct RuleRecord {
    /// The rule's name in the policy.
    pub name: String,
    /// Why it fired: trigger, what matched and where.
    pub reasons: Vec<String>,
}

/// What was done for one recipient.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct RecipientRecord {
    /// The recipient address.
    pub address: String,
    /// The actions carried out, in order (`sign:smime`, `encrypt:pgp`, `zip:aes256`,
    /// `require_tls`, `reject`, `deliver`, `hold`...).
    pub actions: Vec<String>,
    /// The keys used for this recipient.
    pub keys: Vec<KeyRecord>,
    /// Why the preferred treatment was not possible and another one was used (or the message
    /// held), e.g. `smime: no usable certificate (expired)`.
    pub fallback: Option<String>,
    /// What the external key directories did for this recipient (`smime: ldap://…: stored 1`,
    /// `pgp: wkd: error: …`); empty when none was asked.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lookups: Vec<String>,
}

/// A key used, named by its fingerprint.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct KeyRecord {
    /// `smime` or `pgp`.
    pub kind: String,
    /// What the key did: `sign`, `encrypt`, `decrypt`, `verify`, `harvest`.
    pub role: String,
    /// SHA-256 of the certificate's DER (S/MIME) or the OpenPGP fingerprint, lowercase hex.
    pub fingerprint: String,
}

impl AuditRecord {
    /// A record stamped with `at`.
    pub fn new(at: SystemTime) -> Self {
        Self {
            time: rfc3339(at),
            ..Self::default()
        }
    }
}

/// Where audit records go. Implementations must be cheap to call from many threads.
pub trait AuditSink: Send + Sync {
    /// Store one record durably enough for the deployment (the JSON Lines sink flushes).
    fn record(&self, record: &AuditRecord) -> Result<()>;
}

/// Records kept in memory (tests, or a caller that ships them elsewhere itself).
#[derive(Debug, Default)]
pub struct MemorySink {
    records: Mutex<Vec<AuditRecord>>,
}

impl MemorySink {
    /// An empty sink.
    pub fn new() -> Self {
        Self::default()
    }

    /// A copy of every record so far.
    pub fn records(&self) -> Vec<AuditRecord> {
        self.records
            .lock()
            .map(|r| r.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }
}

impl AuditSink for MemorySink {
    fn record(&self, record: &AuditRecord) -> Result<()> {
        match self.records.lock() {
            Ok(mut r) => r.push(record.clone()),
            Err(p) => p.into_inner().push(record.clone()),
        }
        Ok(())
    }
}

/// Hash-chained JSON Lines in one file, appended to. One writer per file: the file is locked
/// exclusively while the sink lives (a second gateway process on the same file gets an error).
#[derive(Debug)]
pub struct JsonLinesSink {
    path: PathBuf,
    state: Mutex<ChainState>,
}

#[derive(Debug)]
struct ChainState {
    file: File,
    seq: u64,
    prev: String,
}

impl JsonLinesSink {
    /// Open (or create) the file and continue its chain. The existing chain is verified first:
    /// appending to a broken chain would make the break look like ours.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)?;
        if file.try_lock().is_err() {
            return Err(Error::AuditLocked { path });
        }
        let head = verify_chain(BufReader::new(&mut file))?;
        file.seek(SeekFrom::End(0))?;
        Ok(Self {
            path,
            state: Mutex::new(ChainState {
                file,
                seq: head.records,
                prev: head.head,
            }),
        })
    }

    /// The file written to.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl AuditSink for JsonLinesSink {
    fn record(&self, record: &AuditRecord) -> Result<()> {
        let json = serde_json::to_string(record).map_err(|e| Error::AuditChain {
            line: 0,
            reason: format!("record not serialisable: {e}"),
        })?;
        let mut state = match self.state.lock() {
            Ok(s) => s,
            Err(p) => p.into_inner(),
        };
        let seq = state.seq + 1;
        let hash = chain_hash(seq, &state.prev, json.as_bytes());
        let line = format!(
            "{{\"v\":1,\"seq\":{seq},\"prev\":\"{}\",\"hash\":\"{hash}\",\"record\":{json}}}\n",
            state.prev
        );
        state.file.write_all(line.as_bytes())?;
        state.file.flush()?;
        state.seq = seq;
        state.prev = hash;
        Ok(())
    }
}

/// What [`verify_chain`] found in an intact chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainHead {
    /// How many records the chain holds.
    pub records: u64,
    /// The hash of the last record ([`GENESIS`] for an empty chain): keep it elsewhere to detect
    /// truncation later.
    pub head: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChainedLine<'a> {
    v: u32,
    seq: u64,
    prev: String,
    hash: String,
    #[serde(borrow)]
    record: &'a RawValue,
}

/// Check every link of a hash-chained audit file: each line's hash over its own record, its
/// `prev` against the line before, and `seq` counting up by one. The first break is an
/// [`Error::AuditChain`] naming the line (1-based).
pub fn verify_chain(reader: impl BufRead) -> Result<ChainHead> {
    verify_chain_with(reader, |_, _| ())
}

/// [`verify_chain`], calling `each(seq, hash)` for every record that verified, in order.
pub fn verify_chain_with(
    reader: impl BufRead,
    mut each: impl FnMut(u64, &str),
) -> Result<ChainHead> {
    let mut prev = GENESIS.to_string();
    let mut seq = 0u64;
    let mut lineno = 0usize;
    let mut reader = reader;
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let n = (&mut reader)
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut buf)?;
        if n == 0 {
            break;
        }
        lineno += 1;
        let broken = |reason: String| Error::AuditChain {
            line: lineno,
            reason,
        };
        if buf.len() > MAX_LINE {
            return Err(broken("line too long".into()));
        }
        if buf.last() != Some(&b'\n') {
            return Err(broken("last line is incomplete".into()));
        }
        let text =
            std::str::from_utf8(&buf[..buf.len() - 1]).map_err(|_| broken("not UTF-8".into()))?;
        let line: ChainedLine<'_> =
            serde_json::from_str(text).map_err(|e| broken(format!("not an audit line: {e}")))?;
        if line.v != 1 {
            return Err(broken(format!("unknown format version {}", line.v)));
        }
        serde_json::from_str::<AuditRecord>(line.record.get())
            .map_err(|e| broken(format!("record malformed: {e}")))?;
        if line.seq != seq + 1 {
            return Err(broken(format!(
                "sequence number {} where {} was due: a record was removed or reordered",
                line.seq,
                seq + 1
            )));
        }
        if line.prev != prev {
            return Err(broken(
                "does not follow the line before (a record before it was removed or changed)"
                    .into(),
            ));
        }
        if chain_hash(line.seq, &line.prev, line.record.get().as_bytes()) != line.hash {
            return Err(broken(
                "hash does not match the record: it was edited".into(),
            ));
        }
        seq = line.seq;
        each(seq, &line.hash);
        prev = line.hash;
    }
    Ok(ChainHead {
        records: seq,
        head: prev,
    })
}

/// Verify the chain in a file (see [`verify_chain`]).
pub fn verify_file(path: impl AsRef<Path>) -> Result<ChainHead> {
    verify_chain(BufReader::new(File::open(path)?))
}

/// Read every record of an audit file, after verifying the chain.
pub fn read_file(path: impl AsRef<Path>) -> Result<Vec<AuditRecord>> {
    let path = path.as_ref();
    verify_file(path)?;
    let mut out = Vec::new();
    for (i, line) in BufReader::new(File::open(path)?).lines().enumerate() {
        let line = line?;
        let parsed: ChainedLine<'_> =
            serde_json::from_str(&line).map_err(|e| Error::AuditChain {
                line: i + 1,
                reason: e.to_string(),
            })?;
        out.push(
            serde_json::from_str(parsed.record.get()).map_err(|e| Error::AuditChain {
                line: i + 1,
                reason: e.to_string(),
            })?,
        );
    }
    Ok(out)
}

fn chain_hash(seq: u64, prev: &str, record_json: &[u8]) -> String {
    let mut h = sealgate_smime::DigestAlgorithm::Sha256.hasher();
    h.update(format!("sealgate-audit-v1\n{seq}\n{prev}\n").as_bytes());
    h.update(record_json);
    hex(&h.finish())
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// RFC 3339 UTC with second precision (times before 1970 are clamped to the epoch).
pub fn rfc3339(at: SystemTime) -> String {
    let secs = at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    sealgate_mime::format_rfc3339(i64::try_from(secs).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn sample(n: usize) -> AuditRecord {
        let mut r = AuditRecord::new(UNIX_EPOCH + Duration::from_secs(1_764_657_000));
        r.message_id = Some(format!("<m{n}@example.com>"));
        r.mail_from = Some("alice@example.com".into());
        r.rcpt_to = vec!["bob@partner.example".into()];
        r.direction = "outbound".into();
        r.rules = vec![RuleRecord {
            name: "cards".into(),
            reasons: vec!["payment_card 4111 **** **** 1111 in body".into()],
        }];
        r.recipients = vec![RecipientRecord {
            address: "bob@partner.example".into(),
            actions: vec!["encrypt:smime".into()],
            keys: vec![KeyRecord {
                kind: "smime".into(),
                role: "encrypt".into(),
                fingerprint: "ab".repeat(32),
            }],
            fallback: None,
            lookups: Vec::new(),
        }];
        r
    }

    fn write_chain(dir: &Path, n: usize) -> PathBuf {
        let path = dir.join("audit.jsonl");
        let sink = JsonLinesSink::open(&path).unwrap();
        for i in 0..n {
            sink.record(&sample(i)).unwrap();
        }
        path
    }

    fn broken_line(path: &Path) -> usize {
        match verify_file(path) {
            Err(Error::AuditChain { line, .. }) => line,
            other => panic!("expected a broken chain, got {other:?}"),
        }
    }

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let t = UNIX_EPOCH + Duration::from_secs(951_782_400 + 3661); // 2000-02-29
        assert_eq!(rfc3339(t), "2000-02-29T01:01:01Z");
        let t = UNIX_EPOCH + Duration::from_secs(4_102_444_799);
        assert_eq!(rfc3339(t), "2099-12-31T23:59:59Z");
    }

    #[test]
    fn chain_verifies_and_continues_after_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_chain(dir.path(), 3);
        let head = verify_file(&path).unwrap();
        assert_eq!(head.records, 3);
        {
            let sink = JsonLinesSink::open(&path).unwrap();
            sink.record(&sample(9)).unwrap();
        }
        let head2 = verify_file(&path).unwrap();
        assert_eq!(head2.records, 4);
        assert_ne!(head.head, head2.head);
        let records = read_file(&path).unwrap();
        assert_eq!(records.len(), 4);
        assert_eq!(records[3], sample(9));
    }

    #[test]
    fn edited_record_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_chain(dir.path(), 3);
        let text = std::fs::read_to_string(&path).unwrap();
        let edited = text.replacen("<m1@example.com>", "<mX@example.com>", 1);
        assert_ne!(text, edited);
        std::fs::write(&path, edited).unwrap();
        assert_eq!(broken_line(&path), 2);
    }

    #[test]
    fn removed_or_reordered_record_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_chain(dir.path(), 4);
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();

        let removed = format!("{}\n{}\n{}\n", lines[0], lines[2], lines[3]);
        std::fs::write(&path, removed).unwrap();
        assert_eq!(broken_line(&path), 2);

        let swapped = format!("{}\n{}\n{}\n{}\n", lines[0], lines[2], lines[1], lines[3]);
        std::fs::write(&path, swapped).unwrap();
        assert_eq!(broken_line(&path), 2);

        // Removing the first record breaks the chain at the new first line.
        let first_gone = format!("{}\n{}\n{}\n", lines[1], lines[2], lines[3]);
        std::fs::write(&path, first_gone).unwrap();
        assert_eq!(broken_line(&path), 1);
    }

    #[test]
    fn recomputed_hash_without_relinking_is_detected() {
        // An editor who recomputes the edited line's own hash still breaks the next line's link.
        let dir = tempfile::tempdir().unwrap();
        let path = write_chain(dir.path(), 3);
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<String> = text.lines().map(String::from).collect();
        let line: serde_json::Value = serde_json::from_str(&lines[1]).unwrap();
        let mut record: AuditRecord = serde_json::from_value(line["record"].clone()).unwrap();
        record.errors.push("forged".into());
        let json = serde_json::to_string(&record).unwrap();
        let prev = line["prev"].as_str().unwrap();
        let hash = chain_hash(2, prev, json.as_bytes());
        let forged = format!(
            "{{\"v\":1,\"seq\":2,\"prev\":\"{prev}\",\"hash\":\"{hash}\",\"record\":{json}}}"
        );
        std::fs::write(&path, format!("{}\n{forged}\n{}\n", lines[0], lines[2])).unwrap();
        assert_eq!(broken_line(&path), 3);
    }

    #[test]
    fn garbage_and_truncated_lines_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_chain(dir.path(), 2);
        let mut text = std::fs::read(&path).unwrap();
        text.truncate(text.len() - 10);
        std::fs::write(&path, &text).unwrap();
        assert_eq!(broken_line(&path), 2);
        std::fs::write(&path, b"{\"v\":1}\n").unwrap();
        assert_eq!(broken_line(&path), 1);
        std::fs::write(&path, [0xff, b'\n']).unwrap();
        assert_eq!(broken_line(&path), 1);
        // A sink refuses to extend a broken chain.
        assert!(matches!(
            JsonLinesSink::open(&path),
            Err(Error::AuditChain { line: 1, .. })
        ));
    }

    #[test]
    fn second_writer_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.jsonl");
        let _first = JsonLinesSink::open(&path).unwrap();
        assert!(matches!(
            JsonLinesSink::open(&path),
            Err(Error::AuditLocked { .. })
        ));
    }

    #[test]
    fn memory_sink_keeps_records() {
        let sink = MemorySink::new();
        sink.record(&sample(1)).unwrap();
        assert_eq!(sink.records(), vec![sample(1)]);
    }
}
