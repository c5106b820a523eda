//! Generates the gRPC code of SPIFFE's `proto/workload.proto` (client and
//! server) with tonic-prost-build.
//!
//! `protoc` and the well-known types (`google/protobuf/struct.proto`) come
//! from the `protoc-bin-vendored` crate: protoc need not be installed. Its
//! path is handed to prost-build's config, not through the `PROTOC`
//! environment variable, so the build script changes no process state.

use std::error::Error;
use std::path::PathBuf;

fn main() -> Result<(), Box<dyn Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    let well_known = protoc_bin_vendored::include_path()?;
    let mut config = prost_build::Config::new();
    config.protoc_executable(protoc);
    // Client and server: tonic-prost-build's default.
    tonic_prost_build::configure().compile_with_config(
        config,
        &[PathBuf::from("proto/workload.proto")],
        &[PathBuf::from("proto"), well_known],
    )?;
    println!("cargo:rerun-if-changed=proto/workload.proto");
    println!("cargo:rerun-if-changed=build.rs");
    Ok(())
}
