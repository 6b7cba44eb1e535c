//! Invariants under faults: a property test of 200 seeded random runs. Each run queues builds of
//! one BuildConfig under a random run policy while the sandbox injects 409/429/500 answers, drops
//! every watch, compacts history (410 Gone), and the controller is killed and restarted at random
//! points. After every run: no duplicate or lost build, numbers 1..=N, no two Serial builds ever
//! active together, every terminal phase kept, and each Complete image recorded exactly once.

mod controller_support;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use controller_support::{bc_yaml, digest, settings, Harness, NS};
use k8s_openapi::api::core::v1::Pod;
use kiln::api::build_number;
use kiln::api::{Build, BuildPhase};
use kiln::instantiate::{instantiate, BuildRequest};
use kiln_sandbox::apiserver::FaultAction;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::ResourceExt;
use serde_json::json;

/// Runs per test; `KILN_FAULT_RUNS` and `KILN_FAULT_FIRST_SEED` explore further seeds.
const RUNS: u64 = 200;

/// A small deterministic generator (xorshift64*), so a failing seed can be replayed.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// What the scripted kubelet saw: for each pod, the resourceVersion it was created at and the one
/// at which the kubelet finished it.
#[derive(Default)]
struct KubeletLog {
    created_rv: BTreeMap<String, u64>,
    finished_rv: BTreeMap<String, u64>,
    failed: Vec<String>,
}

fn rv(pod: &Pod) -> u64 {
    pod.resource_version()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Drives every build Pod to Running then Succeeded (one in five Fails), retrying through faults.
async fn kubelet(
    client: kube::Client,
    log: Arc<Mutex<KubeletLog>>,
    seed: u64,
    stop: Arc<std::sync::atomic::AtomicBool>,
) {
    let pods: Api<Pod> = Api::namespaced(client, NS);
    let mut rng = Rng::new(seed ^ 0xABCD);
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        let Ok(list) = pods.list(&ListParams::default()).await else {
            tokio::time::sleep(Duration::from_millis(5)).await;
            continue;
        };
        for pod in list.items {
            let name = pod.name_any();
            let phase = pod
                .status
                .as_ref()
                .and_then(|s| s.phase.clone())
                .unwrap_or_else(|| "Pending".into());
            if pod.metadata.deletion_timestamp.is_some()
                || phase == "Succeeded"
                || phase == "Failed"
            {
                continue;
            }
            log.lock()
                .unwrap()
                .created_rv
                .entry(name.clone())
                .or_insert_with(|| if phase == "Pending" { rv(&pod) } else { 0 });
            let build = name.trim_end_matches("-build").to_string();
            let status = if phase == "Pending" {
                json!({"phase": "Running", "startTime": "2024-01-01T00:00:00Z"})
            } else if rng.below(5) == 0 {
                let report =
                    json!({"reason": "DockerBuildFailed", "message": "RUN false"}).to_string();
                json!({"phase": "Failed", "containerStatuses": [controller_support::terminated("build", 1, &report)]})
            } else {
                let number: u32 = build
                    .rsplit('-')
                    .next()
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0);
                let report = json!({"imageDigest": digest(number)}).to_string();
                json!({"phase": "Succeeded", "containerStatuses": [controller_support::terminated("build", 0, &report)]})
            };
            let finished = status["phase"] != "Running";
            if let Ok(updated) = pods
                .patch_status(
                    &name,
                    &PatchParams::default(),
                    &Patch::Merge(json!({"status": status})),
                )
                .await
            {
                if finished {
                    let mut log = log.lock().unwrap();
                    log.finished_rv.insert(name.clone(), rv(&updated));
                    if updated.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Failed") {
                        log.failed.push(build);
                    }
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
}

/// Records every phase each build is seen in, to prove no terminal phase is ever left.
async fn phase_monitor(
    client: kube::Client,
    seen: Arc<Mutex<HashMap<String, Vec<BuildPhase>>>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
) {
    let builds: Api<Build> = Api::namespaced(client, NS);
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        if let Ok(list) = builds.list(&ListParams::default()).await {
            let mut seen = seen.lock().unwrap();
            for b in list.items {
                let phase = b.status.map(|s| s.phase).unwrap_or_default();
                let phases = seen.entry(b.metadata.name.unwrap_or_default()).or_default();
                if phases.last() != Some(&phase) {
                    phases.push(phase);
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(4)).await;
    }
}

async fn one_run(seed: u64) {
    let mut rng = Rng::new(seed);
    let policy = ["Serial", "SerialLatestOnly", "Parallel"][rng.below(3) as usize];
    let builds_wanted = 2 + rng.below(3);
    let mut h = Harness::start().await;
    h.create_bc(&bc_yaml("app", policy, "")).await;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let log = Arc::new(Mutex::new(KubeletLog::default()));
    let seen = Arc::new(Mutex::new(HashMap::new()));
    let kubelet_task = tokio::spawn(kubelet(h.client.clone(), log.clone(), seed, stop.clone()));
    let monitor_task = tokio::spawn(phase_monitor(h.client.clone(), seen.clone(), stop.clone()));
    let faults = h.server.faults();
    let mut requests = Vec::new();
    for i in 0..builds_wanted {
        // A burst of faults before each request.
        for _ in 0..rng.below(3) {
            let verb = [
                None,
                Some("create"),
                Some("update"),
                Some("get"),
                Some("watch"),
                Some("list"),
            ][rng.below(6) as usize];
            let resource = [
                None,
                Some("builds"),
                Some("builds/status"),
                Some("pods"),
                Some("buildconfigs/status"),
                Some("imagestreams/status"),
            ][rng.below(6) as usize];
            let code = [409, 429, 500][rng.below(3) as usize];
            faults.inject(
                verb,
                resource,
                FaultAction::Fail(code),
                1 + rng.below(2) as u32,
            );
        }
        match rng.below(6) {
            0 => faults.drop_watches(),
            1 => faults.compact(),
            2 => {
                h.kill_controller();
                tokio::time::sleep(Duration::from_millis(rng.below(20))).await;
                h.start_controller_with(settings()).await;
            }
            _ => {}
        }
        let request_id = format!("req-{i}");
        let request = BuildRequest {
            request_id: request_id.clone(),
            ..BuildRequest::default()
        };
        // The client retries its own request until it is acknowledged, as `kiln start-build` does.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match instantiate(&h.client, NS, "app", &request).await {
                Ok(_) => break,
                Err(e) => assert!(
                    Instant::now() < deadline,
                    "seed {seed}: instantiate keeps failing: {e}"
                ),
            }
        }
        requests.push(request_id);
        tokio::time::sleep(Duration::from_millis(rng.below(15))).await;
    }
    faults.clear();
    // Everything settles: every build reaches a terminal phase.
    let api: Api<Build> = Api::namespaced(h.client.clone(), NS);
    let deadline = Instant::now() + Duration::from_secs(30);
    let builds = loop {
        let builds = api.list(&ListParams::default()).await.unwrap().items;
        let done = builds.len() as u64 >= builds_wanted
            && builds
                .iter()
                .all(|b| b.status.as_ref().is_some_and(|s| s.phase.is_terminal()));
        if done {
            break builds;
        }
        assert!(
            Instant::now() < deadline,
            "seed {seed} ({policy}): builds did not settle: {:?}",
            builds
                .iter()
                .map(|b| (b.name_any(), b.status.as_ref().map(|s| s.phase)))
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = kubelet_task.await;
    let _ = monitor_task.await;

    // One build per request: none lost, none duplicated; numbers are exactly 1..=N.
    let mut by_request: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for b in &builds {
        let id = b
            .annotations()
            .get(kiln::naming::REQUEST_ANNOTATION)
            .cloned()
            .unwrap_or_default();
        by_request.entry(id).or_default().push(b.name_any());
    }
    assert_eq!(
        by_request.keys().cloned().collect::<Vec<_>>(),
        requests,
        "seed {seed}: builds per request {by_request:?}"
    );
    assert!(
        by_request.values().all(|v| v.len() == 1),
        "seed {seed}: duplicated build {by_request:?}"
    );
    let mut numbers: Vec<i64> = builds.iter().filter_map(build_number).collect();
    numbers.sort();
    assert_eq!(
        numbers,
        (1..=builds_wanted as i64).collect::<Vec<_>>(),
        "seed {seed}: build numbers"
    );

    // Serial builds never overlap: a Serial pod is created only after the previous one finished.
    let log = std::mem::take(&mut *log.lock().unwrap());
    if policy != "Parallel" {
        for (pod, created) in &log.created_rv {
            for (other, finished) in &log.finished_rv {
                let other_created = log.created_rv.get(other).copied().unwrap_or(0);
                if other != pod && other_created < *created {
                    assert!(finished < created, "seed {seed} ({policy}): {pod} was created (rv {created}) while {other} ran (finished rv {finished})");
                }
            }
        }
    }

    // No terminal phase was ever left.
    for (name, phases) in seen.lock().unwrap().iter() {
        if let Some(first_terminal) = phases.iter().position(|p| p.is_terminal()) {
            assert!(
                phases[first_terminal..]
                    .iter()
                    .all(|p| *p == phases[first_terminal]),
                "seed {seed}: {name} went {phases:?}"
            );
        }
    }

    // Every Complete build's image is in the tag history exactly once, and nothing else is.
    let complete: Vec<String> = builds
        .iter()
        .filter(|b| b.status.as_ref().map(|s| s.phase) == Some(BuildPhase::Complete))
        .map(|b| digest(build_number(b).unwrap_or_default() as u32))
        .collect();
    let mut recorded = h.tag_images("app", "latest").await;
    recorded.sort();
    let mut expected = complete.clone();
    expected.sort();
    assert_eq!(
        recorded, expected,
        "seed {seed} ({policy}): tag history vs Complete builds"
    );
    h.kill_controller();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invariants_hold_under_faults_crashes_and_lost_watches() {
    let started = Instant::now();
    let env = |name: &str, default: u64| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let first = env("KILN_FAULT_FIRST_SEED", 0);
    for seed in first..first + env("KILN_FAULT_RUNS", RUNS) {
        one_run(seed).await;
    }
    eprintln!("{RUNS} runs in {:?}", started.elapsed());
}
