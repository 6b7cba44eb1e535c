//! `kiln build`: the Pod's pipeline (fetch → prepare → build → push) on a developer's machine,
//! ending with the Build status and the ImageStream TagEvent the operator would write.

use std::path::PathBuf;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde_json::Value;

use super::buildah::Buildah;
use super::pipeline::{self, Binary, BuildOptions, FetchOptions, Output};
use super::{archive, url_policy};
use crate::api::build::{BuildStatusOutput, BuildStatusOutputTo};
use crate::api::contract::BuildReport;
use crate::api::{Build, BuildConfig, BuildPhase, BuildSpec, BuildStatus, TagEvent};

/// Why `kiln build` could not start.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
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
    /// The workspace could not be created.
    #[error("creating the workspace: {0}")]
    Workspace(std::io::Error),
}

/// Options of `kiln build`.
#[derive(Clone, Debug, Default)]
pub(crate) struct LocalOptions {
    /// The BuildConfig manifest (YAML or JSON; other documents are ignored).
    pub(crate) file: PathBuf,
    /// Build this local directory instead of the BuildConfig's source.
    pub(crate) context: Option<PathBuf>,
    /// Build from this archive (tar, tar.gz, zip) instead of the BuildConfig's source.
    pub(crate) archive: Option<PathBuf>,
    /// Push ImageStreamTag outputs to `<registry>/<namespace>/<stream>:<tag>`.
    pub(crate) registry: Option<String>,
    /// The registry (and every `--insecure-registry` host) is reached without TLS verification.
    pub(crate) insecure_registries: Vec<String>,
    /// A docker config JSON for the push.
    pub(crate) push_secret: Option<PathBuf>,
    /// A docker config JSON for pulls.
    pub(crate) pull_secret: Option<PathBuf>,
    /// Extra or overriding build args.
    pub(crate) build_args: Vec<(String, String)>,
    /// Where to write the OCI layout when there is no registry (default `./<name>-oci`).
    pub(crate) oci_dir: Option<PathBuf>,
    /// buildah `--root`.
    pub(crate) root: Option<PathBuf>,
    /// buildah `--runroot`.
    pub(crate) runroot: Option<PathBuf>,
    /// buildah `--storage-driver` (default: overlay, falling back to vfs).
    pub(crate) driver: Option<String>,
    /// A source secret directory for the clone.
    pub(crate) source_secret: Option<PathBuf>,
}

/// The outcome of a local build: the report, the Build with its status, and the TagEvent.
#[derive(Clone, Debug)]
pub(crate) struct LocalResult {
    /// The builder report.
    pub(crate) report: BuildReport,
    /// The Build as the operator would have written it.
    pub(crate) build: Build,
    /// The TagEvent for the output ImageStream (None on failure or without a registry).
    pub(crate) tag_event: Option<TagEvent>,
}

/// Reads the first BuildConfig of a manifest file.
pub(crate) fn read_build_config(path: &std::path::Path) -> Result<BuildConfig, Error> {
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

/// The Build a BuildConfig would instantiate, with its output reference resolved for `registry`.
pub(crate) fn build_from_config(
    bc: &BuildConfig,
    registry: Option<&str>,
    extra_args: &[(String, String)],
) -> Build {
    let name = bc.metadata.name.clone().unwrap_or_else(|| "build".into());
    let namespace = bc
        .metadata
        .namespace
        .clone()
        .unwrap_or_else(|| "default".into());
    let last = bc.status.as_ref().map_or(0, |s| s.last_version);
    // read_build_config refuses a lastVersion without a successor
    let version = crate::naming::next_build_number(last).unwrap_or(last);
    let mut common = bc.spec.common.clone();
    if !extra_args.is_empty() {
        let docker = common
            .strategy
            .docker_strategy
            .get_or_insert_with(Default::default);
        for (k, v) in extra_args {
            docker.build_args.retain(|a| a.name != *k);
            docker.build_args.push(k8s_openapi::api::core::v1::EnvVar {
                name: k.clone(),
                value: Some(v.clone()),
                value_from: None,
            });
        }
    }
    let to = common.output.as_ref().and_then(|o| o.to.clone());
    let reference = to.and_then(|t| match (t.kind.as_deref(), registry, t.name) {
        (Some("DockerImage"), _, Some(n)) => Some(n),
        (Some("ImageStreamTag") | None, Some(reg), Some(n)) => {
            let ns = t.namespace.unwrap_or_else(|| namespace.clone());
            Some(format!("{reg}/{ns}/{n}"))
        }
        _ => None,
    });
    let mut build = Build::new(
        &format!("{name}-{version}"),
        BuildSpec {
            common,
            ..Default::default()
        },
    );
    build.metadata.namespace = Some(namespace);
    build.status = Some(BuildStatus {
        output_docker_image_reference: reference,
        ..Default::default()
    });
    build
}

/// Fills a Build status from a builder report (what the operator does with the termination message).
pub(crate) fn apply_report(status: &mut BuildStatus, report: &BuildReport) {
    status.phase = if report.is_failure() {
        BuildPhase::Failed
    } else {
        BuildPhase::Complete
    };
    status.reason = report.reason;
    status.message = report.message.clone();
    status.log_snippet = report.log_tail.clone();
    status.stages = report.stages.clone();
    if let Some(d) = &report.image_digest {
        status.output = Some(BuildStatusOutput {
            to: Some(BuildStatusOutputTo {
                image_digest: Some(d.clone()),
            }),
        });
    }
}

/// Runs the whole pipeline locally.
pub(crate) fn run(opts: &LocalOptions) -> Result<LocalResult, Error> {
    let bc = read_build_config(&opts.file)?;
    let mut build = build_from_config(&bc, opts.registry.as_deref(), &opts.build_args);
    let started = Time(k8s_openapi::jiff::Timestamp::now());
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
        submodules: false,
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
        };
        let fetched = std::mem::take(&mut report);
        report = pipeline::build(&build, fetched.source.clone(), &build_opts);
        report.prepend_stages(fetched.stages);
    }
    let status = build.status.get_or_insert_with(Default::default);
    apply_report(status, &report);
    status.start_timestamp = Some(started.clone());
    let now = k8s_openapi::jiff::Timestamp::now();
    status.completion_timestamp = Some(Time(now));
    status.duration = i64::try_from(now.duration_since(started.0).as_nanos()).ok();
    let tag_event = match (
        &report.image_digest,
        status.output_docker_image_reference.as_deref(),
    ) {
        (Some(digest), Some(reference)) => Some(TagEvent {
            created: Time(now),
            docker_image_reference: super::registry::with_digest(reference, digest),
            image: digest.clone(),
            generation: bc.metadata.generation.unwrap_or(1),
        }),
        _ => None,
    };
    Ok(LocalResult {
        report,
        build,
        tag_event,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_from_config_resolves_output() {
        let bc: BuildConfig = serde_json::from_value(serde_json::json!({
            "apiVersion": "build.kiln.dev/v1alpha1", "kind": "BuildConfig",
            "metadata": {"name": "go-server", "namespace": "demo"},
            "spec": {"strategy": {"type": "Docker", "dockerStrategy": {"buildArgs": [{"name": "REGISTRY", "value": "x"}]}},
                     "output": {"to": {"kind": "ImageStreamTag", "name": "go-server:latest"}}}
        }))
        .unwrap();
        let cases = [
            (
                Some("127.0.0.1:5000"),
                Some("127.0.0.1:5000/demo/go-server:latest"),
            ),
            (None, None),
        ];
        for (registry, want) in cases {
            let b = build_from_config(&bc, registry, &[("REGISTRY".into(), "r:1".into())]);
            assert_eq!(b.metadata.name.as_deref(), Some("go-server-1"));
            assert_eq!(
                b.status.unwrap().output_docker_image_reference.as_deref(),
                want
            );
            let args = &b.spec.common.strategy.docker_strategy.unwrap().build_args;
            assert_eq!(args.len(), 1);
            assert_eq!(args[0].value.as_deref(), Some("r:1"));
        }
    }
}
