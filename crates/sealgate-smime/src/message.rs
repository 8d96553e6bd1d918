//! Whole RFC 5322 messages: sign, verify, encrypt and decrypt as S/MIME 4.0 (RFC 8551 §3).
//!
//! These functions join the MIME toolkit (`sealgate-mime`) and the CMS layer of this crate.
//! The outer header fields (From, To, Cc, Subject, Date, Message-ID, ...) stay outside the
//! protection; the MIME entity (the Content-* fields and the body) is what gets signed or
//! encrypted, canonicalised to CRLF first (RFC 8551 §3.1.1).
//!
//! Streaming: [`MessageEncryptor`] and [`MessageSigner`] take the message through
//! [`std::io::Write`] and write the S/MIME message to a wrapped writer as it is made, in
//! bounded memory whatever the size; [`encrypt_message`] and [`sign_message`] are the one-shot
//! forms (they also re-encode what the streaming forms refuse or pass through: binary and
//! 8-bit parts). The one-shot functions copy a large message once at most: into their output.

use std::borrow::Cow;
use std::io::{self, Write};
use std::time::SystemTime;

use rand_core::CryptoRngCore;
use sealgate_mime::{self as mime, Base64Writer, CanonicalWriter, Entity, HeaderField, Limits};
use zeroize::Zeroizing;

use crate::cert::TrustStore;
use crate::enveloped::{self, ContentCipher, EnvelopedWriter, Recipient};
use crate::error::{Error, Result};
use crate::keyfile::Identity;
use crate::keys::{Certificate, PrivateKey};
use crate::signed::{self, SignOptions, Verification, VerifyOptions};

const SIGNATURE_TYPE: &str = "application/pkcs7-signature";

/// How [`sign_message`] signs.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct SignMessageOptions {
    /// CMS options (digest, chain, capabilities, ...).
    pub cms: SignOptions,
    /// `application/pkcs7-mime; smime-type=signed-data` (opaque) instead of the default
    /// `multipart/signed` (detached), which clients without S/MIME can still read.
    pub opaque: bool,
    /// Header protection (RFC 9788, `hp="clear"`): the message's header fields are signed too,
    /// inside the signed entity. The outer header is unchanged.
    pub protect_headers: bool,
}

/// How [`encrypt_message`] encrypts.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct EncryptMessageOptions {
    /// Content cipher (AES-256-CBC by default; AES-256-GCM gives AuthEnvelopedData).
    pub cipher: ContentCipher,
    /// Replace the outer Subject (which travels in clear) with this text, e.g.
    /// "Encrypted message". `None` keeps the original Subject. Ignored with `protect_headers`,
    /// whose outer Subject is RFC 9788's `[...]`.
    pub outer_subject: Option<String>,
    /// Header protection (RFC 9788, `hp="cipher"`): the header fields travel inside the
    /// encryption (inside the signature too, when signing), the outer Subject becomes `[...]`,
    /// `Keywords` and `Comments` are left out of the outer header (`hcp_baseline`).
    pub protect_headers: bool,
    /// With `protect_headers`: a Legacy Display Element, the real Subject at the top of a
    /// single-part text body, for clients that show only the inner body.
    pub legacy_display: bool,
}

/// The result of [`verify_message`]. `Debug` shows the report and the message size, never
/// the message (it may have come out of an encryption).
#[non_exhaustive]
pub struct VerifiedMessage {
    /// Signer reports and checks.
    pub verification: Verification,
    /// The message without its signature: outer header fields and the signed entity.
    pub message: Vec<u8>,
    /// True for `application/pkcs7-mime; smime-type=signed-data`, false for `multipart/signed`.
    pub opaque: bool,
    /// Header protection found in the signed entity (RFC 9788 or `protected-headers="v1"`):
    /// its fields are the ones in `message`.
    pub header_protection: Option<mime::HeaderProtection>,
}

/// The result of [`decrypt_message`]. `Debug` never shows the plaintext.
#[non_exhaustive]
pub struct DecryptedMessage {
    /// Outer header fields followed by the decrypted entity. If the entity was signed, this is
    /// the signed message as it was (verify it with [`verify_message`], or see `signature`).
    /// Wiped from memory when dropped.
    pub message: Zeroizing<Vec<u8>>,
    /// The content-encryption algorithm that protected the content.
    pub cipher: enveloped::ContentAlgorithm,
    /// True when the decrypted content is integrity-protected: AES-GCM AuthEnvelopedData
    /// whose tag verified, or CBC EnvelopedData (which anyone can alter undetected: EFAIL's
    /// CBC gadgets) whose inner signature is valid. **False means the plaintext may have been
    /// altered in transit**: do not render it as active content (HTML, remote resources), and
    /// do not let it overrule a policy decision. With CBC and a valid inner signature only
    /// the signed entity (`signature.message`) is covered: text a gadget could add around it
    /// (a multipart preamble or epilogue, the header fields outside the signature) is not.
    pub authenticated: bool,
    /// The inner signature, verified against the trust store given to [`decrypt_message`].
    pub signature: Option<VerifiedMessage>,
    /// Header protection found inside the encryption (in the decrypted entity, or in the
    /// signed entity inside it): the protected fields are the message's header in `message`,
    /// and the report says which were protected and which were confidential.
    pub header_protection: Option<mime::HeaderProtection>,
}

impl std::fmt::Debug for VerifiedMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifiedMessage")
            .field("verification", &self.verification)
            .field("message", &format_args!("[{} bytes]", self.message.len()))
            .field("opaque", &self.opaque)
            .field("header_protection", &self.header_protection)
            .finish()
    }
}

impl std::fmt::Debug for DecryptedMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecryptedMessage")
            .field("message", &format_args!("[{} bytes]", self.message.len()))
            .field("cipher", &self.cipher)
            .field("authenticated", &self.authenticated)
            .field("signature", &self.signature)
            .field("header_protection", &self.header_protection)
            .finish()
    }
}

/// What kind of S/MIME a message is (from its top-level Content-Type).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SmimeKind {
    /// `multipart/signed` with `protocol="application/pkcs7-signature"`.
    DetachedSigned,
    /// `application/pkcs7-mime; smime-type=signed-data`.
    OpaqueSigned,
    /// `application/pkcs7-mime; smime-type=enveloped-data` or `authEnveloped-data` (or a
    /// pkcs7-mime message without smime-type).
    Encrypted,
    /// Anything else.
    None,
}

/// Classify a message without decoding its body.
pub fn classify(raw: &[u8], limits: &Limits) -> Result<SmimeKind> {
    let entity = Entity::parse(raw, limits)?;
    let ct = entity.content_type();
    Ok(match ct.mime_type.as_str() {
        "multipart/signed"
            if ct.param("protocol").is_some_and(|p| {
                p.eq_ignore_ascii_case(SIGNATURE_TYPE)
                    || p.eq_ignore_ascii_case("application/x-pkcs7-signature")
            }) =>
        {
            SmimeKind::DetachedSigned
        }
        "application/pkcs7-mime" | "application/x-pkcs7-mime" => {
            match ct
                .param("smime-type")
                .map(str::to_ascii_lowercase)
                .as_deref()
            {
                Some("signed-data") => SmimeKind::OpaqueSigned,
                _ => SmimeKind::Encrypted,
            }
        }
        _ => SmimeKind::None,
    })
}

/// Sign a whole message. Detached signing first makes the entity 7-bit safe (8-bit parts are
/// re-encoded as quoted-printable or base64, RFC 8551 §3.1.2) so that it survives transport.
pub fn sign_message(
    raw: &[u8],
    signer: &Identity,
    opts: &SignMessageOptions,
    rng: &mut impl CryptoRngCore,
    limits: &Limits,
) -> Result<Vec<u8>> {
    let hp = opts.protect_headers.then_some((mime::HpMode::Clear, false));
    sign_message_hp(raw, signer, opts, hp, rng, limits)
}

/// [`sign_message`] with header protection in `hp` (mode, legacy display element) or none.
fn sign_message_hp(
    raw: &[u8],
    signer: &Identity,
    opts: &SignMessageOptions,
    hp: Option<(mime::HpMode, bool)>,
    rng: &mut impl CryptoRngCore,
    limits: &Limits,
) -> Result<Vec<u8>> {
    check_size(raw, limits)?;
    let mut cms_opts = opts.cms.clone();
    // ECDSA signs with the curve's own digest, ML-DSA with SHA-512; micalg must name what was
    // used.
    cms_opts.digest = signer.key.signing_digest(cms_opts.digest);
    if !opts.opaque {
        return sign_detached(raw, signer, &cms_opts, hp, rng, limits);
    }
    let mut parts = mime::split_for_protection_parts(raw, limits, false)?;
    let extra = protect(&mut parts, hp);
    let entity = [&parts.header[..], &parts.body[..]].concat();
    let part = {
        let der = signed::sign(
            &entity,
            &signer.key,
            &signer.cert,
            &signer.chain,
            &cms_opts,
            false,
        )?;
        mime::build_base64_entity(
            "application/pkcs7-mime; smime-type=signed-data; name=\"smime.p7m\"",
            Some("smime.p7m"),
            &der,
        )
    };
    Ok(mime::assemble(&parts.outer, &fields(&extra), &part))
}

/// Apply header protection to `parts` when asked; the fields to add to the outer header.
fn protect(
    parts: &mut mime::ProtectedParts<'_>,
    hp: Option<(mime::HpMode, bool)>,
) -> Vec<(&'static str, String)> {
    match hp {
        Some((mode, legacy)) => mime::apply_header_protection(parts, mode, legacy),
        None => Vec::new(),
    }
}

fn fields<'e>(extra: &'e [(&'static str, String)]) -> Vec<(&'static str, &'e str)> {
    extra.iter().map(|(n, v)| (*n, v.as_str())).collect()
}

/// Detached signing: the entity is hashed and copied into the output in its pieces (header
/// block and body, the body borrowed from `raw` when it needs no change).
fn sign_detached(
    raw: &[u8],
    signer: &Identity,
    cms_opts: &SignOptions,
    hp: Option<(mime::HpMode, bool)>,
    rng: &mut impl CryptoRngCore,
    limits: &Limits,
) -> Result<Vec<u8>> {
    let mut parts = mime::split_for_protection_parts(raw, limits, true)?;
    let extra = protect(&mut parts, hp);
    if hp.is_some() && !(parts.header.is_ascii() && parts.body.is_ascii()) {
        // protected header fields (or a legacy display element) with 8-bit text: 7-bit again
        let entity = [&parts.header[..], &parts.body[..]].concat();
        let seven = mime::make_seven_bit(&entity, limits)?.into_owned();
        parts.header = Vec::new();
        parts.body = std::borrow::Cow::Owned(seven);
    }
    let mime::ProtectedParts {
        outer,
        header,
        body,
    } = parts;
    let mut hasher =
        signed::DetachedSigner::new(&signer.key, &signer.cert, &signer.chain, cms_opts)?;
    hasher.write_all(&header)?;
    hasher.write_all(&body)?;
    let der = hasher.finish()?;
    let mut out = mime::assemble(&outer, &fields(&extra), b"");
    mime::write_multipart_signed(
        &mut out,
        &[&header, &body],
        SIGNATURE_TYPE,
        cms_opts.digest.micalg(),
        &der,
        "application/pkcs7-signature; name=\"smime.p7s\"",
        "smime.p7s",
        rng,
    );
    Ok(out)
}

/// Verify a signed message (detached `multipart/signed` or opaque signed-data). The signer's
/// address is checked against the From header. Returns `Ok` with the per-check report even when
/// the signature is invalid; `Err` means the message could not be read as a signed message.
pub fn verify_message(
    raw: &[u8],
    trust: &TrustStore,
    at: Option<SystemTime>,
    limits: &Limits,
) -> Result<VerifiedMessage> {
    check_size(raw, limits)?;
    let from = Some(sender_address(&Entity::parse(raw, limits)?));
    let vopts = VerifyOptions {
        at,
        from,
        allow_sha1: false,
    };
    match classify(raw, limits)? {
        SmimeKind::DetachedSigned => {
            let ms = mime::parse_multipart_signed(raw, limits)?
                .ok_or_else(|| not_signed(raw, limits))?;
            let content = mime::canonicalize_crlf(ms.signed);
            let verification =
                signed::verify(&ms.signature, Some(&content), trust, &vopts, limits)?;
            let (message, header_protection) =
                mime::unprotect_headers(&ms.outer, &content, limits)?;
            Ok(VerifiedMessage {
                verification,
                message,
                opaque: false,
                header_protection,
            })
        }
        SmimeKind::OpaqueSigned | SmimeKind::Encrypted => {
            let p = mime::parse_pkcs7_mime(raw, limits)?.ok_or_else(|| not_signed(raw, limits))?;
            let verification = signed::verify(&p.der, None, trust, &vopts, limits)?;
            let content = verification.content.clone().unwrap_or_default();
            let content = mime::canonicalize_crlf(&content).into_owned();
            let (message, header_protection) = mime::unprotect_headers(&p.outer, &content, limits)?;
            Ok(VerifiedMessage {
                verification,
                message,
                opaque: true,
                header_protection,
            })
        }
        SmimeKind::None => Err(not_signed(raw, limits)),
    }
}

/// The one mailbox of the From header(s), parsed from the raw value (encoded words are display
/// names, never addresses). A message without exactly one From mailbox gets a placeholder that
/// no certificate names, so the signer-address check fails closed.
pub(crate) fn sender_address(message: &Entity<'_>) -> String {
    let mut found: Vec<String> = Vec::new();
    for h in message.headers().iter().filter(|h| h.is_named("From")) {
        for a in mime::mailboxes(h.raw_value()) {
            if !found.iter().any(|f| crate::keys::addresses_equal(f, &a)) {
                found.push(a);
            }
        }
    }
    match found.len() {
        1 => found.swap_remove(0),
        0 => "<no From address>".into(),
        _ => format!("<{} From addresses>", found.len()),
    }
}

fn not_signed(raw: &[u8], limits: &Limits) -> Error {
    Error::WrongMessageType {
        expected: "signed",
        found: found_type(raw, limits),
    }
}

pub(crate) fn found_type(raw: &[u8], limits: &Limits) -> String {
    Entity::parse(raw, limits)
        .map(|e| e.content_type().mime_type)
        .unwrap_or_else(|_| "unparseable".into())
}

/// Encrypt a whole message to `recipients`, optionally signing it first (sign-then-encrypt,
/// RFC 8551 §3.7: the signed message is the plaintext of the envelope).
pub fn encrypt_message(
    raw: &[u8],
    recipients: &[Recipient],
    signer: Option<(&Identity, &SignMessageOptions)>,
    opts: &EncryptMessageOptions,
    rng: &mut impl CryptoRngCore,
    limits: &Limits,
) -> Result<Vec<u8>> {
    check_size(raw, limits)?;
    // Header protection goes into the innermost layer: the signed entity when signing.
    let hp = opts
        .protect_headers
        .then_some((mime::HpMode::Cipher, opts.legacy_display));
    let raw: Cow<'_, [u8]> = match signer {
        Some((id, sopts)) => Cow::Owned(sign_message_hp(raw, id, sopts, hp, rng, limits)?),
        None => Cow::Borrowed(raw),
    };
    let mut parts = mime::split_for_protection_parts(&raw, limits, false)?;
    let extra = match signer {
        None => protect(&mut parts, hp),
        Some(_) => Vec::new(),
    };
    let mime::ProtectedParts {
        outer,
        mut header,
        body,
    } = parts;
    if opts.outer_subject.is_some() && !opts.protect_headers {
        header = mime::protect_subject(&outer, &header);
    }
    let mut out = encrypted_head(&outer, &fields(&extra), opts);
    if opts.cipher.algorithm().is_aead() {
        let entity = [&header[..], &body[..]].concat();
        let der = enveloped::encrypt(&entity, recipients, opts.cipher, rng)?;
        out.reserve(der.len() / 57 * 78 + 80);
        let mut b64 = Base64Writer::new(out);
        b64.write_all(&der)?;
        return Ok(b64.finish()?);
    }
    // CBC: the entity streams through the encryptor (DER, as its length is known) and base64
    // straight into the output, which is the only buffer of the message's size.
    let content_len = header.len() + body.len();
    // Room for the CMS around the content: a RecipientInfo is well under 2 KiB.
    let der_len = content_len + 16 + 512 + 2048 * recipients.len();
    out.reserve(der_len / 57 * 78 + 80);
    let mut w = EnvelopedWriter::with_content_length(
        Base64Writer::new(out),
        recipients,
        opts.cipher,
        rng,
        content_len,
    )?;
    w.write_all(&header)?;
    w.write_all(&body)?;
    Ok(w.finish()?.finish()?)
}

/// The outer header fields, `MIME-Version` and the `application/pkcs7-mime` entity header
/// with its empty line: everything of an encrypted message before the base64 body.
fn encrypted_head(
    outer: &[HeaderField<'_>],
    extra: &[(&str, &str)],
    opts: &EncryptMessageOptions,
) -> Vec<u8> {
    let smime_type = match opts.cipher {
        ContentCipher::Aes128Gcm | ContentCipher::Aes256Gcm => "authEnveloped-data",
        _ => "enveloped-data",
    };
    let part = mime::build_base64_entity(
        &format!("application/pkcs7-mime; smime-type={smime_type}; name=\"smime.p7m\""),
        Some("smime.p7m"),
        &[],
    );
    match &opts.outer_subject {
        Some(subject) if !opts.protect_headers => {
            let kept: Vec<_> = outer
                .iter()
                .filter(|h| !h.name.eq_ignore_ascii_case("Subject"))
                .copied()
                .collect();
            mime::assemble(&kept, &[("Subject", subject.as_str())], &part)
        }
        _ => mime::assemble(outer, extra, &part),
    }
}

/// Add `buf` to the header block held by a streaming writer; once its empty line has come,
/// return the block and what followed it (the start of the body) and stop holding.
fn gather_header(held: &mut Option<Vec<u8>>, buf: &[u8]) -> io::Result<Option<(Vec<u8>, Vec<u8>)>> {
    let Some(head) = held.as_mut() else {
        return Ok(None);
    };
    let from = head.len();
    head.extend_from_slice(buf);
    match mime::header_block_end(head, from) {
        Some(end) => {
            let mut head = held.take().unwrap_or_default();
            let body = head.split_off(end);
            Ok(Some((head, body)))
        }
        None if head.len() > MAX_STREAMED_HEADER => Err(io::Error::other(Error::LimitExceeded {
            what: "header block",
            limit: MAX_STREAMED_HEADER as u64,
        })),
        None => Ok(None),
    }
}

/// Largest header block [`MessageEncryptor`] holds while looking for its end.
pub(crate) const MAX_STREAMED_HEADER: usize = 1024 * 1024;

/// Streaming message encryption: the message goes in through [`io::Write`] (header fields
/// first, then the body), the S/MIME message comes out of the wrapped writer as it is made,
/// and [`finish`](Self::finish) returns that writer. Memory stays bounded (the header block,
/// at most 1 MiB, plus buffers of about 200 KiB) whatever the message size.
///
/// The header block is held until its empty line; then the outer header fields,
/// `MIME-Version` and the `application/pkcs7-mime` entity header are written, and the inner
/// entity (the `Content-*` fields and the body, line ends made CRLF on the fly, RFC 8551
/// §3.1.1) streams through [`EnvelopedWriter`] (BER, indefinite lengths, RFC 5652 §6.1) and
/// base64 to the output.
///
/// `opts.cipher` may be CBC (EnvelopedData) or AES-GCM (AuthEnvelopedData, the tag after the
/// ciphertext; [`crate::stream::decrypt_message`] reads it in bounded memory and releases the
/// plaintext only once the tag verified). Compared with [`encrypt_message`]: no signing, and
/// unencoded binary parts (`Content-Transfer-Encoding: binary` with bare CR or LF) are not
/// re-encoded in base64 first, so their line ends are changed like text's: send binary parts
/// base64-encoded, as mail does, pass the message through
/// [`sealgate_mime::reencode::reencode`] with `Reencode::LineEnds` on its way in, or use the
/// one-shot helper.
///
/// ```
/// use std::io::Write;
/// # use sealgate_smime::{Certificate, ContentCipher, PrivateKey, KeyKind, Recipient};
/// # use sealgate_smime::issue::{self, CertificateParams};
/// # use sealgate_smime::message::{EncryptMessageOptions, MessageEncryptor};
/// # fn main() -> sealgate_smime::Result<()> {
/// # let rng = &mut rand_core::OsRng;
/// # let key = PrivateKey::generate(KeyKind::Ec(sealgate_smime::Curve::P256))?;
/// # let cert = issue::self_signed(&key, &CertificateParams::user("Bob", "bob@example.org"), rng)?;
/// let mut w = MessageEncryptor::new(Vec::new(), &[Recipient::new(cert)],
///     &EncryptMessageOptions::default(), rng, &sealgate_smime::Limits::default())?;
/// w.write_all(b"From: alice@example.com\r\nTo: bob@example.org\r\n\r\n")?;
/// w.write_all(b"Hello Bob\r\n")?;
/// let smime: Vec<u8> = w.finish()?;
/// # assert!(smime.starts_with(b"From: alice@example.com\r\nTo: bob@example.org\r\nMIME-Version: 1.0\r\n"));
/// # Ok(()) }
/// ```
pub struct MessageEncryptor<W: Write> {
    /// The header block while its end is not yet seen; `None` once it was written.
    head: Option<Vec<u8>>,
    body: CanonicalWriter<EnvelopedWriter<Base64Writer<Held<W>>>>,
    opts: EncryptMessageOptions,
    limits: Limits,
}

impl<W: Write> std::fmt::Debug for MessageEncryptor<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MessageEncryptor")
            .field("in_header", &self.head.is_some())
            .finish_non_exhaustive()
    }
}

impl<W: Write> MessageEncryptor<W> {
    /// Start encrypting to `recipients` (RSA or EC certificates) into `out` with
    /// `opts.cipher` (AES-CBC or AES-GCM).
    pub fn new(
        out: W,
        recipients: &[Recipient],
        opts: &EncryptMessageOptions,
        rng: &mut impl CryptoRngCore,
        limits: &Limits,
    ) -> Result<Self> {
        let held = Held {
            out,
            held: Some(Vec::with_capacity(4096)),
        };
        let env = EnvelopedWriter::new(Base64Writer::new(held), recipients, opts.cipher, rng)?;
        Ok(Self {
            head: Some(Vec::with_capacity(4096)),
            body: CanonicalWriter::new(env),
            opts: opts.clone(),
            limits: limits.clone(),
        })
    }

    /// Write the outer header and the inner entity header for this header block (which ends
    /// with its empty line, or is all there was).
    fn start(&mut self, block: &[u8]) -> Result<()> {
        let (outer, inner) = mime::split_header_for_protection(block, &self.limits)?;
        let mut parts = mime::ProtectedParts {
            outer,
            header: inner,
            body: Cow::Borrowed(&[]),
        };
        // the body streams: no legacy display element here
        let extra = protect(
            &mut parts,
            self.opts
                .protect_headers
                .then_some((mime::HpMode::Cipher, false)),
        );
        let (outer, mut inner) = (parts.outer, parts.header);
        if self.opts.outer_subject.is_some() && !self.opts.protect_headers {
            inner = mime::protect_subject(&outer, &inner);
        }
        let prefix = encrypted_head(&outer, &fields(&extra), &self.opts);
        self.body.get_mut().get_mut().get_mut().release(&prefix)?;
        self.body.write_all(&inner)?;
        Ok(())
    }

    /// Encrypt the rest and write the end of the message; returns the inner writer.
    pub fn finish(mut self) -> Result<W> {
        if let Some(head) = self.head.take() {
            self.start(&head)?;
        }
        let env = self.body.finish()?;
        let b64 = env.finish()?;
        let held = b64.finish()?;
        Ok(held.out)
    }
}

impl<W: Write> Write for MessageEncryptor<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.head.is_none() {
            return self.body.write(buf);
        }
        if let Some((head, body)) = gather_header(&mut self.head, buf)? {
            self.start(&head).map_err(io::Error::other)?;
            self.body.write_all(&body)?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        // Nothing can go out before the header block is complete.
        if self.head.is_some() {
            return Ok(());
        }
        self.body.flush()
    }
}

/// Streaming detached signing of a whole message: the message goes in through [`io::Write`]
/// (header fields first, then the body) and a `multipart/signed` message (RFC 8551 §3.5.3)
/// comes out of the wrapped writer as it is made; [`finish`](Self::finish) signs, writes the
/// signature part and returns the writer. Memory stays bounded (the header block, at most
/// 1 MiB, plus small buffers) whatever the message size.
///
/// A detached signature must cover a 7-bit entity (RFC 8551 §3.1.2), and re-encoding cannot be
/// done on the fly without holding whole parts, so the signed entity must already be 7-bit:
/// line ends are made CRLF on the way, but a NUL or 8-bit byte, a line over 998 characters or
/// non-ASCII `Content-*` fields are errors (from `write` or `finish`; the output is then
/// incomplete). [`sign_message`] re-encodes such messages in memory; to stream them, pass the
/// message through [`sealgate_mime::reencode::reencode`] with `Reencode::SevenBit` on its way
/// in (bounded memory: a part over 1 MiB that must be re-encoded waits in a temporary file).
/// Should the random boundary occur in the message (it never does by chance), `finish` fails
/// instead of writing an ambiguous message.
pub struct MessageSigner<'k, W: Write> {
    head: Option<Vec<u8>>,
    body: CanonicalWriter<SignedPart<'k, W>>,
    limits: Limits,
}

impl<W: Write> std::fmt::Debug for MessageSigner<'_, W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MessageSigner")
            .field("in_header", &self.head.is_some())
            .finish_non_exhaustive()
    }
}

impl<'k, W: Write> MessageSigner<'k, W> {
    /// Start signing with `signer` into `out`. `opts.opaque` is refused (an opaque signature
    /// needs the content inside the CMS before the signature: use [`sign_message`]).
    pub fn new(
        out: W,
        signer: &'k Identity,
        opts: &SignMessageOptions,
        rng: &mut impl CryptoRngCore,
        limits: &Limits,
    ) -> Result<Self> {
        if opts.opaque {
            return Err(Error::UnsupportedAlgorithm {
                what: "streaming signing (detached only)",
                oid: "opaque signed-data".into(),
            });
        }
        let mut cms = opts.cms.clone();
        cms.digest = signer.key.signing_digest(cms.digest);
        let micalg = cms.digest.micalg();
        let hasher = signed::DetachedSigner::new(&signer.key, &signer.cert, &signer.chain, &cms)?;
        let mut random = [0u8; 16];
        rng.fill_bytes(&mut random);
        let mut boundary = String::from("----sealgate-");
        for b in random {
            boundary.push_str(&format!("{b:02x}"));
        }
        Ok(Self {
            head: Some(Vec::with_capacity(4096)),
            body: CanonicalWriter::new(SignedPart {
                out,
                hasher,
                micalg,
                delimiter: format!("--{boundary}").into_bytes(),
                boundary,
                line_len: 0,
                line_start: Vec::new(),
                found_delimiter: false,
            }),
            limits: limits.clone(),
        })
    }

    fn start(&mut self, block: &[u8]) -> Result<()> {
        let entity = Entity::parse(block, &self.limits)?;
        let (mime, outer): (Vec<HeaderField<'_>>, Vec<HeaderField<'_>>) =
            entity.headers().iter().partition(|h| h.is_mime_field());
        let mut inner = Vec::with_capacity(block.len() + 64);
        if !mime.iter().any(|h| h.is_named("Content-Type")) {
            inner.extend_from_slice(b"Content-Type: text/plain; charset=us-ascii\r\n");
        }
        for field in mime.iter().filter(|h| !h.is_named("MIME-Version")) {
            inner.extend_from_slice(field.raw);
            if !field.raw.ends_with(b"\n") {
                inner.extend_from_slice(b"\r\n");
            }
        }
        inner.extend_from_slice(b"\r\n");
        let part = self.body.get_mut();
        let mut head = mime::assemble(&outer, &[], b"");
        head.extend_from_slice(
            format!(
                "Content-Type: multipart/signed; protocol=\"{SIGNATURE_TYPE}\";\r\n\tmicalg={};\r\n\
                 \tboundary=\"{}\"\r\n\r\nThis is an S/MIME signed message\r\n\r\n--{}\r\n",
                part.micalg, part.boundary, part.boundary
            )
            .as_bytes(),
        );
        part.out.write_all(&head)?;
        self.body.write_all(&inner)?;
        Ok(())
    }

    /// Sign, write the signature part and the closing delimiter; returns the inner writer.
    pub fn finish(mut self) -> Result<W> {
        if let Some(head) = self.head.take() {
            self.start(&head)?;
        }
        let SignedPart {
            mut out,
            hasher,
            boundary,
            found_delimiter,
            ..
        } = self.body.finish()?;
        if found_delimiter {
            return Err(Error::malformed(
                "message for streaming signing",
                "contains the MIME boundary",
            ));
        }
        let der = hasher.finish()?;
        let sig = mime::build_base64_entity(
            "application/pkcs7-signature; name=\"smime.p7s\"",
            Some("smime.p7s"),
            &der,
        );
        out.write_all(format!("\r\n--{boundary}\r\n").as_bytes())?;
        out.write_all(&sig)?;
        out.write_all(format!("\r\n--{boundary}--\r\n").as_bytes())?;
        out.flush()?;
        Ok(out)
    }
}

impl<W: Write> Write for MessageSigner<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.head.is_none() {
            return self.body.write(buf);
        }
        if let Some((head, body)) = gather_header(&mut self.head, buf)? {
            self.start(&head).map_err(io::Error::other)?;
            self.body.write_all(&body)?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.head.is_some() {
            return Ok(());
        }
        self.body.flush()
    }
}

/// The signed entity on its way out (already CRLF): written, hashed and checked to be 7-bit
/// (RFC 5322 §2.3: no NUL, no 8-bit byte, lines of at most 998 characters) and free of the
/// boundary delimiter at a line start.
struct SignedPart<'k, W: Write> {
    out: W,
    hasher: signed::DetachedSigner<'k>,
    micalg: &'static str,
    boundary: String,
    delimiter: Vec<u8>,
    /// Bytes of the current line so far.
    line_len: usize,
    /// The first bytes of the current line, up to the delimiter's length.
    line_start: Vec<u8>,
    found_delimiter: bool,
}

impl<W: Write> Write for SignedPart<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let not_seven_bit = |detail: &str| {
            io::Error::other(Error::malformed(
                "message for streaming signing (not 7-bit: use sign_message)",
                detail,
            ))
        };
        if buf.iter().any(|&b| b == 0 || b >= 128) {
            return Err(not_seven_bit("NUL or 8-bit byte"));
        }
        let mut rest = buf;
        while !rest.is_empty() {
            let (line, ended) = match memchr::memchr(b'\n', rest) {
                Some(i) => rest.split_at(i + 1),
                None => (rest, &[][..]),
            };
            let want = self.delimiter.len().saturating_sub(self.line_start.len());
            if want > 0 {
                self.line_start
                    .extend_from_slice(line.get(..want.min(line.len())).unwrap_or_default());
                if self.line_start == self.delimiter {
                    self.found_delimiter = true;
                }
            }
            self.line_len += line.len();
            // 998 characters and the CRLF (RFC 5322 §2.1.1).
            if self.line_len > 1000 {
                return Err(not_seven_bit("line longer than 998 characters"));
            }
            if line.ends_with(b"\n") {
                self.line_len = 0;
                self.line_start.clear();
            }
            rest = ended;
        }
        self.out.write_all(buf)?;
        self.hasher.write_all(buf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// A writer that holds what is written until [`Held::release`] puts a prefix before it.
struct Held<W: Write> {
    out: W,
    held: Option<Vec<u8>>,
}

impl<W: Write> Held<W> {
    fn release(&mut self, prefix: &[u8]) -> io::Result<()> {
        if let Some(held) = self.held.take() {
            self.out.write_all(prefix)?;
            self.out.write_all(&held)?;
        }
        Ok(())
    }
}

impl<W: Write> Write for Held<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.held {
            // Only the CMS header (RecipientInfos) arrives before the release: bounded by
            // the recipient limit.
            Some(held) => held.extend_from_slice(buf),
            None => self.out.write_all(buf)?,
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        match self.held {
            Some(_) => Ok(()),
            None => self.out.flush(),
        }
    }
}

/// Decrypt an encrypted message with our key (and certificate, which selects the
/// RecipientInfo; without it every RecipientInfo that fits the key is tried). When the
/// decrypted entity is signed and `trust` is given, the inner signature is verified too.
pub fn decrypt_message(
    raw: &[u8],
    key: &PrivateKey,
    cert: Option<&Certificate>,
    trust: Option<&TrustStore>,
    limits: &Limits,
) -> Result<DecryptedMessage> {
    check_size(raw, limits)?;
    let kind = classify(raw, limits)?;
    if kind != SmimeKind::Encrypted {
        return Err(Error::WrongMessageType {
            expected: "encrypted",
            found: found_type(raw, limits),
        });
    }
    let p = mime::parse_pkcs7_mime(raw, limits)?.ok_or_else(|| Error::WrongMessageType {
        expected: "encrypted",
        found: found_type(raw, limits),
    })?;
    let mut decrypted = enveloped::decrypt_owned(p.der, key, cert, limits)?;
    // The message is built in the decrypted buffer itself: the outer header fields go in
    // front of the content (one move, no second copy of a large message).
    let mut message = std::mem::take(&mut *decrypted.content);
    if !mime::is_canonical(&message) {
        message = mime::canonicalize_crlf(&message).into_owned();
    }
    // Header fields inside the encryption win over the outer ones: RFC 9788 header
    // protection, `protected-headers="v1"`, or just a protected Subject.
    let mut header_protection = None;
    if mime::has_header_protection(&message, limits) {
        let (m, hp) = mime::unprotect_headers(&p.outer, &message, limits)?;
        let wiped = Zeroizing::new(std::mem::replace(&mut message, m));
        drop(wiped);
        header_protection = hp;
    } else {
        let outer = mime::unprotected_outer(p.outer.clone(), &message, limits)?;
        let head = mime::assemble(&outer, &[], b"");
        message.splice(0..0, head);
    }
    finish_decrypted(
        &p.outer,
        Zeroizing::new(message),
        header_protection,
        decrypted.cipher,
        decrypted.authenticated,
        trust,
        limits,
    )
}

/// The rest of [`decrypt_message`] once the outer header fields are merged into the
/// decrypted entity (`message`): the inner signature, header protection inside it, EFAIL's
/// `authenticated`. Shared with the streaming decryption
/// ([`crate::stream::SpilledMessage::into_decrypted`]).
pub(crate) fn finish_decrypted(
    outer: &[HeaderField<'_>],
    mut message: Zeroizing<Vec<u8>>,
    mut header_protection: Option<mime::HeaderProtection>,
    cipher: enveloped::ContentAlgorithm,
    cipher_authenticated: bool,
    trust: Option<&TrustStore>,
    limits: &Limits,
) -> Result<DecryptedMessage> {
    let signature = match trust {
        Some(trust)
            if matches!(
                classify(&message, limits)?,
                SmimeKind::DetachedSigned | SmimeKind::OpaqueSigned
            ) =>
        {
            Some(verify_message(&message, trust, None, limits)?)
        }
        _ => None,
    };
    // Signed, then encrypted, with header protection inside the signed entity: the
    // protected fields go in front of the (still verifiable) multipart/signed entity.
    if header_protection.is_none()
        && let Some(sig) = &signature
        && sig.header_protection.is_some()
        && let Some(signed) = signed_entity(&message, limits)?
    {
        let (fields, hp) = mime::protected_header(outer, &signed, limits)?;
        let entity = Entity::parse(&message, limits)?;
        let mut rebuilt = fields;
        rebuilt.extend_from_slice(b"MIME-Version: 1.0\r\n");
        for f in entity.headers().iter().filter(|f| f.is_mime_field()) {
            if !f.is_named("MIME-Version") {
                rebuilt.extend_from_slice(f.raw);
            }
        }
        rebuilt.extend_from_slice(b"\r\n");
        rebuilt.extend_from_slice(entity.body());
        message = Zeroizing::new(rebuilt);
        header_protection = hp;
    }
    // EFAIL: unauthenticated CBC content counts as authenticated only under a valid signature.
    let authenticated = cipher_authenticated
        || signature
            .as_ref()
            .is_some_and(|s| s.verification.is_valid());
    Ok(DecryptedMessage {
        message,
        cipher,
        authenticated,
        signature,
        header_protection,
    })
}

/// The signed entity of a detached or opaque signed message (CRLF), if it is one.
fn signed_entity(message: &[u8], limits: &Limits) -> Result<Option<Vec<u8>>> {
    if let Some(ms) = mime::parse_multipart_signed(message, limits)? {
        return Ok(Some(mime::canonicalize_crlf(ms.signed).into_owned()));
    }
    Ok(None)
}

fn check_size(raw: &[u8], limits: &Limits) -> Result<()> {
    if raw.len() > limits.max_message_bytes {
        return Err(Error::LimitExceeded {
            what: "message size",
            limit: limits.max_message_bytes as u64,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::issue::{self, CertificateParams};
    use crate::keys::{Curve, KeyKind};

    struct Pki {
        ca: Certificate,
        alice: Identity,
        bob: Identity,
    }

    fn pki() -> Pki {
        let mut rng = rand_core::OsRng;
        let ca_key = PrivateKey::generate(KeyKind::Ec(Curve::P256)).unwrap();
        let ca = issue::self_signed(&ca_key, &CertificateParams::ca("CA"), &mut rng).unwrap();
        let mk = |kind, name: &str, email: &str| {
            let key = PrivateKey::generate(kind).unwrap();
            let params = CertificateParams::user(name, email);
            let cert = issue::issue(
                key.public_key(),
                &params,
                &ca,
                &ca_key,
                &mut rand_core::OsRng,
            )
            .unwrap();
            Identity::new(key, cert, vec![]).unwrap()
        };
        Pki {
            alice: mk(KeyKind::Rsa(2048), "Alice", "alice@example.com"),
            bob: mk(KeyKind::Ec(Curve::P384), "Bob", "bob@example.org"),
            ca,
        }
    }

    const MSG: &[u8] = b"From: Alice <alice@example.com>\r\nTo: bob@example.org\r\n\
        Subject: Secret plans\r\nContent-Type: text/plain; charset=utf-8\r\n\
        Content-Transfer-Encoding: 8bit\r\n\r\nMeet at noon. \xc3\x9c\r\n";

    #[test]
    fn outer_subject_is_replaced_and_restored() {
        let p = pki();
        let limits = Limits::default();
        let opts = EncryptMessageOptions {
            outer_subject: Some("Encrypted message".into()),
            ..Default::default()
        };
        let enc = encrypt_message(
            MSG,
            &[Recipient::new(p.bob.cert.clone())],
            None,
            &opts,
            &mut rand_core::OsRng,
            &limits,
        )
        .unwrap();
        let outer = Entity::parse(&enc, &limits).unwrap();
        assert_eq!(
            outer.header("Subject").as_deref(),
            Some("Encrypted message")
        );
        assert!(!enc.windows(6).any(|w| w == b"Secret"));
        let d = decrypt_message(&enc, &p.bob.key, Some(&p.bob.cert), None, &limits).unwrap();
        let m = Entity::parse(&d.message, &limits).unwrap();
        let subjects: Vec<_> = m
            .headers()
            .iter()
            .filter(|h| h.is_named("Subject"))
            .collect();
        assert_eq!(subjects.len(), 1);
        assert_eq!(m.header("Subject").as_deref(), Some("Secret plans"));
        assert_eq!(
            m.decoded_body(&limits).unwrap(),
            b"Meet at noon. \xc3\x9c\r\n"
        );
    }

    #[test]
    fn sign_then_encrypt_round_trip_reports_signer() {
        let p = pki();
        let limits = Limits::default();
        let trust = TrustStore::new(vec![p.ca.clone()]);
        for opaque in [false, true] {
            let sopts = SignMessageOptions {
                opaque,
                ..Default::default()
            };
            let enc = encrypt_message(
                MSG,
                &[
                    Recipient::new(p.bob.cert.clone()),
                    Recipient::new(p.alice.cert.clone()),
                ],
                Some((&p.alice, &sopts)),
                &EncryptMessageOptions::default(),
                &mut rand_core::OsRng,
                &limits,
            )
            .unwrap();
            assert_eq!(classify(&enc, &limits).unwrap(), SmimeKind::Encrypted);
            for me in [&p.bob, &p.alice] {
                let d = decrypt_message(&enc, &me.key, None, Some(&trust), &limits).unwrap();
                let sig = d.signature.unwrap();
                assert!(sig.verification.is_valid(), "{:#?}", sig.verification);
                assert_eq!(sig.opaque, opaque);
                assert_eq!(
                    sig.verification.signers[0].certificate.as_ref(),
                    Some(&p.alice.cert)
                );
                let m = Entity::parse(&sig.message, &limits).unwrap();
                assert_eq!(m.header("Subject").as_deref(), Some("Secret plans"));
                assert_eq!(
                    m.decoded_body(&limits).unwrap(),
                    b"Meet at noon. \xc3\x9c\r\n"
                );
            }
        }
    }

    #[test]
    fn tampered_detached_message_fails_only_the_digest() {
        let p = pki();
        let limits = Limits::default();
        let signed = sign_message(
            MSG,
            &p.alice,
            &SignMessageOptions::default(),
            &mut rand_core::OsRng,
            &limits,
        )
        .unwrap();
        assert_eq!(
            classify(&signed, &limits).unwrap(),
            SmimeKind::DetachedSigned
        );
        let trust = TrustStore::new(vec![p.ca.clone()]);
        assert!(
            verify_message(&signed, &trust, None, &limits)
                .unwrap()
                .verification
                .is_valid()
        );
        let pos = signed.windows(4).position(|w| w == b"noon").unwrap();
        let mut bad = signed.clone();
        bad[pos] = b'm';
        let v = verify_message(&bad, &trust, None, &limits)
            .unwrap()
            .verification;
        assert!(!v.is_valid());
        let failed: Vec<_> = v.signers[0]
            .checks
            .iter()
            .filter(|c| !c.passed)
            .map(|c| c.name)
            .collect();
        assert_eq!(failed, vec![crate::signed::CheckName::ContentDigest]);
    }

    #[test]
    fn sender_address_check_fails_closed() {
        let p = pki();
        let limits = Limits::default();
        let trust = TrustStore::new(vec![p.ca.clone()]);
        // Bob signs; the From claims Alice behind an encoded word that decodes to Bob's address
        for from in [
            "=?utf-8?q?bob=40example=2Eorg=2C?= <alice@example.com>",
            "alice@example.com, bob@example.org",
            "undisclosed-recipients:;",
        ] {
            let msg = format!("From: {from}\r\nSubject: x\r\n\r\nhello\r\n");
            let signed = sign_message(
                msg.as_bytes(),
                &p.bob,
                &SignMessageOptions::default(),
                &mut rand_core::OsRng,
                &limits,
            )
            .unwrap();
            let v = verify_message(&signed, &trust, None, &limits)
                .unwrap()
                .verification;
            let addr = v.signers[0]
                .check(crate::signed::CheckName::SignerAddress)
                .unwrap();
            assert!(!addr.passed, "{from}: {}", addr.detail);
        }
        let no_from = sign_message(
            b"Subject: x\r\n\r\nhello\r\n",
            &p.bob,
            &SignMessageOptions::default(),
            &mut rand_core::OsRng,
            &limits,
        )
        .unwrap();
        assert!(
            !verify_message(&no_from, &trust, None, &limits)
                .unwrap()
                .verification
                .is_valid()
        );
    }

    #[test]
    fn wrong_kinds_are_typed_errors() {
        let p = pki();
        let limits = Limits::default();
        let trust = TrustStore::new(vec![p.ca.clone()]);
        assert!(matches!(
            verify_message(MSG, &trust, None, &limits),
            Err(Error::WrongMessageType {
                expected: "signed",
                ..
            })
        ));
        assert!(matches!(
            decrypt_message(MSG, &p.bob.key, None, None, &limits),
            Err(Error::WrongMessageType {
                expected: "encrypted",
                ..
            })
        ));
        let enc = encrypt_message(
            MSG,
            &[Recipient::new(p.bob.cert.clone())],
            None,
            &EncryptMessageOptions::default(),
            &mut rand_core::OsRng,
            &limits,
        )
        .unwrap();
        assert!(matches!(
            decrypt_message(&enc, &p.alice.key, None, None, &limits),
            Err(Error::DecryptionFailed | Error::NotARecipient)
        ));
        let mut small = Limits::default();
        small.max_message_bytes = 10;
        assert!(matches!(
            sign_message(
                MSG,
                &p.alice,
                &SignMessageOptions::default(),
                &mut rand_core::OsRng,
                &small
            ),
            Err(Error::LimitExceeded { .. })
        ));
    }

    const DIR: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/data/smime/enveloped/"
    );

    fn rsa1() -> (PrivateKey, Certificate) {
        let read = |n: &str| std::fs::read(format!("{DIR}{n}")).unwrap();
        (
            PrivateKey::from_pkcs8_der(&read("rsa1.pk8.der"), &Limits::default()).unwrap(),
            Certificate::from_der(&read("rsa1.crt.der")).unwrap(),
        )
    }

    #[test]
    fn header_end_forms() {
        assert_eq!(mime::header_block_end(b"\r\nbody", 0), Some(2));
        assert_eq!(mime::header_block_end(b"\nbody", 0), Some(1));
        assert_eq!(mime::header_block_end(b"A: b\r\n\r\nbody", 0), Some(8));
        assert_eq!(mime::header_block_end(b"A: b\n\nbody", 0), Some(6));
        assert_eq!(mime::header_block_end(b"A: b\r\n c\r\n", 0), None);
        assert_eq!(mime::header_block_end(b"A: b\r\n\r", 0), None);
        // The empty line completed by a later write.
        assert_eq!(mime::header_block_end(b"A: b\r\n\r\n", 7), Some(8));
    }

    #[test]
    fn streamed_encryption_decrypts_to_the_one_shot_plaintext() {
        let (key, cert) = rsa1();
        let limits = Limits::default();
        let mut body = Vec::new();
        for i in 0..3000 {
            body.extend_from_slice(format!("line {i} of the report\n").as_bytes());
        }
        let mut raw = b"From: a@example.org\nTo: b@example.org\nSubject: s\n\
            MIME-Version: 1.0\nContent-Type: text/plain; charset=us-ascii\n\n"
            .to_vec();
        raw.extend_from_slice(&body);
        for cipher in [ContentCipher::Aes256Cbc, ContentCipher::Aes256Gcm] {
            let opts = EncryptMessageOptions {
                cipher,
                ..Default::default()
            };
            let one_shot = encrypt_message(
                &raw,
                &[Recipient::new(cert.clone())],
                None,
                &opts,
                &mut rand_core::OsRng,
                &limits,
            )
            .unwrap();
            let expected = decrypt_message(&one_shot, &key, Some(&cert), None, &limits)
                .unwrap()
                .message;
            assert!(expected.starts_with(b"From: a@example.org\r\nTo: b@example.org\r\nSubject: s\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nline 0 of"));
            for step in [1usize, 7, 100, 65536, raw.len()] {
                let mut w = MessageEncryptor::new(
                    Vec::new(),
                    &[Recipient::new(cert.clone())],
                    &opts,
                    &mut rand_core::OsRng,
                    &limits,
                )
                .unwrap();
                for chunk in raw.chunks(step) {
                    w.write_all(chunk).unwrap();
                }
                let out = w.finish().unwrap();
                // The clear part is exactly the one-shot's.
                let head_len = one_shot.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
                assert_eq!(
                    out[..head_len],
                    one_shot[..head_len],
                    "{cipher:?} step {step}"
                );
                assert_eq!(classify(&out, &limits).unwrap(), SmimeKind::Encrypted);
                let d = decrypt_message(&out, &key, Some(&cert), None, &limits).unwrap();
                assert_eq!(d.message, expected, "{cipher:?} step {step}");
                assert_eq!(d.cipher, cipher.algorithm());
                assert_eq!(d.authenticated, cipher.algorithm().is_aead());
            }
        }
    }

    #[test]
    fn streamed_signing_verifies_like_the_one_shot() {
        use crate::signed::CheckName;
        let (key, cert) = rsa1();
        let id = Identity::new(key, cert.clone(), vec![]).unwrap();
        let trust = TrustStore::new(vec![cert]);
        let limits = Limits::default();
        let mut raw = b"From: alice@example.org\nTo: b@example.org\nSubject: s\n\
            MIME-Version: 1.0\nContent-Type: text/plain; charset=us-ascii\n\n"
            .to_vec();
        for i in 0..3000 {
            raw.extend_from_slice(format!("line {i} of the signed report\n").as_bytes());
        }
        let opts = SignMessageOptions::default();
        let one_shot = sign_message(&raw, &id, &opts, &mut rand_core::OsRng, &limits).unwrap();
        let expected = verify_message(&one_shot, &trust, None, &limits).unwrap();
        for step in [1usize, 13, 4096, raw.len()] {
            let mut w =
                MessageSigner::new(Vec::new(), &id, &opts, &mut rand_core::OsRng, &limits).unwrap();
            for chunk in raw.chunks(step) {
                w.write_all(chunk).unwrap();
            }
            let out = w.finish().unwrap();
            assert_eq!(classify(&out, &limits).unwrap(), SmimeKind::DetachedSigned);
            let v = verify_message(&out, &trust, None, &limits).unwrap();
            assert_eq!(v.message, expected.message, "step {step}");
            let signer = &v.verification.signers[0];
            for name in [CheckName::ContentDigest, CheckName::Signature] {
                assert!(signer.check(name).unwrap().passed, "{name:?}");
            }
            assert_eq!(v.verification.is_valid(), expected.verification.is_valid());
            // Same layout as the one-shot up to the boundary.
            let cut = one_shot.windows(9).position(|w| w == b"boundary=").unwrap();
            assert_eq!(out[..cut], one_shot[..cut]);
        }
    }

    #[test]
    fn streamed_signing_refuses_what_is_not_7bit() {
        let (key, cert) = rsa1();
        let id = Identity::new(key, cert, vec![]).unwrap();
        let limits = Limits::default();
        let opts = SignMessageOptions::default();
        let long = format!("Subject: x\r\n\r\n{}\r\n", "x".repeat(999));
        let cases: [&[u8]; 3] = [
            "Subject: x\r\n\r\nGrüße\r\n".as_bytes(),
            long.as_bytes(),
            "Subject: x\r\nContent-Type: text/plain; name=\"Grüße\"\r\n\r\nx\r\n".as_bytes(),
        ];
        for case in cases {
            let mut w =
                MessageSigner::new(Vec::new(), &id, &opts, &mut rand_core::OsRng, &limits).unwrap();
            let r = w
                .write_all(case)
                .map_err(Error::from)
                .and_then(|()| w.finish());
            assert!(r.is_err(), "{}", String::from_utf8_lossy(case));
        }
        // 998 characters are fine.
        let ok = format!("Subject: x\r\n\r\n{}\r\n", "x".repeat(998));
        let mut w =
            MessageSigner::new(Vec::new(), &id, &opts, &mut rand_core::OsRng, &limits).unwrap();
        w.write_all(ok.as_bytes()).unwrap();
        assert!(w.finish().is_ok());
    }

    #[test]
    fn streamed_encryption_of_headers_only_and_outer_subject() {
        let (key, cert) = rsa1();
        let limits = Limits::default();
        let opts = EncryptMessageOptions {
            outer_subject: Some("Encrypted message".into()),
            ..Default::default()
        };
        let mut w = MessageEncryptor::new(
            Vec::new(),
            &[Recipient::new(cert.clone())],
            &opts,
            &mut rand_core::OsRng,
            &limits,
        )
        .unwrap();
        w.write_all(b"Subject: secret\r\nFrom: a@example.org")
            .unwrap();
        let out = w.finish().unwrap();
        assert!(out.starts_with(b"From: a@example.org\r\nSubject: Encrypted message\r\n"));
        let d = decrypt_message(&out, &key, Some(&cert), None, &limits).unwrap();
        // the real Subject was protected inside and wins over the outer one
        assert_eq!(
            &d.message[..],
            b"From: a@example.org\r\nMIME-Version: 1.0\r\nSubject: secret\r\n\
              Content-Type: text/plain; charset=us-ascii\r\n\r\n"
        );
    }

    #[test]
    fn streamed_encryption_refuses_huge_headers() {
        let (_, cert) = rsa1();
        let limits = Limits::default();
        let mut w = MessageEncryptor::new(
            Vec::new(),
            &[Recipient::new(cert)],
            &EncryptMessageOptions::default(),
            &mut rand_core::OsRng,
            &limits,
        )
        .unwrap();
        let line = b"X-Filler: 0123456789012345678901234567890123456789\r\n";
        let mut err = None;
        for _ in 0..(MAX_STREAMED_HEADER / line.len() + 2) {
            if let Err(e) = w.write_all(line) {
                err = Some(e);
                break;
            }
        }
        assert!(err.unwrap().to_string().contains("header block"));
    }

    /// ML-DSA signing of whole messages: detached (micalg sha-512), opaque and streamed, each
    /// verified back to the same message through an ML-DSA CA; a changed body fails.
    #[test]
    fn ml_dsa_signed_messages_round_trip() {
        use crate::keys::MlDsa;
        let rng = &mut rand_core::OsRng;
        let limits = Limits::default();
        let ca_key = PrivateKey::generate(KeyKind::MlDsa(MlDsa::MlDsa87)).unwrap();
        let ca = issue::self_signed(&ca_key, &CertificateParams::ca("PQ CA"), rng).unwrap();
        let key = PrivateKey::generate(KeyKind::MlDsa(MlDsa::MlDsa65)).unwrap();
        let params = CertificateParams::user("Alice", "alice@example.com");
        let cert = issue::issue(key.public_key(), &params, &ca, &ca_key, rng).unwrap();
        let id = Identity::new(key, cert.clone(), vec![ca.clone()]).unwrap();
        let trust = TrustStore::new(vec![ca]);
        let msg: &[u8] = b"From: Alice <alice@example.com>\r\nTo: bob@example.org\r\n\
            Subject: pq\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nHello, ML-DSA.\r\n";
        for opaque in [false, true] {
            let opts = SignMessageOptions {
                opaque,
                ..Default::default()
            };
            let out = sign_message(msg, &id, &opts, rng, &limits).unwrap();
            if !opaque {
                let text = String::from_utf8_lossy(&out);
                assert!(text.contains("micalg=sha-512"), "{text}");
            }
            let v = verify_message(&out, &trust, None, &limits).unwrap();
            assert!(v.verification.is_valid(), "{:#?}", v.verification.signers);
            assert_eq!(v.verification.signers[0].certificate.as_ref(), Some(&cert));
            assert_eq!(
                v.verification.signers[0].digest,
                crate::DigestAlgorithm::Sha512
            );
            assert!(v.message.ends_with(b"Hello, ML-DSA.\r\n"));
            if !opaque {
                let pos = out.windows(6).position(|w| w == b"ML-DSA").unwrap();
                let mut bad = out.clone();
                bad[pos] = b'm';
                let v = verify_message(&bad, &trust, None, &limits).unwrap();
                assert!(!v.verification.is_valid());
            }
        }
        let opts = SignMessageOptions::default();
        let mut w = MessageSigner::new(Vec::new(), &id, &opts, rng, &limits).unwrap();
        w.write_all(msg).unwrap();
        let out = w.finish().unwrap();
        assert!(String::from_utf8_lossy(&out).contains("micalg=sha-512"));
        let v = verify_message(&out, &trust, None, &limits).unwrap();
        assert!(v.verification.is_valid(), "{:#?}", v.verification.signers);
        // an ML-DSA certificate cannot be an encryption recipient
        let r = encrypt_message(
            msg,
            &[crate::Recipient::new(cert)],
            None,
            &Default::default(),
            rng,
            &limits,
        );
        assert!(matches!(r, Err(Error::UnusableCertificate { .. })), "{r:?}");
    }
}
