//! SPIFFE trust domains (SPIFFE-ID.md section 2.1).

use std::borrow::Borrow;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use super::chars::validate_trust_domain;
use super::error::SpiffeIdError;

/// A SPIFFE trust domain name, such as `example.org`.
///
/// (Its conversions to and from SPIFFE IDs, [`TrustDomain::id`] and
/// [`TrustDomain::from_id_or_name`], sit with [`SpiffeId`](super::SpiffeId),
/// which is built on this type.)
///
/// A `TrustDomain` can only exist valid (SPIFFE-ID.md section 2.1): it is
/// non-empty, at most 255 bytes, and made only of lowercase ASCII letters,
/// digits, `.`, `-` and `_`. Uppercase letters are *rejected*, not folded
/// to lowercase, as go-spiffe does: a peer presenting `spiffe://Example.org`
/// does not silently become a member of `example.org`.
///
/// Cloning is cheap (a reference count), and a `TrustDomain` can be looked
/// up in maps by `&str` (it implements `Borrow<str>`).
///
/// ```
/// use mtls_core::TrustDomain;
///
/// let td: TrustDomain = "example.org".parse()?;
/// assert_eq!(td.name(), "example.org");
/// assert_eq!(td.id().to_string(), "spiffe://example.org");
///
/// assert!("Example.org".parse::<TrustDomain>().is_err());
/// assert!("example.org:443".parse::<TrustDomain>().is_err());
/// # Ok::<(), mtls_core::SpiffeIdError>(())
/// ```
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct TrustDomain {
    name: Arc<str>,
}

impl TrustDomain {
    /// Parses a bare trust domain name (`example.org`).
    ///
    /// To parse a trust domain given as a SPIFFE ID (`spiffe://example.org`),
    /// use [`TrustDomain::from_id_or_name`].
    ///
    /// ```
    /// use mtls_core::{SpiffeIdError, TrustDomain};
    ///
    /// // The `spiffe://` form is refused here, with a message that says so.
    /// let err = TrustDomain::new("spiffe://example.org").unwrap_err();
    /// assert!(matches!(err, SpiffeIdError::TrustDomainIsAnId(_)));
    /// assert!(err.to_string().contains("from_id_or_name"));
    /// assert_eq!(TrustDomain::from_id_or_name("spiffe://example.org")?.name(), "example.org");
    /// # Ok::<(), SpiffeIdError>(())
    /// ```
    pub fn new(name: &str) -> Result<Self, SpiffeIdError> {
        if name
            .get(..9)
            .is_some_and(|scheme| scheme.eq_ignore_ascii_case("spiffe://"))
        {
            return Err(SpiffeIdError::TrustDomainIsAnId(
                crate::x509::escape_untrusted(name),
            ));
        }
        validate_trust_domain(name.as_bytes())?;
        Ok(Self {
            name: Arc::from(name),
        })
    }

    /// A trust domain from a constant; panics if `name` is invalid.
    ///
    /// Meant for constants and tests. Use [`TrustDomain::new`] or
    /// [`str::parse`] for anything that comes from outside the program.
    #[track_caller]
    pub fn from_static(name: &'static str) -> Self {
        match Self::new(name) {
            Ok(td) => td,
            Err(e) => panic!("invalid trust domain {name:?}: {e}"),
        }
    }

    /// The trust domain name, for example `example.org`.
    pub fn name(&self) -> &str {
        &self.name
    }

    pub(super) fn from_validated(name: &str) -> Self {
        Self {
            name: Arc::from(name),
        }
    }
}

validated_str_impls!(TrustDomain, name);

impl Hash for TrustDomain {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // Must hash exactly like `str` so that `Borrow<str>` lookups work.
        self.name.hash(state)
    }
}

impl Borrow<str> for TrustDomain {
    fn borrow(&self) -> &str {
        &self.name
    }
}
