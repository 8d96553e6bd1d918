//! PEM (RFC 7468) blocks: lenient about whitespace and line endings, strict about structure.

use base64::Engine as _;
use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// One PEM block: its label (`CERTIFICATE`, `PRIVATE KEY`, ...) and decoded contents.
///
/// The contents are zeroized on drop, since a block may hold a private key.
pub struct PemBlock {
    /// The label between `-----BEGIN ` and `-----`.
    pub label: String,
    /// The decoded DER bytes.
    pub der: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for PemBlock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PemBlock")
            .field("label", &self.label)
            .field("der", &format_args!("[{} bytes]", self.der.len()))
            .finish()
    }
}

/// True if `data` looks like PEM text (contains a `-----BEGIN ` line).
pub fn is_pem(data: &[u8]) -> bool {
    find(data, b"-----BEGIN ").is_some()
}

/// Every PEM block in `data`, in order. Text outside blocks is ignored (as OpenSSL does).
/// Blocks with RFC 1421 encryption headers (`Proc-Type: 4,ENCRYPTED`) are refused with a hint.
pub fn parse_all(data: &[u8], max_blocks: usize) -> Result<Vec<PemBlock>> {
    parse_blocks(data, max_blocks, true)
}

/// [`parse_all`] that leaves out blocks with RFC 1421 encryption headers instead of refusing
/// the whole input: for readers of certificates, which a file holding a certificate and its
/// legacy-encrypted key (`openssl req -x509 -keyout` with a DES/AES passphrase) must not stop.
/// Skipped blocks still count against `max_blocks`.
pub(crate) fn parse_unencrypted(data: &[u8], max_blocks: usize) -> Result<Vec<PemBlock>> {
    parse_blocks(data, max_blocks, false)
}

fn parse_blocks(data: &[u8], max_blocks: usize, refuse_encrypted: bool) -> Result<Vec<PemBlock>> {
    let mut out = Vec::new();
    let mut seen = 0usize;
    let mut rest = data;
    while let Some(start) = find(rest, b"-----BEGIN ") {
        if seen >= max_blocks {
            return Err(Error::LimitExceeded {
                what: "PEM blocks",
                limit: max_blocks as u64,
            });
        }
        let after = &rest[start + 11..];
        let label_end = find(after, b"-----")
            .ok_or_else(|| Error::malformed("PEM", "unterminated BEGIN line"))?;
        let label = std::str::from_utf8(&after[..label_end])
            .map_err(|_| Error::malformed("PEM", "label is not text"))?
            .to_string();
        if label.contains(['\r', '\n']) {
            return Err(Error::malformed("PEM", "unterminated BEGIN line"));
        }
        let body_start = &after[label_end + 5..];
        let end_marker = format!("-----END {label}-----");
        let body_end = find(body_start, end_marker.as_bytes())
            .ok_or_else(|| Error::malformed("PEM", format!("no END line for {label}")))?;
        let body = &body_start[..body_end];
        seen += 1;
        if find(body, b"Proc-Type:").is_some() {
            if !refuse_encrypted {
                rest = &body_start[body_end + end_marker.len()..];
                continue;
            }
            return Err(Error::InvalidKey {
                reason: "legacy PEM encryption (Proc-Type header) is not supported; \
                         convert the key with `openssl pkcs8 -topk8`"
                    .into(),
            });
        }
        let mut b64 = Zeroizing::new(Vec::with_capacity(body.len()));
        b64.extend(body.iter().copied().filter(|c| !c.is_ascii_whitespace()));
        let der = base64::engine::general_purpose::STANDARD
            .decode(&*b64)
            .map_err(|e| Error::malformed("PEM", format!("{label}: {e}")))?;
        out.push(PemBlock {
            label,
            der: Zeroizing::new(der),
        });
        rest = &body_start[body_end + end_marker.len()..];
    }
    Ok(out)
}

/// Encode DER bytes as one PEM block with 64-column lines and LF line ends.
pub fn encode(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut s = String::with_capacity(b64.len() + b64.len() / 64 + 2 * label.len() + 40);
    s.push_str("-----BEGIN ");
    s.push_str(label);
    s.push_str("-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        // base64 output is ASCII
        s.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        s.push('\n');
    }
    s.push_str("-----END ");
    s.push_str(label);
    s.push_str("-----\n");
    s
}

/// The first occurrence of `needle` in `hay`. memchr's searcher, not a window scan: key files
/// may be 64 MiB, and they are scanned several times (100,000 concatenated certificates took
/// half a minute in a test build with the window scan).
pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return None;
    }
    memchr::memmem::find(hay, needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_two_blocks_and_ignores_text() {
        let text = b"junk\n-----BEGIN A-----\nAQID\n-----END A-----\nmore\r\n-----BEGIN B C-----\r\nBA==\r\n-----END B C-----\r\n";
        let blocks = parse_all(text, 10).unwrap();
        assert_eq!(blocks.len(), 2);
        assert_eq!(blocks[0].label, "A");
        assert_eq!(&blocks[0].der[..], &[1, 2, 3]);
        assert_eq!(blocks[1].label, "B C");
        assert_eq!(&blocks[1].der[..], &[4]);
    }

    #[test]
    fn rejects_missing_end_and_bad_base64() {
        assert!(parse_all(b"-----BEGIN A-----\nAQID\n", 10).is_err());
        assert!(parse_all(b"-----BEGIN A-----\n!!!!\n-----END A-----\n", 10).is_err());
        assert!(parse_all(b"-----BEGIN A-----\nAQID\n-----END A-----\n", 0).is_err());
    }

    /// A certificate file with a legacy-encrypted key after the certificate (the
    /// cryptography-vectors file `x509/cryptography.io.with_headers.pem`): certificate readers
    /// skip the encrypted block, key readers still refuse it with the hint.
    #[test]
    fn encrypted_blocks_are_skipped_only_for_certificate_readers() {
        let text = b"-----BEGIN CERTIFICATE-----\nAQID\n-----END CERTIFICATE-----\n\
            -----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-256-CBC,00\n\n\
            AQID\n-----END RSA PRIVATE KEY-----\n";
        let blocks = parse_unencrypted(text, 10).unwrap();
        assert_eq!(blocks.len(), 1);
        assert_eq!(blocks[0].label, "CERTIFICATE");
        assert!(matches!(parse_all(text, 10), Err(Error::InvalidKey { .. })));
        // Skipped blocks count against the limit.
        assert!(matches!(
            parse_unencrypted(text, 1),
            Err(Error::LimitExceeded { .. })
        ));
    }

    #[test]
    fn round_trips() {
        let der: Vec<u8> = (0..200u8).collect();
        let pem = encode("CERTIFICATE", &der);
        let blocks = parse_all(pem.as_bytes(), 1).unwrap();
        assert_eq!(&blocks[0].der[..], &der[..]);
    }
}
