//! Reading untrusted archives under [`Limits`]: the `zip` crate parses the structure (end
//! records, Zip64, central directory, names, overlap detection); decryption and inflation
//! are ours, so that every byte that comes out is counted against the limits as it comes.

use std::collections::HashSet;
use std::io::{Cursor, Read, Seek, SeekFrom, Write};

use flate2::{Decompress, FlushDecompress, Status};
use sealgate_mime::Limits;
use zeroize::Zeroizing;

use crate::crypto::{AES_MAC_LEN, AES_VERIFIER_LEN, AesCtr, AesKeys, ZipCrypto, ct_eq, salt_len};
use crate::names::check_name;
use crate::{Error, Password, Result, malformed};

/// Below this many bytes an entry may expand without the ratio limit (a small file of zeros
/// is not a bomb).
const RATIO_GRACE: u64 = 1024 * 1024;
const BUF: usize = 128 * 1024;

/// The encryption of an entry as found in an archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EntryEncryption {
    /// Not encrypted.
    None,
    /// Traditional PKWARE encryption.
    ZipCrypto,
    /// WinZip AES: vendor version (1 = AE-1, 2 = AE-2) and key size in bits.
    Aes {
        /// AE-1 or AE-2.
        ae_version: u16,
        /// 128, 192 or 256.
        bits: u16,
    },
}

/// One entry of an archive, as its central directory describes it.
#[derive(Debug, Clone)]
pub struct EntryInfo {
    /// The name, checked to stay inside an extraction directory (`\` read as `/`).
    pub name: String,
    /// Whether it is a directory entry (name ending in `/`).
    pub is_dir: bool,
    /// Announced uncompressed size.
    pub size: u64,
    /// Stored size (with encryption overhead).
    pub compressed_size: u64,
    /// Whether (and how) it is encrypted; known after [`ZipReader::open`] read its local header.
    pub encryption: EntryEncryption,
    header_start: u64,
    crc: u32,
    flags: u16,
}

/// An archive opened for reading, with its entry list checked against the limits.
pub struct ZipReader<R> {
    source: R,
    entries: Vec<EntryInfo>,
    limits: Limits,
    /// Bytes produced so far by every entry read (and by nested archives of a scan).
    produced: u64,
    cd_start: u64,
}

impl<R> std::fmt::Debug for ZipReader<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZipReader")
            .field("entries", &self.entries.len())
            .finish_non_exhaustive()
    }
}

struct LocalHeader {
    flags: u16,
    method: u16,
    time: u16,
    data_start: u64,
    aes: Option<(u16, u8, u16)>,
}

impl<R: Read + Seek> ZipReader<R> {
    /// Open an archive: its central directory is read and every entry checked (entry count,
    /// name length and safety, duplicate names, overlapping entries, announced sizes and
    /// ratios). Nothing is decrypted yet.
    pub fn open(source: R, limits: &Limits) -> Result<Self> {
        let mut archive = zip::ZipArchive::new(source).map_err(zip_error)?;
        if archive.len() > limits.max_zip_entries {
            return Err(Error::LimitExceeded {
                what: "ZIP entry count",
                limit: limits.max_zip_entries as u64,
            });
        }
        if archive.has_overlapping_entries().map_err(zip_error)? {
            return Err(Error::OverlappingEntries);
        }
        // Every local header must agree with its central entry (name, method, flags, time,
        // sizes, CRC), no name may appear twice, and no local header may hide between the
        // listed entries: a scanner that reads one and an extractor that reads the other would
        // see different files.
        archive
            .validate_header_consistency()
            .map_err(|e| malformed(format!("local headers and central directory differ: {e}")))?;
        let mut entries = Vec::with_capacity(archive.len());
        let mut seen = HashSet::new();
        let mut announced: u64 = 0;
        for i in 0..archive.len() {
            let e = archive.by_index_data(i).map_err(zip_error)?;
            if e.name_raw().len() > limits.max_zip_name_len {
                return Err(Error::LimitExceeded {
                    what: "ZIP entry name length",
                    limit: limits.max_zip_name_len as u64,
                });
            }
            let raw_name = e.name().map_err(zip_error)?;
            let name = check_name(&raw_name)?;
            if !seen.insert(name.trim_end_matches('/').to_string()) {
                return Err(Error::DuplicateName { name });
            }
            announced = announced.saturating_add(e.size());
            if announced > limits.max_zip_total_bytes {
                return Err(Error::LimitExceeded {
                    what: "ZIP total uncompressed size",
                    limit: limits.max_zip_total_bytes,
                });
            }
            if e.size() > ratio_allowance(e.compressed_size(), limits) {
                return Err(Error::CompressionRatio {
                    name,
                    limit: limits.max_zip_ratio,
                });
            }
            entries.push(EntryInfo {
                is_dir: name.ends_with('/'),
                name,
                size: e.size(),
                compressed_size: e.compressed_size(),
                encryption: if e.encrypted() {
                    EntryEncryption::ZipCrypto
                } else {
                    EntryEncryption::None
                },
                header_start: e.header_start(),
                crc: e.crc32(),
                flags: u16::from(e.encrypted()),
            });
        }
        let cd_start = archive.central_directory_start();
        let mut reader = Self {
            source: archive.into_inner(),
            entries,
            limits: limits.clone(),
            produced: 0,
            cd_start,
        };
        for i in 0..reader.entries.len() {
            let local = reader.local_header(i)?;
            if let (Some((ae_version, strength, _)), Some(e)) =
                (local.aes, reader.entries.get_mut(i))
            {
                e.encryption = EntryEncryption::Aes {
                    ae_version,
                    bits: 64 * u16::from(strength) + 64,
                };
            }
        }
        Ok(reader)
    }

    /// The entries in central-directory order.
    pub fn entries(&self) -> &[EntryInfo] {
        &self.entries
    }

    /// Whether any entry needs a password.
    pub fn is_encrypted(&self) -> bool {
        self.entries
            .iter()
            .any(|e| e.encryption != EntryEncryption::None)
    }

    fn local_header(&mut self, index: usize) -> Result<LocalHeader> {
        let entry = self
            .entries
            .get(index)
            .ok_or_else(|| malformed("no such entry"))?;
        let start = entry.header_start;
        self.source.seek(SeekFrom::Start(start))?;
        let mut fixed = [0u8; 30];
        self.source
            .read_exact(&mut fixed)
            .map_err(|_| malformed("truncated local header"))?;
        let u16_at = |i: usize| u16::from_le_bytes([fixed[i], fixed[i + 1]]);
        if fixed[..4] != 0x0403_4b50u32.to_le_bytes() {
            return Err(malformed("bad local header signature"));
        }
        let flags = u16_at(6);
        let method = u16_at(8);
        let time = u16_at(10);
        let name_len = u64::from(u16_at(26));
        let extra_len = usize::from(u16_at(28));
        self.source.seek(SeekFrom::Current(name_len as i64))?;
        let mut extra = vec![0u8; extra_len];
        self.source
            .read_exact(&mut extra)
            .map_err(|_| malformed("truncated local header"))?;
        let data_start = start + 30 + name_len + extra_len as u64;
        let aes = if method == 99 {
            Some(parse_aes_extra(&extra)?)
        } else {
            None
        };
        Ok(LocalHeader {
            flags,
            method,
            time,
            data_start,
            aes,
        })
    }

    /// Decrypt and inflate entry `index` into `out`, returning its size.
    ///
    /// The data streams out as it is decrypted: a WinZip AES authentication code (or a CRC)
    /// is checked only at the end, so on an error the caller must discard what `out` got
    /// (the CLI writes to a temporary file and renames it only on success). [`Self::read`]
    /// does that for you in memory.
    pub fn read_to(
        &mut self,
        index: usize,
        password: Option<&Password>,
        out: &mut dyn Write,
    ) -> Result<u64> {
        let local = self.local_header(index)?;
        let entry = self
            .entries
            .get(index)
            .cloned()
            .ok_or_else(|| malformed("no such entry"))?;
        if entry.is_dir {
            return Ok(0);
        }
        if local.flags & (1 << 6) != 0 {
            return Err(Error::Unsupported {
                what: "PKWARE strong encryption".into(),
            });
        }
        let encrypted = local.flags & 1 != 0;
        if encrypted != (entry.flags & 1 != 0) {
            return Err(malformed("local and central encryption flags differ"));
        }
        let end = local
            .data_start
            .checked_add(entry.compressed_size)
            .filter(|&e| e <= self.cd_start)
            .ok_or_else(|| malformed("entry data runs past the central directory"))?;
        let _ = end;
        self.source.seek(SeekFrom::Start(local.data_start))?;
        let mut raw = (&mut self.source).take(entry.compressed_size);
        let (method, mut decrypt, check_crc) = match (encrypted, local.aes) {
            (false, None) => (local.method, Decrypt::None, true),
            (false, Some(_)) => return Err(malformed("AES method on an unencrypted entry")),
            (true, Some((ae_version, strength, actual))) => {
                let password = password.ok_or(Error::PasswordRequired)?;
                let salt_len = salt_len(strength).ok_or_else(|| Error::Unsupported {
                    what: format!("AES strength {strength}"),
                })?;
                let overhead = (salt_len + AES_VERIFIER_LEN + AES_MAC_LEN) as u64;
                if entry.compressed_size < overhead {
                    return Err(malformed("AES entry shorter than its salt and MAC"));
                }
                let mut head = vec![0u8; salt_len + AES_VERIFIER_LEN];
                raw.read_exact(&mut head)
                    .map_err(|_| malformed("truncated AES header"))?;
                let (salt, verifier) = head.split_at(salt_len);
                let keys = AesKeys::derive_for(password.bytes(), salt);
                if !ct_eq(&keys.verifier(), verifier) {
                    return Err(Error::WrongPassword);
                }
                raw = raw.into_inner().take(entry.compressed_size - overhead);
                (
                    actual,
                    Decrypt::Aes(Box::new(keys.cipher()?)),
                    ae_version != 2,
                )
            }
            (true, None) => {
                let password = password.ok_or(Error::PasswordRequired)?;
                if entry.compressed_size < 12 {
                    return Err(malformed("ZipCrypto entry shorter than its header"));
                }
                let mut zc = ZipCrypto::new(password.bytes());
                let mut head = [0u8; 12];
                raw.read_exact(&mut head)
                    .map_err(|_| malformed("truncated ZipCrypto header"))?;
                zc.decrypt(&mut head);
                // APPNOTE §6.1.6: the last header byte is the CRC's high byte, or the time's
                // when the CRC follows in a data descriptor (as Info-ZIP and we write it).
                let check = if local.flags & (1 << 3) != 0 {
                    (local.time >> 8) as u8
                } else {
                    (entry.crc >> 24) as u8
                };
                if head[11] != check {
                    return Err(Error::WrongPassword);
                }
                (local.method, Decrypt::ZipCrypto(zc), true)
            }
        };
        let mut sink = Sink {
            out,
            crc: crc32fast::Hasher::new(),
            written: 0,
            entry_limit: ratio_allowance(entry.compressed_size, &self.limits).min(entry.size),
            total_left: self
                .limits
                .max_zip_total_bytes
                .saturating_sub(self.produced),
            name: &entry.name,
            limits: &self.limits,
        };
        let mut source = DecryptingReader {
            inner: &mut raw,
            decrypt: &mut decrypt,
        };
        let result = match method {
            0 => copy_stored(&mut source, &mut sink),
            8 => inflate(&mut source, &mut sink),
            m => Err(Error::Unsupported {
                what: format!("compression method {m}"),
            }),
        };
        let written = sink.written;
        let crc = sink.crc.clone().finalize();
        self.produced = self.produced.saturating_add(written);
        // Inside an encrypted entry every failure reads as a wrong password (no oracle).
        let coarse = |e: Error| match (encrypted, e) {
            (true, Error::Malformed { .. } | Error::CrcMismatch { .. }) => Error::WrongPassword,
            (_, e) => e,
        };
        result.map_err(coarse)?;
        if let Decrypt::Aes(aes) = decrypt {
            let mut mac = [0u8; AES_MAC_LEN];
            raw.into_inner()
                .read_exact(&mut mac)
                .map_err(|_| Error::WrongPassword)?;
            if !ct_eq(&aes.finish(), &mac) {
                return Err(Error::WrongPassword);
            }
        }
        if written != entry.size {
            return Err(coarse(malformed(
                "entry size differs from the central directory",
            )));
        }
        if check_crc && crc != entry.crc {
            return Err(coarse(Error::CrcMismatch { name: entry.name }));
        }
        Ok(written)
    }

    /// Entry `index` in memory, returned only once every check (MAC, CRC, size) has passed.
    pub fn read(
        &mut self,
        index: usize,
        password: Option<&Password>,
    ) -> Result<Zeroizing<Vec<u8>>> {
        let size = self
            .entries
            .get(index)
            .map(|e| e.size)
            .ok_or_else(|| malformed("no such entry"))?;
        let cap = usize::try_from(size.min(self.limits.max_zip_total_bytes)).unwrap_or(0);
        let mut buf = Zeroizing::new(Vec::with_capacity(cap.min(64 * 1024 * 1024)));
        self.read_to(index, password, &mut *buf)?;
        Ok(buf)
    }
}

/// An entry taken out of an archive by [`read_all`].
#[derive(Clone)]
pub struct Extracted {
    /// Its name; for an entry of a nested archive, `outer.zip/inner.txt`.
    pub name: String,
    /// Its content.
    pub data: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for Extracted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Extracted")
            .field("name", &self.name)
            .field("len", &self.data.len())
            .finish()
    }
}

/// Every file of an in-memory archive, decrypted with `password` where needed. Entries that
/// are themselves ZIP archives are opened too (with the same password), up to
/// `limits.max_zip_nesting` levels, with one `max_zip_total_bytes` budget for all levels;
/// an inner archive that cannot be opened is returned as a file.
pub fn read_all(
    data: &[u8],
    password: Option<&Password>,
    limits: &Limits,
) -> Result<Vec<Extracted>> {
    let mut out = Vec::new();
    let mut budget = limits.max_zip_total_bytes;
    read_nested(data, "", password, limits, 0, &mut budget, &mut out)?;
    Ok(out)
}

fn read_nested(
    data: &[u8],
    prefix: &str,
    password: Option<&Password>,
    limits: &Limits,
    depth: usize,
    budget: &mut u64,
    out: &mut Vec<Extracted>,
) -> Result<()> {
    if depth > limits.max_zip_nesting {
        return Err(Error::LimitExceeded {
            what: "ZIP nesting depth",
            limit: limits.max_zip_nesting as u64,
        });
    }
    let mut level = limits.clone();
    level.max_zip_total_bytes = *budget;
    let mut zip = ZipReader::open(Cursor::new(data), &level)?;
    for i in 0..zip.entries().len() {
        let Some(info) = zip.entries().get(i).cloned() else {
            continue;
        };
        if info.is_dir {
            continue;
        }
        let content = zip.read(i, password)?;
        *budget = budget.saturating_sub(content.len() as u64);
        let name = format!("{prefix}{}", info.name);
        if content.starts_with(b"PK\x03\x04") {
            let mut inner = Vec::new();
            let inner_prefix = format!("{name}/");
            match read_nested(
                &content,
                &inner_prefix,
                password,
                limits,
                depth + 1,
                budget,
                &mut inner,
            ) {
                Ok(()) => {
                    out.extend(inner);
                    continue;
                }
                Err(
                    e @ (Error::LimitExceeded { .. }
                    | Error::CompressionRatio { .. }
                    | Error::OverlappingEntries
                    | Error::UnsafePath { .. }),
                ) => return Err(e),
                Err(_) => {}
            }
        }
        out.push(Extracted {
            name,
            data: content,
        });
    }
    Ok(())
}

/// How far an entry of `compressed` bytes may expand.
fn ratio_allowance(compressed: u64, limits: &Limits) -> u64 {
    compressed
        .saturating_mul(limits.max_zip_ratio)
        .max(RATIO_GRACE)
}

fn zip_error(e: zip::result::ZipError) -> Error {
    match e {
        zip::result::ZipError::Io(e) if e.kind() != std::io::ErrorKind::UnexpectedEof => {
            Error::Io(e)
        }
        zip::result::ZipError::UnsupportedArchive(what) => Error::Unsupported {
            what: what.to_string(),
        },
        other => malformed(other.to_string()),
    }
}

/// WinZip AES extra field 0x9901: (vendor version, strength, actual method).
fn parse_aes_extra(mut extra: &[u8]) -> Result<(u16, u8, u16)> {
    while extra.len() >= 4 {
        let id = u16::from_le_bytes([extra[0], extra[1]]);
        let len = usize::from(u16::from_le_bytes([extra[2], extra[3]]));
        let body = extra
            .get(4..4 + len)
            .ok_or_else(|| malformed("truncated extra field"))?;
        if id == 0x9901 {
            if let [v0, v1, b'A', b'E', strength, m0, m1] = body {
                let version = u16::from_le_bytes([*v0, *v1]);
                if version != 1 && version != 2 {
                    return Err(malformed("unknown WinZip AES vendor version"));
                }
                return Ok((version, *strength, u16::from_le_bytes([*m0, *m1])));
            }
            return Err(malformed("bad WinZip AES extra field"));
        }
        extra = extra.get(4 + len..).unwrap_or_default();
    }
    Err(malformed("AES entry without its extra field"))
}

enum Decrypt {
    None,
    ZipCrypto(ZipCrypto),
    Aes(Box<AesCtr>),
}

struct DecryptingReader<'a, R: Read> {
    inner: &'a mut R,
    decrypt: &'a mut Decrypt,
}

impl<R: Read> Read for DecryptingReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let got = buf.get_mut(..n).unwrap_or_default();
        match self.decrypt {
            Decrypt::None => {}
            Decrypt::ZipCrypto(zc) => zc.decrypt(got),
            Decrypt::Aes(aes) => aes
                .decrypt(got)
                .map_err(|_| std::io::Error::other("AES failure"))?,
        }
        Ok(n)
    }
}

struct Sink<'a> {
    out: &'a mut dyn Write,
    crc: crc32fast::Hasher,
    written: u64,
    /// The entry may not produce more than its announced size nor pass the ratio.
    entry_limit: u64,
    total_left: u64,
    name: &'a str,
    limits: &'a Limits,
}

impl Sink<'_> {
    fn put(&mut self, data: &[u8]) -> Result<()> {
        let n = data.len() as u64;
        if self.written + n > self.total_left {
            return Err(Error::LimitExceeded {
                what: "ZIP total uncompressed size",
                limit: self.limits.max_zip_total_bytes,
            });
        }
        if self.written + n > self.entry_limit {
            return Err(if self.written + n > RATIO_GRACE {
                Error::CompressionRatio {
                    name: self.name.to_string(),
                    limit: self.limits.max_zip_ratio,
                }
            } else {
                malformed("entry larger than announced")
            });
        }
        self.crc.update(data);
        self.out.write_all(data)?;
        self.written += n;
        Ok(())
    }
}

fn copy_stored(src: &mut dyn Read, sink: &mut Sink<'_>) -> Result<()> {
    let mut buf = Zeroizing::new(vec![0u8; BUF]);
    loop {
        let n = crate::write::read_full(src, &mut buf)?;
        if n == 0 {
            return Ok(());
        }
        sink.put(buf.get(..n).unwrap_or_default())?;
    }
}

fn inflate(src: &mut dyn Read, sink: &mut Sink<'_>) -> Result<()> {
    let mut d = Decompress::new(false);
    let mut inbuf = Zeroizing::new(vec![0u8; BUF]);
    let mut outbuf: Zeroizing<Vec<u8>> = Zeroizing::new(Vec::with_capacity(BUF));
    let (mut pos, mut len, mut eof) = (0usize, 0usize, false);
    loop {
        if pos == len && !eof {
            len = crate::write::read_full(src, &mut inbuf)?;
            pos = 0;
            eof = len < inbuf.len();
        }
        let input = inbuf.get(pos..len).unwrap_or_default();
        outbuf.clear();
        let before_in = d.total_in();
        let flush = if eof {
            FlushDecompress::Finish
        } else {
            FlushDecompress::None
        };
        let status = d
            .decompress_vec(input, &mut outbuf, flush)
            .map_err(|_| malformed("bad deflate data"))?;
        let consumed = usize::try_from(d.total_in() - before_in).unwrap_or(0);
        pos += consumed;
        if !outbuf.is_empty() {
            sink.put(&outbuf)?;
        }
        if status == Status::StreamEnd {
            return Ok(());
        }
        if consumed == 0 && outbuf.is_empty() && eof && pos == len {
            return Err(malformed("truncated deflate data"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Encryption, WriteOptions, ZipWriter, create};

    fn sample_entries() -> Vec<(String, Vec<u8>)> {
        let mut x = 99u32;
        let random: Vec<u8> = (0..300_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect();
        vec![
            ("empty.txt".into(), Vec::new()),
            ("short.txt".into(), b"nineteen bytes long".to_vec()),
            ("twenty.txt".into(), b"twenty bytes long!!!".to_vec()),
            (
                "text.txt".into(),
                b"Lorem ipsum dolor sit amet. ".repeat(20_000),
            ),
            ("random.bin".into(), random),
            ("dir/Grüße ☃.txt".into(), "Grüße".as_bytes().to_vec()),
        ]
    }

    #[test]
    fn round_trip_both_methods() {
        let limits = Limits::default();
        for enc in [Encryption::Aes256, Encryption::ZipCrypto] {
            let pw = Password::from("correct horse");
            let entries = sample_entries();
            let refs: Vec<(&str, &[u8])> = entries
                .iter()
                .map(|(n, d)| (n.as_str(), d.as_slice()))
                .collect();
            let zip = create(&refs, &pw, &WriteOptions::new(enc), &mut rand_core::OsRng).unwrap();
            let out = read_all(&zip, Some(&pw), &limits).unwrap();
            assert_eq!(out.len(), entries.len());
            for ((name, data), got) in entries.iter().zip(&out) {
                assert_eq!(&got.name, name);
                assert_eq!(&got.data[..], &data[..], "{enc:?} {name}");
            }
            let reader = ZipReader::open(Cursor::new(&zip[..]), &limits).unwrap();
            let kinds: Vec<_> = reader.entries().iter().map(|e| e.encryption).collect();
            match enc {
                Encryption::Aes256 => {
                    assert_eq!(
                        kinds[1],
                        EntryEncryption::Aes {
                            ae_version: 2,
                            bits: 256
                        }
                    );
                    assert_eq!(
                        kinds[2],
                        EntryEncryption::Aes {
                            ae_version: 1,
                            bits: 256
                        }
                    );
                }
                _ => assert!(kinds.iter().all(|k| *k == EntryEncryption::ZipCrypto)),
            }
            // text is deflated well, random data stored (size ~ data + overhead)
            let text = &reader.entries()[3];
            assert!(text.compressed_size < text.size / 20);
            let random = &reader.entries()[4];
            assert!(random.compressed_size <= random.size + 40);
        }
    }

    #[test]
    fn wrong_password_is_coarse() {
        let limits = Limits::default();
        for enc in [Encryption::Aes256, Encryption::ZipCrypto] {
            let zip = create(
                &[("a.txt", &b"secret data ".repeat(100)[..])],
                &Password::from("right"),
                &WriteOptions::new(enc),
                &mut rand_core::OsRng,
            )
            .unwrap();
            // ZipCrypto's one check byte passes 1 in 256 wrong passwords: try many.
            for i in 0..600 {
                let wrong = Password::from(format!("wrong{i}").as_str());
                let r = read_all(&zip, Some(&wrong), &limits);
                assert!(matches!(r, Err(Error::WrongPassword)), "{enc:?} {i}: {r:?}");
            }
            assert!(matches!(
                read_all(&zip, None, &limits),
                Err(Error::PasswordRequired)
            ));
        }
    }

    #[test]
    fn tampering_is_detected() {
        let limits = Limits::default();
        let pw = Password::from("pw");
        let data = b"important content ".repeat(50);
        let zip = create(
            &[("a.txt", &data[..])],
            &pw,
            &WriteOptions::default(),
            &mut rand_core::OsRng,
        )
        .unwrap();
        // flip one ciphertext byte (after 30 + 5 name + 11 extra + 18 salt/verifier)
        let mut bad = zip.clone();
        bad[30 + 5 + 11 + 18 + 3] ^= 1;
        assert!(matches!(
            read_all(&bad, Some(&pw), &limits),
            Err(Error::WrongPassword)
        ));
    }

    #[test]
    fn bomb_is_refused_by_ratio_while_inflating() {
        // An entry that lies about its size is stopped as it expands, not by what it announces.
        let mut w = ZipWriter::new(Vec::new(), Password::from("pw"), WriteOptions::default());
        w.add(
            "zeros.bin",
            None,
            std::io::repeat(0).take(8 * 1024 * 1024),
            &mut rand_core::OsRng,
        )
        .unwrap();
        let zip = w.finish().unwrap();
        let mut limits = Limits::default();
        limits.max_zip_ratio = 100;
        let r = read_all(&zip, Some(&Password::from("pw")), &limits);
        assert!(matches!(r, Err(Error::CompressionRatio { .. })), "{r:?}");
        let mut limits = Limits::default();
        limits.max_zip_total_bytes = 4 * 1024 * 1024;
        let r = read_all(&zip, Some(&Password::from("pw")), &limits);
        assert!(matches!(r, Err(Error::LimitExceeded { .. })), "{r:?}");
    }

    #[test]
    fn nesting_is_bounded() {
        let pw = Password::from("pw");
        let opts = WriteOptions::default();
        let mut zip = create(&[("leaf.txt", b"leaf")], &pw, &opts, &mut rand_core::OsRng).unwrap();
        for _ in 0..3 {
            zip = create(
                &[("inner.zip", &zip[..])],
                &pw,
                &opts,
                &mut rand_core::OsRng,
            )
            .unwrap();
        }
        let limits = Limits::default();
        let out = read_all(&zip, Some(&pw), &limits).unwrap();
        assert_eq!(out[0].name, "inner.zip/inner.zip/inner.zip/leaf.txt");
        let mut tight = Limits::default();
        tight.max_zip_nesting = 2;
        assert!(matches!(
            read_all(&zip, Some(&pw), &tight),
            Err(Error::LimitExceeded {
                what: "ZIP nesting depth",
                ..
            })
        ));
    }

    #[test]
    fn entry_count_and_name_limits() {
        let pw = Password::from("pw");
        let zip = create(
            &[("a", b"1"), ("b", b"2"), ("c", b"3")],
            &pw,
            &WriteOptions::default(),
            &mut rand_core::OsRng,
        )
        .unwrap();
        let mut l = Limits::default();
        l.max_zip_entries = 2;
        assert!(matches!(
            read_all(&zip, Some(&pw), &l),
            Err(Error::LimitExceeded { .. })
        ));
        let mut l = Limits::default();
        l.max_zip_name_len = 0;
        assert!(matches!(
            read_all(&zip, Some(&pw), &l),
            Err(Error::LimitExceeded { .. })
        ));
    }

    /// Regression: the local header's name, sizes and method were never compared with the
    /// central directory's, so an archive could show a scanner one file (central directory)
    /// and an extractor that reads local headers another.
    #[test]
    fn local_header_disagreeing_with_the_central_directory_is_refused() {
        let pw = Password::from("pw");
        let zip = create(
            &[("plan.txt", b"secret plan")],
            &pw,
            &WriteOptions::default(),
            &mut rand_core::OsRng,
        )
        .unwrap();
        let limits = Limits::default();
        assert_eq!(
            &read_all(&zip, Some(&pw), &limits).unwrap()[0].data[..],
            b"secret plan"
        );
        // The first local header's name starts at offset 30: "plan.txt" becomes "exe .txt".
        let mut renamed = zip.clone();
        renamed[30..34].copy_from_slice(b"exe ");
        let r = ZipReader::open(Cursor::new(&renamed[..]), &limits);
        assert!(
            matches!(&r, Err(Error::Malformed { detail }) if detail.contains("local headers")),
            "{:?}",
            r.map(|z| z.entries().len())
        );
        // The local method (offset 8) claims stored where the central directory says otherwise.
        let mut method = zip;
        method[8..10].copy_from_slice(&[0, 0]);
        assert!(matches!(
            ZipReader::open(Cursor::new(&method[..]), &limits),
            Err(Error::Malformed { .. })
        ));
    }

    #[test]
    fn garbage_is_an_error() {
        let limits = Limits::default();
        for junk in [&b""[..], b"PK\x05\x06", b"PK\x03\x04garbage", &[0u8; 100]] {
            assert!(read_all(junk, None, &limits).is_err());
        }
    }
}
