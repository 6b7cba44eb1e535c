//! `kiln cancel-build BUILD|BC… [--state S] [--dump-logs] [--restart]`: OpenShift's
//! `oc cancel-build`. A Build name cancels that build; a BuildConfig name cancels its builds in
//! the given states (default new, pending and running). Cancelling sets `spec.cancel: true` (a
//! plain patch of the Build, which the `edit` role grants; `status.cancelled` would need the
//! status subresource), and the controller deletes the build Pod, keeps its log and marks the
//! Build Cancelled (`CancelledBuild`), which this verb waits for.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};
use kube::api::{Api, Patch, PatchParams};
use kube::ResourceExt;

use super::cluster::{block_on, Cluster, ClusterArgs};
use super::kind::{parse_slash, Kind};
use super::Error;
use crate::api::{Build, BuildConfig, BuildPhase};

/// `kiln cancel-build --help` examples.
pub(crate) const EXAMPLES: &str = "Examples:
  # Cancel build app-3
  kiln cancel-build app-3

  # Cancel every new or pending build of BuildConfig app (not the running one)
  kiln cancel-build bc/app --state new,pending

  # Print its log, cancel it, and start it again
  kiln cancel-build app-3 --dump-logs --restart";

/// How long to wait for the controller to mark a build Cancelled.
const WAIT: Duration = Duration::from_secs(60);

/// A build phase `--state` can select.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum State {
    /// Not started yet.
    New,
    /// Its Pod is created but has not started.
    Pending,
    /// Running.
    Running,
}

impl State {
    fn phase(self) -> BuildPhase {
        match self {
            State::New => BuildPhase::New,
            State::Pending => BuildPhase::Pending,
            State::Running => BuildPhase::Running,
        }
    }
}

/// Arguments of `kiln cancel-build`.
#[derive(Debug, Args)]
pub(crate) struct CancelBuildArgs {
    /// Builds (`NAME` or `build/NAME`) or BuildConfigs (`NAME` or `bc/NAME`: their builds).
    #[arg(required = true, value_name = "BUILD|BC")]
    pub(crate) targets: Vec<String>,
    /// For BuildConfigs: the phases of the builds to cancel (comma-separated).
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "new,pending,running"
    )]
    pub(crate) state: Vec<State>,
    /// Print each build's log before cancelling it.
    #[arg(long)]
    pub(crate) dump_logs: bool,
    /// Start each cancelled build again (same commit, environment and build arguments).
    #[arg(long)]
    pub(crate) restart: bool,
    /// The cluster to talk to.
    #[command(flatten)]
    pub(crate) cluster: ClusterArgs,
}

/// The builds one target names: a Build, or a BuildConfig's builds in `states`.
async fn builds_of_target(
    cluster: &Cluster,
    target: &str,
    states: &[State],
) -> Result<Vec<Build>, Error> {
    let builds: Api<Build> = Api::namespaced(cluster.client.clone(), &cluster.namespace);
    let (kind, name) = if target.contains('/') {
        let (kind, name) = parse_slash(target)?;
        if kind == Kind::ImageStream {
            return Err(Error::Usage(format!(
                "{target:?}: only builds and BuildConfigs can be cancelled"
            )));
        }
        (Some(kind), name)
    } else {
        super::cluster::object_name(target).map_err(|reason| {
            Error::Usage(format!("{target:?} is not an object name: {reason}"))
        })?;
        (None, target.to_string())
    };
    if kind != Some(Kind::BuildConfig) {
        match builds.get_opt(&name).await {
            Ok(Some(b)) => return Ok(vec![b]),
            Ok(None) if kind == Some(Kind::Build) => {
                return Err(cluster.not_found(Kind::Build, &name).await)
            }
            Ok(None) => {}
            Err(e) => return Err(cluster.read_error(Kind::Build, &name, e).await),
        }
    }
    let configs: Api<BuildConfig> = Api::namespaced(cluster.client.clone(), &cluster.namespace);
    match configs.get_opt(&name).await {
        Ok(Some(_)) => {}
        Ok(None) if kind.is_none() => {
            if !cluster.crds_installed(Kind::Build).await {
                return Err(Error::CrdsMissing);
            }
            return Err(Error::Cluster(format!(
                "no Build or BuildConfig '{name}' in namespace '{ns}'; `kiln get builds -n {ns}` lists the builds",
                ns = cluster.namespace
            )));
        }
        Ok(None) => return Err(cluster.not_found(Kind::BuildConfig, &name).await),
        Err(e) => return Err(cluster.read_error(Kind::BuildConfig, &name, e).await),
    }
    let mut found = super::describe::builds_of(cluster, &name).await?;
    found.retain(|b| {
        let phase = b.status.as_ref().map(|s| s.phase).unwrap_or_default();
        states.iter().any(|s| s.phase() == phase)
    });
    found.sort_by_key(crate::api::build_number);
    Ok(found)
}

/// Requests cancellation of `build` and waits until it is terminal; returns its final phase.
async fn cancel(cluster: &Cluster, build: &Build) -> Result<BuildPhase, Error> {
    let name = build.name_any();
    let api: Api<Build> = Api::namespaced(cluster.client.clone(), &cluster.namespace);
    if let Err(e) = api
        .patch(
            &name,
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"spec": {"cancel": true}})),
        )
        .await
    {
        return Err(cluster.error(&format!("cancelling build {name}"), e));
    }
    let deadline = Instant::now() + WAIT;
    loop {
        let now = match api.get(&name).await {
            Ok(b) => b,
            Err(e) => return Err(cluster.read_error(Kind::Build, &name, e).await),
        };
        let phase = now.status.as_ref().map(|s| s.phase).unwrap_or_default();
        if phase.is_terminal() {
            return Ok(phase);
        }
        if Instant::now() > deadline {
            return Err(Error::Cluster(format!(
                "build {name} is still {} {}s after its cancellation was requested; is the kiln controller running?",
                phase.as_str(),
                WAIT.as_secs()
            )));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Runs `kiln cancel-build`.
pub(crate) fn run(args: &CancelBuildArgs) -> Result<ExitCode, Error> {
    block_on(async {
        let cluster = args.cluster.connect().await?;
        let mut targets = Vec::new();
        for target in &args.targets {
            targets.extend(builds_of_target(&cluster, target, &args.state).await?);
        }
        let mut failed = 0;
        for build in targets {
            let name = build.name_any();
            let phase = build.status.as_ref().map(|s| s.phase).unwrap_or_default();
            if phase.is_terminal() {
                eprintln!(
                    "build {name} already ended {}; not cancelled",
                    phase.as_str()
                );
                continue;
            }
            if args.dump_logs {
                if let Err(e) = super::logs::print_build_log(&cluster, &name, false).await {
                    eprintln!("error: {e}");
                }
            }
            match cancel(&cluster, &build).await {
                Ok(BuildPhase::Cancelled) => {
                    super::write_stdout(&format!("build.build.kiln.dev/{name} cancelled\n"))?;
                }
                Ok(other) => {
                    eprintln!(
                        "build {name} ended {} before the cancellation took effect",
                        other.as_str()
                    );
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    failed += 1;
                    continue;
                }
            }
            if args.restart {
                let (bc, request) =
                    super::start_build::request_like(&build, super::start_build::request_id())?;
                let started = super::start_build::start(&cluster, &bc, &request).await?;
                super::write_stdout(&format!(
                    "build.build.kiln.dev/{} started\n",
                    started.name_any()
                ))?;
            }
        }
        match failed {
            0 => Ok(()),
            n => Err(Error::Cluster(format!(
                "{n} build(s) were not cancelled (the reasons are above)"
            ))),
        }
    })?;
    Ok(ExitCode::SUCCESS)
}
