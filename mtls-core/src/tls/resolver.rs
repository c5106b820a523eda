//! Certificate resolvers that present the current SVID of a source.

use std::fmt;
use std::sync::Arc;

use arc_swap::ArcSwapOption;
use rustls::client::ResolvesClientCert;
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::SignatureScheme;

use crate::source::SvidSource;
use crate::svid::X509Svid;

/// Presents the source's current SVID at every handshake. The rustls key
/// built from an SVID is cached until the source's generation changes (or,
/// for a source without one, until it hands out another SVID).
pub(crate) struct SvidResolver {
    source: Arc<dyn SvidSource>,
    provider: Arc<CryptoProvider>,
    cache: ArcSwapOption<CachedKey>,
}

struct CachedKey {
    generation: Option<u64>,
    svid: X509Svid,
    key: Arc<CertifiedKey>,
}

impl SvidResolver {
    pub(crate) fn new(source: Arc<dyn SvidSource>, provider: Arc<CryptoProvider>) -> Self {
        Self {
            source,
            provider,
            cache: ArcSwapOption::empty(),
        }
    }

    fn current(&self) -> Option<Arc<CertifiedKey>> {
        // The generation first, then the SVID: a change in between is a
        // miss next time, never a stale hit.
        let generation = self.source.generation();
        if let (Some(now), Some(cached)) = (generation, &*self.cache.load()) {
            if cached.generation == Some(now) {
                return Some(cached.key.clone());
            }
        }
        let svid = self.source.current_svid()?;
        if let Some(cached) = &*self.cache.load() {
            if cached.svid.ptr_eq(&svid) {
                return Some(cached.key.clone());
            }
        }
        // The SVID was checked (key matches leaf) when it was built; an
        // error here means the provider cannot load the key: present nothing.
        let key = svid.certified_key(&self.provider).ok()?;
        self.cache.store(Some(Arc::new(CachedKey {
            generation,
            svid,
            key: key.clone(),
        })));
        Some(key)
    }
}

impl ResolvesServerCert for SvidResolver {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.current()
    }
}

impl ResolvesClientCert for SvidResolver {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        self.current()
    }

    fn has_certs(&self) -> bool {
        true
    }
}

impl fmt::Debug for SvidResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SvidResolver").finish_non_exhaustive()
    }
}
