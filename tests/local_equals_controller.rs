//! `kiln build` runs the operator's own code: from the same BuildConfig and the same builder
//! report, the local build and the controller (on the sandbox, its Pod driven by a scripted
//! kubelet) arrive at the same Build status, revision and ImageStream TagEvent, apart from
//! timestamps. (The pipeline between the two ends is the builder code the Pod runs;
//! `tests/builder_build.rs` runs `kiln build` end to end with buildah.)

mod controller_support;

use controller_support::{bc_yaml, terminated, Harness, NS, REGISTRY};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kiln::api::build::{StageInfo, StageName, StepInfo};
use kiln::api::common::{GitSourceRevision, SourceControlUser, SourceRevision};
use kiln::api::contract::{BuildReport, SourceInfo, TERMINATION_MESSAGE_LIMIT};
use kiln::api::{Build, BuildConfig, BuildPhase, BuildStatus, StatusReason, TagEvent};
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

/// The report a builder leaves: a success with a digest, a commit and stages.
fn success_report() -> BuildReport {
    BuildReport {
        image_digest: Some(format!("sha256:{}", "ab".repeat(32))),
        output_reference: Some(format!("{REGISTRY}/{NS}/same:latest")),
        source: Some(SourceInfo {
            location: Some("https://git.example.com/same.git".into()),
            ref_: Some("main".into()),
            revision: GitSourceRevision {
                commit: Some("c0ffee".repeat(6) + "c0ff"),
                author: Some(SourceControlUser {
                    name: Some("A".into()),
                    email: Some("a@example.com".into()),
                }),
                committer: None,
                message: Some("Change things".into()),
            },
            date: Some("2024-01-01T00:00:00+00:00".into()),
        }),
        stages: stages(),
        ..BuildReport::default()
    }
}

/// A failure with a reason, a message and a log tail longer and wider than the snippet keeps.
fn failure_report() -> BuildReport {
    let wide = "x".repeat(300);
    BuildReport {
        reason: Some(StatusReason::DockerBuildFailed),
        message: Some("building at STEP \"RUN false\": exit status 1".into()),
        log_tail: Some(
            (1..=8)
                .map(|i| format!("line {i} {wide}"))
                .collect::<Vec<_>>()
                .join("\n"),
        ),
        stages: stages(),
        ..BuildReport::default()
    }
}

fn stages() -> Vec<StageInfo> {
    let at = Some(Time("2024-01-01T00:00:00Z".parse().unwrap()));
    [
        (StageName::FetchInputs, "FetchGitSource"),
        (StageName::Build, "DockerBuild"),
    ]
    .into_iter()
    .map(|(name, step)| StageInfo {
        name,
        start_time: at.clone(),
        duration_milliseconds: 7,
        steps: vec![StepInfo {
            name: step.into(),
            start_time: at.clone(),
            duration_milliseconds: 7,
        }],
    })
    .collect()
}

/// Drops what must differ between two runs: when things happened.
fn timeless(mut status: BuildStatus) -> BuildStatus {
    status.start_timestamp = None;
    status.completion_timestamp = None;
    status.duration = None;
    for c in &mut status.conditions {
        c.last_transition_time = None;
        c.last_update_time = None;
    }
    status
}

fn timeless_event(event: Option<TagEvent>) -> Option<TagEvent> {
    event.map(|mut e| {
        e.created = Time(Timestamp::UNIX_EPOCH);
        e
    })
}

/// The BuildConfig, Build and TagEvent the controller writes for one build ending with `report`.
async fn through_the_controller(
    h: &Harness,
    name: &str,
    report: &BuildReport,
) -> (BuildConfig, Build, Option<TagEvent>) {
    let bc = h.create_bc(&bc_yaml(name, "Serial", "")).await;
    h.start_build(name, "equality").await;
    let build = format!("{name}-1");
    h.wait_pod(&build).await;
    h.run_pod(&build).await;
    h.wait_phase(&build, BuildPhase::Running).await;
    let (phase, code, want) = if report.is_failure() {
        ("Failed", 1, BuildPhase::Failed)
    } else {
        ("Succeeded", 0, BuildPhase::Complete)
    };
    let message = report.to_message(TERMINATION_MESSAGE_LIMIT);
    Api::<Pod>::namespaced(h.client.clone(), NS)
        .patch_status(
            &format!("{build}-build"),
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {
                "phase": phase,
                "initContainerStatuses": [terminated("clone", 0, "")],
                "containerStatuses": [terminated("build", code, &message)],
            }})),
        )
        .await
        .unwrap();
    let finished = h.wait_phase(&build, want).await;
    let event = h.image_stream(name).await.and_then(|is| {
        is.status?
            .tags
            .into_iter()
            .find(|t| t.tag == "latest")?
            .items
            .into_iter()
            .next()
    });
    (bc, finished, event)
}

#[tokio::test]
async fn kiln_build_and_the_controller_write_the_same_build_and_tag_event() {
    let h = Harness::start().await;
    for (name, report) in [("same", success_report()), ("fails", failure_report())] {
        let (bc, operator, operator_event) = through_the_controller(&h, name, &report).await;
        // The BuildConfig as a file holds it: no status, no server-assigned fields.
        let mut file_bc = bc.clone();
        file_bc.status = None;
        file_bc.metadata = kube::api::ObjectMeta {
            name: bc.metadata.name.clone(),
            namespace: bc.metadata.namespace.clone(),
            ..Default::default()
        };
        let now = Timestamp::now();
        let started = kiln::local::start(&file_bc, Some(REGISTRY), &[], now).unwrap();
        let local = kiln::local::finish(started, report.clone(), Some(REGISTRY), now);

        assert_eq!(local.build.metadata.name, operator.metadata.name, "{name}");
        let local_status = timeless(local.build.status.clone().unwrap());
        let operator_status = timeless(operator.status.clone().unwrap());
        assert_eq!(local_status, operator_status, "{name}: Build status");
        assert_eq!(
            local.build.spec.common.revision, operator.spec.common.revision,
            "{name}: revision"
        );
        assert_eq!(
            timeless_event(local.tag_event.clone()),
            timeless_event(operator_event.clone()),
            "{name}: TagEvent"
        );
        // The comparison is not vacuous: each run reached its phase with its data.
        if report.is_failure() {
            assert_eq!(local_status.phase, BuildPhase::Failed);
            assert!(local_status.log_snippet.is_some());
            assert!(operator_event.is_none());
        } else {
            assert_eq!(local_status.phase, BuildPhase::Complete);
            assert!(
                operator_event.is_some(),
                "the controller recorded a TagEvent"
            );
            assert!(matches!(
                operator.spec.common.revision,
                Some(SourceRevision { git: Some(_), .. })
            ));
            assert_eq!(
                local_status.output_docker_image_reference.as_deref(),
                Some(format!("{REGISTRY}/{NS}/{name}:latest").as_str())
            );
        }
    }
}
