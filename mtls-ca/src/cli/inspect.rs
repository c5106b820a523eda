//! `mtls-ca inspect`: what a certificate holds, and whether it has the
//! shape of an X.509-SVID (X509-SVID.md sections 2, 3.2, 4.1, 4.3).

use std::fmt::Write as _;

use mtls_core::SpiffeId;
use serde::Serialize;
use x509_parser::extensions::{ExtendedKeyUsage, GeneralName, KeyUsage};
use x509_parser::prelude::{FromDer, X509Certificate};

use super::files::{self, print};
use super::{Failure, InspectArgs};
use crate::csr::quote;

/// Lowercase hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// Seconds since the Unix epoch as RFC 3339 UTC.
pub(crate) fn rfc3339(secs: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| format!("{secs} seconds since the Unix epoch"))
}

/// The outcome of a set of shape rules: valid, or the rules that fail.
#[derive(Debug, Serialize)]
struct Shape {
    valid: bool,
    problems: Vec<String>,
}

impl Shape {
    fn from_problems(problems: Vec<String>) -> Self {
        Self {
            valid: problems.is_empty(),
            problems,
        }
    }
}

#[derive(Debug, Serialize)]
struct Report {
    /// The SPIFFE ID: the first URI SAN that is a valid SPIFFE ID.
    spiffe_id: Option<String>,
    uri_sans: Vec<String>,
    dns_sans: Vec<String>,
    serial: String,
    not_before: String,
    not_after: String,
    subject: String,
    issuer: String,
    public_key: String,
    /// Absent: no keyUsage extension.
    key_usage: Option<Vec<&'static str>>,
    key_usage_critical: Option<bool>,
    /// Absent: no extendedKeyUsage extension.
    extended_key_usage: Option<Vec<String>>,
    is_ca: bool,
    path_len_constraint: Option<u32>,
    /// The X.509-SVID leaf rules.
    svid_leaf: Shape,
    /// The X.509-SVID signing certificate rules.
    svid_signing_certificate: Shape,
    /// How many certificates the file holds (the first is inspected).
    certificates_in_file: usize,
}

pub(crate) fn run(a: InspectArgs) -> Result<(), Failure> {
    let certs = files::read_certificates(&a.cert, "certificate")?;
    let Some(first) = certs.first() else {
        return Err(Failure::failed("no certificate"));
    };
    let report = match X509Certificate::from_der(first) {
        Ok(([], cert)) => inspect(&cert, certs.len()),
        Ok(_) => Err("trailing data after the certificate".to_owned()),
        Err(e) => Err(e.to_string()),
    }
    .map_err(|e| {
        Failure::failed(format!(
            "{}: not a valid X.509 certificate: {e}",
            a.cert.display()
        ))
    })?;
    if a.json {
        let json = serde_json::to_string_pretty(&report)
            .map_err(|e| Failure::failed(format!("cannot encode JSON: {e}")))?;
        print(&format!("{json}\n"))
    } else {
        print(&text(&report))
    }
}

fn inspect(cert: &X509Certificate<'_>, count: usize) -> Result<Report, String> {
    let san = cert
        .subject_alternative_name()
        .map_err(|e| format!("subjectAltName: {e}"))?;
    let mut uri_sans = Vec::new();
    let mut dns_sans = Vec::new();
    let mut undecodable_san = false;
    for name in san.iter().flat_map(|s| s.value.general_names.iter()) {
        match name {
            GeneralName::URI(u) => uri_sans.push((*u).to_owned()),
            GeneralName::DNSName(d) => dns_sans.push((*d).to_owned()),
            GeneralName::Invalid(_, _) => undecodable_san = true,
            _ => {}
        }
    }
    let spiffe_id = uri_sans.iter().find_map(|u| SpiffeId::new(u).ok());

    let bc = cert
        .basic_constraints()
        .map_err(|e| format!("basicConstraints: {e}"))?;
    let is_ca = bc.as_ref().is_some_and(|bc| bc.value.ca);
    let ku = cert.key_usage().map_err(|e| format!("keyUsage: {e}"))?;
    let eku = cert
        .extended_key_usage()
        .map_err(|e| format!("extendedKeyUsage: {e}"))?;
    let ku_value = ku.as_ref().map(|k| k.value);

    let mut leaf = Vec::new();
    if undecodable_san {
        leaf.push("subjectAltName has an undecodable name".to_owned());
    }
    match uri_sans.as_slice() {
        [] => leaf.push("no URI SAN: an X.509-SVID has exactly one, its SPIFFE ID".to_owned()),
        [uri] => match SpiffeId::new(uri) {
            Err(e) => leaf.push(format!("the URI SAN {} is not a SPIFFE ID: {e}", quote(uri))),
            Ok(id) if id.is_trust_domain_id() => leaf.push(format!(
                "the SPIFFE ID {id} has no path; a leaf's SPIFFE ID needs one (a trust domain ID is for signing certificates)"
            )),
            Ok(_) => {}
        },
        many => leaf.push(format!(
            "{} URI SANs; an X.509-SVID has exactly one",
            many.len()
        )),
    }
    if is_ca {
        leaf.push("basicConstraints cA is true: a CA certificate, not a leaf".to_owned());
    }
    match ku_value {
        None => leaf.push("no keyUsage extension; a leaf needs digitalSignature".to_owned()),
        Some(k) => {
            if !k.digital_signature() {
                leaf.push("keyUsage lacks digitalSignature".to_owned());
            }
            if k.key_cert_sign() {
                leaf.push("keyUsage has keyCertSign, which a leaf must not".to_owned());
            }
            if k.crl_sign() {
                leaf.push("keyUsage has cRLSign, which a leaf must not".to_owned());
            }
        }
    }

    let mut signing = Vec::new();
    if !is_ca {
        signing.push("basicConstraints cA is not true".to_owned());
    }
    match ku_value {
        None => signing
            .push("no keyUsage extension; a signing certificate needs keyCertSign".to_owned()),
        Some(k) if !k.key_cert_sign() => signing.push("keyUsage lacks keyCertSign".to_owned()),
        Some(_) => {}
    }
    if let Some(id) = spiffe_id.as_ref().filter(|id| !id.is_trust_domain_id()) {
        signing.push(format!(
            "its SPIFFE ID {id} has a path; a signing certificate's has none"
        ));
    }

    let validity = cert.validity();
    Ok(Report {
        spiffe_id: spiffe_id.map(|id| id.to_string()),
        uri_sans,
        dns_sans,
        serial: hex(cert.raw_serial()),
        not_before: rfc3339(validity.not_before.timestamp()),
        not_after: rfc3339(validity.not_after.timestamp()),
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        public_key: public_key(cert),
        key_usage: ku_value.map(key_usage_names),
        key_usage_critical: ku.as_ref().map(|k| k.critical),
        extended_key_usage: eku.map(|e| eku_names(e.value)),
        is_ca,
        path_len_constraint: bc.and_then(|bc| bc.value.path_len_constraint),
        svid_leaf: Shape::from_problems(leaf),
        svid_signing_certificate: Shape::from_problems(signing),
        certificates_in_file: count,
    })
}

fn key_usage_names(k: &KeyUsage) -> Vec<&'static str> {
    [
        (k.digital_signature(), "digitalSignature"),
        (k.non_repudiation(), "nonRepudiation"),
        (k.key_encipherment(), "keyEncipherment"),
        (k.data_encipherment(), "dataEncipherment"),
        (k.key_agreement(), "keyAgreement"),
        (k.key_cert_sign(), "keyCertSign"),
        (k.crl_sign(), "cRLSign"),
        (k.encipher_only(), "encipherOnly"),
        (k.decipher_only(), "decipherOnly"),
    ]
    .into_iter()
    .filter(|(set, _)| *set)
    .map(|(_, name)| name)
    .collect()
}

fn eku_names(e: &ExtendedKeyUsage<'_>) -> Vec<String> {
    let mut names: Vec<String> = [
        (e.server_auth, "serverAuth"),
        (e.client_auth, "clientAuth"),
        (e.code_signing, "codeSigning"),
        (e.email_protection, "emailProtection"),
        (e.time_stamping, "timeStamping"),
        (e.ocsp_signing, "OCSPSigning"),
        (e.any, "anyExtendedKeyUsage"),
    ]
    .into_iter()
    .filter(|(set, _)| *set)
    .map(|(_, name)| name.to_owned())
    .collect();
    names.extend(e.other.iter().map(|oid| oid.to_id_string()));
    names
}

fn public_key(cert: &X509Certificate<'_>) -> String {
    let spki = cert.public_key();
    let alg = spki.algorithm.algorithm.to_id_string();
    match alg.as_str() {
        "1.2.840.10045.2.1" => {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .map(|oid| oid.to_id_string());
            match curve.as_deref() {
                Some("1.2.840.10045.3.1.7") => "ECDSA P-256".to_owned(),
                Some("1.3.132.0.34") => "ECDSA P-384".to_owned(),
                Some("1.3.132.0.35") => "ECDSA P-521".to_owned(),
                Some(other) => format!("ECDSA (curve {other})"),
                None => "ECDSA (unknown curve)".to_owned(),
            }
        }
        "1.3.101.112" => "Ed25519".to_owned(),
        "1.3.101.113" => "Ed448".to_owned(),
        "1.2.840.113549.1.1.1" => match spki.parsed() {
            Ok(key) => format!("RSA {} bits", key.key_size()),
            Err(_) => "RSA".to_owned(),
        },
        _ => alg,
    }
}

fn text(r: &Report) -> String {
    let list = |v: &[String]| {
        if v.is_empty() {
            "(none)".to_owned()
        } else {
            v.join(", ")
        }
    };
    let or_empty = |s: &str| {
        if s.is_empty() {
            "(empty)".to_owned()
        } else {
            s.to_owned()
        }
    };
    let shape = |s: &Shape| {
        if s.valid {
            "yes".to_owned()
        } else {
            format!("no: {}", s.problems.join("; "))
        }
    };
    let mut out = String::new();
    let mut line = |label: &str, value: String| {
        let _ = writeln!(out, "{label:<26}{value}");
    };
    line(
        "SPIFFE ID:",
        r.spiffe_id.clone().unwrap_or_else(|| "(none)".to_owned()),
    );
    line("URI SANs:", list(&r.uri_sans));
    line("DNS SANs:", list(&r.dns_sans));
    line("Serial:", r.serial.clone());
    line("Not before:", r.not_before.clone());
    line("Not after:", r.not_after.clone());
    line("Subject:", or_empty(&r.subject));
    line("Issuer:", or_empty(&r.issuer));
    line("Public key:", r.public_key.clone());
    line(
        "Key usage:",
        match (&r.key_usage, r.key_usage_critical) {
            (None, _) => "(no extension)".to_owned(),
            (Some(k), critical) => {
                let names = if k.is_empty() {
                    "(empty)".to_owned()
                } else {
                    k.join(", ")
                };
                if critical == Some(true) {
                    format!("{names} (critical)")
                } else {
                    names
                }
            }
        },
    );
    line(
        "Extended key usage:",
        match &r.extended_key_usage {
            None => "(no extension)".to_owned(),
            Some(e) => list(e),
        },
    );
    line(
        "CA:",
        match (r.is_ca, r.path_len_constraint) {
            (false, _) => "no".to_owned(),
            (true, None) => "yes".to_owned(),
            (true, Some(n)) => format!("yes (path length {n})"),
        },
    );
    line("X.509-SVID leaf:", shape(&r.svid_leaf));
    line(
        "SVID signing certificate:",
        shape(&r.svid_signing_certificate),
    );
    if r.certificates_in_file > 1 {
        line(
            "Note:",
            format!(
                "the file holds {} certificates; the first is shown",
                r.certificates_in_file
            ),
        );
    }
    out
}
