//! `kiln logs bc/NAME [--version N] | build/NAME [-f]`: the clone then the build container's
//! log, live from the build Pod while it exists, else the copy the controller kept
//! ([`crate::api::build_log`]).

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use futures::AsyncReadExt;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{Api, LogParams};

use super::cluster::{block_on, Cluster, ClusterArgs};
use super::kind::{parse_slash, Kind};
use super::Error;
use crate::api::contract::{BUILD_CONTAINER, CLONE_CONTAINER};
use crate::api::{Build, BuildConfig, BuildPhase};
use crate::naming;

/// `kiln logs --help` examples.
pub(crate) const EXAMPLES: &str = "Examples:
  # The latest build of BuildConfig app, followed until it ends
  kiln logs -f bc/app

  # Build 3 of app
  kiln logs bc/app --version 3
  kiln logs build/app-3

The log stays readable after the build Pod is deleted: the controller keeps a compressed copy
(head and tail, at most about 3 MiB of text) in ConfigMap <build>-log, removed with the Build.";

/// How often a follower looks at the Pod while waiting for a container to start.
const POLL: Duration = Duration::from_millis(500);

/// Arguments of `kiln logs`.
#[derive(Debug, Args)]
pub(crate) struct LogsArgs {
    /// `bc/NAME` (its latest build, or `--version`) or `build/NAME`.
    #[arg(value_name = "bc/NAME|build/NAME")]
    pub(crate) target: String,
    /// With `bc/NAME`: the build number to show.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(i64).range(1..))]
    pub(crate) version: Option<i64>,
    /// Follow the log until the build ends (waits for a build that has not started).
    #[arg(short = 'f', long)]
    pub(crate) follow: bool,
    /// The cluster to talk to.
    #[command(flatten)]
    pub(crate) cluster: ClusterArgs,
}

/// The Build a `logs` target names: `build/NAME`, or `bc/NAME` at `version` (default its latest).
pub(crate) async fn resolve(
    cluster: &Cluster,
    target: &str,
    version: Option<i64>,
) -> Result<String, Error> {
    let (kind, name) = parse_slash(target)?;
    match kind {
        Kind::Build if version.is_some() => Err(Error::Usage(
            "--version applies to bc/NAME; build/NAME already names one build".into(),
        )),
        Kind::Build => Ok(name),
        Kind::ImageStream => Err(Error::Usage(format!(
            "{target:?}: logs belong to builds; use bc/NAME or build/NAME"
        ))),
        Kind::BuildConfig => {
            let api: Api<BuildConfig> = Api::namespaced(cluster.client.clone(), &cluster.namespace);
            let bc = match api.get(&name).await {
                Ok(bc) => bc,
                Err(e) => return Err(cluster.read_error(kind, &name, e).await),
            };
            // The newest build: lastVersion may lag behind a build just started (instantiate
            // leaves it to the controller), so the Builds' own numbers count too.
            let mut last = bc.status.as_ref().map_or(0, |s| s.last_version);
            if version.is_none() {
                let builds = super::describe::builds_of(cluster, &name).await?;
                last = builds
                    .iter()
                    .filter_map(crate::api::build_number)
                    .fold(last, i64::max);
            }
            match version.unwrap_or(last) {
                0 => Err(Error::Cluster(format!(
                    "BuildConfig '{name}' has no builds yet; `kiln start-build {name} -n {}` starts one",
                    cluster.namespace
                ))),
                n => Ok(naming::build_name(&name, n)),
            }
        }
    }
}

async fn get_build(cluster: &Cluster, name: &str) -> Result<Build, Error> {
    let api: Api<Build> = Api::namespaced(cluster.client.clone(), &cluster.namespace);
    match api.get(name).await {
        Ok(b) => Ok(b),
        Err(e) => Err(cluster.read_error(Kind::Build, name, e).await),
    }
}

/// The build's own Pod (owned by its uid), if it exists.
async fn own_pod(cluster: &Cluster, build: &Build) -> Result<Option<Pod>, Error> {
    let api: Api<Pod> = Api::namespaced(cluster.client.clone(), &cluster.namespace);
    let name = naming::pod_name(build.metadata.name.as_deref().unwrap_or_default());
    let pod = api
        .get_opt(&name)
        .await
        .map_err(|e| cluster.error(&format!("reading Pod {name}"), e))?;
    Ok(pod.filter(|p| {
        p.metadata
            .owner_references
            .iter()
            .flatten()
            .any(|o| Some(&o.uid) == build.metadata.uid.as_ref())
    }))
}

/// The copy of the log the controller kept, if there is one.
async fn stored_log(cluster: &Cluster, build: &Build) -> Result<Option<Vec<u8>>, Error> {
    let api: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), &cluster.namespace);
    let name =
        crate::api::build_log::config_map_name(build.metadata.name.as_deref().unwrap_or_default());
    let cm = api
        .get_opt(&name)
        .await
        .map_err(|e| cluster.error(&format!("reading the stored log {name}"), e))?;
    match cm.map(|cm| crate::api::build_log::read(&cm, build)) {
        None | Some(Err(crate::api::build_log::Error::NotOwned(_))) => Ok(None),
        Some(Ok(log)) => Ok(Some(log)),
        Some(Err(e)) => Err(Error::Cluster(e.to_string())),
    }
}

/// Whether `container` of `pod` has started (running or terminated); `None` when the Pod has no
/// such container.
fn started(pod: &Pod, container: &str) -> Option<bool> {
    let spec = pod.spec.as_ref()?;
    let declared = spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .any(|c| c.name == container);
    if !declared {
        return None;
    }
    let status = pod.status.as_ref();
    let statuses = status
        .and_then(|s| s.container_statuses.as_ref())
        .into_iter()
        .chain(status.and_then(|s| s.init_container_statuses.as_ref()))
        .flatten();
    Some(statuses.filter(|s| s.name == container).any(|s| {
        s.state
            .as_ref()
            .is_some_and(|st| st.running.is_some() || st.terminated.is_some())
    }))
}

fn pod_finished(pod: &Pod) -> bool {
    matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    )
}

fn write_out(bytes: &[u8]) -> Result<bool, Error> {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(false),
        Err(source) => Err(Error::Io {
            context: "writing standard output".into(),
            source,
        }),
    }
}

/// Streams one container's log to stdout; false when stdout is closed.
async fn stream_container(
    cluster: &Cluster,
    pod: &str,
    container: &str,
    follow: bool,
) -> Result<bool, Error> {
    let api: Api<Pod> = Api::namespaced(cluster.client.clone(), &cluster.namespace);
    let params = LogParams {
        container: Some(container.into()),
        follow,
        ..LogParams::default()
    };
    let mut stream = match api.log_stream(pod, &params).await {
        Ok(s) => s,
        // The Pod went or the container is not there any more: nothing more to show.
        Err(kube::Error::Api(s)) if s.code == 404 || s.code == 400 => return Ok(true),
        Err(e) => {
            return Err(cluster.error(&format!("reading the {container} log of Pod {pod}"), e))
        }
    };
    let mut chunk = vec![0_u8; 32 * 1024];
    loop {
        match stream.read(&mut chunk).await {
            Ok(0) => return Ok(true),
            Ok(n) => {
                if !write_out(&chunk[..n])? {
                    return Ok(false);
                }
            }
            Err(e) => {
                return Err(Error::Cluster(format!(
                    "reading the {container} log of Pod {pod}: {e}"
                )))
            }
        }
    }
}

/// Prints Build `name`'s log: from its Pod (each container in turn, as it starts, when
/// following), else from the stored copy. Following waits for a build that has not started.
pub(crate) async fn print_build_log(
    cluster: &Cluster,
    name: &str,
    follow: bool,
) -> Result<(), Error> {
    let mut build = get_build(cluster, name).await?;
    loop {
        let phase = build.status.as_ref().map(|s| s.phase).unwrap_or_default();
        if let Some(pod) = own_pod(cluster, &build).await? {
            return print_pod_log(cluster, &build, pod, follow).await;
        }
        if let Some(log) = stored_log(cluster, &build).await? {
            write_out(&log)?;
            return Ok(());
        }
        if phase.is_terminal() {
            return Err(Error::Cluster(format!(
                "build {name} ended {} and no log was kept (its Pod is gone: it never started, or was deleted before the controller kept the log); `kiln describe build/{name}` shows its status",
                phase.as_str()
            )));
        }
        if !follow {
            return Err(Error::Cluster(format!(
                "build {name} is {} and has no Pod yet; `kiln logs -f build/{name}` waits for it",
                phase.as_str()
            )));
        }
        tokio::time::sleep(POLL).await;
        build = get_build(cluster, name).await?;
    }
}

async fn print_pod_log(
    cluster: &Cluster,
    build: &Build,
    mut pod: Pod,
    follow: bool,
) -> Result<(), Error> {
    let pod_name = pod.metadata.name.clone().unwrap_or_default();
    for container in [CLONE_CONTAINER, BUILD_CONTAINER] {
        loop {
            match started(&pod, container) {
                None => break,
                Some(true) => {
                    if !stream_container(cluster, &pod_name, container, follow).await? {
                        return Ok(());
                    }
                    break;
                }
                Some(false) if !follow || pod_finished(&pod) => break,
                Some(false) => {
                    tokio::time::sleep(POLL).await;
                    match own_pod(cluster, build).await? {
                        Some(p) => pod = p,
                        // The Pod went while we waited: show what was kept, if anything.
                        None => {
                            if let Some(log) = stored_log(cluster, build).await? {
                                write_out(&log)?;
                            }
                            return Ok(());
                        }
                    }
                }
            }
        }
        if let Some(p) = own_pod(cluster, build).await? {
            pod = p;
        }
    }
    Ok(())
}

/// The terminal phase of Build `name`, waiting for it (checked every second).
pub(crate) async fn wait_terminal(cluster: &Cluster, name: &str) -> Result<Build, Error> {
    loop {
        let build = get_build(cluster, name).await?;
        let phase = build.status.as_ref().map(|s| s.phase).unwrap_or_default();
        if phase.is_terminal() {
            return Ok(build);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// `Ok` for a Complete build, else the error naming its phase, reason and message.
pub(crate) fn outcome(build: &Build) -> Result<(), Error> {
    let status = build.status.clone().unwrap_or_default();
    if status.phase == BuildPhase::Complete {
        return Ok(());
    }
    Err(Error::BuildEnded {
        name: build.metadata.name.clone().unwrap_or_default(),
        phase: status.phase.as_str(),
        reason: status
            .reason
            .map(|r| format!(" ({})", r.as_str()))
            .unwrap_or_default(),
        message: status
            .message
            .map(|m| format!(": {}", super::cluster::one_line(&m)))
            .unwrap_or_default(),
    })
}

/// Runs `kiln logs`.
pub(crate) fn run(args: &LogsArgs) -> Result<ExitCode, Error> {
    parse_slash(&args.target)?;
    block_on(async {
        let cluster = args.cluster.connect().await?;
        let name = resolve(&cluster, &args.target, args.version).await?;
        print_build_log(&cluster, &name, args.follow).await
    })?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(json: serde_json::Value) -> Pod {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn a_container_starts_when_it_runs_or_ran() {
        let p = pod(serde_json::json!({
            "spec": {"initContainers": [{"name": "clone"}], "containers": [{"name": "build"}]},
            "status": {"phase": "Pending",
                "initContainerStatuses": [{"name": "clone", "image": "", "imageID": "", "ready": false, "restartCount": 0,
                                           "state": {"running": {}}}],
                "containerStatuses": [{"name": "build", "image": "", "imageID": "", "ready": false, "restartCount": 0,
                                       "state": {"waiting": {"reason": "PodInitializing"}}}]}
        }));
        assert_eq!(started(&p, "clone"), Some(true));
        assert_eq!(started(&p, "build"), Some(false));
        assert_eq!(started(&p, "other"), None);
        assert!(!pod_finished(&p));
    }

    #[test]
    fn outcomes_name_phase_reason_and_message() {
        let build = |phase: &str, reason: Option<&str>, message: Option<&str>| -> Build {
            serde_json::from_value(serde_json::json!({
                "apiVersion": "build.kiln.dev/v1alpha1", "kind": "Build",
                "metadata": {"name": "app-2"}, "spec": {"strategy": {"type": "Docker"}},
                "status": {"phase": phase, "reason": reason, "message": message}
            }))
            .unwrap()
        };
        assert!(outcome(&build("Complete", None, None)).is_ok());
        assert_eq!(
            outcome(&build(
                "Failed",
                Some("DockerBuildFailed"),
                Some("Docker build strategy has failed.")
            ))
            .unwrap_err()
            .to_string(),
            "build app-2 ended Failed (DockerBuildFailed): Docker build strategy has failed."
        );
        assert_eq!(
            outcome(&build("Cancelled", Some("CancelledBuild"), None))
                .unwrap_err()
                .to_string(),
            "build app-2 ended Cancelled (CancelledBuild)"
        );
    }
}
