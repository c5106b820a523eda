//! The one building block every source publishes through.

use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use arc_swap::ArcSwap;
use tokio::sync::watch;

use super::status::{SourceState, SourceStatus};

/// A value that a source publishes, with its generation, a change
/// notification, and the record of refused updates.
///
/// Publishing stores the value and then bumps the generation, under one
/// lock; readers that read the generation first and the value second (as
/// the caches of this crate do) can at worst pair an old generation with a
/// new value, which costs one extra cache miss, never a stale hit. Clones
/// share the value.
///
/// ```
/// use std::sync::Arc;
/// use mtls_core::Published;
///
/// let published: Published<String, Arc<std::io::Error>> = Published::new("a".to_string());
/// let mut changes = published.changes();
/// published.publish("b".to_string());
/// assert_eq!(published.generation(), 1);
/// assert_eq!(*published.load(), "b");
/// assert!(changes.has_changed().unwrap());
///
/// published.refuse(Arc::new(std::io::Error::other("bad update")));
/// assert_eq!(*published.load(), "b", "a refusal keeps the last good value");
/// assert_eq!(published.status().failures, 1);
/// ```
pub struct Published<T, E> {
    inner: Arc<Inner<T, E>>,
}

struct Inner<T, E> {
    value: ArcSwap<T>,
    /// The generation, readable without a lock.
    generation: AtomicU64,
    /// The generation, for subscribers; its lock serializes publishers.
    changes: watch::Sender<u64>,
    failures: AtomicU64,
    last_error: Mutex<Option<E>>,
    state: AtomicU8,
}

impl<T, E> Clone for Published<T, E> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl<T, E: Clone> Published<T, E> {
    /// Starts at generation 0 with `value`, ready.
    pub fn new(value: T) -> Self {
        let (changes, _) = watch::channel(0);
        Self {
            inner: Arc::new(Inner {
                value: ArcSwap::from_pointee(value),
                generation: AtomicU64::new(0),
                changes,
                failures: AtomicU64::new(0),
                last_error: Mutex::new(None),
                state: AtomicU8::new(state_to_u8(SourceState::Ready)),
            }),
        }
    }

    /// The value serving now: the same `Arc` until the next publication.
    pub fn load(&self) -> Arc<T> {
        self.inner.value.load_full()
    }

    /// Serves `value` from now on, bumps the generation and notifies
    /// subscribers.
    pub fn publish(&self, value: T) {
        self.publish_arc(Arc::new(value));
    }

    /// [`publish`](Self::publish) of a value already in an `Arc`.
    pub fn publish_arc(&self, value: Arc<T>) {
        self.inner.changes.send_modify(|generation| {
            self.inner.value.store(value);
            *generation += 1;
            self.inner.generation.store(*generation, Ordering::Release);
        });
    }

    /// Records a refused update: the last good value keeps serving.
    pub fn refuse(&self, error: E) {
        self.inner.failures.fetch_add(1, Ordering::Relaxed);
        *self
            .inner
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(error);
    }

    /// Sets the state; a change of state is a change of the source, so it
    /// bumps the generation too.
    pub fn set_state(&self, state: SourceState) {
        let new = state_to_u8(state);
        if self.inner.state.swap(new, Ordering::AcqRel) != new {
            self.inner.changes.send_modify(|generation| {
                *generation += 1;
                self.inner.generation.store(*generation, Ordering::Release);
            });
        }
    }

    /// The generation: bumped at every publication and change of state.
    pub fn generation(&self) -> u64 {
        self.inner.generation.load(Ordering::Acquire)
    }

    /// A receiver of the generation, woken at every change.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.inner.changes.subscribe()
    }

    /// How many updates were refused.
    pub fn failures(&self) -> u64 {
        self.inner.failures.load(Ordering::Relaxed)
    }

    /// Why an update was last refused.
    pub fn last_error(&self) -> Option<E> {
        self.inner
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The state.
    pub fn state(&self) -> SourceState {
        state_from_u8(self.inner.state.load(Ordering::Acquire))
    }

    /// Generation, failures, last error and state.
    pub fn status(&self) -> SourceStatus<E> {
        SourceStatus {
            generation: self.generation(),
            failures: self.failures(),
            last_error: self.last_error(),
            state: self.state(),
            svid_revoked: None,
        }
    }
}

fn state_to_u8(state: SourceState) -> u8 {
    match state {
        SourceState::Ready => 0,
        SourceState::Withdrawn => 1,
        SourceState::Closed => 2,
    }
}

fn state_from_u8(state: u8) -> SourceState {
    match state {
        0 => SourceState::Ready,
        1 => SourceState::Withdrawn,
        _ => SourceState::Closed,
    }
}

impl<T, E> fmt::Debug for Published<T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Published")
            .field("generation", &self.inner.generation.load(Ordering::Relaxed))
            .field("failures", &self.inner.failures.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}
