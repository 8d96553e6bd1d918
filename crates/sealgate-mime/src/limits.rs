//! Resource limits shared by every Sealgate parser.

/// Ceilings on what a parser of untrusted input may consume.
///
/// One value is built by the caller (the facade builds it from configuration) and passed to every
/// entry point; hitting a limit is a typed error, never a panic or unbounded allocation.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Largest whole message accepted, in bytes.
    pub max_message_bytes: usize,
    /// Most header fields in one header block.
    pub max_header_count: usize,
    /// Longest header line (after unfolding is not applied), in bytes.
    pub max_header_line: usize,
    /// Deepest nesting of MIME multiparts and embedded messages.
    pub max_mime_depth: usize,
    /// Most MIME parts in one message (all multiparts and embedded messages together).
    pub max_parts: usize,
    /// Deepest nesting of ASN.1 constructed values (BER/DER).
    pub max_asn1_depth: usize,
    /// Most ASN.1 elements one BER structure may hold when it has to be rewritten as DER
    /// (each costs tens of bytes of bookkeeping).
    pub max_asn1_elements: usize,
    /// Largest decoded CMS structure (DER bytes after BER normalisation).
    pub max_cms_bytes: usize,
    /// Most recipients accepted in an EnvelopedData / produced by one encryption.
    pub max_recipients: usize,
    /// Most certificates accepted inside one SignedData or PKCS#12 file.
    pub max_certificates: usize,
    /// Most signers accepted in one SignedData.
    pub max_signers: usize,
    /// Highest PBKDF2 / PKCS#12 KDF iteration count accepted from a key file.
    pub max_kdf_iterations: u32,
    /// Smallest RSA modulus accepted, in bits.
    pub min_rsa_bits: usize,
    /// Largest RSA modulus accepted, in bits.
    pub max_rsa_bits: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_message_bytes: 256 * 1024 * 1024,
            max_header_count: 1000,
            max_header_line: 64 * 1024,
            max_mime_depth: 32,
            max_parts: 10_000,
            max_asn1_depth: 64,
            max_asn1_elements: 1 << 20,
            max_cms_bytes: 256 * 1024 * 1024,
            max_recipients: 1000,
            max_certificates: 200,
            max_signers: 32,
            max_kdf_iterations: 10_000_000,
            min_rsa_bits: 2048,
            max_rsa_bits: 8192,
        }
    }
}
