//! The test CA for `benches/handshake.rs`, which includes this file by
//! path: the fixtures live in the `mtls-testing` crate
//! (`mtls-core/testing/pki`), which the tests use directly.

pub(crate) use mtls_testing::TestCa;
