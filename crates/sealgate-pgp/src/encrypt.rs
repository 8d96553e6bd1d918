//! Encrypting and signing: a streaming writer stack (sequoia's `serialize::stream`) and one-shot
//! helpers on top.

use std::io::{self, Write};
use std::sync::{Arc, Mutex};

use openpgp::cert::Preferences;
use openpgp::crypto::SessionKey;
use openpgp::packet::key::{PublicParts, UnspecifiedRole};
use openpgp::packet::pkesk::PKESK3;
use openpgp::packet::{Key, Packet};
use openpgp::serialize::Marshal;
use openpgp::serialize::stream::{
    Armorer, Compressor, Encryptor as SqEncryptor, LiteralWriter, Message, Recipient, Signer,
};
use openpgp::types::{CompressionAlgorithm, HashAlgorithm, SymmetricAlgorithm};
use sequoia_openpgp as openpgp;

use crate::armor::ArmorWriter;
use crate::error::{Error, Result};
use crate::keys::{Cert, POLICY, SecretKey, op};
use crate::seipd::{self, Framing, PartialBody, SeipdWriter};

/// Options for [`encrypt`] and [`Encryptor`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncryptOptions {
    /// ASCII armor (RFC 9580 §6) the output; PGP/MIME (RFC 3156 §4) wants it.
    pub armor: bool,
    /// Compress (zlib) before encrypting. Off by default: it costs time, and compression
    /// before encryption leaks length information.
    pub compression: bool,
}

impl Default for EncryptOptions {
    fn default() -> Self {
        EncryptOptions {
            armor: true,
            compression: false,
        }
    }
}

/// A shared sink, so that [`Encryptor::finish`] can give the caller's writer back (sequoia's
/// writer stack consumes its sink).
struct SharedSink<W>(Arc<Mutex<W>>);

impl<W: Write> Write for SharedSink<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0
            .lock()
            .map_err(|_| io::Error::other("sink poisoned"))?
            .write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0
            .lock()
            .map_err(|_| io::Error::other("sink poisoned"))?
            .flush()
    }
}

/// Where the encrypted packets go: straight to the caller's writer, or through our armor.
enum Sink<W: Write> {
    Binary(W),
    Armored(ArmorWriter<W>),
}

impl<W: Write> Sink<W> {
    fn finish(self) -> io::Result<W> {
        match self {
            Sink::Binary(mut w) => {
                w.flush()?;
                Ok(w)
            }
            Sink::Armored(a) => a.finish(),
        }
    }
}

impl<W: Write> Write for Sink<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Sink::Binary(w) => w.write(buf),
            Sink::Armored(a) => a.write(buf),
        }
    }
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self {
            Sink::Binary(w) => w.write_all(buf),
            Sink::Armored(a) => a.write_all(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Sink::Binary(w) => w.flush(),
            Sink::Armored(a) => a.flush(),
        }
    }
}

type Seipd<W> = SeipdWriter<Sink<W>>;

/// The writer stack behind an [`Encryptor`].
enum Stack<'a, W: Write + Send + Sync> {
    /// SEIPD v2 (AEAD, every recipient advertises it): Sequoia's writer stack end to end.
    Sequoia {
        stack: Message<'a>,
        sink: Arc<Mutex<W>>,
    },
    /// SEIPD v1, unsigned, length unknown: our literal packet (partial bodies) in our SEIPD.
    Literal(Box<PartialBody<Seipd<W>>>),
    /// SEIPD v1, unsigned, length known up front: the parts for the one-shot [`encrypt`],
    /// which writes the SEIPD body itself (no partial framing, CFB in place).
    OneShot {
        sink: Sink<W>,
        algo: &'static aws_lc_rs::cipher::Algorithm,
        session_key: SessionKey,
        random: [u8; 16],
        /// The Literal Data packet's header and the start of its body.
        head: Vec<u8>,
    },
    /// SEIPD v1, signed or compressed: Sequoia's Signer / Compressor / LiteralWriter write the
    /// packets into our SEIPD.
    Layered {
        stack: Message<'a>,
        seipd: Arc<Mutex<Seipd<W>>>,
    },
}

/// Streaming encryption (optionally sign-then-encrypt in one pass) to one or many recipients.
///
/// Integrity protection is always on: SEIPD v1 with MDC, or SEIPD v2 (AEAD, OCB) when every
/// recipient certificate advertises it (RFC 9580 §5.13). Write the plaintext, then call
/// [`Encryptor::finish`]. SEIPD v1 is written by this crate on aws-lc-rs (AES-256-CFB, SHA-1
/// MDC, 64 KiB partial bodies: memory stays flat whatever the size); the session key packets,
/// signatures, compression and SEIPD v2 are Sequoia's.
pub struct Encryptor<'a, W: Write + Send + Sync> {
    stack: Option<Stack<'a, W>>,
}

/// The session key algorithm of the SEIPD v1 we write: AES-256, as Sequoia's default and
/// GnuPG's first preference. (AES-128 would be faster; we do not trade strength for the bench.)
const V1_ALGO: SymmetricAlgorithm = SymmetricAlgorithm::AES256;

impl<'a, W: Write + Send + Sync + 'a> Encryptor<'a, W> {
    /// Starts a message to `recipients` (every usable encryption subkey of each; see
    /// [`Cert::encryption_keys_for`] for the typed errors), signed by `signer` if given.
    pub fn new(
        out: W,
        recipients: &'a [Cert],
        signer: Option<&SecretKey>,
        opts: &EncryptOptions,
    ) -> Result<Self> {
        Self::build(out, recipients, signer, opts, b"\n", None)
    }

    /// `eol` ends the armor lines; `known_len` is the exact plaintext length when the caller
    /// knows it (unsigned, uncompressed only), for a definite-length packet.
    pub(crate) fn build(
        out: W,
        recipients: &'a [Cert],
        signer: Option<&SecretKey>,
        opts: &EncryptOptions,
        eol: &'static [u8],
        known_len: Option<usize>,
    ) -> Result<Self> {
        if recipients.is_empty() {
            return Err(Error::Operation {
                what: "encryption",
                detail: "no recipients".into(),
            });
        }
        let mut keys = Vec::new();
        // draft-ietf-openpgp-pqc: ML-KEM on a v6 key goes in a PKESK v6 before a SEIPD v2
        // (and ML-KEM-1024+X448 never in SEIPD v1). Sequoia's Encryptor would write a PKESK v3
        // for it whenever some co-recipient lacks the SEIPD v2 feature, so we decide here.
        let mut needs_v2 = false;
        let mut v1_only = None;
        for cert in recipients {
            // Typed error (expired, revoked, sign-only) before we look at the keys.
            cert.encryption_keys_for(None, std::time::SystemTime::now())?;
            let vc = cert
                .inner
                .with_policy(&POLICY, None)
                .map_err(|e| op("encryption", &e))?;
            let features = vc.features();
            for ka in vc
                .keys()
                .supported()
                .alive()
                .revoked(false)
                .for_transport_encryption()
            {
                needs_v2 |= needs_seipd_v2(ka.key());
                keys.push((features.clone(), ka.key()));
            }
            let pq_v6 = vc
                .keys()
                .for_transport_encryption()
                .any(|ka| needs_seipd_v2(ka.key()));
            if v1_only.is_none()
                && !pq_v6
                && !features.as_ref().is_some_and(|f| f.supports_seipdv2())
            {
                v1_only = Some(cert.fingerprint());
            }
        }
        let keypair = signer.map(SecretKey::signing_keypair).transpose()?;
        let all_v2 = !keys.is_empty()
            && keys
                .iter()
                .all(|(f, _)| f.as_ref().is_some_and(|f| f.supports_seipdv2()));
        if needs_v2 {
            if let Some(fingerprint) = v1_only {
                return Err(Error::SeipdV1OnlyWithPostQuantum { fingerprint });
            }
            // Every other recipient advertises SEIPD v2; the post-quantum ones count as able to
            // read it whatever their Features say, since the draft gives them no other form.
            return Self::sequoia(out, recipients, keys, keypair, opts, true);
        }
        if all_v2 {
            return Self::sequoia(out, recipients, keys, keypair, opts, false);
        }

        // RFC 9580 §5.1: one v3 PKESK per recipient key, the session key wrapped by Sequoia.
        let session_key = SessionKey::new(V1_ALGO.key_size().map_err(|e| op("encryption", &e))?)
            .map_err(|e| op("encryption", &e))?;
        let mut pkesks = Vec::new();
        for (_, key) in &keys {
            let pkesk = PKESK3::for_recipient(V1_ALGO, &session_key, *key)
                .map_err(|e| op("encryption", &e))?;
            Packet::PKESK(pkesk.into())
                .serialize(&mut pkesks)
                .map_err(|e| op("encryption", &e))?;
        }
        let mut sink = if opts.armor {
            Sink::Armored(ArmorWriter::new(out, eol)?)
        } else {
            Sink::Binary(out)
        };
        sink.write_all(&pkesks)?;
        let algo = seipd::aes(V1_ALGO).ok_or_else(|| Error::Operation {
            what: "encryption",
            detail: "no AES".into(),
        })?;
        let mut random = [0u8; 16];
        aws_lc_rs::rand::fill(&mut random).map_err(|_| Error::Operation {
            what: "encryption",
            detail: "random generator failed".into(),
        })?;
        let layered = keypair.is_some() || opts.compression;
        // Literal Data (RFC 9580 §5.9): binary, no file name, no date.
        const LITERAL_HEADER: [u8; 6] = [b'b', 0, 0, 0, 0, 0];
        let definite = known_len.filter(|_| !layered).and_then(|n| {
            let body = u32::try_from(n.checked_add(LITERAL_HEADER.len())?).ok()?;
            let lit = seipd::header(seipd::TAG_LITERAL, body);
            let seipd_len = seipd::seipd_body_len(lit.len() + body as usize)?;
            Some((lit, seipd_len))
        });
        let stack = if let Some((lit, seipd_len)) = definite {
            sink.write_all(&seipd::header(seipd::TAG_SEIPD, seipd_len))?;
            let mut head = lit;
            head.extend_from_slice(&LITERAL_HEADER);
            Stack::OneShot {
                sink,
                algo,
                session_key,
                random,
                head,
            }
        } else {
            sink.write_all(&[0xC0 | seipd::TAG_SEIPD])?;
            let mut w = SeipdWriter::new(
                Framing::Partial(PartialBody::new(sink)),
                algo,
                &session_key,
                random,
            )?;
            if layered {
                let seipd = Arc::new(Mutex::new(w));
                let mut msg = Message::new(SharedSink(Arc::clone(&seipd)));
                if opts.compression {
                    msg = Compressor::new(msg)
                        .algo(CompressionAlgorithm::Zlib)
                        .build()
                        .map_err(|e| op("compression", &e))?;
                }
                if let Some(kp) = keypair {
                    msg = signer_layer(msg, kp, recipients)?;
                }
                msg = LiteralWriter::new(msg)
                    .build()
                    .map_err(|e| op("literal data", &e))?;
                Stack::Layered { stack: msg, seipd }
            } else {
                w.write_all(&[0xC0 | seipd::TAG_LITERAL])?;
                let mut lit = PartialBody::new(w);
                lit.write_all(&LITERAL_HEADER)?;
                Stack::Literal(Box::new(lit))
            }
        };
        Ok(Encryptor { stack: Some(stack) })
    }

    /// SEIPD v2 to recipients that all advertise it: Sequoia's writer stack.
    fn sequoia(
        out: W,
        recipients: &'a [Cert],
        keys: Vec<(
            Option<openpgp::types::Features>,
            &'a Key<PublicParts, UnspecifiedRole>,
        )>,
        keypair: Option<crate::rsa::AnyKeyPair>,
        opts: &EncryptOptions,
        force_v2: bool,
    ) -> Result<Self> {
        let keys: Vec<Recipient<'a>> = keys
            .into_iter()
            .map(|(f, k)| Recipient::new(f, k.key_handle(), k))
            .collect();
        let sink = Arc::new(Mutex::new(out));
        let mut msg = Message::new(SharedSink(Arc::clone(&sink)));
        if opts.armor {
            msg = Armorer::new(msg).build().map_err(|e| op("armor", &e))?;
        }
        let mut encryptor = SqEncryptor::for_recipients(msg, keys);
        if force_v2 {
            encryptor = encryptor.aead_algo(openpgp::types::AEADAlgorithm::default());
        }
        msg = encryptor.build().map_err(|e| op("encryption", &e))?;
        if opts.compression {
            msg = Compressor::new(msg)
                .algo(CompressionAlgorithm::Zlib)
                .build()
                .map_err(|e| op("compression", &e))?;
        }
        if let Some(kp) = keypair {
            msg = signer_layer(msg, kp, recipients)?;
        }
        msg = LiteralWriter::new(msg)
            .build()
            .map_err(|e| op("literal data", &e))?;
        Ok(Encryptor {
            stack: Some(Stack::Sequoia { stack: msg, sink }),
        })
    }

    /// Completes the message (signature, MDC or final AEAD chunk, armor footer) and returns the
    /// output writer.
    pub fn finish(mut self) -> Result<W> {
        let Some(stack) = self.stack.take() else {
            return Err(Error::Operation {
                what: "encryption",
                detail: "already finished".into(),
            });
        };
        match stack {
            Stack::Sequoia { stack, sink } => finish_stack(Some(stack), sink, "encryption"),
            Stack::Literal(lit) => Ok(lit.finish()?.finish()?.finish()?),
            Stack::OneShot { .. } => Err(one_shot_only()),
            Stack::Layered { stack, seipd } => {
                stack.finalize().map_err(|e| op("encryption", &e))?;
                let seipd = Arc::try_unwrap(seipd)
                    .map_err(|_| Error::Operation {
                        what: "encryption",
                        detail: "output still shared".into(),
                    })?
                    .into_inner()
                    .map_err(|_| Error::Operation {
                        what: "encryption",
                        detail: "output poisoned".into(),
                    })?;
                Ok(seipd.finish()?.finish()?)
            }
        }
    }
}

/// Whether `key` may only be encrypted to with PKESK v6 + SEIPD v2 (draft-ietf-openpgp-pqc):
/// ML-KEM on a v6 key, and ML-KEM-1024+X448 on any.
fn needs_seipd_v2(key: &Key<PublicParts, UnspecifiedRole>) -> bool {
    use openpgp::types::PublicKeyAlgorithm::{MLKEM768_X25519, MLKEM1024_X448};
    match key.pk_algo() {
        MLKEM1024_X448 => true,
        MLKEM768_X25519 => key.version() == 6,
        _ => false,
    }
}

/// Sequoia's one-pass Signer, naming the recipients inside the signature.
fn signer_layer<'a>(
    msg: Message<'a>,
    kp: crate::rsa::AnyKeyPair,
    recipients: &'a [Cert],
) -> Result<Message<'a>> {
    let mut s = Signer::new(msg, kp).map_err(|e| op("signing", &e))?;
    // RFC 9580 §5.2.3.36: name the recipients inside the signature against surreptitious
    // forwarding.
    for cert in recipients {
        s = s.add_intended_recipient(&cert.inner);
    }
    s.build().map_err(|e| op("signing", &e))
}

impl<'a, W: Write + Send + Sync + 'a> Write for Encryptor<'a, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.stack {
            Some(Stack::Sequoia { stack, .. } | Stack::Layered { stack, .. }) => stack.write(buf),
            Some(Stack::Literal(lit)) => lit.write(buf),
            Some(Stack::OneShot { .. }) => Err(io::Error::other(one_shot_only())),
            None => Err(io::Error::other("encryptor finished")),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match &mut self.stack {
            Some(Stack::Sequoia { stack, .. } | Stack::Layered { stack, .. }) => stack.flush(),
            Some(Stack::Literal(lit)) => lit.flush(),
            Some(Stack::OneShot { .. }) => Ok(()),
            None => Ok(()),
        }
    }
}

/// Encrypts `plaintext` to `recipients` in one call; see [`Encryptor`].
pub fn encrypt(
    plaintext: &[u8],
    recipients: &[Cert],
    signer: Option<&SecretKey>,
    opts: &EncryptOptions,
) -> Result<Vec<u8>> {
    encrypt_with_line_end(plaintext, recipients, signer, opts, b"\n")
}

/// [`encrypt`] with armor lines ended by `eol` (PGP/MIME wants CRLF; then the MIME layer need
/// not rewrite the armor).
pub(crate) fn encrypt_with_line_end(
    plaintext: &[u8],
    recipients: &[Cert],
    signer: Option<&SecretKey>,
    opts: &EncryptOptions,
    eol: &'static [u8],
) -> Result<Vec<u8>> {
    encrypt_appending(Vec::new(), plaintext, recipients, signer, opts, eol)
}

/// [`encrypt_with_line_end`] appending to `out` (PGP/MIME writes its header and frame first).
pub(crate) fn encrypt_appending(
    mut out: Vec<u8>,
    plaintext: &[u8],
    recipients: &[Cert],
    signer: Option<&SecretKey>,
    opts: &EncryptOptions,
    eol: &'static [u8],
) -> Result<Vec<u8>> {
    let n = plaintext.len();
    let capacity = if opts.armor {
        (n + 2048) / 57 * (76 + eol.len()) + 4096
    } else {
        n + 4096
    };
    out.reserve(capacity);
    let known = (signer.is_none() && !opts.compression).then_some(n);
    let mut e = Encryptor::build(out, recipients, signer, opts, eol, known)?;
    let parallel =
        n >= PARALLEL_MDC_FROM && std::thread::available_parallelism().is_ok_and(|p| p.get() > 1);
    match e.stack.take() {
        Some(Stack::OneShot {
            sink: Sink::Binary(mut out),
            algo,
            session_key,
            random,
            head,
        }) => {
            seipd::seal_into(
                &mut out,
                algo,
                &session_key,
                random,
                &head,
                plaintext,
                parallel,
            )?;
            Ok(out)
        }
        Some(Stack::OneShot {
            sink,
            algo,
            session_key,
            random,
            head,
        }) => {
            if parallel {
                // Armored, large: CFB here, the MDC hash and then the armor on a second core.
                let sink =
                    seipd::seal_pipelined(sink, algo, &session_key, random, &head, plaintext)?;
                return Ok(sink.finish()?);
            }
            // Armored, small: through the writer, on this thread.
            let mut w = SeipdWriter::new(Framing::Definite(sink), algo, &session_key, random)?;
            w.write_all(&head)?;
            w.write_all(plaintext)?;
            Ok(w.finish()?.finish()?)
        }
        other => {
            e.stack = other;
            e.write_all(plaintext)?;
            e.finish()
        }
    }
}

fn one_shot_only() -> Error {
    Error::Operation {
        what: "encryption",
        detail: "internal: one-shot writer used as a stream".into(),
    }
}

/// From this plaintext size on, one-shot encryption hashes the MDC on a second thread (below
/// it, starting the thread costs more than it saves).
const PARALLEL_MDC_FROM: usize = 1 << 20;

/// The hash every signature we make uses: `micalg=pgp-sha256` for PGP/MIME (RFC 3156 §5).
pub const SIGNATURE_HASH: &str = "pgp-sha256";

/// Makes a detached binary signature (RFC 9580 §5.2.1, type 0x00) over `data` with SHA-256,
/// ASCII-armored when `armor` is set. PGP/MIME signing passes the canonical CRLF entity here.
pub fn sign_detached(data: &[u8], signer: &SecretKey, armor: bool) -> Result<Vec<u8>> {
    let mut s = DetachedSigner::new(Vec::new(), signer, armor)?;
    s.write_all(data)?;
    s.finish()
}

/// Streaming [`sign_detached`]: write the data, then [`DetachedSigner::finish`] writes the
/// signature to the output and returns it. The data itself is not copied to the output.
pub struct DetachedSigner<'a, W: Write + Send + Sync> {
    stack: Option<Message<'a>>,
    sink: Arc<Mutex<W>>,
}

impl<'a, W: Write + Send + Sync + 'a> DetachedSigner<'a, W> {
    /// Starts a detached SHA-256 signature by `signer`'s signing key.
    pub fn new(out: W, signer: &SecretKey, armor: bool) -> Result<Self> {
        let keypair = signer.signing_keypair()?;
        let sink = Arc::new(Mutex::new(out));
        let mut msg = Message::new(SharedSink(Arc::clone(&sink)));
        if armor {
            msg = Armorer::new(msg)
                .kind(openpgp::armor::Kind::Signature)
                .build()
                .map_err(|e| op("armor", &e))?;
        }
        let msg = Signer::new(msg, keypair)
            .map_err(|e| op("signing", &e))?
            .detached()
            .hash_algo(HashAlgorithm::SHA256)
            .map_err(|e| op("signing", &e))?
            .build()
            .map_err(|e| op("signing", &e))?;
        Ok(DetachedSigner {
            stack: Some(msg),
            sink,
        })
    }

    /// Writes the signature and returns the output writer.
    pub fn finish(self) -> Result<W> {
        let DetachedSigner { stack, sink } = self;
        finish_stack(stack, sink, "signing")
    }
}

impl<'a, W: Write + Send + Sync + 'a> Write for DetachedSigner<'a, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.stack {
            Some(s) => s.write(buf),
            None => Err(io::Error::other("signer finished")),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match &mut self.stack {
            Some(s) => s.flush(),
            None => Ok(()),
        }
    }
}

/// Finalizes a writer stack and takes the caller's writer back out of the shared sink.
fn finish_stack<W>(
    stack: Option<Message<'_>>,
    sink: Arc<Mutex<W>>,
    what: &'static str,
) -> Result<W> {
    if let Some(stack) = stack {
        // Finalizing drops the stack, and with it the writer's clone of the sink.
        stack.finalize().map_err(|e| op(what, &e))?;
    }
    let mutex = Arc::try_unwrap(sink).map_err(|_| Error::Operation {
        what,
        detail: "output still shared".into(),
    })?;
    mutex.into_inner().map_err(|_| Error::Operation {
        what,
        detail: "output poisoned".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::KeyKind;
    use crate::keys::tests::{cert, secret};
    use crate::verify_detached;
    use sealgate_mime::Limits;

    #[test]
    fn streaming_detached_signer_gives_the_writer_back() {
        let key = secret("rsa");
        // The output writer already holds bytes: finish() must return that same writer.
        let mut s = DetachedSigner::new(b"prefix:".to_vec(), &key, true).unwrap();
        let mut data = Vec::new();
        for i in 0..1000u32 {
            let chunk = format!("chunk {i}\r\n");
            s.write_all(chunk.as_bytes()).unwrap();
            data.extend_from_slice(chunk.as_bytes());
        }
        let out = s.finish().unwrap();
        let sig = out.strip_prefix(b"prefix:").unwrap();
        assert!(sig.starts_with(b"-----BEGIN PGP SIGNATURE-----"));
        let v = verify_detached(&data, sig, &[cert("rsa")], &Limits::default()).unwrap();
        assert!(v.is_valid());
        assert_eq!(
            v.signatures[0].signer.as_ref().unwrap().fingerprint(),
            key.cert().fingerprint()
        );
        // One-shot equals streaming in what it verifies.
        let one = sign_detached(&data, &key, false).unwrap();
        assert!(
            verify_detached(&data, &one, &[cert("rsa")], &Limits::default())
                .unwrap()
                .is_valid()
        );
    }

    #[test]
    fn encryptor_needs_recipients() {
        let me = SecretKey::generate("Me <me@example.org>", KeyKind::Cv25519).unwrap();
        assert!(matches!(
            encrypt(b"x", &[], Some(&me), &EncryptOptions::default()),
            Err(Error::Operation { .. })
        ));
    }
}
