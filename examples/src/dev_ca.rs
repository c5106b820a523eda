//! A throwaway development CA for the examples, on rcgen.
//!
//! Self-signed and in memory: for demonstrations only. Production roots of
//! trust come from your organisation's PKI (see the mtls-ca crate).

use std::error::Error;

pub(crate) type BoxError = Box<dyn Error + Send + Sync>;

use mtls_core::{BundleSet, TrustDomain, X509Bundle, X509Svid};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, ExtendedKeyUsagePurpose, IsCa, Issuer,
    KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

pub(crate) struct DevCa {
    trust_domain: TrustDomain,
    root: CertificateDer<'static>,
    issuer: Issuer<'static, KeyPair>,
}

fn random_serial() -> Result<SerialNumber, BoxError> {
    let mut bytes = [0u8; 16];
    mtls_core::default_crypto_provider()
        .secure_random
        .fill(&mut bytes)
        .map_err(|_| "no randomness")?;
    bytes[0] &= 0x7f;
    Ok(SerialNumber::from_slice(&bytes))
}

impl DevCa {
    pub(crate) fn new(trust_domain: &TrustDomain) -> Result<Self, BoxError> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(
            rcgen::DnType::CommonName,
            format!("DEVELOPMENT root for {trust_domain}"),
        );
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.subject_alt_names = vec![SanType::URI(trust_domain.id().as_str().try_into()?)];
        params.serial_number = Some(random_serial()?);
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::minutes(5);
        params.not_after = now + time::Duration::days(1);
        let root = params.self_signed(&key)?.der().clone();
        Ok(Self {
            trust_domain: trust_domain.clone(),
            root,
            issuer: Issuer::new(params, key),
        })
    }

    pub(crate) fn bundle_set(&self) -> Result<BundleSet, BoxError> {
        let bundle = X509Bundle::from_authorities(self.trust_domain.clone(), [self.root.clone()])?;
        Ok(BundleSet::from(bundle))
    }

    /// A one-hour X.509-SVID for `id`.
    pub(crate) fn svid(&self, id: &str) -> Result<X509Svid, BoxError> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.subject_alt_names = vec![SanType::URI(id.try_into()?)];
        params.serial_number = Some(random_serial()?);
        params.use_authority_key_identifier_extension = true;
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::minutes(5);
        params.not_after = now + time::Duration::hours(1);
        let leaf = params.signed_by(&key, &self.issuer)?.der().clone();
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        Ok(X509Svid::new(vec![leaf], key)?)
    }
}
