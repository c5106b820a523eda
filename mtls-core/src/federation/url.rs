//! Bundle endpoint URLs (SPIFFE_Federation.md 5.2.1.1 and 5.2.2.1).

use std::fmt;
use std::str::FromStr;

use http::uri::{Authority, PathAndQuery, Scheme, Uri};

use super::FederationError;
use crate::x509::escape_untrusted;

/// A valid bundle endpoint URL: scheme `https`, a host, no userinfo, no
/// fragment (SPIFFE_Federation.md 5.2.1.1 and 5.2.2.1). The same rules
/// apply to the target of every redirect.
///
/// ```
/// use mtls_core::federation::EndpointUrl;
///
/// let url: EndpointUrl = "https://partner.example:8443/bundle".parse()?;
/// assert_eq!(url.host(), "partner.example");
/// assert_eq!(url.port(), 8443);
/// assert!("http://partner.example/bundle".parse::<EndpointUrl>().is_err());
/// assert!("https://user@partner.example/bundle".parse::<EndpointUrl>().is_err());
/// # Ok::<(), mtls_core::federation::FederationError>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct EndpointUrl {
    uri: Uri,
}

impl EndpointUrl {
    /// Parses and checks `url`.
    pub fn new(url: &str) -> Result<Self, FederationError> {
        let invalid = |reason: &'static str| FederationError::InvalidUrl {
            url: escape_untrusted(url),
            reason,
        };
        if url.contains('#') {
            return Err(invalid("a bundle endpoint URL has no fragment"));
        }
        let uri: Uri = url
            .parse()
            .map_err(|_| invalid("not a valid absolute URL"))?;
        Self::from_uri(uri).map_err(invalid)
    }

    fn from_uri(uri: Uri) -> Result<Self, &'static str> {
        match uri.scheme() {
            Some(s) if *s == Scheme::HTTPS => {}
            Some(_) => return Err("the scheme must be https"),
            None => return Err("not an absolute URL (no scheme)"),
        }
        let authority = uri.authority().ok_or("the URL has no host")?;
        if authority.as_str().contains('@') {
            return Err("a bundle endpoint URL may not hold userinfo");
        }
        if authority.host().is_empty() {
            return Err("the URL has no host");
        }
        Ok(Self { uri })
    }

    /// Resolves the `Location` of a redirect against this URL: an absolute
    /// URL, or an absolute path on the same origin. The result must be a
    /// valid bundle endpoint URL too.
    pub(crate) fn redirect(&self, location: &str) -> Result<Self, &'static str> {
        if location.contains('#') {
            return Err("a bundle endpoint URL has no fragment");
        }
        if location.starts_with('/') && !location.starts_with("//") {
            let path: PathAndQuery = location.parse().map_err(|_| "not a valid path")?;
            let mut parts = self.uri.clone().into_parts();
            parts.path_and_query = Some(path);
            let uri = Uri::from_parts(parts).map_err(|_| "not a valid URL")?;
            return Self::from_uri(uri);
        }
        let uri: Uri = location
            .parse()
            .map_err(|_| "neither an absolute URL nor an absolute path")?;
        Self::from_uri(uri)
    }

    /// The host, without brackets for an IPv6 address.
    pub fn host(&self) -> &str {
        let host = self.authority().host();
        host.strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host)
    }

    /// The port (443 unless the URL gives one).
    pub fn port(&self) -> u16 {
        self.authority().port_u16().unwrap_or(443)
    }

    pub(crate) fn authority(&self) -> &Authority {
        // Checked at construction: an EndpointUrl always has an authority.
        #[allow(clippy::expect_used)]
        self.uri
            .authority()
            .expect("an EndpointUrl has an authority (checked when built)")
    }

    pub(crate) fn path_and_query(&self) -> &str {
        self.uri.path_and_query().map_or("/", PathAndQuery::as_str)
    }
}

impl FromStr for EndpointUrl {
    type Err = FederationError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl fmt::Display for EndpointUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.uri, f)
    }
}

impl fmt::Debug for EndpointUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EndpointUrl({})", self.uri)
    }
}
