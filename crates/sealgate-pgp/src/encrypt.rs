//! Encrypting and signing: a streaming writer stack (sequoia's `serialize::stream`) and one-shot
//! helpers on top.

use std::io::{self, Write};
use std::sync::{Arc, Mutex};

use openpgp::cert::Preferences;
use openpgp::serialize::stream::{
    Armorer, Compressor, Encryptor as SqEncryptor, LiteralWriter, Message, Recipient, Signer,
};
use openpgp::types::{CompressionAlgorithm, HashAlgorithm};
use sequoia_openpgp as openpgp;

use crate::error::{Error, Result};
use crate::keys::{Cert, POLICY, SecretKey, op};

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

/// Streaming encryption (optionally sign-then-encrypt in one pass) to one or many recipients.
///
/// Integrity protection is always on: SEIPD v1 with MDC, or SEIPD v2 (AEAD, OCB) when every
/// recipient certificate advertises it (RFC 9580 §5.13). Write the plaintext, then call
/// [`Encryptor::finish`].
pub struct Encryptor<'a, W: Write + Send + Sync> {
    stack: Option<Message<'a>>,
    sink: Arc<Mutex<W>>,
}

impl<'a, W: Write + Send + Sync + 'a> Encryptor<'a, W> {
    /// Starts a message to `recipients` (every usable encryption subkey of each; see
    /// [`Cert::encryption_keys_for`] for the typed errors), signed by `signer` if given.
    pub fn new(
        out: W,
        recipients: &'a [Cert],
        signer: Option<&SecretKey>,
        opts: &EncryptOptions,
    ) -> Result<Self> {
        if recipients.is_empty() {
            return Err(Error::Operation {
                what: "encryption",
                detail: "no recipients".into(),
            });
        }
        let mut keys = Vec::new();
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
                keys.push(Recipient::new(
                    features.clone(),
                    ka.key().key_handle(),
                    ka.key(),
                ));
            }
        }
        let keypair = signer.map(SecretKey::signing_keypair).transpose()?;

        let sink = Arc::new(Mutex::new(out));
        let mut msg = Message::new(SharedSink(Arc::clone(&sink)));
        if opts.armor {
            msg = Armorer::new(msg).build().map_err(|e| op("armor", &e))?;
        }
        msg = SqEncryptor::for_recipients(msg, keys)
            .build()
            .map_err(|e| op("encryption", &e))?;
        if opts.compression {
            msg = Compressor::new(msg)
                .algo(CompressionAlgorithm::Zlib)
                .build()
                .map_err(|e| op("compression", &e))?;
        }
        if let Some(kp) = keypair {
            let mut s = Signer::new(msg, kp).map_err(|e| op("signing", &e))?;
            // RFC 9580 §5.2.3.36: name the recipients inside the signature against
            // surreptitious forwarding.
            for cert in recipients {
                s = s.add_intended_recipient(&cert.inner);
            }
            msg = s.build().map_err(|e| op("signing", &e))?;
        }
        msg = LiteralWriter::new(msg)
            .build()
            .map_err(|e| op("literal data", &e))?;
        Ok(Encryptor {
            stack: Some(msg),
            sink,
        })
    }

    /// Completes the message (signature, MDC or final AEAD chunk, armor footer) and returns the
    /// output writer.
    pub fn finish(self) -> Result<W> {
        let Encryptor { stack, sink } = self;
        if let Some(stack) = stack {
            // Dropping the stack here drops the writer's clone of the sink too.
            stack.finalize().map_err(|e| op("encryption", &e))?;
        }
        let mutex = Arc::try_unwrap(sink).map_err(|_| Error::Operation {
            what: "encryption",
            detail: "output still shared".into(),
        })?;
        mutex.into_inner().map_err(|_| Error::Operation {
            what: "encryption",
            detail: "output poisoned".into(),
        })
    }
}

impl<'a, W: Write + Send + Sync + 'a> Write for Encryptor<'a, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.stack {
            Some(s) => s.write(buf),
            None => Err(io::Error::other("encryptor finished")),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match &mut self.stack {
            Some(s) => s.flush(),
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
    let mut e = Encryptor::new(
        Vec::with_capacity(plaintext.len() / 2 * 3 + 1024),
        recipients,
        signer,
        opts,
    )?;
    e.write_all(plaintext)?;
    e.finish()
}

/// The hash every signature we make uses: `micalg=pgp-sha256` for PGP/MIME (RFC 3156 §5).
pub const SIGNATURE_HASH: &str = "pgp-sha256";

/// Makes a detached binary signature (RFC 9580 §5.2.1, type 0x00) over `data` with SHA-256,
/// ASCII-armored when `armor` is set. PGP/MIME signing passes the canonical CRLF entity here.
pub fn sign_detached(data: &[u8], signer: &SecretKey, armor: bool) -> Result<Vec<u8>> {
    let keypair = signer.signing_keypair()?;
    let mut out = Vec::new();
    {
        let mut msg = Message::new(&mut out);
        if armor {
            msg = Armorer::new(msg)
                .kind(openpgp::armor::Kind::Signature)
                .build()
                .map_err(|e| op("armor", &e))?;
        }
        let mut s = Signer::new(msg, keypair)
            .map_err(|e| op("signing", &e))?
            .detached()
            .hash_algo(HashAlgorithm::SHA256)
            .map_err(|e| op("signing", &e))?
            .build()
            .map_err(|e| op("signing", &e))?;
        s.write_all(data)?;
        s.finalize().map_err(|e| op("signing", &e))?;
    }
    Ok(out)
}
