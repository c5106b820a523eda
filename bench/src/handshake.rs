//! Handshakes over memory buffers: client and server in one thread, each
//! side's time counted apart.

use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mtls_core::rustls;
use mtls_core::{MtlsClientConfig, MtlsServerConfig};
use rustls::pki_types::ServerName;
use rustls::{
    ClientConfig, ClientConnection, ConnectionCommon, HandshakeKind, ServerConfig, ServerConnection,
};

use crate::fixture::SERVER_NAME;
use crate::{median, ns_per_call, BoxError};

/// A server config and a client config that talk to each other, and, for
/// ours, the mtls-core configs whose `peer_identity` the listener and the
/// connector call after every handshake.
#[derive(Debug)]
pub struct Side {
    /// The server's rustls config.
    pub server: Arc<ServerConfig>,
    /// The client's rustls config.
    pub client: Arc<ClientConfig>,
    /// Ours: the mtls-core configs the rustls configs came from.
    pub ours: Option<(MtlsServerConfig, MtlsClientConfig)>,
    /// A fleet of clients, each with an SVID of its own: when not empty,
    /// each handshake takes the next in turn instead of `client`, so that
    /// the server sees more distinct peers than its verifier remembers.
    pub fleet: Vec<FleetClient>,
    /// The fleet's next client.
    pub(crate) turn: AtomicUsize,
}

/// One client of a [`Side`]'s fleet.
#[derive(Debug)]
pub struct FleetClient {
    /// Its rustls config.
    pub client: Arc<ClientConfig>,
    /// Ours: the mtls-core config it came from.
    pub ours: Option<MtlsClientConfig>,
}

impl Side {
    /// A side of one server and one client.
    pub fn pair(
        server: Arc<ServerConfig>,
        client: Arc<ClientConfig>,
        ours: Option<(MtlsServerConfig, MtlsClientConfig)>,
    ) -> Self {
        Self {
            server,
            client,
            ours,
            fleet: Vec::new(),
            turn: AtomicUsize::new(0),
        }
    }

    /// The client of the next handshake, and its mtls-core config for ours.
    fn next_client(&self) -> (&Arc<ClientConfig>, Option<&MtlsClientConfig>) {
        if self.fleet.is_empty() {
            return (&self.client, self.ours.as_ref().map(|(_, c)| c));
        }
        let turn = self.turn.fetch_add(1, Ordering::Relaxed) % self.fleet.len();
        let member = &self.fleet[turn];
        (&member.client, member.ours.as_ref())
    }
}

/// Time spent by each side of a handshake.
#[derive(Debug, Default, Clone, Copy)]
pub struct PerSide {
    /// The client's time.
    pub client: Duration,
    /// The server's time.
    pub server: Duration,
}

/// Moves every pending TLS byte of `from` into `to` and lets `to` process
/// them; the time goes to the side that did the work.
fn pump<A, B>(
    from: &mut ConnectionCommon<A>,
    to: &mut ConnectionCommon<B>,
    buf: &mut Vec<u8>,
    t_from: &mut Duration,
    t_to: &mut Duration,
) -> Result<usize, BoxError> {
    buf.clear();
    let start = Instant::now();
    while from.wants_write() {
        from.write_tls(buf)?;
    }
    *t_from += start.elapsed();
    if buf.is_empty() {
        return Ok(0);
    }
    let start = Instant::now();
    let mut rest: &[u8] = buf;
    while !rest.is_empty() {
        to.read_tls(&mut rest)?;
        to.process_new_packets()?;
    }
    *t_to += start.elapsed();
    Ok(buf.len())
}

/// One handshake between fresh connections of `side`, client and server in
/// this thread, over memory buffers (as rustls's own benchmark does),
/// including the post-handshake session tickets. For ours, the
/// `peer_identity` calls the listener and the connector make (which verify
/// a resumed session again) are counted too.
pub fn handshake(
    side: &Side,
    expect: Option<HandshakeKind>,
    buf: &mut Vec<u8>,
) -> Result<PerSide, BoxError> {
    let name = ServerName::try_from(SERVER_NAME)?;
    let mut t = PerSide::default();
    let (client_config, ours_client) = side.next_client();
    let start = Instant::now();
    let mut client = ClientConnection::new(client_config.clone(), name)?;
    t.client += start.elapsed();
    let start = Instant::now();
    let mut server = ServerConnection::new(side.server.clone())?;
    t.server += start.elapsed();
    loop {
        let sent = pump(&mut client, &mut server, buf, &mut t.client, &mut t.server)?;
        let back = pump(&mut server, &mut client, buf, &mut t.server, &mut t.client)?;
        if sent == 0 && back == 0 {
            break;
        }
    }
    if client.is_handshaking() || server.is_handshaking() {
        return Err("handshake stalled".into());
    }
    if let Some(expect) = expect {
        if server.handshake_kind() != Some(expect) || client.handshake_kind() != Some(expect) {
            return Err(format!(
                "expected a {expect:?} handshake, got server {:?} / client {:?}",
                server.handshake_kind(),
                client.handshake_kind()
            )
            .into());
        }
    }
    if let (Some((ours_server, _)), Some(ours_client)) = (&side.ours, ours_client) {
        let start = Instant::now();
        black_box(ours_server.peer_identity(&server)?);
        t.server += start.elapsed();
        let start = Instant::now();
        black_box(ours_client.peer_identity(&client)?);
        t.client += start.elapsed();
    }
    Ok(t)
}

/// A client and a server connection of `side`, handshaken (untimed).
pub(crate) fn connect(side: &Side) -> Result<(ClientConnection, ServerConnection), BoxError> {
    let name = ServerName::try_from(SERVER_NAME)?;
    let mut client = ClientConnection::new(side.client.clone(), name)?;
    let mut server = ServerConnection::new(side.server.clone())?;
    let (mut a, mut b) = (Duration::ZERO, Duration::ZERO);
    let mut buf = Vec::new();
    while pump(&mut client, &mut server, &mut buf, &mut a, &mut b)?
        + pump(&mut server, &mut client, &mut buf, &mut b, &mut a)?
        > 0
    {}
    Ok((client, server))
}

/// The negotiated protocol and key exchange group of `side`.
pub fn negotiated(side: &Side) -> Result<(String, String), BoxError> {
    let (_client, server) = connect(side)?;
    let version = server
        .protocol_version()
        .map_or("?".into(), |v| format!("{v:?}"));
    let group = server
        .negotiated_key_exchange_group()
        .map_or("?".into(), |g| format!("{:?}", g.name()));
    Ok((version, group))
}

/// Per-handshake CPU time of each side, in µs, round by round.
#[derive(Debug, Default, Clone)]
pub struct HandshakeRounds {
    /// The client's µs per handshake, per round.
    pub client_us: Vec<f64>,
    /// The server's µs per handshake, per round.
    pub server_us: Vec<f64>,
}

impl HandshakeRounds {
    /// Both sides' µs per handshake, per round.
    pub fn total_us(&self) -> Vec<f64> {
        self.client_us
            .iter()
            .zip(&self.server_us)
            .map(|(c, s)| c + s)
            .collect()
    }
}

/// Runs the handshakes of `sides` (each with the kind it must produce) in
/// `rounds` rounds of `batch` handshakes each, rotating which side goes
/// first every round, and `between` after every round (so that what it
/// times is interleaved with the handshakes).
pub fn measure_handshakes(
    sides: &[(&Side, HandshakeKind)],
    rounds: usize,
    batch: usize,
    between: &mut dyn FnMut() -> Result<(), BoxError>,
) -> Result<Vec<HandshakeRounds>, BoxError> {
    let mut buf = Vec::with_capacity(64 * 1024);
    // Warm-up, and the first session tickets of the resuming sides.
    for (side, _) in sides {
        for _ in 0..5 {
            handshake(side, None, &mut buf)?;
        }
    }
    let mut out = vec![HandshakeRounds::default(); sides.len()];
    for round in 0..rounds {
        for k in 0..sides.len() {
            let i = (round + k) % sides.len();
            let (side, kind) = sides[i];
            let mut sum = PerSide::default();
            for _ in 0..batch {
                let t = handshake(side, Some(kind), &mut buf)?;
                sum.client += t.client;
                sum.server += t.server;
            }
            out[i]
                .client_us
                .push(sum.client.as_secs_f64() * 1e6 / batch as f64);
            out[i]
                .server_us
                .push(sum.server.as_secs_f64() * 1e6 / batch as f64);
        }
        between()?;
    }
    Ok(out)
}

/// ns per `MtlsServerConfig::peer_identity` on a finished full handshake
/// (what the listener does for every connection), median of `rounds`.
pub fn measure_peer_identity(side: &Side, rounds: usize, iters: u64) -> Result<f64, BoxError> {
    let Some((ours, _)) = &side.ours else {
        return Err("not our configs".into());
    };
    let (_client, server) = connect(side)?;
    ours.peer_identity(&server)?;
    let per_round: Vec<f64> = (0..rounds)
        .map(|_| {
            ns_per_call(iters, || {
                let _ = black_box(ours.peer_identity(black_box(&server)));
            })
        })
        .collect();
    Ok(median(&per_round))
}
