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
        finish_stack(stack, sink, "encryption")
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
