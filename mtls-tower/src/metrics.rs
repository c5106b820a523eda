//! Metric names, recorded through the `metrics` facade (no exporter is
//! installed by this crate). `docs/observability.md` says how to read them,
//! and `docs/grafana/mtls-dashboard.json` is a dashboard of them.
//!
//! ```
//! use mtls_tower::metrics;
//!
//! assert!(metrics::ALL.contains(&metrics::REQUESTS));
//! assert_eq!(metrics::HISTOGRAMS, [metrics::HANDSHAKE_DURATION]);
//! ```

/// Counter: handshakes, labelled `result` (`ok`/`error`) and `reason`.
///
/// `reason` is `ok` for an admitted peer. For a refused one it is the same
/// on full and resumed handshakes:
///
/// - `denied`: the authorizer refused the peer (it got `access_denied`);
/// - [`VerifyError::kind`](mtls_core::VerifyError::kind) when its chain
///   failed verification: `no_bundle` (no bundle for its trust domain),
///   `untrusted_issuer` (not signed by its trust domain's authorities),
///   `expired`, `not_yet_valid`, `revoked`, `crl_expired`,
///   `bad_signature`, `wrong_extended_key_usage`, `bad_signing_certificate`,
///   `chain` (another path validation failure), and the X509-SVID format
///   failures `empty_chain`, `chain_too_long`, `certificate_too_large`,
///   `malformed_certificate`, `no_uri_san`, `multiple_uri_sans`,
///   `invalid_spiffe_id`, `trust_domain_id_as_leaf`, `unacceptable_key`,
///   `leaf_is_ca`, `leaf_missing_key_usage`,
///   `leaf_missing_digital_signature`, `leaf_has_key_cert_sign`,
///   `leaf_has_crl_sign`;
/// - before or outside verification: `no_certificate` (the client sent
///   none), `timeout`, `alert_received` (the client gave up, e.g. it
///   refused our certificate), `incompatible` (no common protocol
///   version, cipher suite or ALPN), `tls` (another TLS error, such as a
///   client that does not speak TLS), `io`, `peer_identity`.
///
/// Each refusal by the verifier is also logged at warn (`mtls: handshake
/// refused`) with the peer's SPIFFE ID and the full reason.
pub const HANDSHAKES: &str = "mtls_handshakes_total";
/// Histogram: handshake duration in seconds, labelled `result`.
pub const HANDSHAKE_DURATION: &str = "mtls_handshake_duration_seconds";
/// Gauge: authenticated connections open.
pub const CONNECTIONS_OPEN: &str = "mtls_connections_open";
/// Gauge: handshakes in progress.
pub const HANDSHAKES_IN_FLIGHT: &str = "mtls_handshakes_in_flight";
/// Counter: per-request authorization decisions, labelled `result`
/// (`allow`/`deny`/`unauthenticated`/`invalid_path`: a request path not in
/// normal form, refused with 400).
pub const AUTHZ_DECISIONS: &str = "mtls_authz_decisions_total";
/// Counter: TCP accept errors.
pub const ACCEPT_ERRORS: &str = "mtls_accept_errors_total";
/// Counter: decisions of a [`PolicyFile`](crate::PolicyFile), labelled
/// `mode` (`enforce`/`audit`/`learn`) and `decision` (`allow`/`deny`; in
/// audit mode a `deny` was not enforced).
pub const POLICY_DECISIONS: &str = "mtls_policy_decisions_total";
/// Counter: matches of `audit` rules of a [`PolicyFile`](crate::PolicyFile).
pub const POLICY_AUDIT_MATCHES: &str = "mtls_policy_audit_matches_total";
/// Counter: policy reloads, labelled `result` (`ok`/`error`: the file was
/// unreadable or invalid, and the last good policy keeps serving).
pub const POLICY_RELOADS: &str = "mtls_policy_reloads_total";
/// Counter: calls learn mode did not record (observation limit reached).
pub const POLICY_LEARN_DROPPED: &str = "mtls_policy_learn_dropped_total";
/// Counter: requests decided by a [`PolicyFile`](crate::PolicyFile), in
/// every mode, labelled `caller` (the caller's SPIFFE ID), `route` (the
/// gRPC method `/package.Service/Method`; axum's route template when the
/// layer runs after routing, else the request path) and `decision`
/// (`allow`, `deny`, or `audit-deny`: denied by the policy, let through by
/// audit mode). The first
/// [`label_limit`](crate::PolicyFileOptions::label_limit) distinct callers
/// and routes (default: 100 each) get their own value; later ones, and
/// paths not in normal form, are `other`.
pub const REQUESTS: &str = "mtls_requests_total";

/// Every metric name above.
pub const ALL: &[&str] = &[
    HANDSHAKES,
    HANDSHAKE_DURATION,
    CONNECTIONS_OPEN,
    HANDSHAKES_IN_FLIGHT,
    AUTHZ_DECISIONS,
    ACCEPT_ERRORS,
    POLICY_DECISIONS,
    POLICY_AUDIT_MATCHES,
    POLICY_RELOADS,
    POLICY_LEARN_DROPPED,
    REQUESTS,
];

/// The histograms among [`ALL`] (a Prometheus exporter publishes them as
/// `NAME_bucket`, `NAME_sum` and `NAME_count`, or as a summary).
pub const HISTOGRAMS: &[&str] = &[HANDSHAKE_DURATION];
