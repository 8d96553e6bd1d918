// Fixed OpenPGP keys from tests/data/pgp (made by tests/data/pgp/make.sh, see NOTES.md): the
// RSA-3072 and the Ed25519/Cv25519 test keys, so that decryption runs as far as the PKESK
// packets and the encrypted container with real keys, and signatures by them are checked.
use sealgate::Limits;
use sealgate::pgp::{Cert, SecretKey};

pub struct FixedPgp {
    pub keys: Vec<SecretKey>,
    pub signers: Vec<Cert>,
    pub limits: Limits,
}

pub fn fixed() -> &'static FixedPgp {
    static FIXED: std::sync::OnceLock<FixedPgp> = std::sync::OnceLock::new();
    FIXED.get_or_init(|| {
        let limits = Limits::default();
        let keys: Vec<SecretKey> = [
            &include_bytes!("../../tests/data/pgp/rsa.sec.asc")[..],
            &include_bytes!("../../tests/data/pgp/ed.sec.asc")[..],
        ]
        .iter()
        .map(|k| SecretKey::load(k, None, &limits).expect("fixed pgp key"))
        .collect();
        let signers = keys.iter().map(|k| k.cert().clone()).collect();
        FixedPgp {
            keys,
            signers,
            limits,
        }
    })
}
