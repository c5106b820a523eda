//! Metric names, recorded through the [`metrics`](https://docs.rs/metrics)
//! facade (no exporter is installed by this crate; `mtls-tower` records
//! its listener and layer metrics the same way).
//!
//! ```
//! // Install any `metrics` recorder (Prometheus, StatsD...) and these
//! // names appear; without one, recording costs next to nothing.
//! assert_eq!(mtls_core::metrics::SVID_REVOKED, "mtls_svid_revoked");
//! ```

/// Gauge, labelled `chain` (the chain file of a `FileSource`): 1 while the
/// CRLs loaded with the SVID revoke it (or an intermediate of its chain),
/// 0 otherwise. The SVID keeps serving until a replacement arrives; peers
/// holding the same CRLs refuse it.
pub const SVID_REVOKED: &str = "mtls_svid_revoked";

/// Counter: new sets of files seen by a `FileSource`, labelled `result`
/// (`loaded`: swapped in; `refused`: the last good set keeps serving).
pub const FILE_SOURCE_UPDATES: &str = "mtls_file_source_updates_total";

/// Counter: verifications that consulted a CRL past its `nextUpdate`,
/// labelled `action` (`applied`: the stale CRL was still applied, the
/// default; `refused`: the peer was refused under
/// [`CrlExpiry::Enforce`](crate::CrlExpiry::Enforce)).
pub const EXPIRED_CRL: &str = "mtls_expired_crl_total";

/// Counter: chain verifications of the TLS verifiers, labelled
/// `intermediates` (`hit`: the leaf's issuer was an intermediate already
/// verified against the bundles and CRLs in force, so only the leaf's
/// signature was checked; `miss`: the whole path was verified; `chain`:
/// the very chain was verified lately against the same bundles and CRLs,
/// and every certificate of it is still valid, so nothing was checked
/// again but the authorizer's answer).
pub const VERIFIED_INTERMEDIATES: &str = "mtls_verify_total";
