//! `kiln builder clone|build`: what the build Pod's containers run.
//!
//! The Build arrives as JSON in the `BUILD` environment variable (as with OpenShift's builder) or in
//! a file given by `--build-file`. `clone` writes the source info to `<workspace>/source-info.json`;
//! `build` reads it. Both write a JSON [`crate::api::contract::BuildReport`] of at most 4096 bytes
//! to the termination log and exit non-zero on failure.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};

use crate::api::contract::{self as contract, BuildReport, SourceInfo};
use crate::api::{Build, StatusReason};
use crate::builder::pipeline::{self, Binary, BuildOptions, FetchOptions, Output};
use crate::builder::report::Failure;
use crate::builder::{archive, buildah::Buildah, storage_lock, url_policy};

/// Arguments of `kiln builder`.
#[derive(Debug, Args)]
pub(crate) struct BuilderArgs {
    /// The step to run.
    #[command(subcommand)]
    pub(crate) command: BuilderCommand,
}

/// The builder steps.
#[derive(Debug, Subcommand)]
pub(crate) enum BuilderCommand {
    /// Fetch the source (git clone or binary archive) into the workspace (the Pod's init container).
    Clone(CloneArgs),
    /// Prepare the Dockerfile, build with buildah, run the post-commit hook and push (the main container).
    Build(PodBuildArgs),
}

/// Arguments both steps take.
#[derive(Debug, Args)]
pub(crate) struct StepArgs {
    /// The Build as JSON (default: the BUILD environment variable).
    #[arg(long = "build-json", env = contract::BUILD_ENV, hide_env_values = true)]
    pub(crate) build_json: Option<String>,
    /// Read the Build (JSON or YAML) from this file instead.
    #[arg(long)]
    pub(crate) build_file: Option<PathBuf>,
    /// The workspace shared by the two steps.
    #[arg(long, env = "KILN_WORKSPACE", default_value = contract::WORKSPACE_DIR)]
    pub(crate) workspace: PathBuf,
    /// Where to write the JSON termination message.
    #[arg(long, env = "KILN_TERMINATION_LOG", default_value = contract::TERMINATION_LOG_PATH)]
    pub(crate) termination_log: PathBuf,
}

/// Arguments of `kiln builder clone`.
#[derive(Debug, Args)]
pub(crate) struct CloneArgs {
    /// Shared arguments.
    #[command(flatten)]
    pub(crate) step: StepArgs,
    /// The source secret directory (username/password, ssh-privatekey, known_hosts).
    #[arg(long, default_value = contract::SOURCE_SECRET_DIR)]
    pub(crate) source_secret: PathBuf,
    /// Read a binary source (tar, tar.gz, zip) from this file, or `-` for standard input.
    #[arg(long)]
    pub(crate) from_archive: Option<String>,
    /// Seconds a binary source on standard input may keep the step waiting for data, before
    /// the first byte and between reads (0: no bound).
    #[arg(long = "input-timeout", default_value_t = contract::DEFAULT_INPUT_TIMEOUT.as_secs())]
    pub(crate) input_timeout: u64,
    /// The most bytes a binary source may unpack to.
    #[arg(long, default_value_t = archive::DEFAULT_MAX_BYTES)]
    pub(crate) max_archive_bytes: u64,
    /// Allow local paths and file:// URLs as repositories (never in a Pod).
    #[arg(long)]
    pub(crate) allow_local_paths: bool,
    /// Do not clone submodules (by default they are cloned recursively, as OpenShift does).
    #[arg(long)]
    pub(crate) no_submodules: bool,
    /// The git clone bounds (the controller sets them in the Pod's environment).
    #[command(flatten)]
    pub(crate) clone_limits: super::clone_limits::CloneLimitArgs,
}

/// Arguments of `kiln builder build`.
#[derive(Debug, Args)]
pub(crate) struct PodBuildArgs {
    /// Shared arguments.
    #[command(flatten)]
    pub(crate) step: StepArgs,
    /// The push secret (a directory holding .dockerconfigjson, or the file itself).
    #[arg(long, default_value = contract::PUSH_SECRET_DIR)]
    pub(crate) push_secret: PathBuf,
    /// The pull secret (a directory holding .dockerconfigjson, or the file itself).
    #[arg(long, default_value = contract::PULL_SECRET_DIR)]
    pub(crate) pull_secret: PathBuf,
    /// buildah's storage root (default: <storage dir>/storage).
    #[arg(long)]
    pub(crate) root: Option<PathBuf>,
    /// buildah's run root (default: <storage dir>/run).
    #[arg(long)]
    pub(crate) runroot: Option<PathBuf>,
    /// The storage driver (default: overlay, falling back to vfs).
    #[arg(long)]
    pub(crate) storage_driver: Option<String>,
    /// The registry (`host[:port]`) the projected ServiceAccount token in `--registry-token` is
    /// a password for (kiln's registry token server).
    #[arg(long, env = contract::REGISTRY_TOKEN_REGISTRY_ENV)]
    pub(crate) registry_token_registry: Option<String>,
    /// The directory holding that token.
    #[arg(long, default_value = contract::REGISTRY_TOKEN_DIR)]
    pub(crate) registry_token: PathBuf,
    /// Registries (host:port) reached without TLS verification; repeat or separate with commas.
    #[arg(long = "insecure-registry", env = contract::INSECURE_REGISTRIES_ENV, value_delimiter = ',')]
    pub(crate) insecure_registries: Vec<String>,
    /// Push here instead of the Build's output reference.
    #[arg(long)]
    pub(crate) output_image: Option<String>,
    /// Where build volumes are mounted, one directory per volume name.
    #[arg(long, env = "KILN_BUILD_VOLUMES_DIR", default_value = contract::BUILD_VOLUMES_DIR)]
    pub(crate) volumes_dir: PathBuf,
    /// The layer-cache repository buildah reads cached layers from and pushes new ones to (set
    /// by the controller; a miss or an unreachable cache never fails the build).
    #[arg(long, env = contract::LAYER_CACHE_ENV)]
    pub(crate) layer_cache: Option<String>,
}

/// Runs a builder step and returns its exit code.
pub(crate) fn run(args: &BuilderArgs) -> ExitCode {
    let (report, log) = match &args.command {
        BuilderCommand::Clone(a) => (clone(a), &a.step.termination_log),
        BuilderCommand::Build(a) => (build(a), &a.step.termination_log),
    };
    let message = report.to_message(contract::TERMINATION_MESSAGE_LIMIT);
    if let Err(e) = std::fs::write(log, &message) {
        eprintln!(
            "warning: cannot write the termination message to {}: {e}",
            log.display()
        );
    }
    match (&report.reason, &report.message) {
        (Some(reason), msg) => {
            eprintln!("error: {reason}: {}", msg.as_deref().unwrap_or(""));
            ExitCode::FAILURE
        }
        (None, _) => ExitCode::SUCCESS,
    }
}

fn read_build(step: &StepArgs) -> Result<Build, Failure> {
    let text = match (&step.build_file, &step.build_json) {
        (Some(path), _) => std::fs::read_to_string(path).map_err(|e| {
            Failure::new(
                StatusReason::GenericBuildFailed,
                format!("cannot read {}: {e}", path.display()),
            )
        })?,
        (None, Some(json)) => json.clone(),
        (None, None) => {
            return Err(Failure::new(
                StatusReason::GenericBuildFailed,
                "no Build given: set the BUILD environment variable or --build-file",
            ))
        }
    };
    let docs = crate::yaml::read_documents(&text).map_err(|e| {
        Failure::new(
            StatusReason::GenericBuildFailed,
            format!("the Build is not valid JSON/YAML: {e}"),
        )
    })?;
    let doc = docs
        .into_iter()
        .next()
        .ok_or_else(|| Failure::new(StatusReason::GenericBuildFailed, "the Build is empty"))?;
    serde_json::from_value(doc).map_err(|e| {
        Failure::new(
            StatusReason::GenericBuildFailed,
            format!("invalid Build: {e}"),
        )
    })
}

fn failed(f: &Failure) -> BuildReport {
    let mut r = BuildReport::default();
    r.fail(f);
    r
}

/// Where the clone step leaves its stage timings for the build step's report.
fn fetch_stages_path(workspace: &Path) -> PathBuf {
    workspace.join("fetch-stages.json")
}

fn clone(a: &CloneArgs) -> BuildReport {
    let build = match read_build(&a.step) {
        Ok(b) => b,
        Err(f) => return failed(&f),
    };
    let opts = FetchOptions {
        source_dir: a.step.workspace.join("source"),
        source_secret: Some(a.source_secret.clone()).filter(|p| p.is_dir()),
        mode: if a.allow_local_paths {
            url_policy::Mode::Local
        } else {
            url_policy::Mode::Pod
        },
        binary: a.from_archive.as_ref().map(|p| {
            if p == "-" {
                Binary::Stdin
            } else {
                Binary::File(PathBuf::from(p))
            }
        }),
        max_archive_bytes: a.max_archive_bytes,
        submodules: !a.no_submodules,
        input_timeout: (a.input_timeout > 0).then(|| Duration::from_secs(a.input_timeout)),
        clone_limits: a.clone_limits.limits(),
    };
    let report = pipeline::fetch(&build, &opts);
    if let Some(info) = &report.source {
        let written = serde_json::to_string_pretty(info)
            .map_err(|e| e.to_string())
            .and_then(|j| {
                std::fs::write(a.step.workspace.join("source-info.json"), j)
                    .map_err(|e| e.to_string())
            })
            .and_then(|_| {
                let stages = serde_json::to_string(&report.stages).map_err(|e| e.to_string())?;
                std::fs::write(fetch_stages_path(&a.step.workspace), stages)
                    .map_err(|e| e.to_string())
            });
        if let Err(e) = written {
            return failed(&Failure::new(
                StatusReason::FetchSourceFailed,
                format!("cannot write the source info: {e}"),
            ));
        }
    }
    report
}

fn build(a: &PodBuildArgs) -> BuildReport {
    let build = match read_build(&a.step) {
        Ok(b) => b,
        Err(f) => return failed(&f),
    };
    let ws = &a.step.workspace;
    let source: Option<SourceInfo> = std::fs::read_to_string(ws.join("source-info.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok());
    let earlier = std::fs::read_to_string(fetch_stages_path(ws))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default();
    let storage = Path::new(contract::STORAGE_DIR);
    let root = a
        .root
        .clone()
        .unwrap_or_else(|| PathBuf::from(contract::GRAPHROOT_DIR));
    let runroot = a.runroot.clone().unwrap_or_else(|| storage.join("run"));
    // Builds sharing a BuildConfig's storage claim take turns.
    let _storage = storage_lock::acquire(&root, || {
        println!(
            "==> Build: waiting for another build of this BuildConfig to release its build storage"
        );
    });
    let opts = BuildOptions {
        work_dir: ws.join("work"),
        source_dir: ws.join("source"),
        buildah: Buildah::detect(Some(root), Some(runroot), a.storage_driver.as_deref()),
        pull_secret: Some(a.pull_secret.clone()),
        push_secret: Some(a.push_secret.clone()),
        insecure_registries: a
            .insecure_registries
            .iter()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect(),
        output: a.output_image.clone().map(Output::Registry),
        volumes_dir: a.volumes_dir.clone(),
        layer_cache: a.layer_cache.clone(),
        registry_token: a
            .registry_token_registry
            .clone()
            .filter(|r| !r.is_empty())
            .map(|r| (r, a.registry_token.join(contract::REGISTRY_TOKEN_FILE))),
    };
    let mut report = pipeline::build(&build, source, &opts);
    report.prepend_stages(earlier);
    report
}
