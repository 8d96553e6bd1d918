//! Writing encrypted archives: one pass, any `io::Write`, no seeking.
//!
//! Every entry is written as local header, data and data descriptor (APPNOTE §4.3.9, general
//! purpose bit 3), so the sizes and the CRC need not be known before the data is read and the
//! output need not be seekable (a pipe, a base64 encoder, a socket). Memory is one input
//! buffer, one output buffer and the deflate state per archive, whatever the entry sizes; the
//! central directory holds about a hundred bytes per entry.

use std::collections::HashSet;
use std::io::{Read, Write};
use std::time::{SystemTime, UNIX_EPOCH};

use flate2::{Compress, Compression, FlushCompress, Status};
use rand_core::CryptoRngCore;

use crate::crypto::{AES_SALT_LEN, AesCtr, AesKeys, ZipCrypto};
use crate::names::sanitize_name;
use crate::sniff::is_compressed;
use crate::{Error, Password, Result, malformed};

/// How the entries are encrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Encryption {
    /// WinZip AES-256 (AE-1, or AE-2 for entries under 20 bytes, as WinZip does): opened by
    /// 7-Zip, WinZip, PeaZip, Keka and The Unarchiver; not by Windows Explorer, `unzip` 6.00 or
    /// Python's `zipfile`.
    #[default]
    Aes256,
    /// Traditional PKWARE encryption ("ZipCrypto"). **Weak**: 12 bytes of known plaintext
    /// recover the keys (Biham–Kocher), and every archive format header is known plaintext.
    /// Offered only because Windows Explorer, macOS Archive Utility and `unzip` open it with
    /// nothing installed; use AES-256 where the recipient can.
    ZipCrypto,
}

/// Options of a [`ZipWriter`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct WriteOptions {
    /// The encryption of every entry.
    pub encryption: Encryption,
    /// Deflate level 1-9 for compressible entries (data that sniffs as compressed is stored).
    pub level: u32,
    /// Modification time written for every entry.
    pub modified: SystemTime,
}

impl Default for WriteOptions {
    fn default() -> Self {
        Self {
            encryption: Encryption::Aes256,
            level: DEFAULT_LEVEL,
            modified: SystemTime::now(),
        }
    }
}

impl WriteOptions {
    /// Default options with this encryption.
    pub fn new(encryption: Encryption) -> Self {
        Self {
            encryption,
            ..Self::default()
        }
    }
}

/// Deflate level: zlib-rs level 6 gives archives within a few percent of 7-Zip's default
/// and compresses several times faster (see benches/README.md).
pub const DEFAULT_LEVEL: u32 = 6;

const BUF: usize = 128 * 1024;
/// An entry announced at or above this size gets Zip64 fields from the start (deflate can
/// grow incompressible data slightly, and the data descriptor's field width must be chosen
/// in the local header).
const ZIP64_THRESHOLD: u64 = 0xF000_0000;
const METHOD_STORED: u16 = 0;
const METHOD_DEFLATE: u16 = 8;
const METHOD_AES: u16 = 99;
const FLAG_ENCRYPTED: u16 = 1;
const FLAG_DATA_DESCRIPTOR: u16 = 1 << 3;
const FLAG_UTF8: u16 = 1 << 11;
/// Unix, APPNOTE 6.3: so that readers take the permission bits from the external attributes.
const VERSION_MADE_BY: u16 = (3 << 8) | 63;

struct CentralEntry {
    name: String,
    version_needed: u16,
    flags: u16,
    method: u16,
    actual_method: u16,
    ae_version: Option<u16>,
    crc: u32,
    compressed: u64,
    uncompressed: u64,
    offset: u64,
}

/// A streaming writer of encrypted ZIP archives.
///
/// ```
/// use sealgate_zip::{Encryption, Password, WriteOptions, ZipWriter};
/// let mut zip = ZipWriter::new(Vec::new(), Password::from("pw"), WriteOptions::new(Encryption::Aes256));
/// zip.add("report.txt", Some(5), &b"hello"[..], &mut rand_core::OsRng)?;
/// let bytes = zip.finish()?;
/// assert_eq!(&bytes[..4], b"PK\x03\x04");
/// # Ok::<(), sealgate_zip::Error>(())
/// ```
pub struct ZipWriter<W: Write> {
    out: W,
    offset: u64,
    entries: Vec<CentralEntry>,
    names: HashSet<String>,
    password: Password,
    options: WriteOptions,
    dos_time: u16,
    dos_date: u16,
    inbuf: Vec<u8>,
    outbuf: Vec<u8>,
}

impl<W: Write> std::fmt::Debug for ZipWriter<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZipWriter")
            .field("entries", &self.entries.len())
            .field("offset", &self.offset)
            .field("encryption", &self.options.encryption)
            .finish_non_exhaustive()
    }
}

impl<W: Write> ZipWriter<W> {
    /// Start an archive on `out`; every entry is encrypted with `password`.
    pub fn new(out: W, password: Password, options: WriteOptions) -> Self {
        let (dos_date, dos_time) = dos_date_time(options.modified);
        Self {
            out,
            offset: 0,
            entries: Vec::new(),
            names: HashSet::new(),
            password,
            options,
            dos_time,
            dos_date,
            inbuf: Vec::new(),
            outbuf: Vec::new(),
        }
    }

    /// Add an entry read from `data` to its end. `name` is sanitised (no `..`, no absolute
    /// path, no control characters) and made unique (`a (2).txt`); the name used is returned.
    /// `size` is the announced length if known: a reader that gives another length is an
    /// error, and an unknown size makes the entry Zip64 from the start.
    pub fn add(
        &mut self,
        name: &str,
        size: Option<u64>,
        mut data: impl Read,
        rng: &mut impl CryptoRngCore,
    ) -> Result<String> {
        let name = self.unique_name(&sanitize_name(name));
        if name.len() > usize::from(u16::MAX) {
            return Err(Error::LimitExceeded {
                what: "ZIP entry name length",
                limit: u64::from(u16::MAX),
            });
        }
        let mut inbuf = std::mem::take(&mut self.inbuf);
        let mut outbuf = std::mem::take(&mut self.outbuf);
        inbuf.resize(BUF, 0);
        outbuf.clear();
        outbuf.reserve(BUF + 64);
        let result = self.add_inner(&name, size, &mut data, rng, &mut inbuf, &mut outbuf);
        self.inbuf = inbuf;
        self.outbuf = outbuf;
        result?;
        self.names.insert(name.clone());
        Ok(name)
    }

    /// Add an entry from memory.
    pub fn add_bytes(
        &mut self,
        name: &str,
        data: &[u8],
        rng: &mut impl CryptoRngCore,
    ) -> Result<String> {
        self.add(name, Some(data.len() as u64), data, rng)
    }

    fn unique_name(&self, name: &str) -> String {
        if !self.names.contains(name) {
            return name.to_string();
        }
        let (stem, ext) = match name.rfind('.') {
            Some(dot) if dot > 0 && !name[dot..].contains('/') => name.split_at(dot),
            _ => (name, ""),
        };
        (2..)
            .map(|i| format!("{stem} ({i}){ext}"))
            .find(|n| !self.names.contains(n))
            .unwrap_or_else(|| name.to_string())
    }

    fn add_inner(
        &mut self,
        name: &str,
        size: Option<u64>,
        data: &mut dyn Read,
        rng: &mut impl CryptoRngCore,
        inbuf: &mut [u8],
        outbuf: &mut Vec<u8>,
    ) -> Result<()> {
        let first = read_full(data, inbuf)?;
        let sample = inbuf.get(..first).unwrap_or_default();
        let actual_method = if sample.is_empty() || is_compressed(sample) {
            METHOD_STORED
        } else {
            METHOD_DEFLATE
        };
        let zip64 = size.is_none_or(|s| s >= ZIP64_THRESHOLD);
        let encryption = self.options.encryption;
        let ae_version = match encryption {
            // WinZip's practice: AE-2 (no CRC, which would leak something about a short
            // plaintext) below 20 bytes, AE-1 from 20 bytes on.
            Encryption::Aes256 => Some(if size.is_some_and(|s| s < 20) { 2 } else { 1 }),
            Encryption::ZipCrypto => None,
        };
        let method = if ae_version.is_some() {
            METHOD_AES
        } else {
            actual_method
        };
        let mut version_needed: u16 = if actual_method == METHOD_DEFLATE {
            20
        } else {
            10
        };
        if zip64 {
            version_needed = version_needed.max(45);
        }
        if ae_version.is_some() {
            version_needed = version_needed.max(51);
        } else {
            version_needed = version_needed.max(20);
        }
        let flags = FLAG_ENCRYPTED | FLAG_DATA_DESCRIPTOR | FLAG_UTF8;

        // Local file header (APPNOTE §4.3.7); CRC and sizes follow in the data descriptor.
        let mut extra = Vec::new();
        if zip64 {
            extra.extend_from_slice(&1u16.to_le_bytes());
            extra.extend_from_slice(&16u16.to_le_bytes());
            extra.extend_from_slice(&[0u8; 16]);
        }
        if let Some(v) = ae_version {
            push_aes_extra(&mut extra, v, actual_method);
        }
        let mut header = Vec::with_capacity(30 + name.len() + extra.len());
        header.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
        header.extend_from_slice(&version_needed.to_le_bytes());
        header.extend_from_slice(&flags.to_le_bytes());
        header.extend_from_slice(&method.to_le_bytes());
        header.extend_from_slice(&self.dos_time.to_le_bytes());
        header.extend_from_slice(&self.dos_date.to_le_bytes());
        header.extend_from_slice(&0u32.to_le_bytes());
        let size_field: u32 = if zip64 { u32::MAX } else { 0 };
        header.extend_from_slice(&size_field.to_le_bytes());
        header.extend_from_slice(&size_field.to_le_bytes());
        header.extend_from_slice(&(name.len() as u16).to_le_bytes());
        header.extend_from_slice(&(extra.len() as u16).to_le_bytes());
        header.extend_from_slice(name.as_bytes());
        header.extend_from_slice(&extra);
        let offset = self.offset;
        self.emit_plain(&header)?;

        let data_start = self.offset;
        let mut cipher = match encryption {
            Encryption::Aes256 => {
                let mut salt = [0u8; AES_SALT_LEN];
                rng.fill_bytes(&mut salt);
                let keys = AesKeys::derive(self.password.bytes(), &salt);
                self.emit_plain(&salt)?;
                self.emit_plain(&keys.verifier())?;
                Cipher::Aes(Box::new(keys.cipher()?))
            }
            Encryption::ZipCrypto => {
                // APPNOTE §6.1.6: 12 header bytes, the last one checked by readers; with a
                // data descriptor it is the high byte of the DOS time (the CRC is not known yet).
                let mut zc = ZipCrypto::new(self.password.bytes());
                let mut head = [0u8; 12];
                rng.fill_bytes(&mut head[..11]);
                head[11] = (self.dos_time >> 8) as u8;
                zc.encrypt(&mut head);
                self.emit_plain(&head)?;
                Cipher::ZipCrypto(zc)
            }
        };

        let mut crc = crc32fast::Hasher::new();
        let mut total_in: u64 = 0;
        let mut compressor = (actual_method == METHOD_DEFLATE)
            .then(|| Compress::new(Compression::new(self.options.level.clamp(1, 9)), false));
        let mut n = first;
        loop {
            let chunk = inbuf.get(..n).unwrap_or_default();
            crc.update(chunk);
            total_in += n as u64;
            match compressor.as_mut() {
                Some(c) => self.deflate(c, chunk, outbuf, &mut cipher, FlushCompress::None)?,
                None => {
                    outbuf.clear();
                    outbuf.extend_from_slice(chunk);
                    self.emit_encrypted(outbuf, &mut cipher)?;
                }
            }
            if n < inbuf.len() {
                break;
            }
            n = read_full(data, inbuf)?;
            if n == 0 {
                break;
            }
        }
        if let Some(c) = compressor.as_mut() {
            self.deflate(c, &[], outbuf, &mut cipher, FlushCompress::Finish)?;
        }
        if let Cipher::Aes(aes) = cipher {
            let mac = aes.finish();
            self.emit_plain(&mac)?;
        }
        let compressed = self.offset - data_start;
        if let Some(announced) = size.filter(|&s| s != total_in) {
            return Err(Error::SizeMismatch {
                name: name.to_string(),
                announced,
                actual: total_in,
            });
        }
        if !zip64 && (compressed > u64::from(u32::MAX) || total_in > u64::from(u32::MAX)) {
            return Err(Error::LimitExceeded {
                what: "entry size without Zip64 (announce the size)",
                limit: u64::from(u32::MAX),
            });
        }
        // AE-2 stores no CRC (WinZip AES §"CRC value").
        let crc = if ae_version == Some(2) {
            0
        } else {
            crc.finalize()
        };
        // Data descriptor (APPNOTE §4.3.9), 8-byte sizes with Zip64.
        let mut dd = Vec::with_capacity(24);
        dd.extend_from_slice(&0x0807_4b50u32.to_le_bytes());
        dd.extend_from_slice(&crc.to_le_bytes());
        if zip64 {
            dd.extend_from_slice(&compressed.to_le_bytes());
            dd.extend_from_slice(&total_in.to_le_bytes());
        } else {
            dd.extend_from_slice(&(compressed as u32).to_le_bytes());
            dd.extend_from_slice(&(total_in as u32).to_le_bytes());
        }
        self.emit_plain(&dd)?;
        self.entries.push(CentralEntry {
            name: name.to_string(),
            version_needed,
            flags,
            method,
            actual_method,
            ae_version,
            crc,
            compressed,
            uncompressed: total_in,
            offset,
        });
        Ok(())
    }

    fn deflate(
        &mut self,
        c: &mut Compress,
        mut input: &[u8],
        outbuf: &mut Vec<u8>,
        cipher: &mut Cipher,
        flush: FlushCompress,
    ) -> Result<()> {
        let finish = matches!(flush, FlushCompress::Finish);
        loop {
            outbuf.clear();
            let before = c.total_in();
            let status = c
                .compress_vec(input, outbuf, flush)
                .map_err(|_| malformed("deflate failed"))?;
            let consumed = usize::try_from(c.total_in() - before).unwrap_or(input.len());
            input = input.get(consumed..).unwrap_or_default();
            let full = outbuf.len() == outbuf.capacity();
            if !outbuf.is_empty() {
                self.emit_encrypted(outbuf, cipher)?;
            }
            if finish {
                if status == Status::StreamEnd {
                    return Ok(());
                }
            } else if input.is_empty() && !full {
                return Ok(());
            }
        }
    }

    fn emit_encrypted(&mut self, data: &mut [u8], cipher: &mut Cipher) -> Result<()> {
        match cipher {
            Cipher::Aes(aes) => aes.encrypt(data)?,
            Cipher::ZipCrypto(zc) => zc.encrypt(data),
        }
        self.emit_plain(data)
    }

    fn emit_plain(&mut self, data: &[u8]) -> Result<()> {
        self.out.write_all(data)?;
        self.offset += data.len() as u64;
        Ok(())
    }

    /// Write the central directory and the end records (Zip64 ones when offsets or the entry
    /// count need them) and return the output.
    pub fn finish(mut self) -> Result<W> {
        let cd_start = self.offset;
        let entries = std::mem::take(&mut self.entries);
        for e in &entries {
            let mut zip64 = Vec::new();
            let u32_max = u64::from(u32::MAX);
            let big_u = e.uncompressed >= u32_max;
            let big_c = e.compressed >= u32_max;
            let big_o = e.offset >= u32_max;
            if big_u {
                zip64.extend_from_slice(&e.uncompressed.to_le_bytes());
            }
            if big_c {
                zip64.extend_from_slice(&e.compressed.to_le_bytes());
            }
            if big_o {
                zip64.extend_from_slice(&e.offset.to_le_bytes());
            }
            let mut extra = Vec::new();
            if !zip64.is_empty() {
                extra.extend_from_slice(&1u16.to_le_bytes());
                extra.extend_from_slice(&(zip64.len() as u16).to_le_bytes());
                extra.extend_from_slice(&zip64);
            }
            if let Some(v) = e.ae_version {
                push_aes_extra(&mut extra, v, e.actual_method);
            }
            let clamp = |v: u64, big: bool| if big { u32::MAX } else { v as u32 };
            let mut h = Vec::with_capacity(46 + e.name.len() + extra.len());
            h.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
            h.extend_from_slice(&VERSION_MADE_BY.to_le_bytes());
            let needed = if zip64.is_empty() {
                e.version_needed
            } else {
                e.version_needed.max(45)
            };
            h.extend_from_slice(&needed.to_le_bytes());
            h.extend_from_slice(&e.flags.to_le_bytes());
            h.extend_from_slice(&e.method.to_le_bytes());
            h.extend_from_slice(&self.dos_time.to_le_bytes());
            h.extend_from_slice(&self.dos_date.to_le_bytes());
            h.extend_from_slice(&e.crc.to_le_bytes());
            h.extend_from_slice(&clamp(e.compressed, big_c).to_le_bytes());
            h.extend_from_slice(&clamp(e.uncompressed, big_u).to_le_bytes());
            h.extend_from_slice(&(e.name.len() as u16).to_le_bytes());
            h.extend_from_slice(&(extra.len() as u16).to_le_bytes());
            h.extend_from_slice(&0u16.to_le_bytes()); // comment
            h.extend_from_slice(&0u16.to_le_bytes()); // disk
            h.extend_from_slice(&0u16.to_le_bytes()); // internal attributes
            h.extend_from_slice(&(0o100_644u32 << 16).to_le_bytes());
            h.extend_from_slice(&clamp(e.offset, big_o).to_le_bytes());
            h.extend_from_slice(e.name.as_bytes());
            h.extend_from_slice(&extra);
            self.emit_plain(&h)?;
        }
        let cd_size = self.offset - cd_start;
        let count = entries.len() as u64;
        let need_zip64 =
            count >= 0xFFFF || cd_start >= u64::from(u32::MAX) || cd_size >= u64::from(u32::MAX);
        if need_zip64 {
            // Zip64 end of central directory record and locator (APPNOTE §4.3.14, §4.3.15).
            let eocd64 = self.offset;
            let mut r = Vec::with_capacity(76);
            r.extend_from_slice(&0x0606_4b50u32.to_le_bytes());
            r.extend_from_slice(&44u64.to_le_bytes());
            r.extend_from_slice(&VERSION_MADE_BY.to_le_bytes());
            r.extend_from_slice(&45u16.to_le_bytes());
            r.extend_from_slice(&0u32.to_le_bytes());
            r.extend_from_slice(&0u32.to_le_bytes());
            r.extend_from_slice(&count.to_le_bytes());
            r.extend_from_slice(&count.to_le_bytes());
            r.extend_from_slice(&cd_size.to_le_bytes());
            r.extend_from_slice(&cd_start.to_le_bytes());
            r.extend_from_slice(&0x0706_4b50u32.to_le_bytes());
            r.extend_from_slice(&0u32.to_le_bytes());
            r.extend_from_slice(&eocd64.to_le_bytes());
            r.extend_from_slice(&1u32.to_le_bytes());
            self.emit_plain(&r)?;
        }
        let c16 = if need_zip64 { 0xFFFF } else { count as u16 };
        let c32 = |v: u64| if need_zip64 { u32::MAX } else { v as u32 };
        let mut r = Vec::with_capacity(22);
        r.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
        r.extend_from_slice(&0u16.to_le_bytes());
        r.extend_from_slice(&0u16.to_le_bytes());
        r.extend_from_slice(&c16.to_le_bytes());
        r.extend_from_slice(&c16.to_le_bytes());
        r.extend_from_slice(&c32(cd_size).to_le_bytes());
        r.extend_from_slice(&c32(cd_start).to_le_bytes());
        r.extend_from_slice(&0u16.to_le_bytes());
        self.emit_plain(&r)?;
        self.out.flush()?;
        Ok(self.out)
    }
}

enum Cipher {
    Aes(Box<AesCtr>),
    ZipCrypto(ZipCrypto),
}

/// WinZip AES extra field 0x9901: vendor version, "AE", strength 3 (AES-256), real method.
fn push_aes_extra(extra: &mut Vec<u8>, ae_version: u16, actual_method: u16) {
    extra.extend_from_slice(&0x9901u16.to_le_bytes());
    extra.extend_from_slice(&7u16.to_le_bytes());
    extra.extend_from_slice(&ae_version.to_le_bytes());
    extra.extend_from_slice(b"AE");
    extra.push(3);
    extra.extend_from_slice(&actual_method.to_le_bytes());
}

/// Fill `buf` as far as the reader goes; fewer bytes only at its end.
pub(crate) fn read_full(r: &mut dyn Read, buf: &mut [u8]) -> Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        let Some(rest) = buf.get_mut(n..) else { break };
        match r.read(rest) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(n)
}

/// MS-DOS date and time fields (UTC; the format has no zone), clamped to 1980-2107.
fn dos_date_time(t: SystemTime) -> (u16, u16) {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
        .max(315_532_800); // 1980-01-01
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = sealgate_mime::civil_from_days(days);
    let y = y.clamp(1980, 2107);
    let date = (((y - 1980) as u16) << 9) | ((m as u16) << 5) | d as u16;
    let time =
        (((rem / 3600) as u16) << 11) | ((((rem / 60) % 60) as u16) << 5) | ((rem % 60) / 2) as u16;
    (date, time)
}

/// Make an encrypted archive of in-memory entries (name, data) in one call.
pub fn create(
    entries: &[(&str, &[u8])],
    password: &Password,
    options: &WriteOptions,
    rng: &mut impl CryptoRngCore,
) -> Result<Vec<u8>> {
    let mut w = ZipWriter::new(Vec::new(), password.clone(), options.clone());
    for (name, data) in entries {
        w.add_bytes(name, data, rng)?;
    }
    w.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dos_dates() {
        assert_eq!(sealgate_mime::civil_from_days(0), (1970, 1, 1));
        assert_eq!(sealgate_mime::civil_from_days(19_723), (2024, 1, 1));
        let t = UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000); // 2023-11-14 22:13:20
        let (date, time) = dos_date_time(t);
        assert_eq!(date, ((2023 - 1980) << 9) | (11 << 5) | 14);
        assert_eq!(time, (22 << 11) | (13 << 5) | 10);
    }

    #[test]
    fn unique_names() {
        let mut w = ZipWriter::new(Vec::new(), Password::from("x"), WriteOptions::default());
        let mut rng = rand_core::OsRng;
        assert_eq!(w.add_bytes("a.txt", b"1", &mut rng).unwrap(), "a.txt");
        assert_eq!(w.add_bytes("a.txt", b"2", &mut rng).unwrap(), "a (2).txt");
        assert_eq!(
            w.add_bytes("../a.txt", b"3", &mut rng).unwrap(),
            "a (3).txt"
        );
        assert_eq!(w.add_bytes("noext", b"3", &mut rng).unwrap(), "noext");
        assert_eq!(w.add_bytes("noext", b"3", &mut rng).unwrap(), "noext (2)");
    }

    #[test]
    fn size_mismatch_is_an_error() {
        let mut w = ZipWriter::new(Vec::new(), Password::from("x"), WriteOptions::default());
        let r = w.add("a", Some(10), &b"short"[..], &mut rand_core::OsRng);
        assert!(matches!(
            r,
            Err(Error::SizeMismatch {
                announced: 10,
                actual: 5,
                ..
            })
        ));
    }
}
