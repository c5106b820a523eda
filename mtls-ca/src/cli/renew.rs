//! `renew`: keeps an issued SVID fresh in its files (PREFIX.pem,
//! PREFIX.key) for a running development service, like spiffe-helper.
//!
//! The loop is mtls-core's [`RenewingSvid`] (renewal at about half the
//! lifetime, with jitter, failures retried with backoff while the current
//! files keep serving), with an issuer that opens the CA directory at every
//! issuance, so a CA replaced in it signs the next SVID; a change of the
//! CA's certificate triggers a renewal at once.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use mtls_core::{
    CrlSet, IssueError, KeyAlgorithm, PeerRole, RenewingSvid, SvidIssuer, SvidSpec, X509Svid,
    RENEW_AT,
};
use zeroize::Zeroizing;

use super::ca::{check_prefix, issued_summary, open};
use super::federation::{runtime, StopSignals};
use super::files::{self, note, print, with_suffix};
use super::inspect::rfc3339;
use super::{Failure, KeyTypeArg, RenewArgs};
use crate::fs::{write_atomic, write_private};
use crate::CertificateAuthority;

/// How often the loop looks at the CA directory (a replaced CA) and at the
/// renewal status (failures to report).
const POLL: Duration = Duration::from_secs(1);

pub(crate) fn renew(a: RenewArgs) -> Result<(), Failure> {
    let args = a.svid;
    check_prefix(&args.out)?;
    let spec = args
        .leaf
        .dns
        .iter()
        .fold(SvidSpec::new(args.leaf.spiffe_id.clone()), |s, name| {
            s.dns_name(name.clone())
        })
        .ttl(args.leaf.ttl)
        .key_algorithm(match args.key_type {
            KeyTypeArg::P256 => KeyAlgorithm::EcdsaP256,
            KeyTypeArg::P384 => KeyAlgorithm::EcdsaP384,
            KeyTypeArg::Ed25519 => KeyAlgorithm::Ed25519,
        });
    let bundle = BundleCopy {
        from: args.dir.join(crate::BUNDLE_FILE),
        to: a.bundle_out,
        last: None,
    };
    if a.once {
        return once(&args.dir, &spec, &args.out, bundle);
    }
    runtime()?.block_on(run(args.dir, spec, args.out, bundle))
}

/// `--once`: renews when due (see [`due`]), else says until when the files
/// are good; exits 0 either way.
fn once(dir: &Path, spec: &SvidSpec, out: &Path, mut bundle: BundleCopy) -> Result<(), Failure> {
    let ca = open(dir)?;
    bundle.sync()?;
    let now = SystemTime::now();
    match due(&ca, spec, out, now) {
        Some(reason) => {
            let request = crate::renew::svid_request(spec).map_err(issuing(spec))?;
            let svid = CertificateAuthority::update(dir, |ca| ca.issue(&request)).map_err(|e| {
                Failure::from(e).context(format!("cannot renew {}", spec.spiffe_id))
            })?;
            write(out, &svid)?;
            print(&format!(
                "{}renewed: {reason}\n",
                issued_summary(svid.spiffe_id(), svid.leaf())?
            ))
        }
        None => {
            let not_after = current(out).map_or(now, |s| s.not_after());
            print(&format!(
                "not due: {} is valid until {}; renewed once at most {} of it remains\n",
                with_suffix(out, ".pem").display(),
                rfc3339(unix(not_after)),
                humanize(spec.ttl.mul_f64(1.0 - RENEW_AT)),
            ))
        }
    }
}

/// Why the SVID at `out` must be renewed now, or `None` when it is good for
/// a while: it is due when its files cannot be read, hold another SPIFFE ID,
/// no longer verify against the CA's bundle (expired, or the CA was
/// replaced), or have at most `ttl × (1 − RENEW_AT)` (half the TTL) left.
fn due(ca: &CertificateAuthority, spec: &SvidSpec, out: &Path, now: SystemTime) -> Option<String> {
    let svid = match current(out) {
        Ok(svid) => svid,
        Err(e) => return Some(e),
    };
    if svid.spiffe_id() != &spec.spiffe_id {
        return Some(format!(
            "{} holds {}, not {}",
            with_suffix(out, ".pem").display(),
            svid.spiffe_id(),
            spec.spiffe_id
        ));
    }
    let bundle = match ca.bundle() {
        Ok(bundle) => bundle,
        Err(e) => return Some(format!("the CA's bundle cannot be read: {e}")),
    };
    if let Err(e) = svid.verify(&bundle.into(), now, &CrlSet::new(), PeerRole::Server) {
        return Some(format!("the current SVID no longer verifies: {e}"));
    }
    let left = svid.not_after().duration_since(now).unwrap_or_default();
    if left <= spec.ttl.mul_f64(1.0 - RENEW_AT) {
        return Some(format!("only {} of its lifetime left", humanize(left)));
    }
    None
}

/// The SVID in PREFIX.pem and PREFIX.key.
fn current(out: &Path) -> Result<X509Svid, String> {
    let (chain, key) = (with_suffix(out, ".pem"), with_suffix(out, ".key"));
    let read = |path: &Path, what| files::read(path, what).map_err(|f| f.message().to_owned());
    let chain_pem = read(&chain, "SVID chain")?;
    let key_pem = Zeroizing::new(read(&key, "SVID key")?);
    X509Svid::from_pem(&chain_pem, &key_pem).map_err(|e| {
        format!(
            "{} and {} do not hold an SVID: {e}",
            chain.display(),
            key.display()
        )
    })
}

/// The loop: issues now, then renews until SIGINT or SIGTERM (exit 0).
async fn run(
    dir: PathBuf,
    spec: SvidSpec,
    out: PathBuf,
    mut bundle: BundleCopy,
) -> Result<(), Failure> {
    let mut stop = StopSignals::new()?;
    bundle.sync()?;
    let ca_file = dir.join(crate::CA_CERT_FILE);
    let mut ca_seen = std::fs::read(&ca_file).ok();
    let svid = RenewingSvid::start(DirIssuer { dir: dir.clone() }, spec.clone())
        .await
        .map_err(issuing(&spec))?;
    write(&out, &svid.svid())?;
    let mut changes = svid.changes();
    let mut reported = 0;
    let mut poll = tokio::time::interval(POLL);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    report(&svid.svid())?;
    loop {
        tokio::select! {
            () = stop.recv() => return Ok(()),
            changed = changes.changed() => {
                if changed.is_err() {
                    return Err(Failure::failed("the renewal task stopped"));
                }
                let current = svid.svid();
                // The bundle first: whoever reads the new SVID finds the
                // roots that verify it.
                if let Err(e) = bundle.sync() {
                    note(e.message());
                }
                write(&out, &current)?;
                report(&current)?;
            }
            _ = poll.tick() => {
                let status = svid.status();
                if status.failures > reported {
                    if let Some(e) = &status.last_error {
                        note(&format!("renewal failed (retrying; the current files keep serving): {e}"));
                    }
                }
                reported = status.failures;
                if let Err(e) = bundle.sync() {
                    note(e.message());
                }
                let ca_now = std::fs::read(&ca_file).ok();
                if ca_now.is_some() && ca_now != ca_seen {
                    ca_seen = ca_now;
                    note(&format!("the CA in {} changed: renewing now", dir.display()));
                    if let Err(e) = svid.renew_now().await {
                        note(&format!("renewal failed (retrying): {e}"));
                    }
                }
            }
        }
    }
}

/// `--bundle-out`: a copy of the CA's bundle, rewritten when it changes.
struct BundleCopy {
    from: PathBuf,
    to: Option<PathBuf>,
    /// What was written last.
    last: Option<Vec<u8>>,
}

impl BundleCopy {
    fn sync(&mut self) -> Result<(), Failure> {
        let Some(to) = &self.to else {
            return Ok(());
        };
        let bundle = files::read(&self.from, "CA bundle")?;
        if self.last.as_ref() != Some(&bundle) {
            write_atomic(to, &bundle)?;
            self.last = Some(bundle);
        }
        Ok(())
    }
}

/// One line per SVID written: `renewed: <ID> serial <hex> not_after <time>`.
fn report(svid: &X509Svid) -> Result<(), Failure> {
    let summary = issued_summary(svid.spiffe_id(), svid.leaf())?;
    let fields: Vec<&str> = summary.lines().collect();
    print(&format!("renewed: {}\n", fields.join(" ")))
}

/// Writes the key, then the chain (whoever watches the chain finds its key
/// in place), each atomically, as `issue` does.
fn write(out: &Path, svid: &X509Svid) -> Result<(), Failure> {
    let key_pem = Zeroizing::new(svid.private_key_pem());
    write_private(&with_suffix(out, ".key"), key_pem.as_bytes())?;
    write_atomic(&with_suffix(out, ".pem"), svid.chain_pem().as_bytes())?;
    Ok(())
}

fn issuing(spec: &SvidSpec) -> impl Fn(IssueError) -> Failure + '_ {
    move |e| Failure::failed(format!("cannot issue {}: {e}", spec.spiffe_id))
}

/// Issues with the CA saved in `dir`, opened at every issuance under the
/// directory's lock, on tokio's blocking pool.
struct DirIssuer {
    dir: PathBuf,
}

impl SvidIssuer for DirIssuer {
    async fn issue_svid(&self, spec: &SvidSpec) -> Result<X509Svid, IssueError> {
        let request = crate::renew::svid_request(spec)?;
        let dir = self.dir.clone();
        crate::renew::issue_blocking(spec, move || {
            CertificateAuthority::update(&dir, |ca| ca.issue(&request))
        })
        .await
    }
}

fn unix(t: SystemTime) -> i64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// `90s`, `30m`, `12h`: whole units, as durations are given.
fn humanize(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        s if s >= 3600 && s % 3600 == 0 => format!("{}h", s / 3600),
        s if s >= 60 && s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}
