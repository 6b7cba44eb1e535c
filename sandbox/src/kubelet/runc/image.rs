//! Pulling images with `oci-client` and keeping one unpacked root file system per manifest
//! digest, shared by every Pod that runs the image.
//!
//! Layout under the store's directory: `sha256-<hex>/rootfs` and `sha256-<hex>/config.json`
//! (unpacked into a temporary directory first and renamed into place, so a half-unpacked image
//! is never used); `blobs/` holds layers while they are being unpacked. Which digest a
//! reference named when it was last pulled is kept in memory (`IfNotPresent` and `Never`
//! use it).

use std::collections::HashMap;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex as StdMutex, PoisonError};

use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use tokio::sync::Mutex;

use super::auth::Credential;
use super::image_config::{self, ImageConfig};
use super::unpack::{Root, UnpackError};

/// Why an image is not available; each maps to the kubelet's waiting reason.
#[derive(Debug, thiserror::Error)]
pub enum PullError {
    /// `InvalidImageName`.
    #[error("Failed to apply default image tag {image:?}: couldn't parse image name {image:?}: {detail}")]
    InvalidName {
        /// The image.
        image: String,
        /// The parser's message.
        detail: String,
    },
    /// `ErrImageNeverPull`.
    #[error("Container image {0:?} is not present with pull policy of Never")]
    NeverPull(String),
    /// `ErrImagePull`.
    #[error("failed to pull and unpack image {image:?}: {detail}")]
    Pull {
        /// The image.
        image: String,
        /// What failed.
        detail: String,
    },
}

impl PullError {
    /// The container's waiting reason for this error.
    pub fn reason(&self) -> &'static str {
        match self {
            PullError::InvalidName { .. } => "InvalidImageName",
            PullError::NeverPull(_) => "ErrImageNeverPull",
            PullError::Pull { .. } => "ErrImagePull",
        }
    }
}

/// An image ready to run.
#[derive(Debug, Clone)]
pub struct Image {
    /// Its unpacked root file system (never written: containers get an overlay or a copy).
    pub rootfs: PathBuf,
    /// Its configuration.
    pub config: ImageConfig,
    /// `registry/repository@sha256:…`, reported as the container's `imageID`.
    pub image_id: String,
}

/// The image store of one kubelet.
#[derive(Debug)]
pub struct ImageStore {
    dir: PathBuf,
    insecure: Vec<String>,
    tags: StdMutex<HashMap<String, String>>,
    locks: StdMutex<HashMap<String, Arc<Mutex<()>>>>,
}

/// Whether a registry is spoken to over plain HTTP: the configured ones and loopback
/// addresses (Docker's rule for `127.0.0.0/8`).
pub fn plain_http(registry: &str, insecure: &[String]) -> bool {
    let host = registry.rsplit_once(':').map_or(registry, |(h, _)| h);
    insecure.iter().any(|r| r == registry)
        || host == "localhost"
        || host.starts_with("127.")
        || host == "[::1]"
}

fn digest_dir(digest: &str) -> String {
    digest.replace(':', "-")
}

fn pull_err(image: &str) -> impl Fn(String) -> PullError + '_ {
    move |detail| PullError::Pull {
        image: image.to_string(),
        detail,
    }
}

impl ImageStore {
    /// A store in `dir`; `insecure` registries are spoken to over plain HTTP.
    pub fn new(dir: impl Into<PathBuf>, insecure: Vec<String>) -> Self {
        ImageStore {
            dir: dir.into(),
            insecure,
            tags: StdMutex::new(HashMap::new()),
            locks: StdMutex::new(HashMap::new()),
        }
    }

    fn lock_for(&self, key: &str) -> Arc<Mutex<()>> {
        let mut locks = self.locks.lock().unwrap_or_else(PoisonError::into_inner);
        locks.entry(key.to_string()).or_default().clone()
    }

    fn local(&self, reference: &Reference) -> Option<Image> {
        let whole = reference.whole();
        let digest = match reference.digest() {
            Some(d) => d.to_string(),
            None => self
                .tags
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get(&whole)
                .cloned()?,
        };
        self.load(reference, &digest).ok()
    }

    fn load(&self, reference: &Reference, digest: &str) -> Result<Image, String> {
        let dir = self.dir.join(digest_dir(digest));
        let text = std::fs::read_to_string(dir.join("config.json")).map_err(|e| e.to_string())?;
        let config = image_config::parse(&text)?;
        Ok(Image {
            rootfs: dir.join("rootfs"),
            config,
            image_id: format!(
                "{}/{}@{digest}",
                reference.registry(),
                reference.repository()
            ),
        })
    }

    /// The image `image` under `policy` (`Always`, `IfNotPresent`, `Never`), pulled with the
    /// first of `credentials` the registry accepts (anonymously when there are none).
    pub async fn ensure(
        &self,
        image: &str,
        policy: &str,
        credentials: &[Credential],
    ) -> Result<Image, PullError> {
        let reference: Reference =
            image
                .parse()
                .map_err(|e: oci_client::ParseError| PullError::InvalidName {
                    image: image.to_string(),
                    detail: e.to_string(),
                })?;
        if policy != "Always" {
            if let Some(found) = self.local(&reference) {
                return Ok(found);
            }
            if policy == "Never" {
                return Err(PullError::NeverPull(image.to_string()));
            }
        }
        self.pull(image, &reference, credentials).await
    }

    async fn pull(
        &self,
        image: &str,
        reference: &Reference,
        credentials: &[Credential],
    ) -> Result<Image, PullError> {
        let err = pull_err(image);
        let _ = rustls::crypto::ring::default_provider().install_default();
        let registry = reference.resolve_registry().to_string();
        let protocol = if plain_http(&registry, &self.insecure) {
            ClientProtocol::Http
        } else {
            ClientProtocol::Https
        };
        let mut auths: Vec<RegistryAuth> = credentials
            .iter()
            .map(|c| RegistryAuth::Basic(c.username.clone(), c.password.clone()))
            .collect();
        if auths.is_empty() {
            auths.push(RegistryAuth::Anonymous);
        }
        let mut last = String::new();
        for auth in auths {
            let client = Client::new(ClientConfig {
                protocol: protocol.clone(),
                ..Default::default()
            });
            match client.pull_manifest_and_config(reference, &auth).await {
                Ok((manifest, digest, config)) => {
                    let lock = self.lock_for(&digest);
                    let _guard = lock.lock().await;
                    if self.load(reference, &digest).is_err() {
                        self.unpack(&client, reference, &manifest, &digest, &config)
                            .await
                            .map_err(&err)?;
                    }
                    let found = self.load(reference, &digest).map_err(&err)?;
                    self.tags
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .insert(reference.whole(), digest);
                    return Ok(found);
                }
                Err(e) => last = e.to_string(),
            }
        }
        Err(err(last))
    }

    async fn unpack(
        &self,
        client: &Client,
        reference: &Reference,
        manifest: &oci_client::manifest::OciImageManifest,
        digest: &str,
        config: &str,
    ) -> Result<(), String> {
        image_config::parse(config)?;
        let blobs = self.dir.join("blobs");
        tokio::fs::create_dir_all(&blobs)
            .await
            .map_err(|e| format!("creating {}: {e}", blobs.display()))?;
        let staging = self.dir.join(format!(
            "{}.partial-{}",
            digest_dir(digest),
            uuid::Uuid::new_v4()
        ));
        let rootfs = staging.join("rootfs");
        let result = async {
            Root::create(&rootfs).map_err(|e| e.to_string())?;
            for layer in &manifest.layers {
                let path = blobs.join(format!(
                    "{}-{}",
                    digest_dir(&layer.digest),
                    uuid::Uuid::new_v4()
                ));
                let file = tokio::fs::File::create(&path)
                    .await
                    .map_err(|e| format!("creating {}: {e}", path.display()))?;
                let pulled = client.pull_blob(reference, layer, file).await;
                let applied = match pulled {
                    Ok(()) => {
                        let (rootfs, path) = (rootfs.clone(), path.clone());
                        let (media_type, digest) = (layer.media_type.clone(), layer.digest.clone());
                        tokio::task::spawn_blocking(move || {
                            apply_blob(&rootfs, &path, &media_type, &digest)
                        })
                        .await
                        .unwrap_or_else(|e| Err(format!("unpacking: {e}")))
                    }
                    Err(e) => Err(format!("layer {}: {e}", layer.digest)),
                };
                let _ = tokio::fs::remove_file(&path).await;
                applied?;
            }
            std::fs::write(staging.join("config.json"), config)
                .map_err(|e| format!("writing the image configuration: {e}"))?;
            std::fs::rename(&staging, self.dir.join(digest_dir(digest)))
                .map_err(|e| format!("storing the image: {e}"))
        }
        .await;
        if result.is_err() {
            let _ = std::fs::remove_dir_all(&staging);
        }
        result
    }
}

/// Applies one downloaded layer blob to the root file system (blocking).
fn apply_blob(rootfs: &Path, path: &Path, media_type: &str, digest: &str) -> Result<(), String> {
    let context = |e: UnpackError| format!("layer {digest}: {e}");
    if media_type.ends_with("+zstd") || media_type.ends_with(".zstd") {
        return Err(format!(
            "layer {digest}: zstd-compressed layers are not supported"
        ));
    }
    let root = Root::create(rootfs).map_err(context)?;
    let file = std::fs::File::open(path).map_err(|e| format!("layer {digest}: {e}"))?;
    let reader = BufReader::new(file);
    if media_type.ends_with("gzip") {
        root.apply_layer(flate2::read::GzDecoder::new(reader))
            .map_err(context)
    } else {
        root.apply_layer(reader).map_err(context)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_registries() {
        let insecure = vec!["registry.test:5000".to_string()];
        let cases = [
            ("127.0.0.1:5000", true),
            ("localhost:5000", true),
            ("registry.test:5000", true),
            ("registry.test:5001", false),
            ("quay.io", false),
            ("docker.io", false),
        ];
        for (registry, want) in cases {
            assert_eq!(plain_http(registry, &insecure), want, "{registry}");
        }
        let e = PullError::NeverPull("x".into());
        assert_eq!(e.reason(), "ErrImageNeverPull");
        assert_eq!(
            e.to_string(),
            r#"Container image "x" is not present with pull policy of Never"#
        );
    }
}
