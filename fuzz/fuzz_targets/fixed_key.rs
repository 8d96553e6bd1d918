// A fixed RSA-2048 key and certificate (tests/data/fuzz, see NOTES.md) so that the decrypt path
// runs as far as the RecipientInfos with a real key.
use sealgate::Limits;
use sealgate::smime::{Certificate, PrivateKey, TrustStore};

pub struct Fixed {
    pub key: PrivateKey,
    pub cert: Certificate,
    pub trust: TrustStore,
    pub limits: Limits,
}

pub fn fixed() -> &'static Fixed {
    static FIXED: std::sync::OnceLock<Fixed> = std::sync::OnceLock::new();
    FIXED.get_or_init(|| {
        let limits = Limits::default();
        let key = PrivateKey::from_der(include_bytes!("../../tests/data/fuzz/key.der"), &limits)
            .expect("fixed key");
        let cert = Certificate::from_der(include_bytes!("../../tests/data/fuzz/cert.der"))
            .expect("fixed cert");
        let trust = TrustStore::new(vec![cert.clone()]);
        Fixed {
            key,
            cert,
            trust,
            limits,
        }
    })
}
