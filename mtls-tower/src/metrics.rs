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
