//! Run with: `cargo build -p examples` (generates the gRPC code of
//! `proto/identity.proto` for the tonic examples).
//!
//! `protoc` comes from the `protoc-bin-vendored` crate: it need not be
//! installed on the machine.

use std::error::Error;

fn main() -> Result<(), Box<dyn Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    let mut config = prost_build::Config::new();
    config.protoc_executable(protoc);
    // Client and server: tonic-prost-build's default.
    tonic_prost_build::configure().compile_with_config(
        config,
        &["proto/identity.proto"],
        &["proto"],
    )?;
    println!("cargo:rerun-if-changed=proto/identity.proto");
    Ok(())
}
