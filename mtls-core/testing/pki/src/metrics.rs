//! metrics-util's `DebuggingRecorder` as the process's global recorder.
//!
//! The libraries record from spawned tasks, so a thread-local recorder
//! would miss them: a test binary that reads metrics installs this one
//! global recorder, and its tests read counters as deltas (a snapshot
//! resets what it reads).
//!
//! ```
//! let before = mtls_testing::snapshotter().snapshot().into_vec().len();
//! # let _ = before;
//! ```

use std::sync::OnceLock;

use metrics_util::debugging::{DebuggingRecorder, Snapshotter};

/// The snapshotter of the debugging recorder, installed as the global
/// recorder on first use.
///
/// # Panics
///
/// When another global recorder is installed already.
pub fn snapshotter() -> &'static Snapshotter {
    static SNAPSHOTTER: OnceLock<Snapshotter> = OnceLock::new();
    SNAPSHOTTER.get_or_init(|| {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        recorder
            .install()
            .expect("no other global metrics recorder in this test binary");
        snapshotter
    })
}

/// The sum of counter `name` over series labelled `label = value`, counted
/// since the last snapshot (which this one is: it resets what it reads).
pub fn counted(name: &str, label: &str, value: &str) -> u64 {
    snapshotter()
        .snapshot()
        .into_vec()
        .into_iter()
        .filter(|(key, ..)| {
            key.key().name() == name
                && key
                    .key()
                    .labels()
                    .any(|l| l.key() == label && l.value() == value)
        })
        .map(|(.., value)| match value {
            metrics_util::debugging::DebugValue::Counter(c) => c,
            _ => 0,
        })
        .sum()
}
