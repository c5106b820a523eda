//! The JWT half of [`SpireSource`](crate::SpireSource): JWT-SVIDs by
//! audience (`FetchJWTSVID`, cached) and the JWT bundles
//! (`FetchJWTBundles`, watched).

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures_core::Stream;
use serde_json::{Map, Value};
use spiffe::{WorkloadApiClient, WorkloadApiError};

use super::jwt::{CachedJwtSvids, JwtSourceError, JwtSvidFuture, JwtSvidSource};
use super::published::Published;
use super::spire::{SpireSourceError, WithdrawalPolicy};
use super::status::SourceState;
use super::AbortOnDrop;
use crate::bundle::BundleError;
use crate::id::{SpiffeId, TrustDomain};
use crate::jwt::{JwtBundle, JwtBundleSet, JwtToken};

/// The first and longest waits between two connections of the JWT bundle
/// stream.
const BACKOFF: (Duration, Duration) = (Duration::from_millis(200), Duration::from_secs(10));

/// JWT-SVIDs from the Workload API, fetched at each call (the cache is in
/// front).
pub(crate) struct WorkloadApiJwt {
    endpoint: String,
    spiffe_id: Option<SpiffeId>,
    client: tokio::sync::Mutex<Option<Arc<WorkloadApiClient>>>,
}

impl WorkloadApiJwt {
    pub(crate) fn new(endpoint: String, spiffe_id: Option<SpiffeId>) -> Self {
        Self {
            endpoint,
            spiffe_id,
            client: tokio::sync::Mutex::new(None),
        }
    }

    async fn client(&self) -> Result<Arc<WorkloadApiClient>, SpireSourceError> {
        let mut cached = self.client.lock().await;
        if let Some(client) = &*cached {
            return Ok(client.clone());
        }
        let client = Arc::new(
            WorkloadApiClient::connect_to(&self.endpoint)
                .await
                .map_err(|e| api_error(&self.endpoint, e))?,
        );
        *cached = Some(client.clone());
        Ok(client)
    }

    async fn fetch(&self, audience: &[String]) -> Result<JwtToken, JwtSourceError> {
        if audience.is_empty() {
            return Err(JwtSourceError::NoAudience);
        }
        let client = self
            .client()
            .await
            .map_err(|e| JwtSourceError::upstream(audience, e))?;
        let wanted = match &self.spiffe_id {
            Some(id) => Some(spiffe::SpiffeId::new(id.as_str()).map_err(|e| {
                JwtSourceError::upstream(audience, api_error(&self.endpoint, e.into()))
            })?),
            None => None,
        };
        let token = match client.fetch_jwt_token(audience, wanted.as_ref()).await {
            Ok(token) => token,
            Err(e) => {
                // The next fetch connects afresh.
                *self.client.lock().await = None;
                return Err(JwtSourceError::upstream(
                    audience,
                    api_error(&self.endpoint, e),
                ));
            }
        };
        let token =
            JwtToken::from_compact(&token).map_err(|e| JwtSourceError::malformed(audience, e))?;
        if let Some(id) = &self.spiffe_id {
            if token.spiffe_id() != id {
                return Err(JwtSourceError::upstream(
                    audience,
                    SpireSourceError::WrongJwtSubject {
                        requested: id.clone(),
                        issued: token.spiffe_id().clone(),
                    },
                ));
            }
        }
        Ok(token)
    }
}

impl JwtSvidSource for WorkloadApiJwt {
    fn fetch_jwt_svid<'a>(&'a self, audience: &'a [String]) -> JwtSvidFuture<'a> {
        Box::pin(self.fetch(audience))
    }
}

/// What a `SpireSource` holds for JWT-SVIDs.
pub(crate) struct SpireJwt {
    pub(crate) svids: CachedJwtSvids<WorkloadApiJwt>,
    /// `None` unless the builder asked to watch the JWT bundles.
    pub(crate) bundles: Option<Published<JwtBundleSet, SpireSourceError>>,
    /// The task following the JWT bundles, if watched.
    pub(crate) _task: Option<AbortOnDrop>,
}

/// Starts following `FetchJWTBundles` on `endpoint`, publishing to
/// `published`; returns the task, aborted when dropped.
pub(crate) fn watch_bundles(
    endpoint: String,
    policy: WithdrawalPolicy,
    published: Published<JwtBundleSet, SpireSourceError>,
) -> AbortOnDrop {
    AbortOnDrop(tokio::spawn(follow_bundles(endpoint, policy, published)).abort_handle())
}

type BundleStream =
    Pin<Box<dyn Stream<Item = Result<spiffe::JwtBundleSet, WorkloadApiError>> + Send + 'static>>;

async fn open_stream(endpoint: &str) -> Result<BundleStream, SpireSourceError> {
    let client = WorkloadApiClient::connect_to(endpoint)
        .await
        .map_err(|e| api_error(endpoint, e))?;
    let stream = client
        .stream_jwt_bundles()
        .await
        .map_err(|e| api_error(endpoint, e))?;
    Ok(Box::pin(stream))
}

async fn follow_bundles(
    endpoint: String,
    policy: WithdrawalPolicy,
    published: Published<JwtBundleSet, SpireSourceError>,
) {
    let mut delay = BACKOFF.0;
    let mut first = true;
    loop {
        if !first {
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(BACKOFF.1);
        }
        first = false;
        let mut stream = match open_stream(&endpoint).await {
            Ok(stream) => stream,
            Err(e) => {
                refuse(&endpoint, policy, &published, e);
                continue;
            }
        };
        while let Some(item) =
            std::future::poll_fn(|cx| Stream::poll_next(stream.as_mut(), cx)).await
        {
            let converted = item
                .map_err(|e| api_error(&endpoint, e))
                .and_then(|set| convert(&set));
            match converted {
                Ok(set) => {
                    delay = BACKOFF.0;
                    if *published.load() != set {
                        tracing::info!(endpoint = %endpoint, trust_domains = set.len(), "mtls: new JWT bundles from the Workload API");
                        published.publish(set);
                    }
                    published.set_state(SourceState::Ready);
                }
                Err(e) => {
                    refuse(&endpoint, policy, &published, e);
                    // A withdrawal ends the stream; a refused update does not.
                    if matches!(published.state(), SourceState::Withdrawn) {
                        break;
                    }
                }
            }
        }
    }
}

/// Records a refusal; a withdrawal also changes the state (and, under
/// [`WithdrawalPolicy::FailClosed`], empties the set).
fn refuse(
    endpoint: &str,
    policy: WithdrawalPolicy,
    published: &Published<JwtBundleSet, SpireSourceError>,
    error: SpireSourceError,
) {
    if let SpireSourceError::Withdrawn { reason } = &error {
        tracing::warn!(endpoint = %endpoint, reason = %reason, policy = ?policy, "mtls: the Workload API withdrew this workload's JWT bundles");
        if policy == WithdrawalPolicy::FailClosed && !published.load().is_empty() {
            published.publish(JwtBundleSet::new());
        }
        published.set_state(SourceState::Withdrawn);
    } else {
        tracing::warn!(endpoint = %endpoint, error = %crate::ErrorChain(&error), "mtls: JWT bundles from the Workload API refused; the last good ones keep serving");
    }
    published.refuse(error);
}

/// The `spiffe` crate's JWT bundles, read again with this crate's rules:
/// each authority a JWK that [`JwtBundle::from_jwks`] accepts. The
/// Workload API's JWKS carry no `use` (SPIRE sends standard JWKS): every
/// key is a JWT authority, and a key with another `use` than `jwt-svid` is
/// ignored.
fn convert(set: &spiffe::JwtBundleSet) -> Result<JwtBundleSet, SpireSourceError> {
    let mut ours = JwtBundleSet::new();
    for (name, theirs) in set.iter() {
        let trust_domain =
            TrustDomain::new(name.as_str()).map_err(|source| SpireSourceError::TrustDomain {
                name: name.to_string(),
                source,
            })?;
        let refused = |source: BundleError| SpireSourceError::Bundle {
            trust_domain: trust_domain.clone(),
            source,
        };
        let mut keys = Vec::new();
        for authority in theirs.jwt_authorities() {
            let mut jwk: Map<String, Value> = serde_json::from_slice(authority.jwk_json())
                .map_err(|e| {
                    refused(BundleError::Json {
                        reason: e.to_string(),
                    })
                })?;
            jwk.entry("use")
                .or_insert_with(|| Value::String("jwt-svid".into()));
            keys.push(Value::Object(jwk));
        }
        let doc = serde_json::json!({ "keys": keys }).to_string();
        let bundle = JwtBundle::from_jwks(trust_domain.clone(), doc.as_bytes()).map_err(refused)?;
        if ours.insert(bundle).is_some() {
            return Err(refused(BundleError::DuplicateTrustDomain {
                trust_domain: trust_domain.clone(),
            }));
        }
    }
    Ok(ours)
}

/// A Workload API error, typed: a withdrawal, or what the `spiffe` crate
/// said.
fn api_error(endpoint: &str, error: WorkloadApiError) -> SpireSourceError {
    match error {
        WorkloadApiError::PermissionDenied(reason) => SpireSourceError::Withdrawn { reason },
        WorkloadApiError::NoIdentityIssued => SpireSourceError::Withdrawn {
            reason: "no identity issued".into(),
        },
        WorkloadApiError::Transport(spiffe::transport::TransportError::Status(status))
            if status.code() == spiffe::transport::GrpcStatusCode::PermissionDenied =>
        {
            SpireSourceError::Withdrawn {
                reason: status.message().to_owned(),
            }
        }
        other => SpireSourceError::WorkloadApi {
            endpoint: endpoint.to_owned(),
            reason: other.to_string(),
        },
    }
}
