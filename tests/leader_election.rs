//! Two replicas, one writer: two `kiln controller` processes against `kiln-sandbox serve` (RBAC
//! enforced, the chart's ClusterRole and leader-election Role), with a `docker-registry`. The
//! first replica takes the Lease and builds; the second follows, serving `/readyz` and
//! `/metrics`. The leader is killed with SIGKILL while builds run; the follower takes the Lease
//! (its holder changes) and a build started after the kill completes. Across the handover the
//! Builds are numbered without a gap, each completes once, and every Build transition the
//! Events record was made by the replica holding the Lease at the time: the dead leader's before
//! the kill, the new leader's after, never interleaved. Then the new leader is stopped with
//! SIGTERM beside a third replica: it releases the Lease, which the third takes at once.
//!
//! The takeover and handover times are printed, not asserted (`--nocapture` shows them).

mod support;

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

use serde_json::{json, Value};
use support::cluster::{Cluster, Options, CONTROLLER_NAMESPACE};
use support::{http_get, run_bounded, Service};

const NS: &str = "handover";
/// Short, so the test waits seconds for an expired Lease, not the default 15.
const LEASE_SECONDS: u64 = 4;
const LEASE_NAME: &str = "kiln-controller";
const LIMIT: Duration = Duration::from_secs(300);

fn holder(cluster: &Cluster) -> String {
    let (_, out, _) = cluster.kubectl(&[
        "-n",
        CONTROLLER_NAMESPACE,
        "get",
        "lease",
        LEASE_NAME,
        "-o",
        "jsonpath={.spec.holderIdentity}",
    ]);
    out.trim().to_string()
}

/// Waits until the Lease's holder is a process of replica `name` and returns how long it took.
fn wait_holder(cluster: &Cluster, name: &str) -> Duration {
    let started = Instant::now();
    while !holder(cluster).starts_with(&format!("{name}_")) {
        assert!(
            started.elapsed() < LIMIT,
            "{name} never held the lease (holder {:?})",
            holder(cluster)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    started.elapsed()
}

/// `kiln_leader`'s value on a replica's `/metrics`.
fn leading(replica: &Service) -> Option<String> {
    let (code, text) = http_get(replica.port, "/metrics")?;
    assert_eq!(code, 200, "{text}");
    assert!(text.ends_with("# EOF\n"), "{text}");
    text.lines()
        .find_map(|l| l.strip_prefix("kiln_leader "))
        .map(String::from)
}

fn wait_leading(replica: &Service, want: &str) {
    let started = Instant::now();
    while leading(replica).as_deref() != Some(want) {
        assert!(started.elapsed() < LIMIT, "kiln_leader never became {want}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn start_build(cluster: &Cluster) -> String {
    let mut cmd = cluster.tenant_kiln();
    cmd.args(["start-build", "app", "-n", NS]);
    let out = run_bounded(cmd, Duration::from_secs(60));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // "build.build.kiln.dev/app-N started"
    stdout
        .split_whitespace()
        .next()
        .and_then(|s| s.rsplit('/').next())
        .expect("start-build names the build")
        .to_string()
}

fn kill(replica: &Service, signal: &str) {
    let status = Command::new("kill")
        .args([signal, &replica.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Every Build event of the namespace: build → [(eventTime, reportingInstance, reason)] in order.
fn build_events(cluster: &Cluster) -> BTreeMap<String, Vec<(String, String, String)>> {
    let out = cluster.kubectl_ok(&["-n", NS, "get", "events.events.k8s.io", "-o", "json"]);
    let list: Value = serde_json::from_str(&out).unwrap();
    let mut events: BTreeMap<String, Vec<(String, String, String)>> = BTreeMap::new();
    for event in list["items"].as_array().unwrap() {
        if event["regarding"]["kind"] != "Build" {
            continue;
        }
        let field = |p: &str| {
            event
                .pointer(p)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        events.entry(field("/regarding/name")).or_default().push((
            field("/eventTime"),
            field("/reportingInstance"),
            field("/reason"),
        ));
    }
    for list in events.values_mut() {
        list.sort();
    }
    events
}

/// RFC 3339 with microseconds (as an Event's eventTime is written) of a wall-clock instant.
fn micro_time(at: SystemTime) -> String {
    let micros = at
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_micros();
    let ts =
        k8s_openapi::jiff::Timestamp::from_microsecond(i64::try_from(micros).unwrap()).unwrap();
    let time = k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime(ts);
    serde_json::to_value(time)
        .unwrap()
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn killing_the_leader_hands_over_without_losing_or_duplicating_a_build() {
    let cluster = Cluster::start(
        NS,
        Options {
            registry: true,
            no_controller: true,
            ..Options::default()
        },
    );
    let lease = LEASE_SECONDS.to_string();
    let a = cluster.start_replica("kiln-a", &["--lease-duration", &lease]);
    wait_holder(&cluster, "kiln-a");
    let b = cluster.start_replica("kiln-b", &["--lease-duration", &lease]);
    // Both serve; one leads.
    wait_leading(&a, "1");
    assert_eq!(leading(&b).as_deref(), Some("0"));
    assert_eq!(http_get(b.port, "/readyz").map(|r| r.0), Some(200));

    // Builds of one BuildConfig, one at a time (Serial: the run policy holds across the handover).
    cluster.tenant_apply(
        "app",
        &json!({
            "apiVersion": "build.kiln.dev/v1alpha1", "kind": "BuildConfig",
            "metadata": {"name": "app", "namespace": NS},
            "spec": {
                "runPolicy": "Serial",
                "source": {"type": "Dockerfile", "dockerfile": "FROM scratch\nLABEL handover=yes\n"},
                "strategy": {"type": "Docker"},
                "output": {"to": {"kind": "ImageStreamTag", "name": "app:latest"}},
                "triggers": [{"type": "ConfigChange"}]
            }
        }),
    );
    // Build 1 (ConfigChange) completes under the first leader; 2 and 3 are started just before
    // the kill, so the handover catches them wherever they are.
    let first = cluster.wait_build("app-1", LIMIT);
    assert_eq!(first["status"]["phase"], "Complete", "{first:#}");
    let before = [start_build(&cluster), start_build(&cluster)];
    assert_eq!(before, ["app-2", "app-3"]);

    let killed_at = SystemTime::now();
    let killed = Instant::now();
    kill(&a, "-KILL");
    // A build started after the kill: only the new leader can take it through.
    let after = start_build(&cluster);
    assert_eq!(after, "app-4");
    wait_holder(&cluster, "kiln-b");
    let takeover = killed.elapsed();
    wait_leading(&b, "1");
    let mut builds = BTreeMap::new();
    for name in ["app-1", "app-2", "app-3", "app-4"] {
        let build = cluster.wait_build(name, LIMIT);
        assert_eq!(build["status"]["phase"], "Complete", "{name}: {build:#}");
        builds.insert(name.to_string(), build);
    }
    let built = killed.elapsed();
    eprintln!(
        "lease {LEASE_SECONDS}s: kiln-b took the lease {:.2}s after kiln-a was killed; app-4 (started after the kill) completed {:.2}s after it",
        takeover.as_secs_f64(),
        built.as_secs_f64()
    );

    // No build lost or duplicated: exactly app-1..app-4, lastVersion 4.
    let out = cluster.kubectl_ok(&["-n", NS, "get", "builds", "-o", "json"]);
    let list: Value = serde_json::from_str(&out).unwrap();
    let mut names: Vec<String> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["metadata"]["name"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    assert_eq!(names, ["app-1", "app-2", "app-3", "app-4"]);
    // `kiln start-build` leaves lastVersion to the controller, which raises it once the newest
    // Build is past its grace period: the new leader does.
    let raised = Instant::now();
    loop {
        let bc = cluster.get("buildconfig", "app").unwrap();
        if bc["status"]["lastVersion"] == 4 {
            break;
        }
        assert!(
            raised.elapsed() < LIMIT,
            "lastVersion never reached 4: {bc:#}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }

    // One writer at a time: every event before the kill is kiln-a's, every one after kiln-b's,
    // each build completed exactly once, and the build started after the kill is kiln-b's alone.
    let kill_time = micro_time(killed_at);
    let events = build_events(&cluster);
    for (name, list) in &events {
        for (time, instance, reason) in list {
            let want = if *time < kill_time {
                "kiln-a"
            } else {
                "kiln-b"
            };
            assert_eq!(
                instance, want,
                "{name} {reason} at {time} (killed at {kill_time}): {list:?}"
            );
        }
        let completed = list.iter().filter(|e| e.2 == "BuildCompleted").count();
        assert_eq!(completed, 1, "{name}: {list:?}");
        let started = list.iter().filter(|e| e.2 == "BuildStarted").count();
        assert!(started <= 1, "{name}: {list:?}");
    }
    for name in builds.keys() {
        assert!(events.contains_key(name), "{name} has events: {events:?}");
    }
    assert!(
        events["app-1"].iter().all(|e| e.1 == "kiln-a"),
        "{:?}",
        events["app-1"]
    );
    assert!(
        events["app-4"].iter().all(|e| e.1 == "kiln-b"),
        "{:?}",
        events["app-4"]
    );
    assert!(cluster.refusals().is_empty(), "{:?}", cluster.refusals());

    // SIGTERM: the leader finishes what it does, releases the Lease, and the follower takes it
    // at once rather than after the lease duration.
    let c = cluster.start_replica("kiln-c", &["--lease-duration", "60"]);
    assert_eq!(leading(&c).as_deref(), Some("0"));
    let stopped = Instant::now();
    kill(&b, "-TERM");
    wait_holder(&cluster, "kiln-c");
    let handover = stopped.elapsed();
    wait_leading(&c, "1");
    let fifth = start_build(&cluster);
    let done = cluster.wait_build(&fifth, LIMIT);
    assert_eq!(done["status"]["phase"], "Complete", "{done:#}");
    let log = std::fs::read_to_string(cluster.log("controller-kiln-b.log")).unwrap();
    assert!(log.contains("released the lease"), "{log}");
    eprintln!(
        "SIGTERM: kiln-c took the released lease {:.2}s after kiln-b was stopped",
        handover.as_secs_f64()
    );
    drop(c);
    drop(b);
}
