//! The JWT-SVID validator: every rule of JWT-SVID.md, in a fixed order.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustls::crypto::CryptoProvider;
use serde_json::{Map, Value};

use super::{compact, signature, JwsAlgorithm, JwsPart, JwtBundleSet, JwtSvid, JwtSvidError};
use crate::id::SpiffeId;
use crate::source::JwtBundleSource;
use crate::x509::escape_untrusted;

/// The largest NumericDate accepted: 9999-12-31T23:59:59Z.
const MAX_NUMERIC_DATE: u64 = 253_402_300_799;

/// The header members a JWT-SVID may have (JWT-SVID.md section 2).
const HEADER_MEMBERS: [&str; 3] = ["alg", "kid", "typ"];

/// Checks JWT-SVIDs (JWT-SVID.md) for one audience, against the JWT
/// bundles of their subjects' trust domains.
///
/// # The rules, in the order they are checked
///
/// 1. **Form** (RFC 7515 section 7.1, JWT-SVID.md section 5.1): at most
///    [`MAX_JWT_SVID_BYTES`](crate::MAX_JWT_SVID_BYTES); the compact
///    serialization only (the JSON serialization and five-part JWEs are
///    refused); exactly three base64url parts without padding; a header of
///    at most [`MAX_JWT_HEADER_BYTES`](crate::MAX_JWT_HEADER_BYTES) that is
///    a JSON object with no repeated member.
/// 2. **Header** (section 2): `alg` first, one of RS256/384/512,
///    ES256/384/512, PS256/384/512 (`none`, HMAC and anything else refused
///    before any other member is looked at); no `crit`; `typ`, if present,
///    exactly `JWT` or `JOSE`; no member but `alg`, `kid` and `typ` (section
///    2: "any header not described here ... MUST NOT be included"); `kid`
///    required. The specification makes `kid` optional, but keys are found
///    by key ID here, as go-spiffe does, and SPIRE always sets it.
/// 3. **Subject** (section 3.1): the claims, at most
///    [`MAX_JWT_CLAIMS_BYTES`](crate::MAX_JWT_CLAIMS_BYTES), are a JSON
///    object with no repeated member, and `sub` is a SPIFFE ID. It is the
///    one claim read before the signature is checked: its trust domain
///    names the bundle the key must come from.
/// 4. **Key**: only in the JWT bundle of the subject's trust domain (none:
///    [`UntrustedTrustDomain`](JwtSvidError::UntrustedTrustDomain)), by
///    `kid`, among its `jwt-svid` keys only; the key's type must fit `alg`,
///    and the key's own `alg`, if it has one, must be the token's.
/// 5. **Signature** (RFC 7515 section 5.2), with the crypto provider's
///    signature verification algorithms (those rustls uses for
///    certificates: aws-lc-rs or ring, no second crypto stack). ECDSA
///    signatures must be `r || s` of the exact length (RFC 7518 section
///    3.4); a DER signature is refused.
/// 6. **Claims**, only once the signature holds (so a forger learns nothing
///    of the audience or clock from the errors, as in go-spiffe, which
///    also checks the signature before the claims): `aud` a string or a
///    non-empty array of strings holding the validator's audience (section
///    3.2); `exp` present (section 3.3); `exp`, `nbf` and `iat`, when
///    present, NumericDates; not expired (`now > exp + leeway`), not before
///    `nbf - leeway`, not issued after `now + leeway`.
///
/// Every failure is a [`JwtSvidError`] naming the rule, with its context.
///
/// # Leeway
///
/// Clocks differ: [`DEFAULT_LEEWAY`](Self::DEFAULT_LEEWAY) (30 s) absorbs
/// that skew for `exp`, `nbf` and `iat`. [`with_leeway`](Self::with_leeway)
/// changes it, up to [`MAX_LEEWAY`](Self::MAX_LEEWAY) (5 minutes, go-jose's
/// default is 1 minute): JWT-SVIDs are short-lived bearer tokens, and a long
/// leeway lengthens the window in which a stolen one can be replayed.
///
/// ```
/// use mtls_core::{JwtBundleSet, JwtSvidError, JwtSvidValidator};
///
/// let validator = JwtSvidValidator::new("spiffe://example.org/reports");
/// // {"alg":"none"}.{"sub":"spiffe://example.org/x"}.
/// let token = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJzcGlmZmU6Ly9leGFtcGxlLm9yZy94In0.";
/// let err = validator.validate(token, &JwtBundleSet::new()).unwrap_err();
/// assert!(matches!(err, JwtSvidError::UnsupportedAlgorithm { .. }));
/// assert_eq!(
///     err.to_string(),
///     "jwt-svid: \"alg\" none is not a JWT-SVID algorithm (RS, ES or PS 256/384/512)"
/// );
/// ```
#[derive(Debug, Clone)]
pub struct JwtSvidValidator {
    audience: String,
    leeway: Duration,
    provider: Arc<CryptoProvider>,
}

impl JwtSvidValidator {
    /// The leeway for `exp`, `nbf` and `iat` unless set: 30 seconds.
    pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(30);

    /// The largest leeway [`with_leeway`](Self::with_leeway) sets: 5
    /// minutes.
    pub const MAX_LEEWAY: Duration = Duration::from_secs(300);

    /// A validator accepting tokens whose `aud` holds `audience` (compared
    /// exactly; an empty audience accepts nothing), with the
    /// [`DEFAULT_LEEWAY`](Self::DEFAULT_LEEWAY) and
    /// [`default_crypto_provider`](crate::default_crypto_provider).
    pub fn new(audience: impl Into<String>) -> Self {
        Self {
            audience: audience.into(),
            leeway: Self::DEFAULT_LEEWAY,
            provider: crate::default_crypto_provider(),
        }
    }

    /// The same validator with leeway `leeway` for `exp`, `nbf` and `iat`,
    /// at most [`MAX_LEEWAY`](Self::MAX_LEEWAY) (a longer one is cut to
    /// it). `Duration::ZERO` allows no skew.
    pub fn with_leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway.min(Self::MAX_LEEWAY);
        self
    }

    /// The same validator verifying signatures with `provider`'s signature
    /// verification algorithms (give the one your rustls configs use).
    pub fn with_crypto_provider(mut self, provider: Arc<CryptoProvider>) -> Self {
        self.provider = provider;
        self
    }

    /// The audience tokens must be for.
    pub fn audience(&self) -> &str {
        &self.audience
    }

    /// The leeway for `exp`, `nbf` and `iat`.
    pub fn leeway(&self) -> Duration {
        self.leeway
    }

    /// Validates `token` (the compact serialization, without `Bearer `)
    /// against `bundles`, now.
    pub fn validate(&self, token: &str, bundles: &JwtBundleSet) -> Result<JwtSvid, JwtSvidError> {
        self.validate_at(token, bundles, SystemTime::now())
    }

    /// Validates `token` against the bundles `source` serves now.
    pub fn validate_from<S>(&self, token: &str, source: &S) -> Result<JwtSvid, JwtSvidError>
    where
        S: JwtBundleSource + ?Sized,
    {
        self.validate(token, &source.current_jwt_bundles())
    }

    /// Validates `token` against `bundles` as at time `now`.
    pub fn validate_at(
        &self,
        token: &str,
        bundles: &JwtBundleSet,
        now: SystemTime,
    ) -> Result<JwtSvid, JwtSvidError> {
        // 1. Form.
        let parts = compact::split(token)?;
        // 2. Header.
        let (algorithm, key_id) = check_header(&parts.header)?;
        // 3. Subject.
        let claims = compact::claims(parts.claims_b64)?;
        let spiffe_id = subject(&claims)?;
        let sig = compact::signature(parts.signature_b64)?;
        // 4. Key.
        let trust_domain = spiffe_id.trust_domain();
        let bundle =
            bundles
                .get(trust_domain.name())
                .ok_or_else(|| JwtSvidError::UntrustedTrustDomain {
                    trust_domain: trust_domain.clone(),
                })?;
        let key = bundle
            .authority(key_id)
            .ok_or_else(|| JwtSvidError::UnknownKeyId {
                key_id: escape_untrusted(key_id),
                trust_domain: trust_domain.clone(),
            })?;
        if !algorithm.fits(key.key_type()) {
            return Err(JwtSvidError::AlgorithmKeyMismatch {
                alg: algorithm,
                key_id: escape_untrusted(key_id),
                key_type: key.key_type(),
            });
        }
        if let Some(key_alg) = key.algorithm() {
            if key_alg != algorithm.as_str() {
                return Err(JwtSvidError::AlgorithmNotAllowedForKey {
                    alg: algorithm,
                    key_id: escape_untrusted(key_id),
                    key_alg: key_alg.to_owned(),
                });
            }
        }
        // 5. Signature.
        signature::verify(
            &self.provider,
            algorithm,
            key,
            trust_domain,
            parts.signing_input.as_bytes(),
            &sig,
        )?;
        // 6. Claims.
        let audience = self.check_audience(&claims)?;
        let expiry = numeric_date(&claims, "exp")?.ok_or(JwtSvidError::MissingExpiry)?;
        let not_before = numeric_date(&claims, "nbf")?;
        let issued_at = numeric_date(&claims, "iat")?;
        self.check_times(now, expiry, not_before, issued_at)?;
        Ok(JwtSvid {
            key_id: key_id.to_owned(),
            spiffe_id,
            audience,
            expiry,
            issued_at,
            not_before,
            algorithm,
            token: super::token::Bearer(token.to_owned()),
            claims,
        })
    }

    /// The token's audiences, if the validator's is among them.
    fn check_audience(&self, claims: &Map<String, Value>) -> Result<Vec<String>, JwtSvidError> {
        let audience = audiences(claims)?;
        if self.audience.is_empty() || !audience.contains(&self.audience) {
            return Err(JwtSvidError::AudienceMismatch {
                expected: self.audience.clone(),
                found: audience
                    .iter()
                    .take(8)
                    .map(|aud| escape_untrusted(aud))
                    .collect(),
            });
        }
        Ok(audience)
    }

    /// `exp`, `nbf` and `iat` against `now`, with the leeway; an overflow
    /// (an extreme `now`) refuses the token.
    fn check_times(
        &self,
        now: SystemTime,
        expiry: SystemTime,
        not_before: Option<SystemTime>,
        issued_at: Option<SystemTime>,
    ) -> Result<(), JwtSvidError> {
        let leeway = self.leeway;
        if expiry.checked_add(leeway).is_none_or(|limit| now > limit) {
            return Err(JwtSvidError::Expired {
                expired_at: expiry,
                now,
                leeway,
            });
        }
        // A time after `now` plus the leeway (or any, when that overflows).
        let latest = now.checked_add(leeway);
        let in_future = |t: Option<SystemTime>| t.filter(|&t| latest.is_none_or(|l| l < t));
        if let Some(not_before) = in_future(not_before) {
            return Err(JwtSvidError::NotYetValid {
                not_before,
                now,
                leeway,
            });
        }
        if let Some(issued_at) = in_future(issued_at) {
            return Err(JwtSvidError::IssuedInFuture {
                issued_at,
                now,
                leeway,
            });
        }
        Ok(())
    }
}

/// The header rules: `alg` first, then `crit`, `typ`, unknown members and
/// `kid`. Returns the algorithm and the key ID.
pub(super) fn check_header(
    header: &Map<String, Value>,
) -> Result<(JwsAlgorithm, &str), JwtSvidError> {
    let algorithm = match header.get("alg") {
        None => return Err(JwtSvidError::MissingAlgorithm),
        Some(Value::String(alg)) => {
            alg.parse::<JwsAlgorithm>()
                .map_err(|_| JwtSvidError::UnsupportedAlgorithm {
                    alg: escape_untrusted(alg),
                })?
        }
        Some(other) => {
            return Err(JwtSvidError::UnsupportedAlgorithm {
                alg: escape_untrusted(&other.to_string()),
            })
        }
    };
    if header.contains_key("crit") {
        return Err(JwtSvidError::CriticalHeader);
    }
    match header.get("typ") {
        None => {}
        Some(Value::String(typ)) if typ == "JWT" || typ == "JOSE" => {}
        Some(Value::String(typ)) => {
            return Err(JwtSvidError::BadType {
                typ: escape_untrusted(typ),
            })
        }
        Some(_) => {
            return Err(JwtSvidError::WrongType {
                part: JwsPart::Header,
                member: "typ",
                expected: "a string",
            })
        }
    }
    if let Some(name) = header
        .keys()
        .find(|name| !HEADER_MEMBERS.contains(&name.as_str()))
    {
        return Err(JwtSvidError::UnexpectedHeader {
            name: escape_untrusted(name),
        });
    }
    let key_id = match header.get("kid") {
        None => return Err(JwtSvidError::MissingKeyId),
        Some(Value::String(kid)) if kid.is_empty() => return Err(JwtSvidError::MissingKeyId),
        Some(Value::String(kid)) => kid.as_str(),
        Some(_) => {
            return Err(JwtSvidError::WrongType {
                part: JwsPart::Header,
                member: "kid",
                expected: "a string",
            })
        }
    };
    Ok((algorithm, key_id))
}

/// The `aud`: a string (a list of one) or a non-empty array of strings.
pub(super) fn audiences(claims: &Map<String, Value>) -> Result<Vec<String>, JwtSvidError> {
    let wrong_type = JwtSvidError::WrongType {
        part: JwsPart::Claims,
        member: "aud",
        expected: "a string or an array of strings",
    };
    match claims.get("aud") {
        None => Err(JwtSvidError::MissingAudience),
        Some(Value::String(aud)) => Ok(vec![aud.clone()]),
        Some(Value::Array(auds)) if auds.is_empty() => Err(JwtSvidError::EmptyAudience),
        Some(Value::Array(auds)) => auds
            .iter()
            .map(|aud| aud.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .ok_or(wrong_type),
        Some(_) => Err(wrong_type),
    }
}

/// The `sub`, a SPIFFE ID.
pub(super) fn subject(claims: &Map<String, Value>) -> Result<SpiffeId, JwtSvidError> {
    match claims.get("sub") {
        None => Err(JwtSvidError::MissingSubject),
        Some(Value::String(sub)) => {
            SpiffeId::new(sub).map_err(|source| JwtSvidError::InvalidSubject {
                sub: escape_untrusted(sub),
                source,
            })
        }
        Some(_) => Err(JwtSvidError::WrongType {
            part: JwsPart::Claims,
            member: "sub",
            expected: "a string",
        }),
    }
}

/// A NumericDate claim (RFC 7519 section 2): seconds since the epoch, an
/// integer or a fraction, from 0 to the year 9999.
pub(super) fn numeric_date(
    claims: &Map<String, Value>,
    claim: &'static str,
) -> Result<Option<SystemTime>, JwtSvidError> {
    let Some(value) = claims.get(claim) else {
        return Ok(None);
    };
    let bad = JwtSvidError::BadNumericDate { claim };
    let Value::Number(n) = value else {
        return Err(bad);
    };
    let since_epoch = match (n.as_u64(), n.as_f64()) {
        (Some(secs), _) if secs <= MAX_NUMERIC_DATE => Duration::from_secs(secs),
        (None, Some(secs)) if (0.0..=MAX_NUMERIC_DATE as f64).contains(&secs) => {
            Duration::from_secs_f64(secs)
        }
        _ => return Err(bad),
    };
    Ok(Some(UNIX_EPOCH + since_epoch))
}
