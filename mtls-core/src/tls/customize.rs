//! Customizers: the rest of the rustls config, without the verification.
//!
//! A customizer gets a [`ServerTweaks`] or [`ClientTweaks`], never the
//! rustls config itself: `&mut ServerConfig` would let it replace the
//! certificate resolver (`cert_resolver` is a public field), the clock the
//! verifier checks validity at (`time_provider`), or the whole config
//! (`*config = other`), and `ClientConfig::dangerous()` replaces the
//! verifier. The tweaks offer only settings that leave who is admitted
//! unchanged, so verification and authorization hold by construction.

use std::fmt;
use std::sync::Arc;

use rustls::client::{ClientSessionStore, Resumption};
use rustls::compress::{CertCompressor, CertDecompressor, CompressionCache};
use rustls::server::{ProducesTickets, StoresServerSessions};
use rustls::{ClientConfig, KeyLog, ServerConfig};

use super::ConfigError;

/// The smallest and largest `max_fragment_size` rustls accepts (a record
/// header of 5 bytes plus 27 to 16,384 bytes of payload).
const FRAGMENT_SIZES: std::ops::RangeInclusive<usize> = 32..=16_384 + 5;

/// Customizers registered on a builder, applied in order by `build`.
pub(crate) struct Customizers<F: ?Sized>(Vec<Box<F>>);

pub(crate) type ServerCustomizer = dyn FnOnce(&mut ServerTweaks<'_>) + Send + Sync;
pub(crate) type ClientCustomizer = dyn FnOnce(&mut ClientTweaks<'_>) + Send + Sync;

impl<F: ?Sized> Customizers<F> {
    pub(crate) fn new() -> Self {
        Self(Vec::new())
    }

    pub(crate) fn push(&mut self, customizer: Box<F>) {
        self.0.push(customizer);
    }
}

impl<F: ?Sized> fmt::Debug for Customizers<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} customizer(s)", self.0.len())
    }
}

/// What the tweaks recorded that `build` must still judge.
#[derive(Default)]
struct Pending {
    /// The first setting that resumes sessions, if any was made.
    resumption_setting: Option<&'static str>,
    /// The first setting rustls would refuse.
    error: Option<rustls::Error>,
}

impl Pending {
    fn resumes(&mut self, setting: &'static str) {
        self.resumption_setting.get_or_insert(setting);
    }

    fn fragment_size(&mut self, size: Option<usize>) -> Option<usize> {
        match size {
            Some(n) if !FRAGMENT_SIZES.contains(&n) => {
                self.error.get_or_insert(rustls::Error::BadMaxFragmentSize);
                None
            }
            other => other,
        }
    }

    fn finish(self, resumption: bool) -> Result<(), ConfigError> {
        if let Some(error) = self.error {
            return Err(ConfigError::Rustls(error));
        }
        match self.resumption_setting {
            Some(setting) if !resumption => Err(ConfigError::ResumptionOff { setting }),
            _ => Ok(()),
        }
    }
}

/// Settings a tweaks type passes straight to its rustls config: each
/// `name: Type;`, after its doc comment, becomes a method that sets the
/// config's field of the same name.
macro_rules! config_setters {
    ($($(#[$attr:meta])* $name:ident: $ty:ty;)*) => {
        $(
            $(#[$attr])*
            pub fn $name(&mut self, $name: $ty) -> &mut Self {
                self.config.$name = $name;
                self
            }
        )*
    };
}

/// Declares the tweaks type over each rustls config: the struct, its
/// `Debug`, the settings both configs share, and how its customizers are
/// applied.
macro_rules! tweaks {
    ($(
        $(#[$meta:meta])*
        $name:ident, $config:ty, $customizer:ty,
        builder: $builder:literal, peer: $peer:literal;
    )+) => {$(
        $(#[$meta])*
        pub struct $name<'a> {
            config: &'a mut $config,
            pending: Pending,
        }

        impl<'a> $name<'a> {
            config_setters! {
                #[doc = concat!(
                    "ALPN protocols, most preferred first (as\n[`alpn_protocols`](crate::",
                    $builder,
                    "::alpn_protocols))."
                )]
                alpn_protocols: Vec<Vec<u8>>;
            }

            /// The largest TLS record to send, header included (32 to 16,389
            /// bytes; `None`: the protocol's maximum). Any other size makes
            /// `build` fail.
            pub fn max_fragment_size(&mut self, size: Option<usize>) -> &mut Self {
                self.config.max_fragment_size = self.pending.fragment_size(size);
                self
            }

            config_setters! {
                /// Where the TLS secrets of each connection are logged, for example
                /// `rustls::KeyLogFile` (`SSLKEYLOGFILE`) to decrypt captures while
                /// debugging. Anyone who can read that log can decrypt the traffic.
                key_log: Arc<dyn KeyLog>;

                /// Allow the traffic secrets to be extracted after the handshake (for
                /// kernel TLS offload).
                enable_secret_extraction: bool;

                /// Require the extended master secret extension (RFC 7627) on TLS 1.2.
                require_ems: bool;

                /// Certificate compression algorithms offered for our certificate
                /// (RFC 8879; rustls' `brotli` and `zlib` features provide some).
                cert_compressors: Vec<&'static dyn CertCompressor>;

                #[doc = concat!(
                    "Certificate decompression algorithms accepted for the ",
                    $peer,
                    "'s\ncertificate, which is verified after decompression as always."
                )]
                cert_decompressors: Vec<&'static dyn CertDecompressor>;

                /// The cache of compressed certificates.
                cert_compression_cache: Arc<CompressionCache>;
            }
        }

        impl fmt::Debug for $name<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($name)).finish_non_exhaustive()
            }
        }

        impl Customizers<$customizer> {
            /// Applies the customizers in order to `config`, already holding our
            /// verifier, resolver and defaults.
            pub(crate) fn apply(
                self,
                config: &mut $config,
                resumption: bool,
            ) -> Result<(), ConfigError> {
                let mut tweaks = $name {
                    config,
                    pending: Pending::default(),
                };
                for customizer in self.0 {
                    customizer(&mut tweaks);
                }
                tweaks.pending.finish(resumption)
            }
        }
    )+};
}

tweaks! {
    /// The settings of a server config a customizer may change; see
    /// [`ServerConfigBuilder::customize`](crate::ServerConfigBuilder::customize).
    ///
    /// Not offered, because they change who is admitted or let data flow
    /// before the client is authenticated: the client-certificate verifier,
    /// the certificate resolver, the time provider (the clock certificates
    /// are checked at), 0-RTT early data (`max_early_data_size`) and half-RTT
    /// data (`send_half_rtt_data`).
    ServerTweaks, ServerConfig, ServerCustomizer,
    builder: "ServerConfigBuilder", peer: "client";

    /// The settings of a client config a customizer may change; see
    /// [`ClientConfigBuilder::customize`](crate::ClientConfigBuilder::customize).
    ///
    /// Not offered, because they change who is admitted or let data flow
    /// before the server is verified again: the server-certificate verifier
    /// (`dangerous()`), the client certificate resolver, the time provider (the
    /// clock certificates are checked at) and 0-RTT early data.
    ClientTweaks, ClientConfig, ClientCustomizer,
    builder: "ClientConfigBuilder", peer: "server";
}

/// The settings only a server config has.
impl ServerTweaks<'_> {
    config_setters! {
        /// Choose the cipher suite by the server's order of preference instead
        /// of the client's.
        ignore_client_order: bool;
    }

    /// Where resumable sessions are kept (default with
    /// [`resumption(true)`](crate::ServerConfigBuilder::resumption): an
    /// in-memory cache of 1024 sessions). Resumes sessions, so `build`
    /// fails unless resumption is on.
    pub fn session_storage(&mut self, storage: Arc<dyn StoresServerSessions>) -> &mut Self {
        self.pending.resumes("session_storage");
        self.config.session_storage = storage;
        self
    }

    /// Stateless session tickets (default: none). Resumes sessions, so
    /// `build` fails unless resumption is on.
    pub fn ticketer(&mut self, ticketer: Arc<dyn ProducesTickets>) -> &mut Self {
        self.pending.resumes("ticketer");
        self.config.ticketer = ticketer;
        self
    }

    /// How many TLS 1.3 tickets to send after each handshake (default with
    /// [`resumption(true)`](crate::ServerConfigBuilder::resumption): one,
    /// as Go's crypto/tls sends; rustls's own default is two, worth it for
    /// clients that open several connections at once right after their
    /// first). A number above zero resumes sessions, so `build` fails
    /// unless resumption is on.
    pub fn send_tls13_tickets(&mut self, count: usize) -> &mut Self {
        if count > 0 {
            self.pending.resumes("send_tls13_tickets");
        }
        self.config.send_tls13_tickets = count;
        self
    }
}

/// The settings only a client config has.
impl ClientTweaks<'_> {
    config_setters! {
        /// Send the server name dialled as SNI (default: on).
        enable_sni: bool;
    }

    /// Where resumable sessions are kept (default with
    /// [`resumption(true)`](crate::ClientConfigBuilder::resumption): an
    /// in-memory cache). Resumes sessions, so `build` fails unless
    /// resumption is on.
    pub fn session_storage(&mut self, store: Arc<dyn ClientSessionStore>) -> &mut Self {
        self.pending.resumes("session_storage");
        self.config.resumption = Resumption::store(store);
        self
    }

    /// The whole resumption setting (store and TLS 1.2 resumption).
    /// Resumes sessions, so `build` fails unless resumption is on.
    pub fn resumption(&mut self, resumption: Resumption) -> &mut Self {
        self.pending.resumes("resumption");
        self.config.resumption = resumption;
        self
    }
}
