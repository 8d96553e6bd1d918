//! Certificate revocation lists: sealgate-smime's parser and checks (the key store parses no
//! format itself). A CRL is imported only when its signature verifies with its issuer's key
//! from the store or the same import.

pub use sealgate_smime::crl::Crl;
