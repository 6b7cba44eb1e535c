//! `kiln build`: the build Pod's pipeline (fetch → prepare → build → push) on a developer's
//! machine, wrapped in the operator's own code: `instantiate::new_build` makes the Build, the
//! controller's start and phase functions decide its status, and the TagEvent is the one the
//! controller records. The result is the Build and TagEvent the operator would have written.
//!
//! Above the controller in the import order (it calls into it); only the CLI calls it.

use std::path::PathBuf;

use k8s_openapi::api::core::v1::EnvVar;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use serde_json::Value;

use crate::api::build::BuildTriggerCause;
use crate::api::contract::BuildReport;
use crate::api::{Build, BuildConfig, TagEvent, TagRef};
use crate::builder::buildah::Buildah;
use crate::builder::pipeline::{self, Binary, BuildOptions, FetchOptions, Output};
use crate::builder::{archive, url_policy};
use crate::controller::build::layer_cache;
use crate::controller::build::phase::{finished, report_revision, running, started};
use crate::controller::build_config::start::output_reference;
use crate::instantiate::{new_build, BuildRequest};

/// Why `kiln build` could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The BuildConfig file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file holds no valid BuildConfig.
    #[error("{path}: {detail}")]
    Manifest {
        /// The file.
        path: String,
        /// What is wrong.
        detail: String,
    },
    /// The BuildConfig cannot be instantiated (it lacks a name, say).
    #[error("{path}: {source}")]
    Instantiate {
        /// The file.
        path: String,
        /// Why.
        source: crate::instantiate::Error,
    },
    /// The output cannot be resolved.
    #[error("{path}: {message}")]
    Output {
        /// The file.
        path: String,
        /// Why.
        message: String,
    },
    /// The workspace could not be created.
    #[error("creating the workspace: {0}")]
    Workspace(std::io::Error),
}

/// Options of `kiln build`.
#[derive(Clone, Debug, Default)]
pub struct LocalOptions {
    /// The BuildConfig manifest (YAML or JSON; other documents are ignored).
    pub file: PathBuf,
    /// Build this local directory instead of the BuildConfig's source.
    pub context: Option<PathBuf>,
    /// Build from this archive (tar, tar.gz, zip) instead of the BuildConfig's source.
    pub archive: Option<PathBuf>,
    /// Push ImageStreamTag outputs to `<registry>/<namespace>/<stream>:<tag>`.
    pub registry: Option<String>,
    /// The registry (and every `--insecure-registry` host) is reached without TLS verification.
    pub insecure_registries: Vec<String>,
    /// A docker config JSON for the push.
    pub push_secret: Option<PathBuf>,
    /// A docker config JSON for pulls.
    pub pull_secret: Option<PathBuf>,
    /// Extra or overriding build args.
    pub build_args: Vec<(String, String)>,
    /// Where to write the OCI layout when there is no registry (default `./<name>-oci`).
    pub oci_dir: Option<PathBuf>,
    /// buildah `--root`.
    pub root: Option<PathBuf>,
    /// buildah `--runroot`.
    pub runroot: Option<PathBuf>,
    /// buildah `--storage-driver` (default: overlay, falling back to vfs).
    pub driver: Option<String>,
    /// A source secret directory for the clone.
    pub source_secret: Option<PathBuf>,
    /// Use the layer cache the controller would give the build in `registry`
    /// (`<registry>/<namespace>/<buildconfig>-cache`).
    pub layer_cache: bool,
    /// The git clone's connect and idle timeouts and fetched-bytes bound.
    pub clone_limits: crate::api::contract::CloneLimits,
}

/// The outcome of a local build: the report, the Build with its status, and the TagEvent.
#[derive(Clone, Debug)]
pub struct LocalResult {
    /// The builder report.
    pub report: BuildReport,
    /// The Build as the operator would have written it.
    pub build: Build,
    /// The TagEvent for the output ImageStream (None on failure or without a registry).
    pub tag_event: Option<TagEvent>,
}

/// Reads the first BuildConfig of a manifest file.
pub fn read_build_config(path: &std::path::Path) -> Result<BuildConfig, Error> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
        path: shown.clone(),
        source,
    })?;
    let docs = crate::yaml::read_documents(&text).map_err(|e| Error::Manifest {
        path: shown.clone(),
        detail: e.to_string(),
    })?;
    let doc = docs
        .into_iter()
        .find(|d| d.get("kind").and_then(Value::as_str) == Some("BuildConfig"))
        .ok_or_else(|| Error::Manifest {
            path: shown.clone(),
            detail: "no BuildConfig in the file".into(),
        })?;
    let bc: BuildConfig = serde_json::from_value(doc).map_err(|e| Error::Manifest {
        path: shown.clone(),
        detail: format!("invalid BuildConfig: {e}"),
    })?;
    let volumes = bc
        .spec
        .common
        .strategy
        .docker_strategy
        .as_ref()
        .map(|d| d.volumes.as_slice())
        .unwrap_or_default();
    crate::api::validate::build_volumes(volumes, "spec.strategy.dockerStrategy.volumes").map_err(
        |detail| Error::Manifest {
            path: shown.clone(),
            detail,
        },
    )?;
    let git = bc.spec.common.source.as_ref().and_then(|s| s.git.as_ref());
    if git.is_some_and(|g| crate::api::validate::url_credentials(&g.uri).is_some()) {
        return Err(Error::Manifest {
            path: shown,
            detail: format!(
                "spec.source.git.uri: {}",
                crate::api::validate::URL_CREDENTIALS_MESSAGE
            ),
        });
    }
    let last = bc.status.as_ref().map_or(0, |s| s.last_version);
    if crate::naming::next_build_number(last).is_none() {
        return Err(Error::Manifest {
            path: shown,
            detail: format!("status.lastVersion {last} has no next build number"),
        });
    }
    Ok(bc)
}

/// The request id of a local build.
const LOCAL_REQUEST: &str = "local";
/// The namespace of a BuildConfig that names none.
const DEFAULT_NAMESPACE: &str = "default";

/// The Build a BuildConfig read from a file instantiates, started and running as the controller
/// would have it: `instantiate::new_build` with the command line's build args, its output
/// resolved for `registry` (none: the output is an OCI layout and the reference stays empty).
pub fn start(
    bc: &BuildConfig,
    registry: Option<&str>,
    build_args: &[(String, String)],
    now: Timestamp,
) -> Result<Build, Error> {
    let shown = bc.name_any();
    let mut bc = bc.clone();
    // A file has no server-assigned fields; new_build needs a namespace and a uid for the owner.
    bc.metadata
        .namespace
        .get_or_insert_with(|| DEFAULT_NAMESPACE.to_string());
    bc.metadata.uid.get_or_insert_with(|| "local".to_string());
    let last = bc.status.as_ref().map_or(0, |s| s.last_version);
    // read_build_config refuses a lastVersion without a successor
    let number = crate::naming::next_build_number(last).unwrap_or(last);
    let request = BuildRequest {
        request_id: LOCAL_REQUEST.into(),
        cause: BuildTriggerCause {
            message: Some("Local build (kiln build)".into()),
            ..BuildTriggerCause::default()
        },
        build_args: build_args
            .iter()
            .map(|(name, value)| EnvVar {
                name: name.clone(),
                value: Some(value.clone()),
                value_from: None,
            })
            .collect(),
        ..BuildRequest::default()
    };
    let mut build = new_build(&bc, number, &request).map_err(|source| Error::Instantiate {
        path: shown.clone(),
        source,
    })?;
    let output = match registry {
        Some(_) => output_reference(&build, registry).map_err(|(_, message)| Error::Output {
            path: shown,
            message,
        })?,
        None => build
            .spec
            .common
            .output
            .as_ref()
            .and_then(|o| o.to.as_ref())
            .filter(|to| to.kind.as_deref() == Some("DockerImage"))
            .and_then(|to| to.name.clone()),
    };
    build.status = Some(started(&build, output, now));
    build.status = Some(running(&build, now));
    Ok(build)
}

/// The Build after its builder ended with `report`, and the TagEvent the controller records in
/// the output ImageStreamTag (only for an ImageStreamTag output pushed to `registry`).
pub fn finish(
    mut build: Build,
    report: BuildReport,
    registry: Option<&str>,
    now: Timestamp,
) -> LocalResult {
    if let Some(revision) = report_revision(&report) {
        build.spec.common.revision = Some(revision);
    }
    let status = finished(&build, &report, now);
    let namespace = build.namespace().unwrap_or_default();
    let tag = build
        .spec
        .common
        .output
        .as_ref()
        .and_then(|o| o.to.as_ref())
        .and_then(|to| TagRef::from_object_reference(to, &namespace));
    let tag_event = match (tag, registry, &report.image_digest) {
        (Some(tag), Some(registry), Some(digest)) if !report.is_failure() => {
            // The controller creates the ImageStream if missing: its first generation.
            Some(TagEvent::pushed(&tag.repository(registry), digest, 1, now))
        }
        _ => None,
    };
    build.status = Some(status);
    LocalResult {
        report,
        build,
        tag_event,
    }
}

/// Runs the whole pipeline locally.
pub fn run(opts: &LocalOptions) -> Result<LocalResult, Error> {
    let bc = read_build_config(&opts.file)?;
    let registry = opts.registry.as_deref();
    let build = start(&bc, registry, &opts.build_args, Timestamp::now())?;
    let workspace = tempfile::Builder::new()
        .prefix("kiln-build-")
        .tempdir()
        .map_err(Error::Workspace)?;
    let source_dir = workspace.path().join("source");
    let binary = match (&opts.context, &opts.archive) {
        (Some(dir), _) => Some(Binary::Directory(dir.clone())),
        (None, Some(file)) => Some(Binary::File(file.clone())),
        (None, None) => None,
    };
    let fetch = FetchOptions {
        source_dir: source_dir.clone(),
        source_secret: opts.source_secret.clone(),
        mode: url_policy::Mode::Local,
        binary: binary.clone(),
        max_archive_bytes: archive::DEFAULT_MAX_BYTES,
        submodules: true,
        input_timeout: None,
        clone_limits: opts.clone_limits,
    };
    let mut report = pipeline::fetch(&build, &fetch);
    if !report.is_failure() {
        let mut insecure = opts.insecure_registries.clone();
        insecure.dedup();
        let reference = build
            .status
            .as_ref()
            .and_then(|s| s.output_docker_image_reference.clone());
        let output = match reference {
            Some(r) => Output::Registry(r),
            None => {
                let name = build.metadata.name.clone().unwrap_or_default();
                Output::OciLayout {
                    dir: opts
                        .oci_dir
                        .clone()
                        .unwrap_or_else(|| PathBuf::from(format!("{name}-oci"))),
                    tag: "latest".into(),
                }
            }
        };
        let build_opts = BuildOptions {
            work_dir: workspace.path().join("work"),
            source_dir: match &binary {
                Some(Binary::Directory(dir)) => dir.clone(),
                _ => source_dir,
            },
            buildah: Buildah::detect(
                opts.root.clone(),
                opts.runroot.clone(),
                opts.driver.as_deref(),
            ),
            pull_secret: opts.pull_secret.clone(),
            push_secret: opts.push_secret.clone(),
            insecure_registries: insecure,
            output: Some(output),
            volumes_dir: workspace.path().join("volumes"),
            layer_cache: opts
                .layer_cache
                .then(|| layer_cache::repository(&build, registry))
                .flatten(),
            registry_token: None,
        };
        let fetched = std::mem::take(&mut report);
        report = pipeline::build(&build, fetched.source.clone(), &build_opts);
        report.prepend_stages(fetched.stages);
    }
    Ok(finish(build, report, registry, Timestamp::now()))
}
