//! The scale step after the main load: Parallel BuildConfigs that keep every build, and builds
//! started through `instantiate` as fast as the driver can (64 in flight) until the controller
//! has seen `total` builds finish. Measures the rate at which the controller creates build Pods
//! (against the rate the driver offered), the controller's RSS growth per finished build
//! between the two build counts, and the CPU the controller and the sandbox used meanwhile (the
//! rate is the controller's only if the sandbox had CPU to spare).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use kiln::api::BuildConfig;
use kiln::instantiate::{instantiate, BuildRequest};
use kube::api::{Api, PostParams};

use crate::procs::{self, BoxError};
use crate::stats::percentile;
use crate::watch;
use crate::NAMESPACE;

/// The prefix of the scale step's BuildConfigs (and so of their builds).
const PREFIX: &str = "scale-";

/// What the scale step measured.
pub(crate) struct Figures {
    /// BuildConfigs of the step.
    pub(crate) configs: usize,
    /// Finished builds when the step started, and when it ended.
    pub(crate) finished: (usize, usize),
    /// The controller's RSS (MiB) at those two points.
    pub(crate) rss: (f64, f64),
    /// Builds the driver instantiated, and in how many seconds.
    pub(crate) issued: (usize, f64),
    /// Build Pods the controller created for them, and the seconds from the first
    /// instantiation to the last Pod.
    pub(crate) pods: (usize, f64),
    /// Build created -> Pod created of the step's builds, in ms (p50, p99).
    pub(crate) to_pod: (f64, f64),
    /// Failed instantiations.
    pub(crate) failures: u64,
    /// CPU seconds the controller and the sandbox (API server and kubelet) used during the
    /// step, and the step's wall-clock seconds: which of them bounds the start rate.
    pub(crate) cpu: CpuShare,
}

/// CPU seconds per process over a stretch of wall-clock time.
pub(crate) struct CpuShare {
    /// The controller's CPU seconds.
    pub(crate) controller: f64,
    /// The sandbox's CPU seconds (API server and kubelet).
    pub(crate) sandbox: f64,
    /// Wall-clock seconds.
    pub(crate) wall: f64,
}

fn build_config(i: usize) -> Result<BuildConfig, BoxError> {
    let name = format!("{PREFIX}{i:04}");
    Ok(serde_json::from_value(serde_json::json!({
        "apiVersion": "build.kiln.dev/v1alpha1",
        "kind": "BuildConfig",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "runPolicy": "Parallel",
            // Every build is kept, so the RSS slope is the cost of one more finished build.
            "successfulBuildsHistoryLimit": 1_000_000,
            "failedBuildsHistoryLimit": 1_000_000,
            "source": {"git": {"uri": format!("https://git.example.com/{name}.git")}},
            "strategy": {"type": "Docker"},
            "output": {"to": {"kind": "ImageStreamTag", "name": format!("{name}:latest")}},
        },
    }))?)
}

fn finished(seen: &watch::Shared) -> usize {
    watch::lock(seen).finished.len()
}

/// Runs the step until `total` builds have finished (counting those before it).
pub(crate) async fn run(
    driver: &kube::Client,
    seen: &watch::Shared,
    pid: u32,
    sandbox_pid: Option<u32>,
    total: usize,
    configs: usize,
) -> Result<Figures, BoxError> {
    let api: Api<BuildConfig> = Api::namespaced(driver.clone(), NAMESPACE);
    futures::stream::iter(0..configs)
        .map(|i| {
            let api = api.clone();
            async move {
                api.create(&PostParams::default(), &build_config(i)?)
                    .await?;
                Ok::<(), BoxError>(())
            }
        })
        .buffer_unordered(16)
        .try_collect::<Vec<()>>()
        .await?;
    // Let the controller reconcile them before the first measurement.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let finished_from = finished(seen);
    let rss_from = procs::proc_mib(pid, "VmRSS").unwrap_or(f64::NAN);
    let builds = total.saturating_sub(finished_from);
    crate::progress(&format!(
        "scale step: {configs} Parallel BuildConfigs, {builds} builds unpaced (64 in flight), from {finished_from} finished builds at RSS {rss_from:.1} MiB"
    ));

    let cpu_controller = procs::cpu_seconds(pid).unwrap_or(0.0);
    let cpu_sandbox = sandbox_pid.and_then(procs::cpu_seconds).unwrap_or(0.0);
    let failures = Arc::new(AtomicU64::new(0));
    let in_flight = Arc::new(tokio::sync::Semaphore::new(64));
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(builds);
    for k in 0..builds {
        let permit = in_flight.clone().acquire_owned().await?;
        let (client, failures) = (driver.clone(), failures.clone());
        tasks.push(tokio::spawn(async move {
            let name = format!("{PREFIX}{:04}", k % configs);
            let request = BuildRequest {
                request_id: format!("scale-{k}"),
                ..BuildRequest::default()
            };
            if let Err(err) = instantiate(&client, NAMESPACE, &name, &request).await {
                eprintln!("instantiate {name}: {err}");
                failures.fetch_add(1, Ordering::Relaxed);
            }
            drop(permit);
        }));
        if k % 2000 == 1999 {
            crate::progress(&format!(
                "scale step: {} instantiated in {:.0}s, {} finished, controller RSS {:.1} MiB",
                k + 1,
                start.elapsed().as_secs_f64(),
                finished(seen),
                procs::proc_mib(pid, "VmRSS").unwrap_or(f64::NAN)
            ));
        }
    }
    for task in tasks {
        task.await?;
    }
    let issue_seconds = start.elapsed().as_secs_f64();
    let failed = failures.load(Ordering::Relaxed);
    let expected = finished_from + builds - failed as usize;
    let wait = Instant::now();
    while finished(seen) < expected && wait.elapsed() < Duration::from_secs(300) {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    if finished(seen) < expected {
        crate::progress("scale step: gave up waiting after 300s; reporting what finished");
    }
    let cpu = CpuShare {
        controller: procs::cpu_seconds(pid).unwrap_or(0.0) - cpu_controller,
        sandbox: sandbox_pid.and_then(procs::cpu_seconds).unwrap_or(0.0) - cpu_sandbox,
        wall: start.elapsed().as_secs_f64(),
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_to = procs::proc_mib(pid, "VmRSS").unwrap_or(f64::NAN);

    let s = watch::lock(seen);
    let ours = |name: &String| name.starts_with(PREFIX);
    let pods: Vec<Instant> = s
        .pod_added
        .iter()
        .filter(|(b, _)| ours(b))
        .map(|(_, t)| *t)
        .collect();
    let last_pod = pods.iter().max().copied().unwrap_or(start);
    let to_pod: Vec<f64> = s
        .pod_added
        .iter()
        .filter(|(b, _)| ours(b))
        .filter_map(|(b, t)| {
            Some(
                t.checked_duration_since(*s.build_added.get(b)?)?
                    .as_secs_f64()
                    * 1000.0,
            )
        })
        .collect();
    Ok(Figures {
        configs,
        finished: (finished_from, s.finished.len()),
        rss: (rss_from, rss_to),
        issued: (builds, issue_seconds),
        pods: (
            pods.len(),
            last_pod.saturating_duration_since(start).as_secs_f64(),
        ),
        to_pod: (percentile(&to_pod, 0.5), percentile(&to_pod, 0.99)),
        failures: failed,
        cpu,
    })
}
