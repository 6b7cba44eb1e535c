//! `kiln start-build BC`: starts a new Build of a BuildConfig through [`crate::instantiate`].

use std::process::ExitCode;

use clap::Args;
use k8s_openapi::api::core::v1::EnvVar;
use kube::ResourceExt;

use super::Error;
use crate::api::build::BuildTriggerCause;
use crate::api::common::{GitSourceRevision, SourceRevision};
use crate::instantiate::{instantiate, BuildRequest};

/// The cause recorded on builds started from the command line (OpenShift's wording).
pub(crate) const MANUAL_CAUSE: &str = "Manually triggered";

/// Arguments of `kiln start-build`.
#[derive(Debug, Args)]
pub(crate) struct StartBuildArgs {
    /// The BuildConfig to start a build of.
    #[arg(value_parser = object_name)]
    pub(crate) build_config: String,
    /// Its namespace (default: the kubeconfig context's).
    #[arg(short = 'n', long, value_parser = object_name)]
    pub(crate) namespace: Option<String>,
    /// Build this git commit (a hash of 4 to 64 hex digits) instead of the BuildConfig's ref.
    #[arg(long, value_parser = commit)]
    pub(crate) commit: Option<String>,
    /// Strategy environment override `NAME=VALUE` (repeatable).
    #[arg(short = 'e', long = "env", value_parser = name_value)]
    pub(crate) env: Vec<EnvVar>,
    /// Build argument `NAME=VALUE` merged into the strategy's (repeatable).
    #[arg(long = "build-arg", value_parser = name_value)]
    pub(crate) build_args: Vec<EnvVar>,
    /// Print the URLs of the BuildConfig's webhook triggers (secret shown as `<secret>`) instead
    /// of starting a build.
    #[arg(long)]
    pub(crate) list_webhooks: bool,
    /// The base URL the webhooks are served at (scheme and host), for `--list-webhooks`.
    #[arg(long, env = "KILN_WEBHOOK_URL", default_value = crate::webhook::urls::PLACEHOLDER_BASE)]
    pub(crate) webhook_url: String,
}

/// Accepts an object name (DNS-1123 subdomain).
pub(crate) fn object_name(text: &str) -> Result<String, String> {
    crate::api::validate::object_name(text).map(|()| text.to_string())
}

/// Accepts a commit hash.
fn commit(text: &str) -> Result<String, String> {
    crate::api::validate::commit(text).map(|()| text.to_string())
}

/// Parses `NAME=VALUE` into an environment variable.
pub(crate) fn name_value(text: &str) -> Result<EnvVar, String> {
    match text.split_once('=') {
        Some((name, value)) if !name.is_empty() => Ok(EnvVar {
            name: name.into(),
            value: Some(value.into()),
            value_from: None,
        }),
        _ => Err(format!("{text:?} is not NAME=VALUE")),
    }
}

/// The request `args` describe, identified by `request_id`.
pub(crate) fn request(args: &StartBuildArgs, request_id: String) -> BuildRequest {
    BuildRequest {
        request_id,
        cause: BuildTriggerCause {
            message: Some(MANUAL_CAUSE.into()),
            ..BuildTriggerCause::default()
        },
        revision: args.commit.as_ref().map(|commit| SourceRevision {
            type_: Some("Git".into()),
            git: Some(GitSourceRevision {
                commit: Some(commit.clone()),
                ..GitSourceRevision::default()
            }),
        }),
        env: args.env.clone(),
        build_args: args.build_args.clone(),
        // A tenant starting a build needs no write to the BuildConfig's status.
        leave_last_version: true,
        ..BuildRequest::default()
    }
}

/// A request id unique to this invocation.
fn request_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("cli-{}-{nanos}", std::process::id())
}

/// Starts the build and prints `build.build.kiln.dev/<name> started`, or with `--list-webhooks`
/// prints the webhook URLs.
pub(crate) fn run(args: &StartBuildArgs) -> Result<ExitCode, Error> {
    let runtime = tokio::runtime::Runtime::new().map_err(|source| Error::Io {
        context: "starting the runtime".into(),
        source,
    })?;
    let text = runtime.block_on(async {
        let client = kube::Client::try_default().await.map_err(Error::Kube)?;
        let namespace = args
            .namespace
            .clone()
            .unwrap_or_else(|| client.default_namespace().to_string());
        if args.list_webhooks {
            let bc = kube::Api::<crate::api::BuildConfig>::namespaced(client, &namespace)
                .get(&args.build_config)
                .await
                .map_err(Error::Kube)?;
            return Ok(crate::webhook::urls::describe(&bc, &args.webhook_url));
        }
        instantiate(
            &client,
            &namespace,
            &args.build_config,
            &request(args, request_id()),
        )
        .await
        .map(|build| format!("build.build.kiln.dev/{} started\n", build.name_any()))
        .map_err(Error::StartBuild)
    })?;
    super::write_stdout(&text)?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: StartBuildArgs,
    }

    #[test]
    fn arguments_become_a_manual_request() {
        let cli = Cli::parse_from([
            "x",
            "go-server",
            "-n",
            "demo",
            "--commit",
            "abc123",
            "-e",
            "BUILD_LOGLEVEL=5",
            "--build-arg",
            "REGISTRY=r:5000",
        ]);
        assert_eq!(cli.args.namespace.as_deref(), Some("demo"));
        let r = request(&cli.args, "id-1".into());
        assert_eq!(r.request_id, "id-1");
        assert_eq!(r.cause.message.as_deref(), Some(MANUAL_CAUSE));
        assert_eq!(
            r.revision.and_then(|v| v.git).and_then(|g| g.commit),
            Some("abc123".to_string())
        );
        assert_eq!(r.env[0].name, "BUILD_LOGLEVEL");
        assert_eq!(r.env[0].value.as_deref(), Some("5"));
        assert_eq!(r.build_args[0].value.as_deref(), Some("r:5000"));
        assert_eq!(r.last_version, None);
    }

    #[test]
    fn name_value_needs_a_name_and_equals() {
        assert!(name_value("A=").is_ok());
        assert_eq!(name_value("A=b=c").map(|e| e.value), Ok(Some("b=c".into())));
        assert!(name_value("=x").is_err());
        assert!(name_value("novalue").is_err());
    }

    #[test]
    fn request_ids_differ() {
        let a = request_id();
        std::thread::sleep(std::time::Duration::from_millis(1));
        assert_ne!(a, request_id());
    }
}
