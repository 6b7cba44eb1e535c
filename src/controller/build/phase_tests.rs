//! Table tests of the phase machine: one row per rule of OpenShift's `handleActiveBuild`.

use k8s_openapi::api::core::v1::{Pod, PodStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use serde_json::json;

use super::*;
use crate::api::build::StageName;

fn now() -> Timestamp {
    Timestamp::from_second(1_700_000_100).unwrap()
}

fn build(phase: &str) -> Build {
    let mut status = json!({"phase": phase, "conditions": [{"type": phase, "status": "True"}]});
    if !matches!(phase, "New" | "Pending") {
        status["startTimestamp"] = json!("2023-11-14T22:13:20Z");
    }
    serde_json::from_value(json!({
        "apiVersion": "build.kiln.dev/v1alpha1", "kind": "Build",
        "metadata": {"name": "app-1", "namespace": "ns", "creationTimestamp": "2023-11-14T22:13:00Z"},
        "spec": {"strategy": {"type": "Docker"}},
        "status": status
    }))
    .unwrap()
}

fn pod(status: serde_json::Value) -> Pod {
    Pod {
        status: Some(serde_json::from_value::<PodStatus>(status).unwrap()),
        ..Pod::default()
    }
}

fn terminated(name: &str, code: i32, reason: &str, message: &str) -> serde_json::Value {
    json!({"name": name, "image": "kiln", "imageID": "", "ready": false, "restartCount": 0,
           "state": {"terminated": {"exitCode": code, "reason": reason, "message": message}}})
}

fn running(name: &str) -> serde_json::Value {
    json!({"name": name, "image": "kiln", "imageID": "", "ready": true, "restartCount": 0,
           "state": {"running": {"startedAt": "2023-11-14T22:13:10Z"}}})
}

const OK_REPORT: &str = r#"{"imageDigest":"sha256:abc","outputReference":"reg/ns/app:latest","stages":[{"name":"Build","durationMilliseconds":5}]}"#;
const FAILED_REPORT: &str = r#"{"reason":"DockerBuildFailed","message":"RUN make failed with exit code 2","logTail":"l1\nl2\nl3\nl4\nl5\nl6"}"#;

struct Row {
    name: &'static str,
    build: Build,
    pod: Option<Pod>,
    push_secret_missing: bool,
    want: Option<(BuildPhase, Option<StatusReason>)>,
}

fn rows() -> Vec<Row> {
    let mut cancelled = build("Running");
    cancelled.status.as_mut().unwrap().cancelled = Some(true);
    let mut spec_cancel = build("Pending");
    spec_cancel.spec.cancel = Some(true);
    let mut cancelled_done = build("Complete");
    cancelled_done.status.as_mut().unwrap().cancelled = Some(true);
    let mut deleting = pod(json!({"phase": "Running"}));
    deleting.metadata.deletion_timestamp = Some(Time(now()));
    let mut deleted_failed = pod(
        json!({"phase": "Failed", "containerStatuses": [terminated("build", 137, "Error", "")]}),
    );
    deleted_failed.metadata.deletion_timestamp = Some(Time(now()));
    let row = |name, build, pod, want| Row {
        name,
        build,
        pod,
        push_secret_missing: false,
        want,
    };
    vec![
        row(
            "new builds wait for the run policy",
            build("New"),
            None,
            None,
        ),
        row(
            "pod missing",
            build("Pending"),
            None,
            Some((BuildPhase::Error, Some(StatusReason::BuildPodDeleted))),
        ),
        row(
            "pod pending, nothing started",
            build("Pending"),
            Some(pod(json!({"phase": "Pending"}))),
            None,
        ),
        Row {
            name: "pod pending, push secret missing",
            build: build("Pending"),
            pod: Some(pod(json!({"phase": "Pending"}))),
            push_secret_missing: true,
            want: Some((BuildPhase::Pending, Some(StatusReason::MissingPushSecret))),
        },
        row(
            "clone init container started counts as running",
            build("Pending"),
            Some(pod(
                json!({"phase": "Pending", "initContainerStatuses": [running("clone")]}),
            )),
            Some((BuildPhase::Running, None)),
        ),
        row(
            "clone init container finished counts as running",
            build("Pending"),
            Some(pod(
                json!({"phase": "Pending", "initContainerStatuses": [terminated("clone", 0, "Completed", "")]}),
            )),
            Some((BuildPhase::Running, None)),
        ),
        row(
            "pod running",
            build("Pending"),
            Some(pod(
                json!({"phase": "Running", "startTime": "2023-11-14T22:13:05Z"}),
            )),
            Some((BuildPhase::Running, None)),
        ),
        row(
            "running stays running",
            build("Running"),
            Some(pod(json!({"phase": "Running"}))),
            None,
        ),
        row(
            "pod succeeded",
            build("Running"),
            Some(pod(
                json!({"phase": "Succeeded", "containerStatuses": [terminated("build", 0, "Completed", OK_REPORT)]}),
            )),
            Some((BuildPhase::Complete, None)),
        ),
        row(
            "succeeded without container statuses",
            build("Running"),
            Some(pod(json!({"phase": "Succeeded"}))),
            Some((
                BuildPhase::Error,
                Some(StatusReason::NoBuildContainerStatus),
            )),
        ),
        row(
            "succeeded with a failed container",
            build("Running"),
            Some(pod(
                json!({"phase": "Succeeded", "initContainerStatuses": [terminated("clone", 1, "Error", "")], "containerStatuses": [terminated("build", 0, "Completed", OK_REPORT)]}),
            )),
            Some((BuildPhase::Error, Some(StatusReason::FailedContainer))),
        ),
        row(
            "container OOMKilled",
            build("Running"),
            Some(pod(
                json!({"phase": "Failed", "containerStatuses": [terminated("build", 137, "OOMKilled", "")]}),
            )),
            Some((BuildPhase::Failed, Some(StatusReason::OutOfMemoryKilled))),
        ),
        row(
            "pod OOMKilled",
            build("Running"),
            Some(pod(json!({"phase": "Failed", "reason": "OOMKilled"}))),
            Some((BuildPhase::Failed, Some(StatusReason::OutOfMemoryKilled))),
        ),
        row(
            "pod evicted",
            build("Running"),
            Some(pod(
                json!({"phase": "Failed", "reason": "Evicted", "message": "The node was low on resource: ephemeral-storage."}),
            )),
            Some((BuildPhase::Failed, Some(StatusReason::BuildPodEvicted))),
        ),
        row(
            "failed pod being deleted",
            build("Running"),
            Some(deleted_failed),
            Some((BuildPhase::Error, Some(StatusReason::BuildPodDeleted))),
        ),
        row(
            "running pod being deleted",
            build("Running"),
            Some(deleting),
            Some((BuildPhase::Error, Some(StatusReason::BuildPodDeleted))),
        ),
        row(
            "builder reported its reason",
            build("Running"),
            Some(pod(
                json!({"phase": "Failed", "containerStatuses": [terminated("build", 1, "Error", FAILED_REPORT)]}),
            )),
            Some((BuildPhase::Failed, Some(StatusReason::DockerBuildFailed))),
        ),
        row(
            "clone reported its reason",
            build("Running"),
            Some(pod(
                json!({"phase": "Failed", "initContainerStatuses": [terminated("clone", 1, "Error", r#"{"reason":"FetchSourceFailed","message":"repository not found"}"#)]}),
            )),
            Some((BuildPhase::Failed, Some(StatusReason::FetchSourceFailed))),
        ),
        row(
            "no report: generic failure",
            build("Running"),
            Some(pod(
                json!({"phase": "Failed", "containerStatuses": [terminated("build", 2, "Error", "panic: oops\ngoroutine 1")]}),
            )),
            Some((BuildPhase::Failed, Some(StatusReason::GenericBuildFailed))),
        ),
        row(
            "deadline exceeded",
            build("Running"),
            Some(pod(
                json!({"phase": "Failed", "reason": "DeadlineExceeded", "message": "Pod was active on the node longer than the specified deadline"}),
            )),
            Some((BuildPhase::Failed, Some(StatusReason::GenericBuildFailed))),
        ),
        row(
            "cancelled while running",
            cancelled,
            Some(pod(json!({"phase": "Running"}))),
            Some((BuildPhase::Cancelled, Some(StatusReason::CancelledBuild))),
        ),
        row(
            "cancelled from the spec",
            spec_cancel,
            Some(pod(json!({"phase": "Pending"}))),
            Some((BuildPhase::Cancelled, Some(StatusReason::CancelledBuild))),
        ),
        row(
            "a terminal phase is never left (cancel)",
            cancelled_done,
            None,
            Some((BuildPhase::Complete, None)),
        ),
        row(
            "a terminal phase is never left (pod gone)",
            build("Failed"),
            None,
            Some((BuildPhase::Failed, None)),
        ),
    ]
}

#[test]
fn phase_machine_table() {
    for row in rows() {
        let observed = Observed {
            now: now(),
            push_secret_missing: row.push_secret_missing,
            pending_timeout: None,
        };
        let got = next_status(&row.build, row.pod.as_ref(), &observed);
        let before = row.build.status.clone().unwrap_or_default();
        match (row.want, got) {
            (None, None) => {}
            (Some((phase, reason)), Some(status)) => {
                assert_eq!(status.phase, phase, "{}", row.name);
                if status.phase != before.phase || reason.is_some() {
                    assert_eq!(status.reason, reason, "{}", row.name);
                }
                if phase.is_terminal() {
                    assert!(
                        status.completion_timestamp.is_some() && status.duration.is_some(),
                        "{}",
                        row.name
                    );
                }
                let current: Vec<_> = status
                    .conditions
                    .iter()
                    .filter(|c| c.status == "True")
                    .map(|c| c.type_.clone())
                    .collect();
                assert_eq!(
                    current,
                    [phase.as_str()],
                    "{}: one True condition, the phase's",
                    row.name
                );
            }
            (Some((phase, _)), None) => {
                assert_eq!(before.phase, phase, "{}: expected a change", row.name)
            }
            (None, Some(status)) => panic!("{}: unexpected change to {:?}", row.name, status.phase),
        }
    }
}

#[test]
fn completion_fills_digest_stages_timestamps() {
    let b = build("Running");
    let p = pod(
        json!({"phase": "Succeeded", "startTime": "2023-11-14T22:13:20Z", "containerStatuses": [terminated("build", 0, "Completed", OK_REPORT)]}),
    );
    let status = next_status(
        &b,
        Some(&p),
        &Observed {
            now: now(),
            push_secret_missing: false,
            pending_timeout: None,
        },
    )
    .unwrap();
    assert_eq!(
        status.output.unwrap().to.unwrap().image_digest.as_deref(),
        Some("sha256:abc")
    );
    assert_eq!(status.stages[0].name, StageName::Build);
    assert_eq!(
        status.output_docker_image_reference.as_deref(),
        Some("reg/ns/app:latest")
    );
    assert_eq!(status.start_timestamp.unwrap().0.as_second(), 1_700_000_000);
    assert_eq!(status.duration, Some(100_000_000_000));
    assert!(status.log_snippet.is_none());
}

#[test]
fn failures_carry_a_log_snippet_of_the_last_five_lines() {
    let b = build("Running");
    let p = pod(
        json!({"phase": "Failed", "containerStatuses": [terminated("build", 1, "Error", FAILED_REPORT)]}),
    );
    let status = next_status(
        &b,
        Some(&p),
        &Observed {
            now: now(),
            push_secret_missing: false,
            pending_timeout: None,
        },
    )
    .unwrap();
    assert_eq!(status.log_snippet.as_deref(), Some("l2\nl3\nl4\nl5\nl6"));
    assert_eq!(
        status.message.as_deref(),
        Some("RUN make failed with exit code 2")
    );
    // Applying the same observation again changes nothing: reconcilers are idempotent.
    let mut again = b.clone();
    again.status = Some(status);
    assert!(next_status(
        &again,
        Some(&p),
        &Observed {
            now: now(),
            push_secret_missing: false,
            pending_timeout: None,
        }
    )
    .is_none());
}

#[test]
fn log_snippet_shortens_long_lines() {
    let long: String = ('a'..='z').cycle().take(200).collect();
    let got = log_snippet(&format!("x\n{long}\n"));
    let lines: Vec<_> = got.lines().collect();
    assert_eq!(lines[0], "x");
    assert_eq!(lines[1].chars().count(), 120);
    assert!(lines[1].starts_with(&long[..58]) && lines[1].ends_with(&long[141..]));
    assert_eq!(&lines[1][58..61], "...");
}

#[test]
fn the_reported_commit_becomes_the_revision_once() {
    let report = r#"{"imageDigest":"sha256:abc","source":{"commit":"0123abc","message":"Fix it","author":{"name":"Ada","email":"ada@example.com"}}}"#;
    let p = pod(
        json!({"phase": "Succeeded", "containerStatuses": [terminated("build", 0, "Completed", report)]}),
    );
    let mut b = build("Running");
    let revision = reported_revision(&b, &p).unwrap();
    let git = revision.git.clone().unwrap();
    assert_eq!(
        (git.commit.as_deref(), git.message.as_deref()),
        (Some("0123abc"), Some("Fix it"))
    );
    assert_eq!(git.author.unwrap().name.as_deref(), Some("Ada"));
    b.spec.common.revision = Some(revision);
    assert!(
        reported_revision(&b, &p).is_none(),
        "a named commit is never replaced"
    );
    let no_source = pod(
        json!({"phase": "Succeeded", "containerStatuses": [terminated("build", 0, "Completed", OK_REPORT)]}),
    );
    assert!(reported_revision(&build("Running"), &no_source).is_none());
}
