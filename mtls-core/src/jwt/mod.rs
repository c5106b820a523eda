//! JWT-SVIDs (JWT-SVID.md): validation of the tokens a workload presents
//! when its X.509 identity does not reach us (a TLS-terminating proxy or
//! load balancer on the way), against the JWT authorities of the subject's
//! trust domain.
//!
//! - [`JwtBundle`]: the JWT authorities (`jwt-svid` keys) of one trust
//!   domain; [`JwtBundleSet`]: one per trust domain, never merged.
//! - [`JwtSvidValidator`]: every rule of the specification, in a documented
//!   order, for one audience; its result is a [`JwtSvid`], its failures a
//!   [`JwtSvidError`].
//! - [`JwsAlgorithm`]: the nine algorithms a JWT-SVID may use.
//! - [`JwtToken`]: a JWT-SVID this workload holds, to send; from a
//!   [`JwtSvidSource`](crate::JwtSvidSource) by audience, cached and
//!   refreshed by [`CachedJwtSvids`](crate::CachedJwtSvids).
//! - [`JwtBundleSource`](crate::JwtBundleSource) and
//!   [`SharedJwtBundles`](crate::SharedJwtBundles): where the current JWT
//!   bundles come from.
//!
//! ```
//! use mtls_core::{JwtBundle, JwtBundleSet, JwtSvidError, JwtSvidValidator, TrustDomain};
//!
//! let doc = br#"{"keys": [{
//!     "use": "jwt-svid", "kty": "EC", "crv": "P-256", "kid": "k1",
//!     "x": "MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4",
//!     "y": "4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM"
//! }]}"#;
//! let td = TrustDomain::from_static("example.org");
//! let bundles = JwtBundleSet::from(JwtBundle::from_jwks(td, doc)?);
//!
//! let validator = JwtSvidValidator::new("spiffe://example.org/reports");
//! // A token for another trust domain than the bundles': refused before
//! // any key is looked at.
//! // {"alg":"ES256","kid":"k1"}.{"sub":"spiffe://other.org/x"}.<sig>
//! let token = "eyJhbGciOiJFUzI1NiIsImtpZCI6ImsxIn0.\
//!              eyJzdWIiOiJzcGlmZmU6Ly9vdGhlci5vcmcveCJ9.\
//!              AAAA";
//! match validator.validate(token, &bundles) {
//!     Err(JwtSvidError::UntrustedTrustDomain { trust_domain }) => {
//!         assert_eq!(trust_domain.name(), "other.org");
//!     }
//!     other => panic!("unexpected: {other:?}"),
//! }
//! # Ok::<(), mtls_core::BundleError>(())
//! ```

/// The claim accessors [`JwtSvid`] and [`JwtToken`] share: both types
/// have the fields `spiffe_id`, `audience`, `expiry` and `issued_at`.
macro_rules! claim_accessors {
    () => {
        /// The subject (`sub`): the SPIFFE ID of the workload the token was
        /// issued to (JWT-SVID.md section 3.1).
        pub fn spiffe_id(&self) -> &crate::SpiffeId {
            &self.spiffe_id
        }

        /// Every audience of the token (`aud`, a single string read as a
        /// list of one).
        pub fn audience(&self) -> &[String] {
            &self.audience
        }

        /// When the token expires (`exp`).
        pub fn expiry(&self) -> std::time::SystemTime {
            self.expiry
        }

        /// When the token was issued (`iat`), if it says.
        pub fn issued_at(&self) -> Option<std::time::SystemTime> {
            self.issued_at
        }
    };
}
use claim_accessors;

mod algorithm;
mod bundle;
mod compact;
mod error;
mod set;
mod signature;
mod svid;
mod token;
mod validator;

pub use algorithm::{JwsAlgorithm, UnsupportedJwsAlgorithm};
pub use bundle::JwtBundle;
pub use error::{JwsPart, JwtSvidError};
pub use set::JwtBundleSet;
pub use svid::JwtSvid;
pub use token::JwtToken;
pub use validator::JwtSvidValidator;
