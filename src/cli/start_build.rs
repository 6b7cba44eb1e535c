//! `kiln start-build BC`: starts a new Build of a BuildConfig through [`crate::instantiate`], and
//! with `--follow` streams its log, with `--wait` waits for its outcome.

use std::process::ExitCode;

use clap::Args;
use k8s_openapi::api::core::v1::EnvVar;
use kube::ResourceExt;

use super::cluster::{block_on, object_name, Cluster, ClusterArgs};
use super::kind::Kind;
use super::Error;
use crate::api::build::BuildTriggerCause;
use crate::api::common::{BuildSourceType, GitSourceRevision, SourceRevision};
use crate::api::Build;
use crate::instantiate::{instantiate, BuildRequest};

/// The cause recorded on builds started from the command line (OpenShift's wording).
pub(crate) const MANUAL_CAUSE: &str = "Manually triggered";

/// `kiln start-build --help` examples.
pub(crate) const EXAMPLES: &str = "Examples:
  # Start a build of BuildConfig app and follow its log (clone, then build)
  kiln start-build app -F

  # Start one and wait: exit code 1 if it ends Failed, Error or Cancelled
  kiln start-build app -n demo --wait

  # Build a given commit with an extra build argument, without the layer cache
  kiln start-build app --commit 3f2c1e9 --build-arg VERSION=1.2 --no-cache

  # Upload the current directory as the source of a binary build, then follow it
  kiln start-build app --from-dir . -F

  # Build the files git tracks at a commit of a local repository
  kiln start-build app --from-repo . --commit 3f2c1e9

  # Run build app-4 again (same commit, environment and build arguments)
  kiln start-build --from-build app-4

  # As a kubectl plugin
  kubectl kiln start-build app -F";

/// Arguments of `kiln start-build`.
#[derive(Debug, Args)]
pub(crate) struct StartBuildArgs {
    /// The BuildConfig to start a build of.
    #[arg(value_parser = object_name, required_unless_present = "from_build", conflicts_with = "from_build")]
    pub(crate) build_config: Option<String>,
    /// Start a build like this one instead, as OpenShift's clone does: its BuildConfig and its
    /// whole spec (source, the commit it built, environment, build arguments, no-cache, output).
    /// A binary build cannot be run again this way (its input is not kept).
    #[arg(long, value_name = "BUILD", value_parser = object_name, conflicts_with_all = ["list_webhooks", "binary"])]
    pub(crate) from_build: Option<String>,
    /// Build this git commit (a hash of 4 to 64 hex digits) instead of the BuildConfig's ref.
    #[arg(long, value_parser = commit)]
    pub(crate) commit: Option<String>,
    /// Strategy environment override `NAME=VALUE` (repeatable).
    #[arg(short = 'e', long = "env", value_parser = name_value)]
    pub(crate) env: Vec<EnvVar>,
    /// Build argument `NAME=VALUE` merged into the strategy's (repeatable).
    #[arg(long = "build-arg", value_parser = name_value)]
    pub(crate) build_args: Vec<EnvVar>,
    /// Build without the layer cache.
    #[arg(long)]
    pub(crate) no_cache: bool,
    /// Stream the build's log (the clone, then the build container, each as it starts).
    #[arg(short = 'F', long, conflicts_with = "list_webhooks")]
    pub(crate) follow: bool,
    /// Wait for the build to end; exit code 1 (with its reason and message) unless it completes.
    #[arg(short = 'w', long, conflicts_with = "list_webhooks")]
    pub(crate) wait: bool,
    /// Print the URLs of the BuildConfig's webhook triggers (secret shown as `<secret>`) instead
    /// of starting a build.
    #[arg(long)]
    pub(crate) list_webhooks: bool,
    /// The base URL the webhooks are served at (scheme and host), for `--list-webhooks`.
    #[arg(long, env = "KILN_WEBHOOK_URL", default_value = crate::webhook::urls::PLACEHOLDER_BASE)]
    pub(crate) webhook_url: String,
    /// The cluster to talk to.
    #[command(flatten)]
    pub(crate) cluster: ClusterArgs,
    /// The binary input to upload (`--from-dir`, `--from-file`, `--from-archive`, `--from-repo`).
    #[command(flatten)]
    pub(crate) upload: super::upload::UploadArgs,
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

fn manual_cause() -> BuildTriggerCause {
    BuildTriggerCause {
        message: Some(MANUAL_CAUSE.into()),
        ..BuildTriggerCause::default()
    }
}

/// The request `args` describe, identified by `request_id`.
pub(crate) fn request(args: &StartBuildArgs, request_id: String) -> BuildRequest {
    BuildRequest {
        request_id,
        cause: manual_cause(),
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
        no_cache: args.no_cache.then_some(true),
        ..BuildRequest::default()
    }
}

/// The BuildConfig of `build` and a request for a build like it, as OpenShift's clone makes
/// it: the earlier Build's whole spec (source and ref, the commit it built, strategy with its
/// environment, build arguments and no-cache setting, output, resources) instead of the
/// BuildConfig's current one. A Binary build is refused: its input was never kept (pure).
pub(crate) fn request_like(
    build: &Build,
    request_id: String,
) -> Result<(String, BuildRequest), Error> {
    let name = build.name_any();
    let (_, config) = crate::api::config_of(build).ok_or_else(|| {
        Error::Cluster(format!(
            "build {name} was not started from a BuildConfig; there is nothing to start again"
        ))
    })?;
    let mut spec = build.spec.common.clone();
    let binary = spec.source.as_ref().is_some_and(|s| {
        s.type_ == Some(BuildSourceType::Binary) || s.inferred_type() == BuildSourceType::Binary
    });
    if binary {
        return Err(Error::Cluster(format!(
            "build {name} had a binary source, which is not kept; upload it again with `kiln start-build {config} --from-dir DIR` (or --from-file, --from-archive, --from-repo)"
        )));
    }
    // Only a revision that names a commit pins the rebuild to it.
    spec.revision = spec
        .revision
        .filter(|r| r.git.as_ref().is_some_and(|g| g.commit.is_some()));
    Ok((
        config,
        BuildRequest {
            request_id,
            cause: manual_cause(),
            spec: Some(spec),
            // A tenant starting a build needs no write to the BuildConfig's status.
            leave_last_version: true,
            ..BuildRequest::default()
        },
    ))
}

/// A request id unique to this invocation.
pub(crate) fn request_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("cli-{}-{nanos}", std::process::id())
}

/// Starts a build of `bc` for `request`, turning a missing BuildConfig or CRD into their one-line
/// errors.
pub(crate) async fn start(
    cluster: &Cluster,
    bc: &str,
    request: &BuildRequest,
) -> Result<Build, Error> {
    match instantiate(&cluster.client, &cluster.namespace, bc, request).await {
        Ok(build) => Ok(build),
        Err(crate::instantiate::Error::Api { source, action }) => match &source {
            kube::Error::Api(status)
                if status.code == 404 && action.starts_with("reading BuildConfig") =>
            {
                Err(cluster.not_found(Kind::BuildConfig, bc).await)
            }
            _ => Err(cluster.error(&action, source)),
        },
        Err(e) => Err(Error::StartBuild(e)),
    }
}

/// Starts the build and prints `build.build.kiln.dev/<name> started`, then follows or waits as
/// asked; or with `--list-webhooks` prints the webhook URLs.
pub(crate) fn run(args: &StartBuildArgs) -> Result<ExitCode, Error> {
    block_on(async {
        let cluster = args.cluster.connect().await?;
        if args.list_webhooks {
            let name = args.build_config.clone().unwrap_or_default();
            let bc = match kube::Api::<crate::api::BuildConfig>::namespaced(
                cluster.client.clone(),
                &cluster.namespace,
            )
            .get(&name)
            .await
            {
                Ok(bc) => bc,
                Err(e) => return Err(cluster.read_error(Kind::BuildConfig, &name, e).await),
            };
            return super::write_stdout(&crate::webhook::urls::describe(&bc, &args.webhook_url));
        }
        let (bc, request) = match &args.from_build {
            Some(from) => {
                let old = match kube::Api::<Build>::namespaced(
                    cluster.client.clone(),
                    &cluster.namespace,
                )
                .get(from)
                .await
                {
                    Ok(b) => b,
                    Err(e) => return Err(cluster.read_error(Kind::Build, from, e).await),
                };
                let (bc, like) = request_like(&old, request_id())?;
                // -e, --build-arg, --commit and --no-cache still apply on top of the copy.
                let request = BuildRequest {
                    spec: like.spec,
                    ..request(args, like.request_id)
                };
                (bc, request)
            }
            None => (
                args.build_config.clone().unwrap_or_default(),
                request(args, request_id()),
            ),
        };
        let mut request = request;
        let input = args.upload.input(args.commit.as_deref());
        match &input {
            Some(input) => super::upload::prepare(&mut request, input)?,
            // A rebuild copies its own source: the BuildConfig's is not used.
            None if args.from_build.is_some() => {}
            None => refuse_binary_without_input(&cluster, &bc).await?,
        }
        let build = start(&cluster, &bc, &request).await?;
        let name = build.name_any();
        if let Some(input) = &input {
            eprintln!(
                "Uploading {} as binary input for build {name} ...",
                input.describe()
            );
            let sent = super::upload::upload(&cluster.client, &build, input)
                .await
                .map_err(|e| Error::UploadFailed(name.clone(), e))?;
            eprintln!("Uploaded {sent} bytes");
        }
        super::write_stdout(&format!("build.build.kiln.dev/{name} started\n"))?;
        if args.follow {
            super::logs::print_build_log(&cluster, &name, true).await?;
        }
        if args.wait {
            let done = super::logs::wait_terminal(&cluster, &name).await?;
            super::logs::outcome(&done)?;
        }
        Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

/// A Binary BuildConfig needs its input on the command line (as `oc start-build`): a build
/// started without it would only wait for its input timeout.
async fn refuse_binary_without_input(cluster: &Cluster, name: &str) -> Result<(), Error> {
    let bc = kube::Api::<crate::api::BuildConfig>::namespaced(
        cluster.client.clone(),
        &cluster.namespace,
    )
    .get_opt(name)
    .await;
    let bc = match bc {
        Ok(bc) => bc,
        Err(e) => return Err(cluster.read_error(Kind::BuildConfig, name, e).await),
    };
    let binary = bc.and_then(|bc| bc.spec.common.source).is_some_and(|s| {
        s.inferred_type() == crate::api::common::BuildSourceType::Binary
            || s.type_ == Some(crate::api::common::BuildSourceType::Binary)
    });
    if binary {
        return Err(Error::Usage(super::upload::input_required(name)));
    }
    Ok(())
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
        assert_eq!(cli.args.cluster.namespace.as_deref(), Some("demo"));
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
    fn a_rebuild_copies_the_earlier_build() {
        let build: Build = serde_json::from_value(serde_json::json!({
            "apiVersion": "build.kiln.dev/v1", "kind": "Build",
            "metadata": {"name": "app-4", "namespace": "demo",
                         "annotations": {"build.kiln.dev/build-config.name": "app"}},
            "spec": {
                "source": {"type": "Git", "git": {"uri": "https://example.com/app.git", "ref": "feature"},
                           "contextDir": "web"},
                "revision": {"type": "Git", "git": {"commit": "3f2c1e9", "message": "fix"}},
                "strategy": {"type": "Docker", "dockerStrategy": {
                    "env": [{"name": "A", "value": "1"}],
                    "buildArgs": [{"name": "V", "value": "2"}], "noCache": true}},
                "output": {"to": {"kind": "DockerImage", "name": "r:5000/demo/app:x"}}},
        }))
        .unwrap();
        let (config, r) = request_like(&build, "id".into()).unwrap();
        assert_eq!(config, "app");
        assert_eq!(r.cause.message.as_deref(), Some(MANUAL_CAUSE));
        assert!(r.leave_last_version);
        assert_eq!(r.spec.as_ref(), Some(&build.spec.common), "the whole spec");

        // A revision without a commit does not pin the rebuild.
        let mut unpinned = build.clone();
        if let Some(g) = unpinned
            .spec
            .common
            .revision
            .as_mut()
            .and_then(|r| r.git.as_mut())
        {
            g.commit = None;
        }
        let (_, r) = request_like(&unpinned, "id".into()).unwrap();
        assert_eq!(r.spec.and_then(|s| s.revision), None);

        let mut binary = build.clone();
        binary.spec.common.source =
            serde_json::from_value(serde_json::json!({"type": "Binary", "binary": {}})).unwrap();
        let err = request_like(&binary, "id".into()).unwrap_err().to_string();
        assert!(
            err.contains("binary source") && err.contains("kiln start-build app --from-dir"),
            "{err}"
        );

        let mut orphan = build;
        orphan.metadata.annotations = None;
        assert!(request_like(&orphan, "id".into()).is_err());
    }

    #[test]
    fn from_build_refuses_binary_input_flags() {
        for flag in ["--from-dir", "--from-file", "--from-archive", "--from-repo"] {
            let err = Cli::try_parse_from(["x", "--from-build", "app-1", flag, "."])
                .err()
                .map(|e| e.kind());
            assert_eq!(
                err,
                Some(clap::error::ErrorKind::ArgumentConflict),
                "{flag}"
            );
        }
    }

    #[test]
    fn request_ids_differ() {
        let a = request_id();
        std::thread::sleep(std::time::Duration::from_millis(1));
        assert_ne!(a, request_id());
    }
}
