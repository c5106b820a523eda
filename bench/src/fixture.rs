//! The certificates every measurement uses, and the configs built on them:
//! ours (mtls-core) and raw rustls.

use std::sync::Arc;
use std::time::SystemTime;

use mtls_ca::{CaOptions, CertificateAuthority, SvidRequest};
use mtls_core::authorize;
use mtls_core::rustls;
use mtls_core::{
    BundleSet, CrlSet, MtlsClientConfig, MtlsServerConfig, PeerIdentity, PeerRole, SpiffeId,
    TrustDomain, X509Svid,
};
use rustls::client::Resumption;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::CertificateDer;
use rustls::server::{NoServerSessionStorage, ServerSessionMemoryCache, WebPkiClientVerifier};
use rustls::{ClientConfig, RootCertStore, ServerConfig};

use crate::baseline::raw_server_verifier;
use crate::handshake::FleetClient;
use crate::{BoxError, Side};

/// The name the clients dial (sent as SNI; SPIFFE clients do not check it).
pub(crate) const SERVER_NAME: &str = "backend.bench.example.org";

/// The certificates every measurement uses: a P-256 root, a P-256
/// intermediate that signs, and a P-256 leaf for each side, so that both
/// peers present leaf + intermediate and verify up to the root.
#[derive(Debug)]
pub struct Fixture {
    /// `bench.example.org`.
    pub trust_domain: TrustDomain,
    /// The intermediate CA (it signs the SVIDs).
    pub ca: CertificateAuthority,
    /// The root: the trust anchor of raw rustls.
    pub root: CertificateDer<'static>,
    /// The bundle set of ours.
    pub bundles: BundleSet,
    /// The server's SVID (`.../sa/backend`), leaf + intermediate.
    pub server: X509Svid,
    /// The client's SVID (`.../sa/frontend`), leaf + intermediate.
    pub client: X509Svid,
    /// The crypto provider of ours and of every baseline.
    pub provider: Arc<CryptoProvider>,
}

impl Fixture {
    /// A development root, its intermediate and the two SVIDs it issues.
    pub fn new() -> Result<Self, BoxError> {
        let trust_domain = TrustDomain::new("bench.example.org")?;
        let root = CertificateAuthority::self_signed_for_development(
            trust_domain.clone(),
            &CaOptions::default(),
        )?;
        let ca = root.intermediate(&CaOptions::default())?;
        let server = ca.issue(&SvidRequest::new(SpiffeId::new(
            "spiffe://bench.example.org/ns/prod/sa/backend",
        )?))?;
        let client = ca.issue(&SvidRequest::new(SpiffeId::new(
            "spiffe://bench.example.org/ns/prod/sa/frontend",
        )?))?;
        if server.chain().len() != 2 || client.chain().len() != 2 {
            return Err("the SVIDs should be leaf + intermediate".into());
        }
        let bundles = BundleSet::from(ca.bundle()?);
        let root = ca
            .trust_anchors()
            .first()
            .cloned()
            .ok_or("the CA has no trust anchor")?;
        Ok(Self {
            trust_domain,
            ca,
            root,
            bundles,
            server,
            client,
            provider: mtls_core::default_crypto_provider(),
        })
    }

    pub(crate) fn raw_roots(&self) -> Result<Arc<RootCertStore>, BoxError> {
        let mut roots = RootCertStore::empty();
        roots.add(self.root.clone())?;
        Ok(Arc::new(roots))
    }

    /// Our configs: the server admits the members of the trust domain, the
    /// client the server's exact SPIFFE ID.
    pub fn ours(&self, resumption: bool, alpn: &[&[u8]]) -> Result<Side, BoxError> {
        let alpn: Vec<Vec<u8>> = alpn.iter().map(|p| p.to_vec()).collect();
        let server = MtlsServerConfig::builder(self.server.clone(), self.bundles.clone())
            .authorizer(authorize::member_of(self.trust_domain.clone()))
            .crypto_provider(self.provider.clone())
            .alpn_protocols(alpn.clone())
            .resumption(resumption)
            .build()?;
        let client = self.ours_client(&self.client, resumption, alpn)?;
        Ok(Side::pair(
            server.rustls_config(),
            client.rustls_config(),
            Some((server, client)),
        ))
    }

    /// Our client config presenting `svid`.
    fn ours_client(
        &self,
        svid: &X509Svid,
        resumption: bool,
        alpn: Vec<Vec<u8>>,
    ) -> Result<MtlsClientConfig, BoxError> {
        Ok(
            MtlsClientConfig::builder(svid.clone(), self.bundles.clone())
                .authorizer(authorize::exact(self.server.spiffe_id().clone()))
                .crypto_provider(self.provider.clone())
                .alpn_protocols(alpn)
                .resumption(resumption)
                .build()?,
        )
    }

    /// `n` client SVIDs of their own (`.../sa/frontend-{i}`), for a fleet.
    pub fn fleet_svids(&self, n: usize) -> Result<Vec<X509Svid>, BoxError> {
        (0..n)
            .map(|i| {
                let id = format!("spiffe://bench.example.org/ns/prod/sa/frontend-{i}");
                Ok(self.ca.issue(&SvidRequest::new(SpiffeId::new(&id)?))?)
            })
            .collect()
    }

    /// [`ours`](Self::ours) without resumption, the server handshaking
    /// with a fleet of clients presenting `svids` in turn.
    pub fn ours_fleet(&self, svids: &[X509Svid]) -> Result<Side, BoxError> {
        let mut side = self.ours(false, &[])?;
        for svid in svids {
            let ours = self.ours_client(svid, false, Vec::new())?;
            side.fleet.push(FleetClient {
                client: ours.rustls_config(),
                ours: Some(ours),
            });
        }
        Ok(side)
    }

    /// [`raw`](Self::raw) without resumption, with the fleet of
    /// [`ours_fleet`](Self::ours_fleet).
    pub fn raw_fleet(&self, svids: &[X509Svid]) -> Result<Side, BoxError> {
        let mut side = self.raw(false, &[])?;
        for svid in svids {
            side.fleet.push(FleetClient {
                client: Arc::new(self.raw_client_with(svid, false, &[])?),
                ours: None,
            });
        }
        Ok(side)
    }

    /// Raw rustls on the same certificates and provider: the server checks
    /// clients with `WebPkiClientVerifier`, the client checks the server
    /// with `verify_server_cert_signed_by_trust_anchor` (no name check: an
    /// SVID has no DNS name). Resumption as in `ours`.
    pub fn raw(&self, resumption: bool, alpn: &[&[u8]]) -> Result<Side, BoxError> {
        Ok(Side::pair(
            Arc::new(self.raw_server(true, resumption, alpn)?),
            Arc::new(self.raw_client(resumption, alpn)?),
            None,
        ))
    }

    /// [`raw`](Self::raw) with resumption, the server sending one TLS 1.3
    /// ticket per handshake as ours does (raw rustls sends two by default).
    pub fn raw_one_ticket(&self) -> Result<Side, BoxError> {
        let mut server = self.raw_server(true, true, &[])?;
        server.send_tls13_tickets = 1;
        Ok(Side::pair(
            Arc::new(server),
            Arc::new(self.raw_client(true, &[])?),
            None,
        ))
    }

    /// The raw rustls server config: `WebPkiClientVerifier` when
    /// `client_auth`, none otherwise; resumption as in [`Fixture::ours`].
    pub fn raw_server(
        &self,
        client_auth: bool,
        resumption: bool,
        alpn: &[&[u8]],
    ) -> Result<ServerConfig, BoxError> {
        let builder = ServerConfig::builder_with_provider(self.provider.clone())
            .with_protocol_versions(rustls::DEFAULT_VERSIONS)?;
        let builder = if client_auth {
            builder.with_client_cert_verifier(
                WebPkiClientVerifier::builder_with_provider(
                    self.raw_roots()?,
                    self.provider.clone(),
                )
                .build()?,
            )
        } else {
            builder.with_no_client_auth()
        };
        let mut config = builder.with_single_cert(
            self.server.chain().to_vec(),
            self.server.private_key().clone_key(),
        )?;
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        if resumption {
            // As our builder does.
            config.session_storage = ServerSessionMemoryCache::new(1024);
        } else {
            config.session_storage = Arc::new(NoServerSessionStorage {});
            config.send_tls13_tickets = 0;
        }
        Ok(config)
    }

    fn raw_client(&self, resumption: bool, alpn: &[&[u8]]) -> Result<ClientConfig, BoxError> {
        self.raw_client_with(&self.client, resumption, alpn)
    }

    /// The raw rustls client config presenting `svid`.
    fn raw_client_with(
        &self,
        svid: &X509Svid,
        resumption: bool,
        alpn: &[&[u8]],
    ) -> Result<ClientConfig, BoxError> {
        let verifier = raw_server_verifier(
            self.raw_roots()?,
            self.provider.signature_verification_algorithms,
        );
        let mut config = ClientConfig::builder_with_provider(self.provider.clone())
            .with_protocol_versions(rustls::DEFAULT_VERSIONS)?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_client_auth_cert(svid.chain().to_vec(), svid.private_key().clone_key())?;
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        if !resumption {
            config.resumption = Resumption::disabled();
        }
        Ok(config)
    }

    /// The client's identity as our verifier sees it.
    pub fn client_identity(&self) -> Result<PeerIdentity, BoxError> {
        Ok(mtls_core::verify(
            self.client.chain(),
            &self.bundles,
            SystemTime::now(),
            &CrlSet::new(),
            PeerRole::Client,
        )?)
    }
}
