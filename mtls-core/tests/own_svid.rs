//! The builders warn, once at build, about an own SVID every peer would
//! refuse: expired, or not signed by its own trust domain's bundle, or
//! missing. Warnings, not refusals (tests and demos build impostors on
//! purpose, and sources may start empty), captured here by a minimal
//! `tracing` subscriber.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};

use mtls_core::{authorize, MtlsClientConfig, MtlsServerConfig, SharedSvid};
use mtls_testing::{hours, now, TestCa};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

/// Records the message of every WARN event.
#[derive(Clone, Default)]
struct Warnings(Arc<Mutex<Vec<String>>>);

struct Message<'a>(&'a mut String);

impl Visit for Message<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            *self.0 = format!("{value:?}");
        }
    }
}

impl Subscriber for Warnings {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        *metadata.level() == Level::WARN
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut message = String::new();
        event.record(&mut Message(&mut message));
        self.0.lock().unwrap().push(message);
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

/// The warnings of building a server and a client config presenting
/// `svid` and trusting `ca`'s bundle.
fn warnings_building(
    svid: impl mtls_core::SvidSource + Clone + 'static,
    ca: &TestCa,
) -> Vec<String> {
    let warnings = Warnings::default();
    tracing::subscriber::with_default(warnings.clone(), || {
        MtlsServerConfig::builder(svid.clone(), ca.bundle_set())
            .authorizer(authorize::any())
            .build()
            .unwrap();
        MtlsClientConfig::builder(svid, ca.bundle_set())
            .authorizer(authorize::any())
            .build()
            .unwrap();
    });
    let seen = warnings.0.lock().unwrap().clone();
    seen
}

#[test]
fn building_with_an_svid_peers_will_refuse_warns_and_a_good_one_does_not() {
    let ca = TestCa::root("example.org");
    let good = ca.leaf("spiffe://example.org/web").svid();
    assert!(warnings_building(good, &ca).is_empty());

    let other_ca = TestCa::root("example.org");
    let impostor = other_ca.leaf("spiffe://example.org/web").svid();
    let seen = warnings_building(impostor, &ca);
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert!(
        seen.iter()
            .all(|w| w.contains("does not verify against its own trust domain's bundle")),
        "{seen:?}"
    );

    let expired = ca.leaf_with("spiffe://example.org/web", |p| {
        p.not_before = now() - hours(3);
        p.not_after = now() - hours(1);
    });
    let expired = mtls_core::X509Svid::new(expired.chain.clone(), expired.key.clone_key()).unwrap();
    let seen = warnings_building(expired, &ca);
    assert!(
        seen.iter().all(|w| w.contains("has expired")) && seen.len() == 2,
        "{seen:?}"
    );

    let seen = warnings_building(SharedSvid::empty(), &ca);
    assert!(
        seen.iter().all(|w| w.contains("no SVID yet")) && seen.len() == 2,
        "{seen:?}"
    );
}
