//! Tests that fail instead of hanging.
//!
//! ```
//! use std::time::Duration;
//! use mtls_testing::{bounded, eventually};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! bounded(async {
//!     let start = std::time::Instant::now();
//!     assert!(eventually(Duration::from_secs(5), || start.elapsed() > Duration::from_millis(30)).await);
//! })
//! .await;
//! # }
//! ```

use std::future::Future;
use std::time::{Duration, Instant, SystemTime};

/// Every test body runs under this bound unless it says otherwise.
pub const TEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs `fut`, failing the test if it takes longer than [`TEST_TIMEOUT`].
#[track_caller]
pub fn bounded<F: Future>(fut: F) -> impl Future<Output = F::Output> {
    bounded_by(TEST_TIMEOUT, fut)
}

/// Runs `fut`, failing the test if it takes longer than `limit`.
#[track_caller]
pub fn bounded_by<F: Future>(limit: Duration, fut: F) -> impl Future<Output = F::Output> {
    let caller = std::panic::Location::caller();
    async move {
        tokio::time::timeout(limit, fut)
            .await
            .unwrap_or_else(|_| panic!("test at {caller} did not finish within {limit:?}"))
    }
}

/// Polls `condition` every 10 ms for at most `within`; whether it held.
pub async fn eventually(within: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if condition() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    condition()
}

/// Sleeps until `t` has passed by `margin` (X.509 times have 1 s precision).
pub async fn sleep_past(t: SystemTime, margin: Duration) {
    let target = t + margin;
    if let Ok(wait) = target.duration_since(SystemTime::now()) {
        tokio::time::sleep(wait).await;
    }
}
