//! Run with: `cargo run -p examples --bin cert-manager-files`
//! (or `-- --dir /var/run/secrets/spiffe.io --listen 0.0.0.0:8443` in a pod)
//!
//! An app whose identity comes from files in the layout of cert-manager's
//! csi-driver-spiffe (`tls.crt`, `tls.key`, `ca.crt`), watched for
//! rotation. With `--dir`, it serves `GET /whoami` from those files until
//! stopped. Without it, it runs a demonstration: it writes the files itself
//! with a development CA, serves them, rewrites them the way the driver
//! does (a new directory behind an atomically swapped `..data` symlink), and
//! shows the next call served with the new certificate; it also shows a
//! broken rewrite refused while the last good files keep serving.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use examples::demo::{self, serial, serve_whoami, whoami};
use examples::{error_chain, BoxError};
use mtls_ca::{CaOptions, CertificateAuthority, SvidRequest};
use mtls_core::{
    authorize, BundleSet, FilePaths, FileSource, MtlsClientConfig, MtlsServerConfig, SpiffeId,
    TrustDomain, WatchOptions,
};

/// Serve with an identity from cert-manager csi-driver-spiffe files.
#[derive(Debug, Parser)]
struct Args {
    /// The volume holding tls.crt, tls.key and ca.crt (default: a demo in a
    /// temporary directory).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Where to listen with --dir.
    #[arg(long, default_value = "127.0.0.1:8443")]
    listen: String,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let result = match &args.dir {
        Some(dir) => serve(dir, &args.listen).await.map(|()| true),
        None => demo().await,
    };
    demo::exit("cert-manager-files", result)
}

fn watch(dir: &Path) -> Result<Arc<FileSource>, BoxError> {
    Ok(Arc::new(FileSource::watch(
        FilePaths::cert_manager(dir),
        WatchOptions::default(),
    )?))
}

fn server_config(files: &Arc<FileSource>) -> Result<MtlsServerConfig, BoxError> {
    let own = files.svid().spiffe_id().trust_domain().clone();
    Ok(MtlsServerConfig::builder(files.clone(), files.clone())
        .crls(files.clone())
        .authorizer(authorize::member_of(own))
        .build()?)
}

async fn serve(dir: &Path, listen: &str) -> Result<(), BoxError> {
    let files = watch(dir)?;
    println!(
        "serving as {} from {}",
        files.svid().spiffe_id(),
        dir.display()
    );
    let listener = mtls_tower::MtlsListener::bind(listen, server_config(&files)?).await?;
    println!("listening on {}", listener.local_addr());
    let app = axum::Router::new().route(
        "/whoami",
        axum::routing::get(|mtls_tower::PeerId(id): mtls_tower::PeerId| async move {
            format!("{id}\n")
        }),
    );
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<mtls_tower::MtlsConnectInfo>(),
    )
    .await?;
    Ok(())
}

/// Publishes a set the way the kubelet does: a new directory, then an
/// atomic swap of the `..data` symlink the files point through.
fn publish(dir: &Path, version: u32, chain: &str, key: &str, bundle: &str) -> Result<(), BoxError> {
    let target = dir.join(format!("..{version}"));
    std::fs::create_dir(&target)?;
    std::fs::write(target.join("tls.crt"), chain)?;
    std::fs::write(target.join("tls.key"), key)?;
    std::fs::write(target.join("ca.crt"), bundle)?;
    let tmp = dir.join("..data_tmp");
    std::os::unix::fs::symlink(format!("..{version}"), &tmp)?;
    std::fs::rename(&tmp, dir.join("..data"))?;
    for name in ["tls.crt", "tls.key", "ca.crt"] {
        if std::fs::symlink_metadata(dir.join(name)).is_err() {
            std::os::unix::fs::symlink(format!("..data/{name}"), dir.join(name))?;
        }
    }
    Ok(())
}

async fn demo() -> Result<bool, BoxError> {
    let td = TrustDomain::new("example.org")?;
    let ca = CertificateAuthority::self_signed_for_development(td.clone(), &CaOptions::default())?;
    let bundle = ca.bundle()?.to_pem();
    let app_id = SpiffeId::new("spiffe://example.org/ns/shop/sa/backend")?;
    let volume = tempfile::tempdir()?;
    let dir = volume.path();
    let first = ca.issue(&SvidRequest::new(app_id.clone()))?;
    publish(
        dir,
        1,
        &first.chain_pem(),
        &first.private_key_pem(),
        &bundle,
    )?;
    println!("demo volume (csi-driver-spiffe layout): {}", dir.display());

    let files = watch(dir)?;
    let addr = serve_whoami(server_config(&files)?).await?;
    let client = MtlsClientConfig::builder(
        ca.issue(&SvidRequest::new(SpiffeId::new(
            "spiffe://example.org/ns/shop/sa/frontend",
        )?))?,
        BundleSet::from(ca.bundle()?),
    )
    .authorizer(authorize::exact(app_id.clone()))
    .build()?;
    let call = |label: &'static str| {
        let client = client.clone();
        async move {
            match whoami(&client, addr).await {
                Ok(a) if a.status == 200 => {
                    let s = a.server.as_ref().map(serial).unwrap_or_default();
                    println!("{label}: ok, served with certificate {s}");
                    Some(s)
                }
                Ok(a) => {
                    println!("{label}: FAILED: HTTP {}", a.status);
                    None
                }
                Err(e) => {
                    println!("{label}: FAILED: {}", error_chain(e.as_ref()));
                    None
                }
            }
        }
    };
    let before = call("call 1").await;

    // The driver renews: a new certificate appears in the volume.
    let mut updates = files.changes();
    let second = ca.issue(&SvidRequest::new(app_id))?;
    publish(
        dir,
        2,
        &second.chain_pem(),
        &second.private_key_pem(),
        &bundle,
    )?;
    tokio::time::timeout(Duration::from_secs(5), updates.changed()).await??;
    println!("files rotated; the source reloaded them");
    let after = call("call 2").await;

    // A broken rewrite is refused; the last good set keeps serving.
    publish(dir, 3, "not a certificate", "not a key", &bundle)?;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    println!(
        "a broken set was written; refused: {}",
        files
            .status()
            .last_error
            .map(|e| e.to_string())
            .unwrap_or_default()
    );
    let still = call("call 3").await;

    let ok = before.is_some()
        && after.is_some()
        && before != after
        && still == after
        && files.status().failures >= 1;
    println!(
        "\n{}",
        if ok {
            "ok: rotated files served without a restart; the broken set was refused"
        } else {
            "FAILED"
        }
    );
    Ok(ok)
}
