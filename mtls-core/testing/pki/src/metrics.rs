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

use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};

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

/// One counter series: its name, its labels (key, value) and its count.
pub type Counter = (String, Vec<(String, String)>, u64);

/// Every counter series, counted since the last snapshot (which this one
/// is: it resets what it reads).
pub fn counters() -> Vec<Counter> {
    snapshotter()
        .snapshot()
        .into_vec()
        .into_iter()
        .filter_map(|(key, _, _, value)| match value {
            DebugValue::Counter(c) => Some((
                key.key().name().to_owned(),
                key.key()
                    .labels()
                    .map(|l| (l.key().to_owned(), l.value().to_owned()))
                    .collect(),
                c,
            )),
            _ => None,
        })
        .collect()
}

/// The sum of counter `name` over series labelled `label = value`, counted
/// since the last snapshot (which this one is: it resets what it reads).
pub fn counted(name: &str, label: &str, value: &str) -> u64 {
    counters()
        .into_iter()
        .filter(|(n, labels, _)| n == name && labels.iter().any(|(k, v)| k == label && v == value))
        .map(|(.., c)| c)
        .sum()
}
