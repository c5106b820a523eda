//! The first renewal of a [`RenewingSvid`], timed and checked, whoever
//! issues it (mtls-ca's CA or a test issuer).

use std::time::{Duration, Instant};

use mtls_core::{RenewingSvid, SpiffeId, SvidSource, X509Svid};

/// Waits for the first renewal of `svid`, started with a 4 s lifetime, and
/// checks it: at about half the lifetime (50 % ± 10 %, never sooner than
/// 1 s), a new leaf for `id`, and the SVID the source now serves. Returns
/// the renewed SVID.
pub async fn first_renewal_of_4s_svid(svid: &RenewingSvid, id: &SpiffeId) -> X509Svid {
    let first = svid.svid();
    let mut updates = svid.changes();
    let started = Instant::now();
    tokio::time::timeout(Duration::from_secs(10), updates.changed())
        .await
        .expect("renewed within 10 s")
        .unwrap();
    let elapsed = started.elapsed();
    // 4 s lifetime, renewal at 50 % ± 10 % (and never sooner than 1 s).
    assert!(
        elapsed >= Duration::from_millis(1000),
        "renewed too early: {elapsed:?}"
    );
    assert!(
        elapsed < Duration::from_millis(3900),
        "renewed too late: {elapsed:?}"
    );
    let second = svid.svid();
    assert_ne!(first.leaf(), second.leaf());
    assert_eq!(second.spiffe_id(), id);
    assert!(svid.current_svid().unwrap().ptr_eq(&second));
    second
}
