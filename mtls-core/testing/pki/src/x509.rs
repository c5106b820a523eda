//! Reading issued certificates back with x509-parser.
//!
//! ```
//! use mtls_testing::{dns_names, TestCa};
//!
//! let leaf = TestCa::root("example.org").leaf("spiffe://example.org/web");
//! let (_, cert) = x509_parser::parse_x509_certificate(&leaf.chain[0]).unwrap();
//! assert!(dns_names(&cert).is_empty());
//! ```

use x509_parser::extensions::GeneralName;
use x509_parser::prelude::X509Certificate;

/// The DNS names in `cert`'s subjectAltName, in order; panics when the
/// certificate has no subjectAltName or an invalid one.
pub fn dns_names(cert: &X509Certificate<'_>) -> Vec<String> {
    cert.subject_alternative_name()
        .unwrap()
        .expect("a subjectAltName extension")
        .value
        .general_names
        .iter()
        .filter_map(|n| match n {
            GeneralName::DNSName(d) => Some((*d).to_owned()),
            _ => None,
        })
        .collect()
}
