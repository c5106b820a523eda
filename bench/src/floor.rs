//! The crypto floor: the signatures and the key exchange a full mTLS
//! handshake cannot avoid, timed with the same provider.

use std::hint::black_box;

use mtls_core::rustls;
use rustls::SignatureScheme;

use crate::handshake::connect;
use crate::stats::kept;
use crate::{ns_per_call, BoxError, Fixture, Side};

/// The cryptography a full mTLS handshake cannot avoid, per side: one
/// P-256 signature (CertificateVerify), three P-256 verifications (the
/// peer's CertificateVerify, its leaf and its intermediate), one key
/// exchange in the negotiated group; timed with the same provider, in
/// rounds interleaved with the handshakes (µs per operation, per round).
#[derive(Debug)]
pub struct Floor {
    /// The key exchange group, as rustls names it.
    pub group: String,
    /// One P-256 signature.
    pub sign_us: Vec<f64>,
    /// One P-256 verification.
    pub verify_us: Vec<f64>,
    /// The client's key exchange: a key pair, then the shared secret.
    pub kx_client_us: Vec<f64>,
    /// The server's key exchange: a key pair and the shared secret at once.
    pub kx_server_us: Vec<f64>,
}

impl Floor {
    /// Per round: sign + 3 verifies + the client's key exchange.
    pub fn client_us(&self) -> Vec<f64> {
        (0..self.sign_us.len())
            .map(|i| self.sign_us[i] + 3.0 * self.verify_us[i] + self.kx_client_us[i])
            .collect()
    }

    /// Per round: sign + 3 verifies + the server's key exchange.
    pub fn server_us(&self) -> Vec<f64> {
        (0..self.sign_us.len())
            .map(|i| self.sign_us[i] + 3.0 * self.verify_us[i] + self.kx_server_us[i])
            .collect()
    }
}

/// What the floor's operations need, set up once.
#[derive(Debug)]
pub struct FloorKit {
    signer: Box<dyn rustls::sign::Signer>,
    algorithm: &'static dyn rustls::pki_types::SignatureVerificationAlgorithm,
    group: &'static dyn rustls::crypto::SupportedKxGroup,
    message: Vec<u8>,
    signature: Vec<u8>,
    point: Vec<u8>,
    client_share: Vec<u8>,
    server_share: Vec<u8>,
    /// The rounds timed so far.
    pub floor: Floor,
}

impl FloorKit {
    /// The operations of `fx`'s server key, in the group `side` negotiates.
    pub fn new(fx: &Fixture, side: &Side) -> Result<Self, BoxError> {
        let (_client, server) = connect(side)?;
        let group = server
            .negotiated_key_exchange_group()
            .ok_or("no key exchange group negotiated")?;
        let key = fx
            .provider
            .key_provider
            .load_private_key(fx.server.private_key().clone_key())?;
        let scheme = SignatureScheme::ECDSA_NISTP256_SHA256;
        let signer = key.choose_scheme(&[scheme]).ok_or("not a P-256 key")?;
        // A TLS 1.3 CertificateVerify input: 64 spaces, the context string,
        // a zero byte and a SHA-256 transcript hash.
        let mut message = vec![0x20u8; 64];
        message.extend_from_slice(b"TLS 1.3, server CertificateVerify\0");
        message.extend_from_slice(&[0x5a; 32]);
        let signature = signer.sign(&message)?;
        let spki = key.public_key().ok_or("no public key")?;
        // The uncompressed point ends a P-256 SubjectPublicKeyInfo.
        let point = spki
            .as_ref()
            .get(spki.as_ref().len().saturating_sub(65)..)
            .ok_or("short key")?
            .to_vec();
        let algorithm = *fx
            .provider
            .signature_verification_algorithms
            .mapping
            .iter()
            .find(|(s, _)| *s == scheme)
            .and_then(|(_, algs)| algs.first())
            .ok_or("no P-256 verifier")?;
        algorithm
            .verify_signature(&point, &message, &signature)
            .map_err(|_| "the floor's signature does not verify")?;
        let client_share = group.start()?.pub_key().to_vec();
        let server_share = group.start_and_complete(&client_share)?.pub_key;
        Ok(Self {
            signer,
            algorithm,
            group,
            message,
            signature,
            point,
            client_share,
            server_share,
            floor: Floor {
                group: format!("{:?}", group.name()),
                sign_us: Vec::new(),
                verify_us: Vec::new(),
                kx_client_us: Vec::new(),
                kx_server_us: Vec::new(),
            },
        })
    }

    /// One P-256 signature of a CertificateVerify input.
    pub fn sign(&self) -> Result<Vec<u8>, rustls::Error> {
        self.signer.sign(black_box(&self.message))
    }

    /// One P-256 verification of that signature.
    pub fn verify(&self) -> Result<(), rustls::pki_types::InvalidSignature> {
        self.algorithm
            .verify_signature(&self.point, black_box(&self.message), &self.signature)
    }

    /// The client's key exchange: a key pair, then the shared secret with
    /// the server's share.
    pub fn kx_client(&self) -> Result<rustls::crypto::SharedSecret, rustls::Error> {
        self.group.start()?.complete(black_box(&self.server_share))
    }

    /// The server's key exchange: a key pair and the shared secret with the
    /// client's share at once.
    pub fn kx_server(&self) -> Result<rustls::crypto::CompletedKeyExchange, rustls::Error> {
        self.group.start_and_complete(black_box(&self.client_share))
    }

    /// Times each operation over `iters` calls, once.
    pub fn round(&mut self, iters: u64) {
        let sign = ns_per_call(iters, kept(|| self.sign()));
        let verify = ns_per_call(iters, kept(|| self.verify()));
        let kx_client = ns_per_call(iters, kept(|| self.kx_client()));
        let kx_server = ns_per_call(iters, kept(|| self.kx_server()));
        self.floor.sign_us.push(sign / 1e3);
        self.floor.verify_us.push(verify / 1e3);
        self.floor.kx_client_us.push(kx_client / 1e3);
        self.floor.kx_server_us.push(kx_server / 1e3);
    }
}
