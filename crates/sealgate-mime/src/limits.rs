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

    // Certificate lifecycle and external key directories (issue 6: CRLs, LDAP, WKD, HKP).
    /// Largest CRL accepted, in bytes (PEM or DER as read).
    pub max_crl_bytes: usize,
    /// Most revoked-certificate entries accepted in one CRL.
    pub max_crl_entries: usize,
    /// Largest response body accepted from an external key directory (LDAP entry, WKD or HKP
    /// response), in bytes.
    pub max_directory_response_bytes: usize,

    // Key store (issue 6: import).
    /// Largest key file the key store's importer reads (PEM, DER, PKCS#12, OpenPGP), in bytes.
    pub max_key_file_bytes: usize,
    // Policy content inspection (sealgate-policy): what looking inside attachments may cost.
    /// Most bytes extracted (decompressed, decoded) from one attachment, archives included.
    pub max_extract_bytes_per_attachment: usize,
    /// Most bytes extracted from all the attachments and bodies of one message.
    pub max_extract_bytes_per_message: usize,
    /// Deepest nesting of archives (a ZIP in a ZIP is depth 2) that is opened.
    pub max_archive_depth: usize,
    /// Most archive entries looked at in one attachment, the entries of nested archives included.
    pub max_archive_entries: usize,
    /// Highest ratio of uncompressed to compressed size accepted for an archive entry.
    pub max_compression_ratio: u64,
    /// Time budget for inspecting one message, in milliseconds.
    pub max_inspect_millis: u64,
    // ZIP archives (sealgate-zip): what reading an untrusted archive may cost.
    /// Most entries in one ZIP archive.
    pub max_zip_entries: usize,
    /// Most bytes all entries of a ZIP archive (nested archives included) may expand to.
    pub max_zip_total_bytes: u64,
    /// Highest expansion of one ZIP entry (uncompressed / compressed) beyond its first MiB: a
    /// zip bomb passes it quickly.
    pub max_zip_ratio: u64,
    /// Deepest nesting of ZIP archives inside ZIP archives that a scan opens.
    pub max_zip_nesting: usize,
    /// Longest ZIP entry name, in bytes.
    pub max_zip_name_len: usize,

    // Large messages in bounded memory (issue 11).
    /// Most plaintext bytes (as decrypted, after decompression) a streaming decryption takes
    /// into its spill file on disk. `max_message_bytes` bounds what is held in
    /// memory; the streaming paths hold only buffers and need a disk bound instead, which also
    /// stops a compression bomb as soon as it passes it.
    pub max_spill_bytes: u64,
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
            // Certificate lifecycle and external key directories (issue 6).
            max_crl_bytes: 64 * 1024 * 1024,
            max_crl_entries: 1_000_000,
            max_directory_response_bytes: 8 * 1024 * 1024,
            // Key store (issue 6: import).
            max_key_file_bytes: 64 * 1024 * 1024,
            // policy content inspection
            max_extract_bytes_per_attachment: 32 * 1024 * 1024,
            max_extract_bytes_per_message: 128 * 1024 * 1024,
            max_archive_depth: 3,
            max_archive_entries: 10_000,
            max_compression_ratio: 200,
            max_inspect_millis: 10_000,
            // ZIP archives (sealgate-zip)
            max_zip_entries: 10_000,
            max_zip_total_bytes: 2 * 1024 * 1024 * 1024,
            max_zip_ratio: 200,
            max_zip_nesting: 3,
            max_zip_name_len: 1024,
            // streaming decryption (issue 11)
            max_spill_bytes: 4 * 1024 * 1024 * 1024,
        }
    }
}
