//! Certificates-only messages (RFC 8551 §3.6): a degenerate SignedData with no signers that
//! carries certificates, sent as `application/pkcs7-mime; smime-type=certs-only`.

use cms::cert::CertificateChoices;
use cms::content_info::{CmsVersion, ContentInfo};
use cms::signed_data::{CertificateSet, EncapsulatedContentInfo, SignedData, SignerInfos};
use const_oid::db::rfc5911;
use der::asn1::SetOfVec;
use der::{Any, Decode, Encode};

use crate::error::Result;
use crate::keys::Certificate;

/// The media type of a certs-only message.
pub const CERTS_ONLY_TYPE: &str =
    "application/pkcs7-mime; smime-type=certs-only; name=\"smime.p7c\"";

/// DER of a ContentInfo holding a SignedData with `certs` and no signers (RFC 5652 §5.2 "no
/// signers" form; `openssl pkcs7 -print_certs` and every S/MIME client import it).
pub fn certs_only(certs: &[Certificate]) -> Result<Vec<u8>> {
    let set = CertificateSet(SetOfVec::try_from(
        certs
            .iter()
            .map(|c| CertificateChoices::Certificate(c.x509().clone()))
            .collect::<Vec<_>>(),
    )?);
    let sd = SignedData {
        version: CmsVersion::V1,
        digest_algorithms: SetOfVec::new(),
        encap_content_info: EncapsulatedContentInfo {
            econtent_type: rfc5911::ID_DATA,
            econtent: None,
        },
        certificates: Some(set),
        crls: None,
        signer_infos: SignerInfos(SetOfVec::new()),
    };
    let ci = ContentInfo {
        content_type: rfc5911::ID_SIGNED_DATA,
        content: Any::from_der(&sd.to_der()?)?,
    };
    Ok(ci.to_der()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CertificateParams, KeyKind, PrivateKey, issue};

    #[test]
    fn carries_the_certificates() {
        let mut rng = rand_core::OsRng;
        let key = PrivateKey::generate(KeyKind::Ec(crate::Curve::P256)).unwrap();
        let cert = issue::self_signed(
            &key,
            &CertificateParams::user("Alice", "alice@example.com"),
            &mut rng,
        )
        .unwrap();
        let der = certs_only(std::slice::from_ref(&cert)).unwrap();
        let ci = ContentInfo::from_der(&der).unwrap();
        assert_eq!(ci.content_type, rfc5911::ID_SIGNED_DATA);
        let sd: SignedData = ci.content.decode_as().unwrap();
        assert!(sd.signer_infos.0.is_empty());
        let certs: Vec<_> = sd.certificates.unwrap().0.into_vec();
        assert_eq!(certs.len(), 1);
        match &certs[0] {
            CertificateChoices::Certificate(c) => assert_eq!(c.to_der().unwrap(), cert.der()),
            _ => panic!("not a certificate"),
        }
    }
}
