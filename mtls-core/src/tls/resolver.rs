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
/// built from an SVID is cached until the source hands out another SVID.
pub(crate) struct SvidResolver {
    source: Arc<dyn SvidSource>,
    provider: Arc<CryptoProvider>,
    cache: ArcSwapOption<(X509Svid, Arc<CertifiedKey>)>,
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
        let svid = self.source.current_svid()?;
        if let Some(cached) = &*self.cache.load() {
            if cached.0.ptr_eq(&svid) {
                return Some(cached.1.clone());
            }
        }
        // The SVID was checked (key matches leaf) when it was built; an
        // error here means the provider cannot load the key: present nothing.
        let key = svid.certified_key(&self.provider).ok()?;
        self.cache.store(Some(Arc::new((svid, key.clone()))));
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
