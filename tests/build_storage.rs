//! The build storage volume (`--build-storage=volume`) with the real controller on the sandbox:
//! every build of a BuildConfig mounts the one claim the controller made for it, owned by the
//! BuildConfig; a `noCache` build and another BuildConfig's builds do not; the claim goes with its
//! BuildConfig.

mod controller_support;

use controller_support::{bc_yaml, digest, eventually, Harness, NS};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kiln::api::{BuildConfig, BuildPhase};
use kiln::controller::{StorageMode, StorageSettings};
use kube::api::{Api, DeleteParams, Patch, PatchParams};

/// The claims a build Pod mounts and where.
fn claims_of(pod: &Pod) -> Vec<(String, String)> {
    let spec = pod.spec.clone().unwrap_or_default();
    let volumes = spec.volumes.unwrap_or_default();
    spec.containers[0]
        .volume_mounts
        .iter()
        .flatten()
        .filter_map(|m| {
            let volume = volumes.iter().find(|v| v.name == m.name)?;
            let claim = volume.persistent_volume_claim.as_ref()?;
            Some((claim.claim_name.clone(), m.mount_path.clone()))
        })
        .collect()
}

#[tokio::test]
async fn builds_of_one_buildconfig_share_its_claim_and_no_cache_builds_get_fresh_storage() {
    let mut h = Harness::start().await;
    let mut settings = controller_support::settings();
    settings.pod.storage = StorageSettings {
        mode: StorageMode::Volume,
        size: "2Gi".into(),
        storage_class: Some("local-path".into()),
    };
    h.start_controller_with(settings).await;
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(h.client.clone(), NS);
    let storage = (
        "app-build-storage".to_string(),
        kiln::api::contract::GRAPHROOT_DIR.to_string(),
    );

    let bc = h.create_bc(&bc_yaml("app", "Parallel", "")).await;
    h.start_build("app", "one").await;
    let first = h.wait_pod("app-1").await;
    assert_eq!(claims_of(&first), std::slice::from_ref(&storage));
    let claim = claims.get("app-build-storage").await.unwrap();
    let owners = claim.metadata.owner_references.clone().unwrap_or_default();
    assert_eq!(owners.len(), 1);
    assert_eq!(owners[0].kind, "BuildConfig");
    assert_eq!(Some(&owners[0].uid), bc.metadata.uid.as_ref());
    let spec = claim.spec.clone().unwrap();
    assert_eq!(spec.storage_class_name.as_deref(), Some("local-path"));
    assert_eq!(spec.access_modes, Some(vec!["ReadWriteOnce".to_string()]));

    // A second build, running beside the first (Parallel), mounts the same claim, which is
    // neither made again nor replaced.
    h.start_build("app", "two").await;
    let second = h.wait_pod("app-2").await;
    assert_eq!(claims_of(&second), std::slice::from_ref(&storage));
    h.complete("app-1", &digest(1)).await;
    h.complete("app-2", &digest(2)).await;
    let again = claims.get("app-build-storage").await.unwrap();
    assert_eq!(again.metadata.uid, claim.metadata.uid);
    assert_eq!(
        claims.list(&Default::default()).await.unwrap().items.len(),
        1
    );

    // noCache: fresh storage, no claim mounted.
    Api::<BuildConfig>::namespaced(h.client.clone(), NS)
        .patch(
            "app",
            &PatchParams::default(),
            &Patch::Merge(
                serde_json::json!({"spec": {"strategy": {"dockerStrategy": {"noCache": true}}}}),
            ),
        )
        .await
        .unwrap();
    eventually("the BuildConfig with noCache in the cache", || async {
        let bc = Api::<BuildConfig>::namespaced(h.client.clone(), NS)
            .get("app")
            .await
            .ok()?;
        bc.spec
            .common
            .strategy
            .docker_strategy
            .and_then(|d| d.no_cache)
            .filter(|n| *n)
    })
    .await;
    h.start_build("app", "three").await;
    let fresh = h.wait_pod("app-3").await;
    assert_eq!(claims_of(&fresh), []);
    h.complete("app-3", &digest(3)).await;

    // Another BuildConfig: its own claim.
    h.create_bc(&bc_yaml("web", "Serial", "")).await;
    h.start_build("web", "one").await;
    let web = h.wait_pod("web-1").await;
    assert_eq!(
        claims_of(&web),
        [(
            "web-build-storage".to_string(),
            kiln::api::contract::GRAPHROOT_DIR.to_string()
        )]
    );
    h.complete("web-1", &digest(4)).await;
    assert_eq!(h.phase("web-1").await, Some(BuildPhase::Complete));

    // The claim goes with its BuildConfig.
    Api::<BuildConfig>::namespaced(h.client.clone(), NS)
        .delete("app", &DeleteParams::default())
        .await
        .unwrap();
    eventually("app's claim removed", || async {
        claims
            .get_opt("app-build-storage")
            .await
            .unwrap()
            .is_none()
            .then_some(())
    })
    .await;
    assert!(claims.get_opt("web-build-storage").await.unwrap().is_some());
}
