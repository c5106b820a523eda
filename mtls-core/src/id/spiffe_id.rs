//! SPIFFE IDs (SPIFFE-ID.md section 2).

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use super::chars::{check_id_len, validate_path, validate_trust_domain};
use super::error::SpiffeIdError;
use super::trust_domain::TrustDomain;

const SCHEME_PREFIX: &str = "spiffe://";

/// A SPIFFE ID such as `spiffe://example.org/ns/default/sa/web`.
///
/// A `SpiffeId` can only exist valid (SPIFFE-ID.md section 2):
///
/// - the scheme is exactly `spiffe` (lowercase) followed by `://`;
/// - the trust domain is non-empty, at most 255 bytes, of `[a-z0-9._-]`
///   (uppercase is rejected, never folded), with no port and no userinfo;
/// - the path is empty or made of `/segment` parts, each non-empty, not `.`
///   or `..`, of `[a-zA-Z0-9._-]`, with no trailing `/`;
/// - no query, no fragment, no percent-encoding;
/// - at most 2048 bytes in all.
///
/// Parsing is strict and does no normalisation, so two IDs are equal exactly
/// when their strings are equal, and `parse(id.to_string()) == id`.
/// Cloning is cheap (reference counts).
///
/// ```
/// use mtls_core::SpiffeId;
///
/// let id: SpiffeId = "spiffe://example.org/ns/prod/sa/web".parse()?;
/// assert_eq!(id.trust_domain().name(), "example.org");
/// assert_eq!(id.path(), "/ns/prod/sa/web");
/// assert_eq!(id.segments().collect::<Vec<_>>(), ["ns", "prod", "sa", "web"]);
///
/// for bad in [
///     "SPIFFE://example.org/web",     // scheme must be lowercase
///     "spiffe://Example.org/web",     // trust domain must be lowercase
///     "spiffe://example.org:443/web", // no port
///     "spiffe://example.org/web/",    // no trailing slash
///     "spiffe://example.org/a/../b",  // no dot segments
///     "spiffe://example.org/web?x=1", // no query
/// ] {
///     assert!(bad.parse::<SpiffeId>().is_err(), "{bad}");
/// }
/// # Ok::<(), mtls_core::SpiffeIdError>(())
/// ```
#[derive(Clone)]
pub struct SpiffeId {
    /// The whole ID, `spiffe://td/path`.
    uri: Arc<str>,
    trust_domain: TrustDomain,
}

impl SpiffeId {
    /// Parses a SPIFFE ID, rejecting anything the specification does not allow.
    pub fn new(s: &str) -> Result<Self, SpiffeIdError> {
        Self::from_bytes(s.as_bytes())
    }

    /// Parses a SPIFFE ID from raw bytes (for example an X.509 URI SAN).
    /// Any byte outside the SPIFFE alphabets, non-ASCII included, is an error.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, SpiffeIdError> {
        if bytes.is_empty() {
            return Err(SpiffeIdError::Empty);
        }
        check_id_len(bytes.len())?;
        let rest = bytes
            .strip_prefix(SCHEME_PREFIX.as_bytes())
            .ok_or(SpiffeIdError::WrongScheme)?;
        let td_end = rest.iter().position(|&b| b == b'/').unwrap_or(rest.len());
        let (td, path) = rest.split_at(td_end);
        validate_trust_domain(td)?;
        validate_path(path)?;
        // Every byte was checked to be ASCII above, so both are valid UTF-8;
        // the conversions cannot fail, but they are handled anyway.
        let td = std::str::from_utf8(td).map_err(|_| SpiffeIdError::WrongScheme)?;
        let uri = std::str::from_utf8(bytes).map_err(|_| SpiffeIdError::WrongScheme)?;
        Ok(Self {
            uri: Arc::from(uri),
            trust_domain: TrustDomain::from_validated(td),
        })
    }

    /// Builds `spiffe://<trust_domain><path>`, validating `path`
    /// (empty, or `/segment` parts as in [`SpiffeId`]).
    pub fn from_path(trust_domain: &TrustDomain, path: &str) -> Result<Self, SpiffeIdError> {
        validate_path(path.as_bytes())?;
        let id = Self::from_validated_parts(trust_domain.clone(), path);
        check_id_len(id.uri.len())?;
        Ok(id)
    }

    /// Builds an ID from path segments, validating each one:
    /// `from_segments(&td, ["ns", "prod"])` is `spiffe://td/ns/prod`.
    pub fn from_segments<I, S>(
        trust_domain: &TrustDomain,
        segments: I,
    ) -> Result<Self, SpiffeIdError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut path = String::new();
        for segment in segments {
            let segment = segment.as_ref();
            if segment.contains('/') {
                return Err(SpiffeIdError::BadPathChar {
                    byte: b'/',
                    index: path.len() + 1 + segment.find('/').unwrap_or(0),
                });
            }
            path.push('/');
            path.push_str(segment);
        }
        Self::from_path(trust_domain, &path)
    }

    /// An ID from a constant; panics if `s` is invalid.
    ///
    /// Meant for constants and tests. Use [`SpiffeId::new`] or [`str::parse`]
    /// for anything that comes from outside the program.
    #[track_caller]
    pub fn from_static(s: &'static str) -> Self {
        match Self::new(s) {
            Ok(id) => id,
            Err(e) => panic!("invalid SPIFFE ID {s:?}: {e}"),
        }
    }

    fn from_validated_parts(trust_domain: TrustDomain, path: &str) -> Self {
        let uri = format!("{SCHEME_PREFIX}{}{path}", trust_domain.name());
        Self {
            uri: Arc::from(uri),
            trust_domain,
        }
    }

    /// The trust domain this ID belongs to.
    pub fn trust_domain(&self) -> &TrustDomain {
        &self.trust_domain
    }

    /// The path, `""` for a trust domain's own ID, else `/a/b...`.
    pub fn path(&self) -> &str {
        let start = SCHEME_PREFIX.len() + self.trust_domain.name().len();
        &self.uri[start..]
    }

    /// The path segments, in order (none for a trust domain's own ID).
    pub fn segments(&self) -> impl Iterator<Item = &str> + '_ {
        self.path().split('/').skip(1)
    }

    /// Whether this is a trust domain's own ID (`spiffe://td`, empty path).
    ///
    /// X.509-SVID leaves never carry such an ID (X509-SVID.md section 2).
    pub fn is_trust_domain_id(&self) -> bool {
        self.path().is_empty()
    }

    /// Whether this ID belongs to `trust_domain`.
    pub fn is_member_of(&self, trust_domain: &TrustDomain) -> bool {
        &self.trust_domain == trust_domain
    }

    /// Whether this ID's path starts with `prefix` on a segment boundary,
    /// within the same trust domain: `spiffe://td/ns/a` is under
    /// `spiffe://td/ns/a` and `spiffe://td/ns`, not under `spiffe://td/ns/ab`
    /// nor `spiffe://other/ns`. Every ID of a trust domain is under the trust
    /// domain's own ID.
    pub fn is_under(&self, prefix: &SpiffeId) -> bool {
        match self.uri.strip_prefix(&*prefix.uri) {
            Some(rest) => rest.is_empty() || rest.starts_with('/'),
            None => false,
        }
    }

    /// The ID as a string, `spiffe://td/path`.
    pub fn as_str(&self) -> &str {
        &self.uri
    }
}

/// The conversions between a trust domain and SPIFFE IDs (here, so that
/// `trust_domain.rs` does not depend on this module).
impl TrustDomain {
    /// Parses either a bare name (`example.org`) or the trust domain's own
    /// SPIFFE ID (`spiffe://example.org`, without a path), like go-spiffe's
    /// `TrustDomainFromString`.
    pub fn from_id_or_name(s: &str) -> Result<Self, SpiffeIdError> {
        if s.contains(":/") {
            let id = SpiffeId::new(s)?;
            if !id.path().is_empty() {
                return Err(SpiffeIdError::TrustDomainWithPath);
            }
            Ok(id.trust_domain().clone())
        } else {
            Self::new(s)
        }
    }

    /// The trust domain's own SPIFFE ID, `spiffe://<name>` (no path).
    pub fn id(&self) -> SpiffeId {
        SpiffeId::from_validated_parts(self.clone(), "")
    }
}

impl PartialEq for SpiffeId {
    fn eq(&self, other: &Self) -> bool {
        self.uri == other.uri
    }
}

impl Eq for SpiffeId {}

impl Hash for SpiffeId {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.uri.hash(state)
    }
}

impl PartialOrd for SpiffeId {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for SpiffeId {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.uri.cmp(&other.uri)
    }
}

validated_str_impls!(SpiffeId, uri);
