//! The command line: one module per verb, dispatched from [`run`].

use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub(crate) mod build;
pub(crate) mod builder;
pub(crate) mod cancel_build;
pub(crate) mod clone_limits;
pub(crate) mod cluster;
pub(crate) mod completion;
pub(crate) mod controller;
pub(crate) mod convert;
pub(crate) mod describe;
pub(crate) mod get;
pub(crate) mod import_image;
pub(crate) mod kind;
pub(crate) mod logs;
pub(crate) mod new_build;
pub(crate) mod registry_token;
pub(crate) mod render;
pub(crate) mod replica;
pub(crate) mod start_build;
pub(crate) mod upload;
pub mod usage;
pub(crate) mod webhooks;

pub use controller::routes as controller_routes;

/// Errors any `kiln` verb can end with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading or writing a file or stream failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being read or written.
        context: String,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// Conversion of OpenShift manifests failed.
    #[error(transparent)]
    Convert(#[from] crate::convert::Error),
    /// Generating the CRDs failed.
    #[error(transparent)]
    Crd(#[from] crate::crdgen::Error),
    /// Talking to the cluster failed.
    #[error("cannot reach the cluster: {}", cluster::chain(.0))]
    Kube(#[source] kube::Error),
    /// `kiln build` could not start its build.
    #[error(transparent)]
    LocalBuild(#[from] crate::local::Error),
    /// `kiln start-build` could not start a build.
    #[error(transparent)]
    StartBuild(crate::instantiate::Error),
    /// `kiln import-image` was refused, or the import failed.
    #[error("{0}")]
    ImportImage(String),
    /// `kiln new-build` failed.
    #[error(transparent)]
    NewBuild(#[from] new_build::Error),
    /// The binary input of `kiln start-build` cannot be read.
    #[error(transparent)]
    Upload(#[from] upload::Error),
    /// The build started but its binary input did not reach it.
    #[error("build {0}: the upload failed: {1}; the build fails with FetchSourceFailed once its wait for input ends")]
    UploadFailed(String, upload::Error),
    /// The command line is wrong in a way the parser cannot see (exit code 2).
    #[error("{0}")]
    Usage(String),
    /// The cluster could not be reached or refused a request (one line, with what to do next).
    #[error("{0}")]
    Cluster(String),
    /// The API server does not serve kiln's kinds.
    #[error("the kiln CRDs are not installed in this cluster (no build.kiln.dev or image.kiln.dev resources); see docs/install.md")]
    CrdsMissing,
    /// A named object does not exist.
    #[error("{kind} '{name}' not found in namespace '{namespace}'; `kiln get {short} -n {namespace}` lists them")]
    NotFound {
        /// Its kind.
        kind: &'static str,
        /// Its name.
        name: String,
        /// The namespace searched.
        namespace: String,
        /// The `kiln get` resource name of the kind.
        short: &'static str,
    },
    /// A build `--wait` or `--follow` followed ended Failed, Error or Cancelled.
    #[error("build {name} ended {phase}{reason}{message}")]
    BuildEnded {
        /// The Build.
        name: String,
        /// Its terminal phase.
        phase: &'static str,
        /// ` (Reason)` or nothing.
        reason: String,
        /// `: message` or nothing.
        message: String,
    },
}

impl Error {
    /// The process exit code for this error: 2 for a wrong command line, 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Usage(_) => 2,
            _ => 1,
        }
    }
}

/// kiln: OpenShift-style BuildConfig builds for any Kubernetes cluster.
#[derive(Debug, Parser)]
#[command(
    name = "kiln",
    version,
    about,
    long_about = None,
    after_help = "Also works as a kubectl plugin: link the binary as `kubectl-kiln` on the PATH and run `kubectl kiln …`."
)]
pub struct Cli {
    /// The verb to run.
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// Every verb of the `kiln` binary.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Print kiln's CustomResourceDefinitions as multi-document YAML.
    #[command(after_help = usage::CRD_EXAMPLES)]
    Crd,
    /// Convert OpenShift build and image manifests into kiln manifests.
    #[command(after_help = usage::CONVERT_EXAMPLES)]
    Convert(convert::ConvertArgs),
    /// Run a BuildConfig's build on this machine (clone, build, push) and print the Build status.
    #[command(after_help = usage::BUILD_EXAMPLES)]
    Build(build::LocalBuildArgs),
    /// Run the operator: triggers, build Pods, Build status and ImageStream history.
    #[command(after_help = usage::CONTROLLER_EXAMPLES)]
    Controller(controller::ControllerArgs),
    /// Start a new build of a BuildConfig.
    #[command(after_help = start_build::EXAMPLES)]
    StartBuild(start_build::StartBuildArgs),
    /// Import an external image into an ImageStream tag now (as `oc import-image`).
    ImportImage(import_image::ImportImageArgs),
    /// Create a BuildConfig, its image streams and webhook Secrets from a repository's Dockerfile
    /// (or print them with -o yaml|json).
    NewBuild(new_build::NewBuildArgs),
    /// Print a build's log (live from its Pod, or the copy kept after the Pod is gone).
    #[command(after_help = logs::EXAMPLES)]
    Logs(logs::LogsArgs),
    /// Cancel running, pending or new builds.
    #[command(after_help = cancel_build::EXAMPLES)]
    CancelBuild(cancel_build::CancelBuildArgs),
    /// List BuildConfigs, Builds or ImageStreams.
    #[command(after_help = get::EXAMPLES)]
    Get(get::GetArgs),
    /// Show a BuildConfig, Build or ImageStream in detail.
    #[command(after_help = describe::EXAMPLES)]
    Describe(describe::DescribeArgs),
    /// Print a shell completion script.
    #[command(after_help = completion::EXAMPLES)]
    Completion(completion::CompletionArgs),
    /// The build Pod's steps: `clone` (fetch the source) and `build` (build, push, report).
    #[command(after_help = usage::BUILDER_EXAMPLES)]
    Builder(builder::BuilderArgs),
    /// Serve only the webhook endpoints (the controller serves them too).
    #[command(after_help = usage::WEBHOOKS_EXAMPLES)]
    Webhooks(webhooks::WebhooksArgs),
}

/// Runs the parsed command line and returns the process exit code.
pub fn run(cli: Cli) -> Result<ExitCode, Error> {
    match cli.command {
        Command::Crd => {
            write_stdout(&crate::crdgen::all_crds_yaml()?)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Convert(args) => convert::run(&args),
        Command::Build(args) => build::run(&args),
        Command::Builder(args) => Ok(builder::run(&args)),
        Command::StartBuild(args) => start_build::run(&args),
        Command::ImportImage(args) => import_image::run(&args),
        Command::NewBuild(args) => new_build::run(&args),
        Command::Logs(args) => logs::run(&args),
        Command::CancelBuild(args) => cancel_build::run(&args),
        Command::Get(args) => get::run(&args),
        Command::Describe(args) => describe::run(&args),
        Command::Completion(args) => completion::run(&args),
        Command::Controller(args) => {
            init_tracing(args.log_format);
            controller::run(&args)
        }
        Command::Webhooks(args) => {
            init_tracing(controller::LogFormat::Text);
            webhooks::run(&args)
        }
    }
}

/// Writes `text` to standard output; a closed pipe (e.g. `| head`) is not an error.
pub(crate) fn write_stdout(text: &str) -> Result<(), Error> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(err) if err.kind() != std::io::ErrorKind::BrokenPipe => Err(Error::Io {
            context: "writing standard output".into(),
            source: err,
        }),
        _ => Ok(()),
    }
}

/// Logs to stderr as text or JSON, filtered by `RUST_LOG` (default `info`); colour only when
/// stderr is a terminal.
fn init_tracing(format: controller::LogFormat) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let _ = match format {
        controller::LogFormat::Text => builder.try_init(),
        controller::LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}
