//! Signing certificate signing requests.

use mtls_core::SpiffeId;
use rcgen::{PublicKeyData, SubjectPublicKeyInfo};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, CertificateSigningRequestDer};
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::prelude::{FromDer, GeneralName, ParsedExtension};

use crate::authority::CertificateAuthority;
use crate::error::CaError;
use crate::issue::SvidRequest;

/// Largest CSR accepted, in bytes.
pub const MAX_CSR_BYTES: usize = 64 * 1024;

impl CertificateAuthority {
    /// Signs a CSR (PEM or DER) as an X.509-SVID for `request`'s SPIFFE ID.
    ///
    /// The CSR's signature is verified and only its public key is used:
    /// the SPIFFE ID, DNS names and lifetime come from `request`, after the
    /// issuance policy allows them. A CSR that asks for something else (a
    /// CA certificate, another URI, a DNS name the request does not grant)
    /// is refused with [`CaError::CsrMismatch`]. Returns the chain, leaf
    /// first.
    pub fn sign_csr(
        &self,
        csr: &[u8],
        request: &SvidRequest,
    ) -> Result<Vec<CertificateDer<'static>>, CaError> {
        if csr.len() > MAX_CSR_BYTES {
            return Err(CaError::CsrTooLarge {
                len: csr.len(),
                max: MAX_CSR_BYTES,
            });
        }
        let der = match csr.iter().find(|b| !b.is_ascii_whitespace()) {
            Some(b'-') => CertificateSigningRequestDer::from_pem_slice(csr).map_err(|e| {
                CaError::InvalidCsr {
                    reason: format!("malformed PEM: {e}"),
                }
            })?,
            _ => CertificateSigningRequestDer::from(csr.to_vec()),
        };
        let (rest, parsed) =
            X509CertificationRequest::from_der(&der).map_err(|e| CaError::InvalidCsr {
                reason: e.to_string(),
            })?;
        if !rest.is_empty() {
            return Err(CaError::InvalidCsr {
                reason: "trailing data after the CSR".into(),
            });
        }
        // The key rule first: a key the handshake would refuse (RSA-1024, an
        // unsupported curve) is named as such, not as a bad signature.
        mtls_core::check_svid_public_key(parsed.certification_request_info.subject_pki.raw)
            .map_err(|e| CaError::InvalidCsr {
                reason: e.to_string(),
            })?;
        parsed.verify_signature().map_err(|e| CaError::InvalidCsr {
            reason: format!("its signature does not verify: {e}"),
        })?;
        check_requested(&parsed, request)?;
        // Only the public key is used, with the algorithm its own
        // SubjectPublicKeyInfo names. (rcgen's CSR parser takes it from the
        // signature algorithm instead: a P-384 key in a CSR signed with
        // SHA-256, as `openssl req` does by default, became a "P-256" key.)
        let public_key =
            SubjectPublicKeyInfo::from_der(parsed.certification_request_info.subject_pki.raw)
                .map_err(|e| CaError::InvalidCsr {
                    reason: format!("unsupported public key: {e}"),
                })?;
        // The certificate carries the key as rcgen encodes it. A key encoded
        // otherwise (wrong tags, unused bits: x509-parser is lenient) is not
        // DER, and other parsers may read another key from it: refuse it
        // rather than certify our reading of it.
        if public_key.subject_public_key_info() != parsed.certification_request_info.subject_pki.raw
        {
            return Err(CaError::InvalidCsr {
                reason: "its public key is not DER-encoded".into(),
            });
        }
        self.policy.check(&request.spiffe_id, request.ttl)?;
        let chain = self.sign_leaf(request, &public_key, "SVID from CSR")?;
        Self::check_leaf(&chain, request, "SVID from CSR")?;
        Ok(chain)
    }
}

/// Refuses a CSR that asks for more than `request` grants.
fn check_requested(
    csr: &X509CertificationRequest<'_>,
    request: &SvidRequest,
) -> Result<(), CaError> {
    let mismatch = |asked: String| CaError::CsrMismatch {
        id: request.spiffe_id.clone(),
        asked,
    };
    let Some(extensions) = csr.requested_extensions() else {
        return Ok(());
    };
    for ext in extensions {
        match ext {
            ParsedExtension::BasicConstraints(bc) if bc.ca => {
                return Err(mismatch("a CA certificate".into()));
            }
            ParsedExtension::SubjectAlternativeName(san) => {
                for name in &san.general_names {
                    match name {
                        GeneralName::URI(uri) => {
                            if SpiffeId::new(uri).ok().as_ref() != Some(&request.spiffe_id) {
                                return Err(mismatch(format!("URI {}", quote(uri))));
                            }
                        }
                        GeneralName::DNSName(dns) => {
                            if !request
                                .dns_names
                                .iter()
                                .any(|d| d.eq_ignore_ascii_case(dns))
                            {
                                return Err(mismatch(format!("DNS name {}", quote(dns))));
                            }
                        }
                        other => {
                            return Err(mismatch(format!("a SAN of another type ({other:?})")))
                        }
                    }
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// `s` escaped and truncated for printing, between double quotes.
pub(crate) fn quote(s: &str) -> String {
    format!("\"{}\"", mtls_core::escape_untrusted(s))
}
