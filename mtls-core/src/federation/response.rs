//! Reading a bundle endpoint's response body: the SPIFFE bundle, with the
//! checks a fetched bundle adds to [`SpiffeBundle::from_jwks`].

use serde_json::Value;

use super::FederationError;
use crate::bundle::SpiffeBundle;
use crate::id::TrustDomain;

/// Reads the body of a bundle endpoint's response as the SPIFFE bundle of
/// `trust_domain` (SPIFFE_Federation.md 5.2.1.4 and 5.2.2.4): everything
/// [`SpiffeBundle::from_jwks`] checks (JSON, `keys` present, authorities
/// that are CA certificates, typed JWT authorities, at most
/// [`MAX_BUNDLE_BYTES`](crate::MAX_BUNDLE_BYTES)), and, because a fetched
/// document is another party's:
///
/// - an `x509-svid` entry whose `x5c` holds more than one certificate is
///   refused ([`FederationError::MultipleCertificates`]), where a local
///   file's extra values are ignored;
/// - an authority carrying the SPIFFE ID of another trust domain is
///   refused ([`FederationError::ForeignTrustDomain`]): the bundle says it
///   is another trust domain's.
///
/// ```
/// use mtls_core::federation::{parse_bundle, FederationError};
/// use mtls_core::TrustDomain;
///
/// let td = TrustDomain::from_static("partner.example");
/// let bundle = parse_bundle(&td, br#"{"keys": [], "spiffe_sequence": 3}"#)?;
/// assert_eq!(bundle.sequence(), Some(3));
/// assert!(matches!(parse_bundle(&td, b"{}"), Err(FederationError::Bundle { .. })));
/// # Ok::<(), FederationError>(())
/// ```
pub fn parse_bundle(
    trust_domain: &TrustDomain,
    body: &[u8],
) -> Result<SpiffeBundle, FederationError> {
    let bundle = SpiffeBundle::from_jwks(trust_domain.clone(), body).map_err(|source| {
        FederationError::Bundle {
            trust_domain: trust_domain.clone(),
            source,
        }
    })?;
    // from_jwks accepted the document, so it is a JSON object with a
    // `keys` array; read it again for what from_jwks lets through.
    let json = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    if let Ok(Value::Object(doc)) = serde_json::from_slice::<Value>(json) {
        if let Some(Value::Array(keys)) = doc.get("keys") {
            for (index, key) in keys.iter().enumerate() {
                if key.get("use").and_then(Value::as_str) != Some("x509-svid") {
                    continue;
                }
                if let Some(Value::Array(x5c)) = key.get("x5c") {
                    if x5c.len() > 1 {
                        return Err(FederationError::MultipleCertificates {
                            trust_domain: trust_domain.clone(),
                            index,
                            count: x5c.len(),
                        });
                    }
                }
            }
        }
    }
    for (index, der) in bundle.x509().authorities().iter().enumerate() {
        // A URI SAN that is no SPIFFE ID says nothing of the trust domain.
        let id = crate::x509::authority_spiffe_id(der, index).ok().flatten();
        if let Some(spiffe_id) = id {
            if spiffe_id.trust_domain() != trust_domain {
                return Err(FederationError::ForeignTrustDomain {
                    trust_domain: trust_domain.clone(),
                    index,
                    spiffe_id,
                });
            }
        }
    }
    Ok(bundle)
}
