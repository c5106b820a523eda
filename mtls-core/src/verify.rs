//! X.509-SVID verification (X509-SVID.md section 5).

use std::sync::Arc;
use std::time::SystemTime;

use rustls::pki_types::SignatureVerificationAlgorithm;
use rustls_pki_types::{CertificateDer, UnixTime};
use webpki::{
    ExpirationPolicy, KeyUsage, RevocationCheckDepth, RevocationOptionsBuilder, UnknownStatusPolicy,
};

use crate::bundle::BundleSet;
use crate::crl::{CrlExpiry, CrlSet};
use crate::id::{SpiffeId, SpiffeIdError, TrustDomain};
use crate::limits::{MAX_CERTIFICATE_BYTES, MAX_CHAIN_LEN};
use crate::peer::PeerIdentity;
use crate::time_fmt::{pki_from_system_time, system_time_from_pki, Rfc3339};
use crate::x509::X509Error;

/// The role the peer plays in the TLS connection, which decides the
/// extended key usage its leaf must allow if it restricts any
/// (X509-SVID.md section 4.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PeerRole {
    /// The peer is a TLS client: `id-kp-clientAuth`.
    Client,
    /// The peer is a TLS server: `id-kp-serverAuth`.
    Server,
}

/// Verifies a peer's X.509-SVID chain (leaf first) at time `now`.
///
/// In order, as X509-SVID.md section 5 describes:
///
/// 1. the chain is non-empty, at most [`MAX_CHAIN_LEN`] certificates;
/// 2. the leaf has exactly one URI SAN, a valid SPIFFE ID with a non-empty
///    path (DNS SANs beside it are allowed), basicConstraints cA false or
///    absent, and keyUsage with digitalSignature but neither keyCertSign nor
///    cRLSign;
/// 3. the leaf is valid at `now`;
/// 4. RFC 5280 path validation (rustls-webpki) against the bundle of the
///    leaf's own trust domain only, with the extended key usage of `role`,
///    and against `crls` for every certificate of the path;
/// 5. every intermediate in the path is a signing certificate: cA true,
///    keyCertSign, and a SPIFFE ID without path if it has one.
///
/// Each failure is its own [`VerifyError`] variant, with context. The
/// signature algorithms are those of the default crypto provider.
///
/// ```
/// use std::time::SystemTime;
/// use mtls_core::{verify, BundleSet, CrlSet, PeerRole, VerifyError};
///
/// let err = verify(&[], &BundleSet::new(), SystemTime::now(), &CrlSet::new(), PeerRole::Client);
/// assert!(matches!(err, Err(VerifyError::EmptyChain)));
/// ```
pub fn verify(
    chain: &[CertificateDer<'_>],
    bundles: &BundleSet,
    now: SystemTime,
    crls: &CrlSet,
    role: PeerRole,
) -> Result<PeerIdentity, VerifyError> {
    let provider = crate::provider::default_crypto_provider();
    let Some((leaf, intermediates)) = chain.split_first() else {
        return Err(VerifyError::EmptyChain);
    };
    verify_with_expiry(
        leaf,
        intermediates,
        bundles,
        crls,
        CrlExpiry::default(),
        pki_from_system_time(now),
        role,
        provider.signature_verification_algorithms.all,
        None,
    )
    .map(|verified| verified.identity)
}

/// An intermediate whose path to a trust anchor was already verified (see
/// `tls/intermediates.rs`): a leaf it issued can be verified with it as the
/// anchor, sparing the signature checks above it.
pub(crate) struct TrustedIssuer<'a> {
    /// The trust domain whose bundle its path was verified against.
    pub(crate) trust_domain: &'a TrustDomain,
    /// The intermediate, as a trust anchor (its own name constraints kept).
    pub(crate) anchor: &'a rustls_pki_types::TrustAnchor<'static>,
    /// When every intermediate of its path is valid.
    pub(crate) not_before: SystemTime,
    pub(crate) not_after: SystemTime,
}

/// A verified chain, and what a cache of verified intermediates needs.
pub(crate) struct VerifiedChain {
    pub(crate) identity: PeerIdentity,
    /// When the last certificate of the verified path became valid.
    pub(crate) valid_from: SystemTime,
    /// When the first certificate of the verified path expires.
    pub(crate) valid_until: SystemTime,
    /// The leaf's issuer, when the path through it may be trusted again for
    /// other leaves: its index among the intermediates and the validity
    /// window of the path's intermediates. `None` when the leaf's issuer is
    /// a trust anchor, when a name constraint (which depends on the leaf's
    /// names) is on the path, or when the path was itself a cache hit.
    pub(crate) issuer: Option<(usize, SystemTime, SystemTime)>,
    /// Whether the leaf verified under a [`TrustedIssuer`].
    pub(crate) from_cache: bool,
}

/// Verification as [`verify`] describes, with the algorithms given, also
/// returning when the first certificate of the verified path
/// expires (the trust anchor aside, as rustls-webpki does).
///
/// With `trusted`, a leaf of its trust domain, checked within its window, is
/// first verified with it as the only anchor; should that fail, the whole
/// chain is verified as usual, so the answer is the one full verification
/// gives.
#[allow(clippy::too_many_arguments)] // one internal caller besides `verify`
pub(crate) fn verify_with_expiry(
    leaf: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'_>],
    bundles: &BundleSet,
    crls: &CrlSet,
    crl_expiry: CrlExpiry,
    now: UnixTime,
    role: PeerRole,
    algs: &[&dyn SignatureVerificationAlgorithm],
    trusted: Option<&TrustedIssuer<'_>>,
) -> Result<VerifiedChain, VerifyError> {
    let len = intermediates.len() + 1;
    if len > MAX_CHAIN_LEN {
        return Err(VerifyError::ChainTooLong { len });
    }
    for (index, der) in std::iter::once(leaf).chain(intermediates).enumerate() {
        if der.len() > MAX_CERTIFICATE_BYTES {
            return Err(VerifyError::CertificateTooLarge {
                index,
                len: der.len(),
            });
        }
    }
    let info = crate::x509::inspect_leaf(leaf)?;
    let id = info.spiffe_id;
    let now_sys = system_time_from_pki(now);
    if now_sys < info.not_before {
        return Err(VerifyError::NotYetValid {
            id,
            not_before: info.not_before,
            now: now_sys,
        });
    }
    if now_sys > info.not_after {
        return Err(VerifyError::Expired {
            id,
            not_after: info.not_after,
            now: now_sys,
        });
    }
    let Some(bundle) = bundles.get(id.trust_domain().name()) else {
        return Err(VerifyError::NoBundle {
            trust_domain: id.trust_domain().clone(),
            id,
        });
    };
    let ee =
        webpki::EndEntityCert::try_from(leaf).map_err(|e| VerifyError::MalformedCertificate {
            index: 0,
            reason: format!("{e:?}"),
        })?;
    let crl_refs: Vec<&webpki::CertRevocationList<'_>> =
        crls.webpki_crls().iter().map(|c| &**c).collect();
    let revocation = match RevocationOptionsBuilder::new(&crl_refs) {
        Ok(builder) => Some(
            builder
                .with_depth(RevocationCheckDepth::Chain)
                .with_status_policy(UnknownStatusPolicy::Allow)
                .with_expiration_policy(match crl_expiry {
                    CrlExpiry::Apply => ExpirationPolicy::Ignore,
                    CrlExpiry::Enforce => ExpirationPolicy::Enforce,
                })
                .build(),
        ),
        Err(_) => None, // no CRLs
    };
    let usage = match role {
        PeerRole::Client => KeyUsage::client_auth(),
        PeerRole::Server => KeyUsage::server_auth(),
    };
    let owned_chain = || -> Arc<[CertificateDer<'static>]> {
        std::iter::once(leaf)
            .chain(intermediates)
            .map(|c| c.clone().into_owned())
            .collect()
    };
    // A CRL past its `nextUpdate` is reported (or refused) by the full
    // verification, which also knows whose CRL it is: no shortcut then.
    let stale_crl = crls.next_update().is_some_and(|first| first <= now_sys);
    if let Some(trusted) = trusted.filter(|t| {
        !stale_crl
            && t.trust_domain == id.trust_domain()
            && t.not_before <= now_sys
            && now_sys <= t.not_after
    }) {
        let hit = ee.verify_for_usage(
            algs,
            std::slice::from_ref(trusted.anchor),
            &[],
            now,
            usage,
            revocation,
            None,
        );
        if hit.is_ok() {
            let valid_until = info.not_after.min(trusted.not_after);
            return Ok(VerifiedChain {
                identity: PeerIdentity::new(id, owned_chain(), valid_until, info.not_after),
                valid_from: info.not_before.max(trusted.not_before),
                valid_until,
                issuer: None,
                from_cache: true,
            });
        }
    }
    let path = ee
        .verify_for_usage(
            algs,
            bundle.trust_anchors(),
            intermediates,
            now,
            usage,
            revocation,
            None,
        )
        .map_err(|e| {
            let e = map_webpki_error(e, &id, now_sys, role);
            if matches!(e, VerifyError::CrlExpired { .. }) {
                ::metrics::counter!(crate::metrics::EXPIRED_CRL, "action" => "refused")
                    .increment(1);
            }
            e
        })?;
    if crl_expiry == CrlExpiry::Apply && stale_crl {
        // Some CRL is stale: say so if one of this path's issuers is its
        // issuer. Only then is the path walked; otherwise this costs one
        // comparison.
        let issuers: Vec<&[u8]> = std::iter::once(ee.issuer())
            .chain(path.intermediate_certificates().map(|c| c.issuer()))
            .collect();
        if crls.expired_for(&issuers, now_sys) {
            ::metrics::counter!(crate::metrics::EXPIRED_CRL, "action" => "applied").increment(1);
        }
    }
    let mut path_not_after = info.not_after;
    let mut path_not_before = info.not_before;
    // The window in which every intermediate of the path is valid, and
    // whether the path may be trusted for other leaves.
    let mut window = (SystemTime::UNIX_EPOCH, SystemTime::UNIX_EPOCH);
    let mut cacheable = path.anchor().name_constraints.is_none();
    let mut issuer_index = None;
    for (depth, cert) in path.intermediate_certificates().enumerate() {
        let der = cert.der();
        let position = intermediates.iter().position(|c| *c == der);
        let signing = crate::x509::check_signing_cert_memo(&der, position.map_or(0, |i| i + 1))?;
        path_not_after = path_not_after.min(signing.not_after);
        path_not_before = path_not_before.max(signing.not_before);
        cacheable &= !signing.name_constraints;
        if depth == 0 {
            issuer_index = position;
            window = (signing.not_before, signing.not_after);
        } else {
            window = (
                window.0.max(signing.not_before),
                window.1.min(signing.not_after),
            );
        }
    }
    Ok(VerifiedChain {
        identity: PeerIdentity::new(id, owned_chain(), path_not_after, info.not_after),
        valid_from: path_not_before,
        valid_until: path_not_after,
        issuer: issuer_index
            .filter(|_| cacheable)
            .map(|index| (index, window.0, window.1)),
        from_cache: false,
    })
}

#[allow(deprecated)] // RequiredEkuNotFound: older rustls-webpki releases still return it
fn map_webpki_error(
    e: webpki::Error,
    id: &SpiffeId,
    now: SystemTime,
    role: PeerRole,
) -> VerifyError {
    use webpki::Error as E;
    let id = id.clone();
    match e {
        E::UnknownIssuer => VerifyError::UntrustedIssuer {
            trust_domain: id.trust_domain().clone(),
            id,
        },
        E::CertRevoked => VerifyError::Revoked { id },
        E::CrlExpired { next_update, .. } => VerifyError::CrlExpired {
            id,
            next_update: system_time_from_pki(next_update),
            now,
        },
        E::CertExpired { not_after, .. } => VerifyError::Expired {
            id,
            not_after: system_time_from_pki(not_after),
            now,
        },
        E::CertNotValidYet { not_before, .. } => VerifyError::NotYetValid {
            id,
            not_before: system_time_from_pki(not_before),
            now,
        },
        E::RequiredEkuNotFound | E::RequiredEkuNotFoundContext(_) => {
            VerifyError::WrongExtendedKeyUsage { id, role }
        }
        E::InvalidSignatureForPublicKey | E::InvalidCrlSignatureForPublicKey => {
            VerifyError::BadSignature { id }
        }
        other => VerifyError::Chain {
            id,
            reason: format!("{other:?}"),
        },
    }
}

/// Why a peer's chain was rejected.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The peer presented no certificate.
    #[error("x509svid: the chain is empty")]
    EmptyChain,
    /// The chain has more than [`MAX_CHAIN_LEN`] certificates.
    #[error("x509svid: the chain has {len} certificates, more than the {MAX_CHAIN_LEN} allowed")]
    ChainTooLong {
        /// The number of certificates.
        len: usize,
    },
    /// A certificate is larger than [`MAX_CERTIFICATE_BYTES`].
    #[error("x509svid: certificate #{index} is {len} bytes, larger than the {MAX_CERTIFICATE_BYTES} bytes allowed")]
    CertificateTooLarge {
        /// Position in the chain (0 is the leaf).
        index: usize,
        /// Its length.
        len: usize,
    },
    /// A certificate could not be parsed.
    #[error("x509svid: certificate #{index} is malformed: {reason}")]
    MalformedCertificate {
        /// Position in the chain (0 is the leaf).
        index: usize,
        /// What the parser said.
        reason: String,
    },
    /// The leaf has no URI SAN.
    #[error("x509svid: the leaf has no URI SAN, so no SPIFFE ID")]
    NoUriSan,
    /// The leaf has more than one URI SAN (X509-SVID.md section 2).
    #[error("x509svid: the leaf has {count} URI SANs; an SVID has exactly one")]
    MultipleUriSans {
        /// The number of URI SANs.
        count: usize,
    },
    /// The leaf's URI SAN is not a valid SPIFFE ID.
    #[error("x509svid: the leaf's URI SAN \"{uri}\" is not a valid SPIFFE ID")]
    InvalidSpiffeId {
        /// The URI, escaped and truncated.
        uri: String,
        /// Why it is not a SPIFFE ID.
        source: SpiffeIdError,
    },
    /// The leaf's SPIFFE ID has no path (X509-SVID.md section 2).
    #[error("x509svid: the leaf's SPIFFE ID {id} has no path; only signing certificates carry a trust domain ID")]
    TrustDomainIdAsLeaf {
        /// The leaf's ID.
        id: SpiffeId,
    },
    /// The leaf's public key is one no TLS handshake would accept (an RSA
    /// key outside 2048..=8192 bits, an unsupported curve or algorithm):
    /// refused here too, so that offline verification (`mtls-ca verify`)
    /// and loading our own SVID apply the same minimums as the handshake.
    #[error("x509svid: leaf {id} has an unacceptable public key: {reason}")]
    UnacceptableKey {
        /// The leaf's ID.
        id: SpiffeId,
        /// What is wrong with the key (e.g. "RSA key of 1024 bits; 2048 to 8192 required").
        reason: String,
    },
    /// The leaf is a CA (X509-SVID.md section 4.1).
    #[error("x509svid: leaf {id} has basicConstraints cA=true")]
    LeafIsCa {
        /// The leaf's ID.
        id: SpiffeId,
    },
    /// The leaf has no keyUsage extension (X509-SVID.md section 4.3).
    #[error("x509svid: leaf {id} has no keyUsage extension")]
    LeafMissingKeyUsage {
        /// The leaf's ID.
        id: SpiffeId,
    },
    /// The leaf's keyUsage lacks digitalSignature (X509-SVID.md section 4.3).
    #[error("x509svid: leaf {id} keyUsage lacks digitalSignature")]
    LeafMissingDigitalSignature {
        /// The leaf's ID.
        id: SpiffeId,
    },
    /// The leaf's keyUsage has keyCertSign (X509-SVID.md section 4.3).
    #[error("x509svid: leaf {id} keyUsage has keyCertSign")]
    LeafHasKeyCertSign {
        /// The leaf's ID.
        id: SpiffeId,
    },
    /// The leaf's keyUsage has cRLSign (X509-SVID.md section 4.3).
    #[error("x509svid: leaf {id} keyUsage has cRLSign")]
    LeafHasCrlSign {
        /// The leaf's ID.
        id: SpiffeId,
    },
    /// A certificate of the chain is not valid yet.
    #[error("x509svid: the chain of {id} is not valid before {}, now {}", Rfc3339(*not_before), Rfc3339(*now))]
    NotYetValid {
        /// The leaf's ID.
        id: SpiffeId,
        /// When the certificate becomes valid.
        not_before: SystemTime,
        /// The verification time.
        now: SystemTime,
    },
    /// A certificate of the chain has expired.
    #[error("x509svid: the chain of {id} expired at {}, now {}", Rfc3339(*not_after), Rfc3339(*now))]
    Expired {
        /// The leaf's ID.
        id: SpiffeId,
        /// When the certificate expired.
        not_after: SystemTime,
        /// The verification time.
        now: SystemTime,
    },
    /// No bundle is loaded for the leaf's trust domain.
    #[error("x509svid: no bundle for trust domain {trust_domain} (peer {id})")]
    NoBundle {
        /// The leaf's ID.
        id: SpiffeId,
        /// Its trust domain.
        trust_domain: TrustDomain,
    },
    /// The chain does not lead to an authority of the leaf's trust domain.
    #[error("x509svid: {id} is not signed by an authority of trust domain {trust_domain}")]
    UntrustedIssuer {
        /// The leaf's ID.
        id: SpiffeId,
        /// Its trust domain.
        trust_domain: TrustDomain,
    },
    /// A signature in the chain does not verify.
    #[error("x509svid: a signature in the chain of {id} is invalid")]
    BadSignature {
        /// The leaf's ID.
        id: SpiffeId,
    },
    /// A certificate of the chain is revoked by a CRL.
    #[error("x509svid: a certificate in the chain of {id} is revoked")]
    Revoked {
        /// The leaf's ID.
        id: SpiffeId,
    },
    /// A CRL of an issuer in the chain is past its `nextUpdate`, and the
    /// verifier was built with [`CrlExpiry::Enforce`]: the revocation
    /// status of the chain is unknown, so it is refused.
    #[error("x509svid: the CRL of an issuer in the chain of {id} expired at {} (now {}); refused under CrlExpiry::Enforce", Rfc3339(*next_update), Rfc3339(*now))]
    CrlExpired {
        /// The leaf's ID.
        id: SpiffeId,
        /// The CRL's `nextUpdate`.
        next_update: SystemTime,
        /// The verification time.
        now: SystemTime,
    },
    /// The leaf's extended key usage does not allow its role.
    #[error("x509svid: leaf {id} extendedKeyUsage does not allow TLS {}", match role { PeerRole::Client => "client authentication", PeerRole::Server => "server authentication" })]
    WrongExtendedKeyUsage {
        /// The leaf's ID.
        id: SpiffeId,
        /// The role it was verified for.
        role: PeerRole,
    },
    /// An intermediate of the path is not a valid signing certificate.
    #[error("x509svid: certificate #{index} is not a valid signing certificate: {reason}")]
    BadSigningCertificate {
        /// Position in the chain.
        index: usize,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Path validation failed for another reason.
    #[error("x509svid: path validation of {id} failed: {reason}")]
    Chain {
        /// The leaf's ID.
        id: SpiffeId,
        /// rustls-webpki's error.
        reason: String,
    },
}

impl From<X509Error> for VerifyError {
    fn from(e: X509Error) -> Self {
        match e {
            X509Error::MalformedCertificate { index, reason } => {
                Self::MalformedCertificate { index, reason }
            }
            X509Error::NoUriSan => Self::NoUriSan,
            X509Error::MultipleUriSans { count } => Self::MultipleUriSans { count },
            X509Error::InvalidSpiffeId { uri, source } => Self::InvalidSpiffeId { uri, source },
            X509Error::TrustDomainIdAsLeaf { id } => Self::TrustDomainIdAsLeaf { id },
            X509Error::UnacceptableKey { id, reason } => Self::UnacceptableKey { id, reason },
            X509Error::LeafIsCa { id } => Self::LeafIsCa { id },
            X509Error::LeafMissingKeyUsage { id } => Self::LeafMissingKeyUsage { id },
            X509Error::LeafMissingDigitalSignature { id } => {
                Self::LeafMissingDigitalSignature { id }
            }
            X509Error::LeafHasKeyCertSign { id } => Self::LeafHasKeyCertSign { id },
            X509Error::LeafHasCrlSign { id } => Self::LeafHasCrlSign { id },
            X509Error::BadSigningCertificate { index, reason } => {
                Self::BadSigningCertificate { index, reason }
            }
        }
    }
}

impl VerifyError {
    /// The peer's SPIFFE ID, when the error happened after it was read.
    pub fn spiffe_id(&self) -> Option<&SpiffeId> {
        match self {
            Self::TrustDomainIdAsLeaf { id }
            | Self::UnacceptableKey { id, .. }
            | Self::LeafIsCa { id }
            | Self::LeafMissingKeyUsage { id }
            | Self::LeafMissingDigitalSignature { id }
            | Self::LeafHasKeyCertSign { id }
            | Self::LeafHasCrlSign { id }
            | Self::NotYetValid { id, .. }
            | Self::Expired { id, .. }
            | Self::NoBundle { id, .. }
            | Self::UntrustedIssuer { id, .. }
            | Self::BadSignature { id }
            | Self::Revoked { id }
            | Self::CrlExpired { id, .. }
            | Self::WrongExtendedKeyUsage { id, .. }
            | Self::Chain { id, .. } => Some(id),
            _ => None,
        }
    }

    /// A short, stable label for metrics (`untrusted_issuer`, `expired`, ...).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::EmptyChain => "empty_chain",
            Self::ChainTooLong { .. } => "chain_too_long",
            Self::CertificateTooLarge { .. } => "certificate_too_large",
            Self::MalformedCertificate { .. } => "malformed_certificate",
            Self::NoUriSan => "no_uri_san",
            Self::MultipleUriSans { .. } => "multiple_uri_sans",
            Self::InvalidSpiffeId { .. } => "invalid_spiffe_id",
            Self::TrustDomainIdAsLeaf { .. } => "trust_domain_id_as_leaf",
            Self::UnacceptableKey { .. } => "unacceptable_key",
            Self::LeafIsCa { .. } => "leaf_is_ca",
            Self::LeafMissingKeyUsage { .. } => "leaf_missing_key_usage",
            Self::LeafMissingDigitalSignature { .. } => "leaf_missing_digital_signature",
            Self::LeafHasKeyCertSign { .. } => "leaf_has_key_cert_sign",
            Self::LeafHasCrlSign { .. } => "leaf_has_crl_sign",
            Self::NotYetValid { .. } => "not_yet_valid",
            Self::Expired { .. } => "expired",
            Self::NoBundle { .. } => "no_bundle",
            Self::UntrustedIssuer { .. } => "untrusted_issuer",
            Self::BadSignature { .. } => "bad_signature",
            Self::Revoked { .. } => "revoked",
            Self::CrlExpired { .. } => "crl_expired",
            Self::WrongExtendedKeyUsage { .. } => "wrong_extended_key_usage",
            Self::BadSigningCertificate { .. } => "bad_signing_certificate",
            Self::Chain { .. } => "chain",
        }
    }
}
