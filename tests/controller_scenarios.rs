//! Scenarios with the real controller on the in-process sandbox: run policies, cancellation, a
//! deleted Pod, an impostor Pod, pruning, ConfigChange, ImageStream history, chained ImageChange
//! builds and the trigger images a manual build records.

mod controller_support;

use std::time::Duration;

use controller_support::{bc_yaml, digest, eventually, Harness, NS, REGISTRY};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kiln::api::build::BuildTriggerCause;
use kiln::api::{Build, BuildConfig, BuildPhase, StatusReason};
use kiln::instantiate::{instantiate, BuildRequest};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::ResourceExt;
use serde_json::json;

/// Lets the controller act on whatever it may act on, so "nothing happened" is a real observation.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(300)).await;
}

#[tokio::test]
async fn serial_builds_run_one_at_a_time_in_number_order() {
    let h = Harness::start().await;
    h.create_bc(&bc_yaml("app", "Serial", "")).await;
    for i in 1..=5 {
        h.start_build("app", &format!("manual-{i}")).await;
    }
    for i in 1..=5 {
        let build = format!("app-{i}");
        h.wait_pod(&build).await;
        settle().await;
        assert_eq!(
            h.active_pods().await,
            [format!("{build}-build")],
            "only {build} may run"
        );
        for later in i + 1..=5 {
            assert_eq!(
                h.phase(&format!("app-{later}")).await,
                Some(BuildPhase::New)
            );
        }
        h.run_pod(&build).await;
        h.wait_phase(&build, BuildPhase::Running).await;
        h.succeed_pod(&build, &digest(i)).await;
        let done = h.wait_phase(&build, BuildPhase::Complete).await;
        // The commit the builder reported becomes spec.revision.
        let git = done.spec.common.revision.and_then(|r| r.git).unwrap();
        assert_eq!(
            git.commit.unwrap(),
            controller_support::commit_of(&digest(i))
        );
    }
    // Each completion prepended its image; the newest is current.
    let images = h.tag_images("app", "latest").await;
    assert_eq!(images, (1..=5).rev().map(digest).collect::<Vec<_>>());
    let is = h.image_stream("app").await.unwrap();
    assert_eq!(
        is.status.unwrap().docker_image_repository.unwrap(),
        format!("{REGISTRY}/{NS}/app")
    );
}

#[tokio::test]
async fn serial_latest_only_leaves_only_the_newest_queued_build() {
    let h = Harness::start().await;
    h.create_bc(&bc_yaml("app", "SerialLatestOnly", "")).await;
    h.start_build("app", "m1").await;
    h.wait_pod("app-1").await;
    h.run_pod("app-1").await;
    for i in 2..=4 {
        h.start_build("app", &format!("m{i}")).await;
    }
    for i in [2, 3] {
        let b = h
            .wait_phase(&format!("app-{i}"), BuildPhase::Cancelled)
            .await;
        assert_eq!(b.status.unwrap().reason, Some(StatusReason::CancelledBuild));
    }
    assert_eq!(
        h.phase("app-4").await,
        Some(BuildPhase::New),
        "waits for the running build"
    );
    assert_eq!(
        h.phase("app-1").await,
        Some(BuildPhase::Running),
        "a running build is never cancelled"
    );
    h.succeed_pod("app-1", &digest(1)).await;
    h.complete("app-4", &digest(4)).await;
}

#[tokio::test]
async fn parallel_builds_run_all_at_once() {
    let h = Harness::start().await;
    h.create_bc(&bc_yaml("app", "Parallel", "")).await;
    for i in 1..=3 {
        h.start_build("app", &format!("m{i}")).await;
    }
    let pods = eventually("three pods", || async {
        let pods = h.active_pods().await;
        (pods.len() == 3).then_some(pods)
    })
    .await;
    assert_eq!(pods, ["app-1-build", "app-2-build", "app-3-build"]);
    for i in 1..=3 {
        h.complete(&format!("app-{i}"), &digest(i)).await;
    }
}

/// Requests of `verb` on `resource` served so far (every client).
fn served(h: &Harness, verb: &str, resource: &str) -> u64 {
    h.server
        .request_counts()
        .iter()
        .filter(|c| c.verb == verb && c.resource == resource)
        .map(|c| c.count)
        .sum()
}

#[tokio::test]
async fn each_build_costs_one_pod_and_one_status_write_per_phase() {
    // A reconcile triggered before the watch shows the controller's own last write must wait
    // for it, not decide again: no Pod is created twice, no status is written twice, no write
    // is refused with 409. The controller's watches lag, so that window is wide open.
    let mut h = Harness::start().await;
    h.start_lagging_controller(Duration::from_millis(20)).await;
    const BUILDS: u32 = 12;
    let keep_all = format!("  successfulBuildsHistoryLimit: {BUILDS}\n");
    h.create_bc(&bc_yaml("app", "Parallel", &keep_all)).await;
    for i in 1..=BUILDS {
        h.start_build("app", &format!("w{i}")).await;
    }
    for i in 1..=BUILDS {
        h.wait_pod(&format!("app-{i}")).await;
    }
    for i in 1..=BUILDS {
        h.run_pod(&format!("app-{i}")).await;
    }
    for i in 1..=BUILDS {
        h.wait_phase(&format!("app-{i}"), BuildPhase::Running).await;
    }
    for i in 1..=BUILDS {
        h.succeed_pod(&format!("app-{i}"), &digest(i)).await;
    }
    for i in 1..=BUILDS {
        h.wait_phase(&format!("app-{i}"), BuildPhase::Complete)
            .await;
    }
    settle().await;
    let n = u64::from(BUILDS);
    assert_eq!(served(&h, "create", "pods"), n, "one Pod per build");
    assert_eq!(
        served(&h, "update", "builds/status"),
        3 * n,
        "Pending, Running, Complete: one status write each"
    );
    assert_eq!(served(&h, "update", "builds"), n, "the revision, once");
    let limit = controller_support::settings().tag_history_limit;
    assert_eq!(
        h.tag_images("app", "latest").await.len(),
        limit.min(BUILDS as usize)
    );
}

#[tokio::test]
async fn cancelling_a_running_build_deletes_its_pod() {
    let h = Harness::start().await;
    h.create_bc(&bc_yaml("app", "Serial", "")).await;
    h.start_build("app", "m1").await;
    h.wait_pod("app-1").await;
    h.run_pod("app-1").await;
    h.wait_phase("app-1", BuildPhase::Running).await;
    // What `kiln cancel-build` (and `oc cancel-build`) does: status.cancelled = true.
    let builds: Api<Build> = Api::namespaced(h.client.clone(), NS);
    builds
        .patch_status(
            "app-1",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"cancelled": true}})),
        )
        .await
        .unwrap();
    let b = h.wait_phase("app-1", BuildPhase::Cancelled).await;
    let status = b.status.unwrap();
    assert_eq!(status.reason, Some(StatusReason::CancelledBuild));
    assert!(status.completion_timestamp.is_some() && status.duration.is_some());
    eventually("the pod to be deleted", || async {
        h.active_pods().await.is_empty().then_some(())
    })
    .await;
    // The declarative form works too, for a queued build.
    h.start_build("app", "m2").await;
    h.wait_pod("app-2").await;
    h.start_build("app", "m3").await;
    builds
        .patch(
            "app-3",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"cancel": true}})),
        )
        .await
        .unwrap();
    h.wait_phase("app-3", BuildPhase::Cancelled).await;
    // A terminal phase is never left, whatever happens next.
    h.succeed_pod("app-2", &digest(2)).await;
    h.wait_phase("app-2", BuildPhase::Complete).await;
    settle().await;
    assert_eq!(h.phase("app-1").await, Some(BuildPhase::Cancelled));
}

#[tokio::test]
async fn a_pod_deleted_under_a_running_build_errors_it() {
    let h = Harness::start().await;
    h.create_bc(&bc_yaml("app", "Serial", "")).await;
    h.start_build("app", "m1").await;
    h.start_build("app", "m2").await;
    h.wait_pod("app-1").await;
    h.run_pod("app-1").await;
    h.wait_phase("app-1", BuildPhase::Running).await;
    h.delete_pod("app-1").await;
    let b = h.wait_phase("app-1", BuildPhase::Error).await;
    assert_eq!(
        b.status.unwrap().reason,
        Some(StatusReason::BuildPodDeleted)
    );
    // The queue moves on.
    h.complete("app-2", &digest(2)).await;
}

#[tokio::test]
async fn failed_builds_carry_the_builder_reason_and_a_log_snippet() {
    let h = Harness::start().await;
    h.create_bc(&bc_yaml("app", "Serial", "")).await;
    h.start_build("app", "m1").await;
    h.wait_pod("app-1").await;
    h.run_pod("app-1").await;
    h.fail_pod("app-1").await;
    let status = h
        .wait_phase("app-1", BuildPhase::Failed)
        .await
        .status
        .unwrap();
    assert_eq!(status.reason, Some(StatusReason::DockerBuildFailed));
    assert_eq!(status.message.as_deref(), Some("RUN false: exit status 1"));
    assert_eq!(
        status.log_snippet.as_deref(),
        Some("STEP 2/2: RUN false\nerror")
    );
    assert!(
        h.tag_images("app", "latest").await.is_empty(),
        "failed builds record nothing"
    );
}

#[tokio::test]
async fn pruning_keeps_exactly_the_history_limits() {
    let h = Harness::start().await;
    h.create_bc(&bc_yaml(
        "app",
        "Serial",
        "  successfulBuildsHistoryLimit: 2\n  failedBuildsHistoryLimit: 1\n",
    ))
    .await;
    for i in 1..=6u32 {
        let build = format!("app-{i}");
        h.start_build("app", &format!("m{i}")).await;
        h.wait_pod(&build).await;
        h.run_pod(&build).await;
        if i % 3 == 0 {
            h.fail_pod(&build).await;
            h.wait_phase(&build, BuildPhase::Failed).await;
        } else {
            h.succeed_pod(&build, &digest(i)).await;
            h.wait_phase(&build, BuildPhase::Complete).await;
        }
    }
    let names = eventually("pruning", || async {
        let names: Vec<String> = h.builds().await.iter().map(|b| b.name_any()).collect();
        (names.len() == 3).then_some(names)
    })
    .await;
    assert_eq!(
        names,
        ["app-4", "app-5", "app-6"],
        "2 newest Complete + 1 newest Failed"
    );
}

#[tokio::test]
async fn config_change_fires_once_even_across_restarts() {
    let mut h = Harness::start().await;
    h.create_bc(&bc_yaml(
        "app",
        "Serial",
        "  triggers:\n  - type: ConfigChange\n",
    ))
    .await;
    h.complete("app-1", &digest(1)).await;
    h.kill_controller();
    settle().await;
    h.start_controller().await;
    settle().await;
    // Editing the BuildConfig does not fire it again either (OpenShift's behaviour).
    let bcs: Api<kiln::api::BuildConfig> = Api::namespaced(h.client.clone(), NS);
    bcs.patch(
        "app",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"completionDeadlineSeconds": 900}})),
    )
    .await
    .unwrap();
    settle().await;
    assert_eq!(h.builds().await.len(), 1);
}

#[tokio::test]
async fn openshifts_pause_annotation_pauses_like_kilns_own() {
    let h = Harness::start().await;
    let paused = bc_yaml("app", "Serial", "  triggers:\n  - type: ConfigChange\n").replacen(
        "  name: app\n",
        "  name: app\n  annotations:\n    openshift.io/build-config.paused: \"true\"\n",
        1,
    );
    h.create_bc(&paused).await;
    settle().await;
    assert!(
        h.builds().await.is_empty(),
        "a paused ConfigChange starts nothing"
    );
    let request = kiln::instantiate::BuildRequest {
        request_id: "manual".into(),
        ..Default::default()
    };
    let refused = kiln::instantiate::instantiate(&h.client, NS, "app", &request)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        refused.contains("is paused (annotation openshift.io/build-config.paused=\"true\")"),
        "{refused}"
    );
    let bcs: Api<kiln::api::BuildConfig> = Api::namespaced(h.client.clone(), NS);
    bcs.patch(
        "app",
        &PatchParams::default(),
        &Patch::Merge(
            json!({"metadata": {"annotations": {"openshift.io/build-config.paused": null}}}),
        ),
    )
    .await
    .unwrap();
    // Unpaused, the ConfigChange that never fired fires now.
    let names = eventually("a build once unpaused", || async {
        let names: Vec<String> = h.builds().await.iter().map(|b| b.name_any()).collect();
        (!names.is_empty()).then_some(names)
    })
    .await;
    assert_eq!(names, ["app-1"]);
}

#[tokio::test]
async fn a_chain_builds_the_dependent_exactly_once_per_new_base_image() {
    let h = Harness::start().await;
    h.create_bc(&bc_yaml("base", "Serial", "")).await;
    let app = bc_yaml("app", "Serial", "  triggers:\n  - type: ImageChange\n    imageChange: {}\n")
        .replace("    type: Docker\n", "    type: Docker\n    dockerStrategy:\n      from:\n        kind: ImageStreamTag\n        name: base:latest\n");
    h.create_bc(&app).await;
    settle().await;
    assert!(
        h.builds().await.is_empty(),
        "no base image yet, so nothing to trigger"
    );
    for (n, d) in [(1, 101), (2, 102)] {
        h.start_build("base", &format!("m{n}")).await;
        h.complete(&format!("base-{n}"), &digest(d)).await;
        let build = h.complete(&format!("app-{n}"), &digest(200 + d)).await;
        let from = build
            .spec
            .common
            .strategy
            .docker_strategy
            .unwrap()
            .from
            .unwrap();
        assert_eq!(from.kind.as_deref(), Some("DockerImage"));
        assert_eq!(
            from.name.unwrap(),
            format!("{REGISTRY}/{NS}/base@{}", digest(d))
        );
        assert_eq!(
            build.spec.triggered_by[0].message.as_deref(),
            Some("Image change")
        );
    }
    settle().await;
    let apps = h
        .builds()
        .await
        .into_iter()
        .filter(|b| b.name_any().starts_with("app-"))
        .count();
    assert_eq!(apps, 2, "one app build per base image");
}

/// The app BuildConfig of the chain scenarios with `from` and `triggers` as given.
fn app_from(from: &str, triggers: &str) -> String {
    bc_yaml("app", "Serial", triggers).replace(
        "    type: Docker\n",
        &format!("    type: Docker\n    dockerStrategy:\n      from:\n{from}"),
    )
}

#[tokio::test]
async fn config_change_and_image_change_on_a_base_with_an_image_build_once() {
    let h = Harness::start().await;
    h.create_bc(&bc_yaml("base", "Serial", "")).await;
    h.start_build("base", "m1").await;
    h.complete("base-1", &digest(101)).await;
    h.create_bc(&app_from(
        "        kind: ImageStreamTag\n        name: base:latest\n",
        "  triggers:\n  - type: ConfigChange\n  - type: ImageChange\n    imageChange: {}\n",
    ))
    .await;
    let build = h.complete("app-1", &digest(201)).await;
    let base = format!("{REGISTRY}/{NS}/base@{}", digest(101));
    assert_eq!(
        build.spec.triggered_by[0].message.as_deref(),
        Some("Build configuration change")
    );
    let from = build
        .spec
        .common
        .strategy
        .docker_strategy
        .unwrap()
        .from
        .unwrap();
    assert_eq!(from.name.as_deref(), Some(base.as_str()));
    let bc = Api::<kiln::api::BuildConfig>::namespaced(h.client.clone(), NS)
        .get("app")
        .await
        .unwrap();
    let recorded = bc.status.unwrap().image_change_triggers;
    assert_eq!(recorded.len(), 1, "{recorded:?}");
    assert_eq!(
        recorded[0].last_triggered_image_id.as_deref(),
        Some(base.as_str())
    );
    settle().await;
    let apps: Vec<String> = h
        .builds()
        .await
        .iter()
        .map(|b| b.name_any())
        .filter(|n| n.starts_with("app-"))
        .collect();
    assert_eq!(apps, ["app-1"], "one build for both causes");
    // A new base image is a new cause: exactly one more build.
    h.start_build("base", "m2").await;
    h.complete("base-2", &digest(102)).await;
    h.complete("app-2", &digest(202)).await;
    settle().await;
    assert_eq!(h.builds().await.len(), 4, "base-1, base-2, app-1, app-2");
}

#[tokio::test]
async fn config_change_waits_for_the_image_change_triggers_image_and_builds_once() {
    let h = Harness::start().await;
    h.create_bc(&bc_yaml("base", "Serial", "")).await;
    h.create_bc(&app_from(
        "        kind: ImageStreamTag\n        name: base:latest\n",
        "  triggers:\n  - type: ConfigChange\n  - type: ImageChange\n    imageChange: {}\n",
    ))
    .await;
    settle().await;
    assert!(
        h.builds().await.is_empty(),
        "the ConfigChange build waits for the base image"
    );
    h.start_build("base", "m1").await;
    h.complete("base-1", &digest(101)).await;
    let build = h.complete("app-1", &digest(201)).await;
    assert_eq!(
        build.spec.triggered_by[0].message.as_deref(),
        Some("Build configuration change")
    );
    let from = build
        .spec
        .common
        .strategy
        .docker_strategy
        .unwrap()
        .from
        .unwrap();
    let base = format!("{REGISTRY}/{NS}/base@{}", digest(101));
    assert_eq!(from.name.as_deref(), Some(base.as_str()));
    settle().await;
    let apps = h
        .builds()
        .await
        .into_iter()
        .filter(|b| b.name_any().starts_with("app-"))
        .count();
    assert_eq!(apps, 1, "one build for both causes");
}

/// The app builds, by name.
async fn app_builds(h: &Harness) -> Vec<String> {
    h.builds()
        .await
        .iter()
        .map(|b| b.name_any())
        .filter(|n| n.starts_with("app-"))
        .collect()
}

#[tokio::test]
async fn a_manual_build_records_the_trigger_image_so_only_a_new_digest_builds_again() {
    let h = Harness::start().await;
    h.create_bc(&bc_yaml("base", "Serial", "")).await;
    h.start_build("base", "m1").await;
    h.complete("base-1", &digest(101)).await;
    // The trigger is paused, so only the manual request starts a build of the first base image.
    h.create_bc(&app_from(
        "        kind: ImageStreamTag\n        name: base:latest\n",
        "  triggers:\n  - type: ImageChange\n    imageChange:\n      paused: true\n",
    ))
    .await;
    settle().await;
    assert!(app_builds(&h).await.is_empty());
    // As `kiln start-build` asks: no write to the BuildConfig's status.
    let manual = BuildRequest {
        request_id: "cli-1".into(),
        cause: BuildTriggerCause {
            message: Some("Manually triggered".into()),
            ..BuildTriggerCause::default()
        },
        leave_last_version: true,
        ..BuildRequest::default()
    };
    let build = instantiate(&h.client, NS, "app", &manual).await.unwrap();
    let base = format!("{REGISTRY}/{NS}/base@{}", digest(101));
    let from = build.spec.common.strategy.docker_strategy.unwrap().from;
    assert_eq!(from.and_then(|f| f.name), Some(base.clone()));
    // Unpaused, the trigger finds the image the manual build used already recorded.
    let configs = Api::<BuildConfig>::namespaced(h.client.clone(), NS);
    let unpause = json!({"spec": {"triggers": [{"type": "ImageChange", "imageChange": {}}]}});
    configs
        .patch("app", &PatchParams::default(), &Patch::Merge(&unpause))
        .await
        .unwrap();
    h.complete("app-1", &digest(201)).await;
    // The controller writes the record the requester left to it, with lastVersion.
    eventually(
        "the BuildConfig to record the manual build's base image",
        || async {
            let status = configs.get("app").await.ok()?.status?;
            let recorded = status.image_change_triggers.first()?;
            (status.last_version == 1 && recorded.last_triggered_image_id.as_ref() == Some(&base))
                .then_some(())
        },
    )
    .await;
    settle().await;
    assert_eq!(app_builds(&h).await, ["app-1"]);
    // The same digest pushed again starts nothing.
    h.start_build("base", "m2").await;
    h.complete("base-2", &digest(101)).await;
    settle().await;
    assert_eq!(app_builds(&h).await, ["app-1"]);
    // A new digest starts exactly one build.
    h.start_build("base", "m3").await;
    h.complete("base-3", &digest(102)).await;
    let build = h.complete("app-2", &digest(202)).await;
    assert_eq!(
        build.spec.triggered_by[0].message.as_deref(),
        Some("Image change")
    );
    settle().await;
    assert_eq!(app_builds(&h).await, ["app-1", "app-2"]);
}

#[tokio::test]
async fn an_image_stream_image_from_resolves_to_that_image() {
    let h = Harness::start().await;
    h.create_bc(&bc_yaml("base", "Serial", "")).await;
    h.start_build("base", "m1").await;
    h.complete("base-1", &digest(101)).await;
    h.start_build("base", "m2").await;
    h.complete("base-2", &digest(102)).await;
    // The older image, by digest; and one the stream never had, which waits.
    h.create_bc(&app_from(
        &format!(
            "        kind: ImageStreamImage\n        name: base@{}\n",
            digest(101)
        ),
        "",
    ))
    .await;
    h.start_build("app", "m1").await;
    // The build Pod gets the Build with its `from` resolved to the image's pull spec.
    let pod = h.wait_pod("app-1").await;
    let build_env = pod.spec.unwrap().containers[0]
        .env
        .clone()
        .unwrap_or_default()
        .into_iter()
        .find(|e| e.name == "BUILD")
        .and_then(|e| e.value)
        .unwrap();
    let seen: Build = serde_json::from_str(&build_env).unwrap();
    let from = seen
        .spec
        .common
        .strategy
        .docker_strategy
        .unwrap()
        .from
        .unwrap();
    let want = format!("{REGISTRY}/{NS}/base@{}", digest(101));
    assert_eq!(from.kind.as_deref(), Some("DockerImage"));
    assert_eq!(from.name.as_deref(), Some(want.as_str()));
    h.complete("app-1", &digest(201)).await;
    let bcs: Api<kiln::api::BuildConfig> = Api::namespaced(h.client.clone(), NS);
    bcs.patch(
        "app",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"strategy": {"dockerStrategy": {"from": {"name": format!("base@{}", digest(999))}}}}})),
    )
    .await
    .unwrap();
    h.start_build("app", "m2").await;
    let waiting = eventually("app-2 to wait for its image", || async {
        let b = Api::<Build>::namespaced(h.client.clone(), NS)
            .get("app-2")
            .await
            .ok()?;
        let status = b.status?;
        (status.reason == Some(StatusReason::InvalidImageReference)).then_some(status)
    })
    .await;
    assert_eq!(waiting.phase, BuildPhase::New);
    assert!(
        waiting
            .message
            .as_deref()
            .unwrap_or_default()
            .contains(&format!("ImageStreamImage {NS}/base@{}", digest(999))),
        "{waiting:?}"
    );
}

#[tokio::test]
async fn a_build_volume_on_a_host_path_errors_the_build_without_a_pod() {
    // The harness's API server runs without CEL rules, as one that skips them would: the mount
    // path /dev reaches the controller, which must refuse it with a reason instead of retrying.
    let h = Harness::start().await;
    h.create_bc(&format!(
        "apiVersion: build.kiln.dev/v1alpha1\nkind: BuildConfig\nmetadata:\n  name: vol\n  namespace: {NS}\nspec:\n  source:\n    git:\n      uri: https://git.example.com/vol.git\n  strategy:\n    type: Docker\n    dockerStrategy:\n      volumes:\n      - name: secret\n        source:\n          type: Secret\n          secret:\n            secretName: s\n        mounts:\n        - destinationPath: /dev\n  output:\n    to:\n      kind: ImageStreamTag\n      name: vol:latest\n"
    ))
    .await;
    h.start_build("vol", "m1").await;
    let b = h.wait_phase("vol-1", BuildPhase::Error).await;
    let status = b.status.unwrap();
    assert_eq!(status.reason, Some(StatusReason::CannotCreateBuildPodSpec));
    let message = status.message.unwrap_or_default();
    assert!(message.contains("\"/dev\""), "{message}");
    assert!(h.active_pods().await.is_empty());
}

#[tokio::test]
async fn an_out_of_range_buildconfig_in_one_namespace_stops_no_other_builds() {
    // A CRD from before the int32 bounds lets a tenant store 3000000000 as a history limit; the
    // controller's list of every BuildConfig must still decode, so other namespaces build on.
    let mut h = Harness::start_with_crds(kiln_sandbox::ServerConfig::default(), |text| {
        text.lines()
            .filter(|l| !l.trim_start().starts_with("maximum: 2147483647"))
            .collect::<Vec<_>>()
            .join("\n")
    })
    .await;
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(h.client.clone());
    namespaces
        .create(
            &Default::default(),
            &serde_json::from_value(json!({"metadata": {"name": "tenant-a"}})).unwrap(),
        )
        .await
        .unwrap();
    let configs: Api<kiln::api::BuildConfig> = Api::namespaced(h.client.clone(), "tenant-a");
    let raw = json!({
        "apiVersion": "build.kiln.dev/v1alpha1", "kind": "BuildConfig",
        "metadata": {"name": "bad", "namespace": "tenant-a"},
        "spec": {"strategy": {"type": "Docker"}, "successfulBuildsHistoryLimit": 3_000_000_000u64}
    });
    let dynamic: Api<kube::core::DynamicObject> = Api::namespaced_with(
        h.client.clone(),
        "tenant-a",
        &kube::core::ApiResource::erase::<kiln::api::BuildConfig>(&()),
    );
    dynamic
        .create(&Default::default(), &serde_json::from_value(raw).unwrap())
        .await
        .expect("the old schema stores the out-of-range value");
    assert_eq!(
        configs
            .get("bad")
            .await
            .unwrap()
            .spec
            .successful_builds_history_limit,
        Some(i32::MAX)
    );
    // A (re)started controller lists every BuildConfig at once: the list must decode.
    h.start_controller().await;
    h.create_bc(&bc_yaml("app", "Serial", "")).await;
    h.start_build("app", "m1").await;
    h.wait_pod("app-1").await;
    h.complete("app-1", &digest(1)).await;
}

#[tokio::test]
async fn an_impostor_pod_with_a_forged_report_changes_nothing() {
    let mut h = Harness::start().await;
    h.create_bc(&bc_yaml("app", "Serial", "")).await;
    h.start_build("app", "m1").await;
    let real = h.wait_pod("app-1").await;
    h.run_pod("app-1").await;
    h.wait_phase("app-1", BuildPhase::Running).await;
    // While no controller watches, the build's Pod is swapped for one of the same name that the
    // Build does not own, and that Pod "succeeds" with a forged digest.
    h.kill_controller();
    h.delete_pod("app-1").await;
    let impostor = Pod {
        metadata: ObjectMeta {
            name: real.metadata.name.clone(),
            namespace: real.metadata.namespace.clone(),
            ..ObjectMeta::default()
        },
        spec: real.spec.clone(),
        status: None,
    };
    Api::<Pod>::namespaced(h.client.clone(), NS)
        .create(&PostParams::default(), &impostor)
        .await
        .unwrap();
    h.succeed_pod("app-1", &digest(9)).await;
    h.start_controller().await;
    let b = h.wait_phase("app-1", BuildPhase::Error).await;
    let status = b.status.unwrap();
    assert_eq!(status.reason, Some(StatusReason::BuildPodDeleted));
    assert_eq!(status.output, None, "no digest was recorded: {status:?}");
    assert!(
        h.tag_images("app", "latest").await.is_empty(),
        "no TagEvent from the impostor"
    );
}
