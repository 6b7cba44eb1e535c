//! A build's reported digest is recorded in its ImageStream only once the output repository (a
//! real `docker-registry`) confirms it: a forged digest fails the build with
//! `PushImageToRegistryFailed` and records nothing; the digest of an image really pushed there is
//! recorded.

mod controller_support;
mod support;

use std::path::Path;
use std::process::Command;

use controller_support::{bc_yaml, Harness};
use kiln::api::{BuildPhase, StatusReason};
use kiln::controller::Settings;

fn sha256(bytes: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, bytes);
    let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// Writes `bytes` as a blob of the OCI layout at `dir` and returns its descriptor.
fn blob(dir: &Path, media_type: &str, bytes: &[u8]) -> serde_json::Value {
    let digest = sha256(bytes);
    let path = dir
        .join("blobs/sha256")
        .join(digest.trim_start_matches("sha256:"));
    std::fs::write(path, bytes).unwrap();
    serde_json::json!({"mediaType": media_type, "digest": digest, "size": bytes.len()})
}

/// A one-layer OCI image layout at `dir` (tag `v1`); returns its manifest digest.
fn oci_layout(dir: &Path) -> String {
    use std::io::Write;
    std::fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
    let mut tar = tar::Builder::new(Vec::new());
    let text = b"hello\n";
    let mut header = tar::Header::new_gnu();
    header.set_size(text.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    tar.append_data(&mut header, "hello.txt", &text[..])
        .unwrap();
    let layer_tar = tar.into_inner().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&layer_tar).unwrap();
    let layer = blob(
        dir,
        "application/vnd.oci.image.layer.v1.tar+gzip",
        &gz.finish().unwrap(),
    );
    let config = serde_json::json!({"architecture": "amd64", "os": "linux", "config": {},
        "rootfs": {"type": "layers", "diff_ids": [sha256(&layer_tar)]}});
    let config = blob(
        dir,
        "application/vnd.oci.image.config.v1+json",
        &serde_json::to_vec(&config).unwrap(),
    );
    let manifest = serde_json::json!({"schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": config, "layers": [layer]});
    let mut manifest = blob(
        dir,
        "application/vnd.oci.image.manifest.v1+json",
        &serde_json::to_vec(&manifest).unwrap(),
    );
    let digest = manifest["digest"].as_str().unwrap().to_string();
    manifest["annotations"] = serde_json::json!({"org.opencontainers.image.ref.name": "v1"});
    std::fs::write(
        dir.join("index.json"),
        serde_json::to_vec(&serde_json::json!({"schemaVersion": 2, "manifests": [manifest]}))
            .unwrap(),
    )
    .unwrap();
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    digest
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_a_digest_the_output_repository_confirms_is_recorded() {
    let registry = support::Registry::start(None);
    let addr = registry.addr();
    let mut h = Harness::start().await;
    let mut settings = controller_support::settings();
    settings.registry = Some(addr.clone());
    settings.pod.insecure_registries = vec![addr.clone()];
    h.start_controller_with(Settings {
        confirm_digests: true,
        ..settings
    })
    .await;
    h.create_bc(&bc_yaml("app", "Serial", "")).await;

    // A forged report: a well-formed digest the repository does not have.
    h.start_build("app", "forged").await;
    h.wait_pod("app-1").await;
    h.run_pod("app-1").await;
    h.succeed_pod("app-1", &controller_support::digest(7)).await;
    let failed = h.wait_phase("app-1", BuildPhase::Failed).await;
    let status = failed.status.unwrap();
    assert_eq!(status.reason, Some(StatusReason::PushImageToRegistryFailed));
    let message = status.message.unwrap_or_default();
    assert!(
        message.contains("does not confirm") && message.contains(&format!("{addr}/default/app")),
        "{message}"
    );
    assert!(h.tag_images("app", "latest").await.is_empty());

    // An image really pushed to the output repository.
    let layout = tempfile::tempdir().unwrap();
    let pushed = oci_layout(layout.path());
    let copy = Command::new("skopeo")
        .args(["copy", "--dest-tls-verify=false"])
        .arg(format!("oci:{}:v1", layout.path().display()))
        .arg(format!("docker://{addr}/default/app:latest"))
        .output()
        .expect("skopeo runs (scripts/install-deps.sh installs it)");
    assert!(
        copy.status.success(),
        "{}",
        String::from_utf8_lossy(&copy.stderr)
    );
    assert_eq!(
        registry.manifest_digest("default/app", "latest", None),
        Some(pushed.clone())
    );
    h.start_build("app", "real").await;
    h.complete("app-2", &pushed).await;
    assert_eq!(h.tag_images("app", "latest").await, vec![pushed]);
}
