//! Run with: `cargo run --release -p mtls-bench` (add `-- --quick` for a run under a minute).
//!
//! What the mtls crates cost, measured side by side with what a user would
//! otherwise use, in one run: full and resumed TLS 1.3 mTLS handshakes
//! against raw rustls, chain verification against rustls-webpki and the
//! crypto floor, authorization decisions as rules grow, the request path of
//! axum over our listener and layer against raw rustls and plaintext, SVID
//! issuance and CSR signing against raw rcgen, and the memory of an idle
//! connection against raw rustls.
//!
//! Prints a markdown table (each figure, its baseline and the ratio) on
//! stdout, then one `key=value` line per headline figure for scripts;
//! progress goes to stderr. BENCHMARKS.md describes the method and what the
//! numbers mean. Always build with `--release`.

use std::fmt::Write as _;
use std::hint::black_box;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use mtls_core::rustls::{HandshakeKind, NamedGroup};

use mtls_bench::*;

/// Measures the costs of the mtls crates against their baselines.
#[derive(Debug, Parser)]
#[command(name = "mtls-bench")]
struct Cli {
    /// A shorter run (fewer rounds, shorter windows): under a minute.
    #[arg(long)]
    quick: bool,
    /// Runs only these sections (comma-separated).
    #[arg(long, value_delimiter = ',', value_enum)]
    only: Vec<Section>,
    /// Runs one workload (handshake-ours, handshake-raw, their -pq
    /// variants, resumed-ours, resumed-raw, request-ours,
    /// request-ours-whole, request-bare, issue-ours, issue-raw,
    /// csr-ours, csr-raw) `--count` times and nothing else, for
    /// instruction counts (`bench/callgrind.sh`).
    #[arg(long, value_name = "WORKLOAD")]
    instructions: Option<String>,
    /// Operations of `--instructions`.
    #[arg(long, default_value_t = 100)]
    count: u64,
    /// Internal: the server process of the memory measurement.
    #[arg(long, hide = true)]
    memory_server: Option<String>,
    /// Internal: connections the memory server measures.
    #[arg(long, hide = true, default_value_t = 0)]
    connections: usize,
    /// Internal: connections the memory server accepts before its baseline.
    #[arg(long, hide = true, default_value_t = 0)]
    warm: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Section {
    /// Full and resumed handshakes, chain verification, the crypto floor.
    Handshake,
    /// Authorization decisions.
    Authz,
    /// The request path over loopback.
    Request,
    /// SVID issuance and CSR signing.
    Ca,
    /// Memory per idle connection.
    Memory,
}

/// How much of everything to run.
struct Plan {
    hs_rounds: usize,
    hs_batch: usize,
    verify_rounds: usize,
    verify_iters: u64,
    floor_iters: u64,
    authz_rounds: usize,
    authz_slice: Duration,
    req_rounds: usize,
    req_window: Duration,
    req_connections: usize,
    req_warmup: usize,
    layer_rounds: usize,
    layer_iters: u64,
    ca_rounds: usize,
    ca_iters: u64,
    mem_rounds: usize,
    mem_connections: usize,
    mem_warm: usize,
}

impl Plan {
    fn new(quick: bool) -> Self {
        if quick {
            Self {
                hs_rounds: 40,
                hs_batch: 10,
                verify_rounds: 20,
                verify_iters: 100,
                floor_iters: 40,
                authz_rounds: 9,
                authz_slice: Duration::from_millis(3),
                req_rounds: 4,
                req_window: Duration::from_millis(500),
                req_connections: 1,
                req_warmup: 50,
                layer_rounds: 10,
                layer_iters: 5_000,
                ca_rounds: 8,
                ca_iters: 10,
                mem_rounds: 1,
                mem_connections: 300,
                mem_warm: 16,
            }
        } else {
            Self {
                hs_rounds: 150,
                hs_batch: 20,
                verify_rounds: 40,
                verify_iters: 200,
                floor_iters: 100,
                authz_rounds: 41,
                authz_slice: Duration::from_millis(5),
                req_rounds: 12,
                req_window: Duration::from_millis(1500),
                req_connections: 1,
                req_warmup: 200,
                layer_rounds: 30,
                layer_iters: 20_000,
                ca_rounds: 25,
                ca_iters: 40,
                mem_rounds: 3,
                mem_connections: 2_000,
                mem_warm: 16,
            }
        }
    }
}

/// The table and the headline figures.
#[derive(Default)]
struct Report {
    rows: Vec<[String; 5]>,
    keys: Vec<(&'static str, String)>,
    notes: Vec<String>,
    extra: String,
}

impl Report {
    fn row(&mut self, what: &str, ours: String, baseline: String, ratio: String, target: &str) {
        self.rows
            .push([what.into(), ours, baseline, ratio, target.into()]);
    }

    /// A row of two series of µs per round, ours and the `baseline`'s:
    /// their medians and the throughput ratio ours/baseline (its time ÷
    /// ours, paired round by round), which it returns; `target` is the
    /// least ratio wanted and how the row says it.
    fn throughput(
        &mut self,
        what: &str,
        ours: &[f64],
        baseline: (&[f64], &str),
        target: Option<(f64, &str)>,
    ) -> f64 {
        let (theirs, name) = baseline;
        let r = paired_ratio(theirs, ours);
        let target = target.map_or_else(String::new, |(least, text)| verdict(r >= least, text));
        self.row(
            what,
            us(median(ours)),
            format!("{} {name}", us(median(theirs))),
            ratio(r),
            &target,
        );
        r
    }

    fn key(&mut self, key: &'static str, value: String) {
        self.keys.push((key, value));
    }
}

fn us(v: f64) -> String {
    format!("{v:.1} µs")
}

fn ns(v: f64) -> String {
    format!("{v:.0} ns")
}

fn ratio(v: f64) -> String {
    format!("{v:.3}")
}

fn verdict(met: bool, what: &str) -> String {
    if met {
        format!("{what}: met")
    } else {
        format!("{what}: **missed**")
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(kind) = &cli.memory_server {
        return match memory_server_main(kind, cli.connections, cli.warm) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("mtls-bench memory server: {e}");
                ExitCode::FAILURE
            }
        };
    }
    if let Some(what) = &cli.instructions {
        return match Fixture::new().and_then(|mut fx| run_workload(&mut fx, what, cli.count)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("mtls-bench --instructions {what}: {e}");
                ExitCode::FAILURE
            }
        };
    }
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mtls-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: &Cli) -> Result<(), BoxError> {
    if cfg!(debug_assertions) {
        eprintln!("mtls-bench: this is a debug build; the figures mean little. Use --release.");
    }
    let plan = Plan::new(cli.quick);
    let wanted = |s: Section| cli.only.is_empty() || cli.only.contains(&s);
    let started = Instant::now();
    let load_before = load_average();
    let mut fx = Fixture::new()?;
    let mut report = Report::default();

    if wanted(Section::Handshake) {
        // The headline on the classical group (as before post-quantum key
        // exchange became our default), then on the hybrid, each with ours
        // and raw rustls on the same group.
        let default_provider = fx.provider.clone();
        for group in [NamedGroup::X25519, NamedGroup::X25519MLKEM768] {
            let Some(provider) = only_group(&default_provider, group) else {
                report
                    .notes
                    .push(format!("{group:?}: not offered by this crypto provider"));
                continue;
            };
            progress(
                started,
                &format!("handshakes ({group:?}), chain verification, crypto floor"),
            );
            fx.provider = provider;
            handshakes(&fx, &plan, &mut report, group == NamedGroup::X25519)?;
        }
        fx.provider = default_provider;
    }
    if wanted(Section::Authz) {
        progress(started, "authorization decisions");
        authz(&plan, &mut report)?;
    }
    if wanted(Section::Request) {
        progress(started, "request path over loopback");
        request_path(&fx, &plan, &mut report)?;
    }
    if wanted(Section::Ca) {
        progress(started, "CA issuance");
        ca(&fx, &plan, &mut report)?;
    }
    if wanted(Section::Memory) {
        progress(started, "memory per idle connection");
        memory(&fx, &plan, &mut report)?;
    }
    progress(started, "done");
    print_report(cli, &report, started.elapsed(), &load_before);
    Ok(())
}

fn progress(started: Instant, what: &str) {
    eprintln!("[{:>5.1} s] {what}", started.elapsed().as_secs_f64());
}

/// `provider` offering key exchange group `group` only, if it has it.
fn only_group(
    provider: &std::sync::Arc<mtls_core::rustls::crypto::CryptoProvider>,
    group: NamedGroup,
) -> Option<std::sync::Arc<mtls_core::rustls::crypto::CryptoProvider>> {
    let mut provider = (**provider).clone();
    provider.kx_groups.retain(|g| g.name() == group);
    (!provider.kx_groups.is_empty()).then(|| std::sync::Arc::new(provider))
}

/// Handshake figures on the fixture's provider; `headline`: the figures of
/// the classical group, with every `key=value` line, else only the table
/// rows of the full and resumed handshakes and `handshake_ratio_pq=`.
fn handshakes(
    fx: &Fixture,
    plan: &Plan,
    report: &mut Report,
    headline: bool,
) -> Result<(), BoxError> {
    let ours_full = fx.ours(false, &[])?;
    let raw_full = fx.raw(false, &[])?;
    let ours_resumed = fx.ours(true, &[])?;
    let raw_resumed = fx.raw(true, &[])?;
    let raw_resumed_one_ticket = fx.raw_one_ticket()?;
    let (version, group) = negotiated(&ours_full)?;
    let (raw_version, raw_group) = negotiated(&raw_full)?;
    if (&version, &group) != (&raw_version, &raw_group) {
        return Err(format!(
            "ours negotiates {version}/{group}, raw rustls {raw_version}/{raw_group}"
        )
        .into());
    }
    let mut floor_kit = FloorKit::new(fx, &ours_full)?;
    let floor_iters = plan.floor_iters;
    let rounds = measure_handshakes(
        &[
            (&ours_full, HandshakeKind::Full),
            (&raw_full, HandshakeKind::Full),
            (&ours_resumed, HandshakeKind::Resumed),
            (&raw_resumed, HandshakeKind::Resumed),
            (&raw_resumed_one_ticket, HandshakeKind::Resumed),
        ],
        plan.hs_rounds,
        plan.hs_batch,
        &mut || {
            floor_kit.round(floor_iters);
            Ok(())
        },
    )?;
    let floor = floor_kit.floor;
    let [of, rf, or, rr, r1] =
        <[HandshakeRounds; 5]>::try_from(rounds).map_err(|_| "expected five handshake series")?;
    let verify = measure_verify(fx, plan.verify_rounds, plan.verify_iters)?;

    // (1) Full handshakes: throughput ratio ours/raw = raw CPU / our CPU,
    // paired round by round.
    let server_ratio = report.throughput(
        &format!("(1) full handshake ({version}, {group}, P-256 leaf + intermediate both sides), server CPU per handshake; ratio = throughput ours/raw"),
        &of.server_us,
        (&rf.server_us, "raw rustls, WebPkiClientVerifier"),
        None,
    );
    let client_ratio = report.throughput(
        "(1) full handshake, client CPU per handshake; ratio = throughput ours/raw",
        &of.client_us,
        (
            &rf.client_us,
            "raw rustls, verify_server_cert_signed_by_trust_anchor",
        ),
        None,
    );
    let total_ratio = report.throughput(
        &format!("(1) **full handshake, both sides** ({group}); ratio = throughput ours/raw"),
        &of.total_us(),
        (&rf.total_us(), "raw rustls"),
        Some((1.20, "≥ 1.20")),
    );
    if !headline {
        let resumed_vs_raw = report.throughput(
            &format!("(2) resumed handshake, both sides ({group}); ratio = throughput ours/raw"),
            &or.total_us(),
            (&rr.total_us(), "raw rustls resumed"),
            None,
        );
        report.key("handshake_ratio_pq", ratio(total_ratio));
        report.key("resumed_vs_raw_ratio_pq", ratio(resumed_vs_raw));
        return Ok(());
    }
    for (what, ours, raw, floor) in [
        (
            format!("(1)/(3) full handshake server CPU over the crypto floor (1 P-256 sign + 3 verifies + 1 {group} exchange); ratio = ours/floor"),
            &of.server_us,
            &rf.server_us,
            floor.server_us(),
        ),
        (
            "(1)/(3) full handshake client CPU over the crypto floor; ratio = ours/floor".into(),
            &of.client_us,
            &rf.client_us,
            floor.client_us(),
        ),
    ] {
        report.row(
            &what,
            us(median(ours)),
            format!(
                "{} floor (raw rustls: {:.2}× floor)",
                us(median(&floor)),
                paired_ratio(raw, &floor)
            ),
            format!("{:.2}×", paired_ratio(ours, &floor)),
            "",
        );
    }

    // (1b) A fleet: the server handshakes with more distinct clients than
    // its verifier remembers, so each of their chains is verified (under
    // the cached intermediate); each client's own verifier remembers the
    // server's chain.
    let svids = fx.fleet_svids(mtls_bench::FLEET)?;
    let fleet = measure_handshakes(
        &[
            (&fx.ours_fleet(&svids)?, HandshakeKind::Full),
            (&fx.raw_fleet(&svids)?, HandshakeKind::Full),
        ],
        plan.hs_rounds,
        plan.hs_batch,
        &mut || Ok(()),
    )?;
    let [fleet_ours, fleet_raw] =
        <[HandshakeRounds; 2]>::try_from(fleet).map_err(|_| "expected two fleet series")?;
    let fleet_ratio = report.throughput(
        &format!(
            "(1b) full handshake, both sides, a server and a fleet of {} clients taken in turn (more than the 64 chains a verifier remembers); ratio = throughput ours/raw",
            mtls_bench::FLEET
        ),
        &fleet_ours.total_us(),
        (&fleet_raw.total_us(), "raw rustls"),
        None,
    );
    report.key("handshake_ratio_fleet", ratio(fleet_ratio));

    let identity_ns = measure_peer_identity(&ours_full, plan.verify_rounds, plan.verify_iters)?;
    report.row(
        "(1) of which: reading the client's identity after a full handshake (`MtlsServerConfig::peer_identity`, as the listener does); ratio = share of our server CPU",
        us(identity_ns / 1e3),
        "— (raw rustls reads no identity)".into(),
        format!("{:.1} %", 100.0 * identity_ns / 1e3 / median(&of.server_us)),
        "",
    );

    // (2) Resumed handshakes, with the re-verification the listener and
    // the connector do on resumption.
    let speedup_ours = paired_ratio(&of.total_us(), &or.total_us());
    let speedup_raw = paired_ratio(&rf.total_us(), &rr.total_us());
    report.throughput(
        "(2) resumed handshake, server CPU (ours: with `peer_identity` re-verification); ratio = throughput ours/raw",
        &or.server_us,
        (&rr.server_us, "raw rustls resumed"),
        None,
    );
    report.throughput(
        "(2) resumed handshake, client CPU (ours: with re-verification); ratio = throughput ours/raw",
        &or.client_us,
        (&rr.client_us, "raw rustls resumed"),
        None,
    );
    let resumed_vs_raw = report.throughput(
        "(2) resumed handshake, both sides; ratio = throughput ours/raw",
        &or.total_us(),
        (&rr.total_us(), "raw rustls resumed"),
        Some((1.0, "≥ 1.0")),
    );
    let resumed_vs_one_ticket = report.throughput(
        "(2) resumed handshake, both sides, raw rustls set to send one ticket per handshake as ours does (its default is two); ratio = throughput ours/raw",
        &or.total_us(),
        (&r1.total_us(), "raw rustls resumed, one ticket"),
        None,
    );
    report.row(
        "(2) **resumption speed-up**: resumed ÷ full handshake throughput, both sides",
        format!("{speedup_ours:.2}×"),
        format!("{speedup_raw:.2}× raw rustls (no re-verification)"),
        ratio(speedup_ours / speedup_raw),
        "",
    );

    // (3) Chain verification alone.
    let verify_us = median(&verify.ours_us);
    let verify_ratio = paired_ratio(&verify.raw_client_verifier_us, &verify.ours_us);
    report.row(
        "(3) chain verification alone (client SVID: leaf + intermediate → root); ratio = throughput ours/raw",
        us(verify_us),
        format!(
            "{} WebPkiClientVerifier; {} verify_server_cert_signed_by_trust_anchor",
            us(median(&verify.raw_client_verifier_us)),
            us(median(&verify.raw_trust_anchor_us))
        ),
        ratio(verify_ratio),
        "",
    );
    let verify_floor = 2.0 * median(&floor.verify_us);
    report.row(
        "(3) chain verification over its crypto floor (2 P-256 verifies); ratio = ours/floor",
        us(verify_us),
        format!(
            "{} floor (raw: {:.2}× floor)",
            us(verify_floor),
            median(&verify.raw_client_verifier_us) / verify_floor
        ),
        format!("{:.2}×", verify_us / verify_floor),
        "",
    );
    report.notes.push(format!(
        "Crypto floor (aws-lc-rs via rustls, same provider as the handshakes): P-256 sign {:.1} µs, P-256 verify {:.1} µs, {} exchange {:.1} µs (client: keygen + agree) / {:.1} µs (server); per side {:.1} µs (client) and {:.1} µs (server).",
        median(&floor.sign_us),
        median(&floor.verify_us),
        floor.group,
        median(&floor.kx_client_us),
        median(&floor.kx_server_us),
        median(&floor.client_us()),
        median(&floor.server_us())
    ));
    report.key("handshake_ratio", ratio(total_ratio));
    report.key("handshake_server_ratio", ratio(server_ratio));
    report.key("handshake_client_ratio", ratio(client_ratio));
    report.key(
        "handshake_server_us",
        format!("{:.1}", median(&of.server_us)),
    );
    report.key(
        "handshake_client_us",
        format!("{:.1}", median(&of.client_us)),
    );
    report.key(
        "handshake_over_floor",
        format!("{:.3}", paired_ratio(&of.server_us, &floor.server_us())),
    );
    report.key("resumed_ratio", format!("{speedup_ours:.3}"));
    report.key("resumed_vs_raw_ratio", ratio(resumed_vs_raw));
    report.key(
        "resumed_vs_raw_one_ticket_ratio",
        ratio(resumed_vs_one_ticket),
    );
    report.key("verify_us", format!("{verify_us:.1}"));
    report.key("verify_ratio", ratio(verify_ratio));
    report.key(
        "floor_server_us",
        format!("{:.1}", median(&floor.server_us())),
    );
    Ok(())
}

fn authz(plan: &Plan, report: &mut Report) -> Result<(), BoxError> {
    // Every case is built first, then all are timed in rotation, round
    // after round, so that a busy moment of the machine hits them alike.
    struct Case {
        name: String,
        kind: &'static str,
        decide: Box<dyn FnMut() -> bool>,
        iters: u64,
        ns: Vec<f64>,
    }
    let mut cases = Vec::new();
    // 0: mtls-core authorizers, 1: route policies, 2: policy files.
    for which in 0..3 {
        for kind in AUTHZ_KINDS {
            let name = match (which, kind) {
                (0, "exact IDs") => "`authorize::one_of`".to_string(),
                (0, "trust domains") => "`authorize::member_of_any`".to_string(),
                (0, "path prefixes") => "`authorize::path_prefixes`".to_string(),
                (0, _) => "`one_of.or(member_of_any).or(path_prefixes)`".to_string(),
                (1, _) => "`RoutePolicy::decide`".to_string(),
                _ => "`CompiledPolicy::evaluate` (policy file)".to_string(),
            };
            for n in AUTHZ_SIZES {
                let decide: Box<dyn FnMut() -> bool> = if which == 0 {
                    let (authorizer, peer) = core_authorizer(kind, n)?;
                    Box::new(move || authorizer.authorize(black_box(&peer)).is_ok())
                } else if which == 1 {
                    let (policy, path, peer) = route_policy(kind, n)?;
                    Box::new(move || {
                        policy
                            .decide(&http::Method::GET, black_box(&path), &peer)
                            .is_ok()
                    })
                } else {
                    let (policy, path, peer) = file_policy(kind, n)?;
                    Box::new(move || {
                        let query = mtls_tower::PolicyQuery::new(
                            &peer,
                            mtls_tower::AuthenticatedBy::Mtls,
                            &http::Method::GET,
                            black_box(&path),
                        );
                        policy.evaluate(&query).is_allowed()
                    })
                };
                cases.push(Case {
                    name: name.clone(),
                    kind,
                    decide,
                    iters: 0,
                    ns: Vec::new(),
                });
            }
        }
    }
    for case in &mut cases {
        let decide = &mut case.decide;
        case.iters = calibrate(plan.authz_slice, || {
            black_box(decide());
        });
    }
    let n = cases.len();
    for round in 0..plan.authz_rounds {
        for k in 0..n {
            let case = &mut cases[(round + k) % n];
            let decide = &mut case.decide;
            let ns = ns_per_call(case.iters, || {
                black_box(decide());
            });
            case.ns.push(ns);
        }
    }

    let mut detail = String::new();
    let _ = writeln!(
        detail,
        "| authorizer | rules | 1 | 100 | 10,000 | 10,000 ÷ 1 |\n|---|---|---|---|---|---|"
    );
    let mut worst_10k: f64 = 0.0;
    for group in cases.chunks(AUTHZ_SIZES.len()) {
        let (name, kind) = (&group[0].name, group[0].kind);
        let one = median(&group[0].ns);
        let hundred = median(&group[1].ns);
        let ten_k = median(&group[2].ns);
        worst_10k = worst_10k.max(ten_k);
        let _ = writeln!(
            detail,
            "| {name} | {kind} | {one:.0} ns | {hundred:.0} ns | {ten_k:.0} ns | {:.2} |",
            ten_k / one
        );
        report.row(
            &format!(
                "(4) authorization, {name}, 10,000 rules ({kind}); ratio = 10,000 rules ÷ 1 rule"
            ),
            ns(ten_k),
            format!("{} with 1 rule", ns(one)),
            format!("{:.2}", ten_k / one),
            &verdict(ten_k < 200.0, "< 200 ns"),
        );
    }
    report
        .extra
        .push_str("\nAuthorization decisions (allowed peer, matched by the last rule added):\n\n");
    report.extra.push_str(&detail);
    report.key("authz_ns_10k", format!("{worst_10k:.0}"));
    Ok(())
}

fn request_path(fx: &Fixture, plan: &Plan, report: &mut Report) -> Result<(), BoxError> {
    let servers = Stack::ALL
        .iter()
        .map(|&stack| ServerThread::start(fx, stack))
        .collect::<Result<Vec<_>, _>>()?;
    let connector = request_client(fx)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut windows: Vec<Vec<LoadWindow>> = vec![Vec::new(); Stack::ALL.len()];
    for round in 0..plan.req_rounds {
        for k in 0..Stack::ALL.len() {
            let i = (round + k) % Stack::ALL.len();
            let tls = (Stack::ALL[i] != Stack::Plain).then_some(&connector);
            let window = load_window(
                &runtime,
                &servers[i],
                tls,
                plan.req_connections,
                plan.req_warmup,
                plan.req_window,
            )?;
            windows[i].push(window);
        }
    }
    drop(servers);
    let per =
        |i: usize, f: fn(&LoadWindow) -> f64| -> Vec<f64> { windows[i].iter().map(f).collect() };
    let rps: Vec<Vec<f64>> = (0..3).map(|i| per(i, LoadWindow::rps)).collect();
    let cpu: Vec<Vec<f64>> = (0..3)
        .map(|i| per(i, LoadWindow::server_ns_per_request))
        .collect();
    let latency = |i: usize| {
        let mut all: Vec<f64> = windows[i]
            .iter()
            .flat_map(|w| w.latencies_us.iter().copied())
            .collect();
        all.sort_by(f64::total_cmp);
        (
            percentile(&all, 50.0),
            percentile(&all, 99.0),
            percentile(&all, 99.9),
        )
    };
    let (l_ours, l_raw, l_plain) = (latency(0), latency(1), latency(2));
    let overhead = paired_diff(&cpu[0], &cpu[1]);
    let tls_cost = paired_diff(&cpu[1], &cpu[2]);
    let conns = plan.req_connections;
    // Requests/s of a stack (index `a` of `Stack::ALL`) against those of
    // the next (`b`): ours against raw rustls, raw rustls against plaintext.
    for (what, a, a_name, b) in [
        (
            format!("(5) requests/s, HTTP/1.1 keep-alive, {conns} connection{}, closed loop over loopback, ours = {}; ratio = ours/raw", if conns == 1 { "" } else { "s" }, Stack::Ours.label()),
            0,
            "",
            1,
        ),
        (
            "(5) requests/s, raw rustls vs plaintext; ratio = TLS/plaintext".into(),
            1,
            " raw rustls",
            2,
        ),
    ] {
        report.row(
            &what,
            format!("{:.0}/s{a_name}", median(&rps[a])),
            format!("{:.0}/s {}", median(&rps[b]), Stack::ALL[b].label()),
            ratio(paired_ratio(&rps[a], &rps[b])),
            "",
        );
    }
    report.row(
        "(5) latency p50 / p99 / p99.9; ratio = p50 ours/raw",
        format!("{:.0} / {:.0} / {:.0} µs", l_ours.0, l_ours.1, l_ours.2),
        format!(
            "{:.0} / {:.0} / {:.0} µs raw rustls; {:.0} / {:.0} / {:.0} µs plaintext",
            l_raw.0, l_raw.1, l_raw.2, l_plain.0, l_plain.1, l_plain.2
        ),
        ratio(l_ours.0 / l_raw.0),
        "",
    );
    report.row(
        "(5) **server CPU per request** (the server's thread, schedstat); ratio = difference ours − raw",
        ns(median(&cpu[0])),
        format!(
            "{} raw rustls; {} plaintext (TLS itself: +{:.0} ns)",
            ns(median(&cpu[1])),
            ns(median(&cpu[2])),
            tls_cost
        ),
        format!("{overhead:+.0} ns"),
        &verdict(overhead < 1000.0, "< 1 µs"),
    );

    let [layer_ours, layer_whole, layer_bare] =
        measure_layer(fx, plan.layer_rounds, plan.layer_iters)?;
    let isolated = paired_diff(&layer_ours, &layer_bare);
    let whole = paired_diff(&layer_whole, &layer_bare);
    report.row(
        "(5) in process, no network: router call with the per-request connect-info extension + `AuthorizeLayer` on every route (`Router::layer`); ratio = difference",
        ns(median(&layer_ours)),
        format!("{} the same router bare", ns(median(&layer_bare))),
        format!("{isolated:+.0} ns"),
        &verdict(isolated < 1000.0, "< 1 µs"),
    );
    report.row(
        "(5) the same with one `AuthorizeLayer` around the whole router (before routing); ratio = difference",
        ns(median(&layer_whole)),
        format!("{} the same router bare", ns(median(&layer_bare))),
        format!("{whole:+.0} ns"),
        &verdict(whole <= 300.0, "<= 300 ns"),
    );
    report.key("request_overhead_whole_ns", format!("{whole:.0}"));
    // The headline is the in-process difference: the same work, measured
    // without the loopback's wakeups, which a loaded machine makes noisy.
    report.key("request_overhead_ns", format!("{isolated:.0}"));
    report.key("request_overhead_loopback_ns", format!("{overhead:.0}"));
    report.key("rps_ours", format!("{:.0}", median(&rps[0])));
    report.key("rps_ratio", ratio(paired_ratio(&rps[0], &rps[1])));
    Ok(())
}

fn ca(fx: &Fixture, plan: &Plan, report: &mut Report) -> Result<(), BoxError> {
    let r = measure_ca(fx, plan.ca_rounds, plan.ca_iters)?;
    let per_s = |v: &[f64]| 1e6 / median(v);
    let issue_ratio = paired_ratio(&r.issue_raw_us, &r.issue_ours_us);
    let csr_ratio = paired_ratio(&r.csr_raw_us, &r.csr_ours_us);
    for (what, ours, raw, ours_over_raw) in [
        (
            "(6) SVIDs issued per second (P-256 key generation + signing); ratio = ours/raw",
            &r.issue_ours_us,
            &r.issue_raw_us,
            issue_ratio,
        ),
        (
            "(6) CSRs signed per second (parse + signature check + signing); ratio = ours/raw",
            &r.csr_ours_us,
            &r.csr_raw_us,
            csr_ratio,
        ),
    ] {
        report.row(
            what,
            format!("{:.0}/s ({:.1} µs)", per_s(ours), median(ours)),
            format!("{:.0}/s ({:.1} µs) raw rcgen", per_s(raw), median(raw)),
            ratio(ours_over_raw),
            "",
        );
    }
    report.key("issue_per_s", format!("{:.0}", per_s(&r.issue_ours_us)));
    report.key("issue_ratio", ratio(issue_ratio));
    report.key("csr_per_s", format!("{:.0}", per_s(&r.csr_ours_us)));
    report.key("csr_ratio", ratio(csr_ratio));
    Ok(())
}

fn memory(fx: &Fixture, plan: &Plan, report: &mut Report) -> Result<(), BoxError> {
    let mut ours = Vec::new();
    let mut raw = Vec::new();
    for round in 0..plan.mem_rounds {
        for k in 0..2 {
            if (round + k) % 2 == 0 {
                ours.push(memory_per_connection(
                    fx,
                    "ours",
                    plan.mem_connections,
                    plan.mem_warm,
                )?);
            } else {
                raw.push(memory_per_connection(
                    fx,
                    "raw",
                    plan.mem_connections,
                    plan.mem_warm,
                )?);
            }
        }
    }
    let (o, r) = (median(&ours), median(&raw));
    report.row(
        &format!("(7) memory per idle mTLS connection, server process VmRSS over {} connections (ours: MtlsListener); ratio = ours/raw", plan.mem_connections),
        format!("{:.1} KiB", o / 1024.0),
        format!("{:.1} KiB raw tokio-rustls + WebPkiClientVerifier", r / 1024.0),
        ratio(o / r),
        "",
    );
    report.key("mem_per_conn_bytes", format!("{o:.0}"));
    report.key("mem_ratio", ratio(o / r));
    Ok(())
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    format!("{cpu}, {cores} CPUs, Linux {kernel}")
}

/// The 1-minute load average, to judge how busy the machine was.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}

fn print_report(cli: &Cli, report: &Report, elapsed: Duration, load_before: &str) {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# mtls-bench ({} run, {:.0} s)\n\nmachine: {}; load average {} before, {} after; crypto provider: aws-lc-rs through rustls 0.23, the same for ours and the baselines; medians over interleaved rounds\n",
        if cli.quick { "quick" } else { "full" },
        elapsed.as_secs_f64(),
        machine(),
        load_before,
        load_average(),
    );
    let _ = writeln!(out, "| measurement | ours | baseline | ratio | target |");
    let _ = writeln!(out, "|---|---|---|---|---|");
    for row in &report.rows {
        let _ = writeln!(out, "| {} |", row.join(" | "));
    }
    for note in &report.notes {
        let _ = writeln!(out, "\n{note}");
    }
    out.push_str(&report.extra);
    out.push('\n');
    for (key, value) in &report.keys {
        let _ = writeln!(out, "{key}={value}");
    }
    print!("{out}");
}
