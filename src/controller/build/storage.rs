//! The build storage volume: with `--build-storage=volume`, each BuildConfig gets a
//! PersistentVolumeClaim in its namespace, owned by it, that its build Pods mount as buildah's
//! storage root, so a rebuild finds its base images and layers where the last build left them.
//! What the claim and its name are is pure; [`ensure`] creates it.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    PersistentVolumeClaim, PersistentVolumeClaimSpec, VolumeResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{Api, PostParams};
use kube::ResourceExt;

use crate::api::Build;
use crate::controller::context::{api_error, Context, Error};
use crate::naming;

/// The suffix of a BuildConfig's claim: `<buildconfig>-build-storage`.
pub(crate) const CLAIM_SUFFIX: &str = "build-storage";
/// The claim's size unless configured (`--build-storage-size`).
pub(crate) const DEFAULT_SIZE: &str = "20Gi";

/// Where build Pods keep buildah's storage root.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum StorageMode {
    /// An emptyDir: every build starts with empty storage (pulls its bases, builds every layer
    /// the registry layer cache does not hold).
    #[default]
    Ephemeral,
    /// A PersistentVolumeClaim per BuildConfig: a rebuild reuses the bases and layers of the
    /// BuildConfig's earlier builds (ReadWriteOnce: its builds run on the node holding it).
    Volume,
}

/// How the build storage volume is made.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StorageSettings {
    /// Ephemeral storage or a claim per BuildConfig.
    pub mode: StorageMode,
    /// The claim's requested size (a Kubernetes quantity).
    pub size: String,
    /// The claim's storage class (None: the cluster's default class).
    pub storage_class: Option<String>,
}

/// The BuildConfig owner of `build` (its controller reference of kind BuildConfig, which carries
/// the uid the claim's owner reference needs).
fn config_owner(build: &Build) -> Option<&OwnerReference> {
    build
        .owner_references()
        .iter()
        .find(|o| o.kind == "BuildConfig" && o.controller == Some(true) && !o.uid.is_empty())
}

/// The claim `build`'s Pod mounts as buildah's storage root, None for fresh storage: storage is
/// ephemeral, the build asks for `noCache`, or it belongs to no BuildConfig (by owner).
pub(crate) fn claim_name(build: &Build, settings: &StorageSettings) -> Option<String> {
    if settings.mode != StorageMode::Volume {
        return None;
    }
    let docker = build.spec.common.strategy.docker_strategy.as_ref();
    if docker.and_then(|d| d.no_cache).unwrap_or(false) {
        return None;
    }
    let owner = config_owner(build)?;
    Some(naming::join_name(
        &owner.name,
        CLAIM_SUFFIX,
        naming::MAX_NAME_LENGTH,
    ))
}

/// The claim of [`claim_name`]: in the Build's namespace, owned by its BuildConfig (so it goes
/// with it), ReadWriteOnce, of the configured size and class.
pub(crate) fn claim(build: &Build, settings: &StorageSettings) -> Option<PersistentVolumeClaim> {
    let name = claim_name(build, settings)?;
    let owner = config_owner(build)?;
    let size = if settings.size.is_empty() {
        DEFAULT_SIZE
    } else {
        &settings.size
    };
    Some(PersistentVolumeClaim {
        metadata: ObjectMeta {
            name: Some(name),
            namespace: build.namespace(),
            labels: Some(BTreeMap::from([(
                naming::BUILD_CONFIG_LABEL.to_string(),
                naming::label_value(&owner.name),
            )])),
            owner_references: Some(vec![OwnerReference {
                block_owner_deletion: None,
                ..owner.clone()
            }]),
            ..ObjectMeta::default()
        },
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec!["ReadWriteOnce".into()]),
            resources: Some(VolumeResourceRequirements {
                requests: Some(BTreeMap::from([(
                    "storage".to_string(),
                    Quantity(size.to_string()),
                )])),
                limits: None,
            }),
            storage_class_name: settings.storage_class.clone().filter(|s| !s.is_empty()),
            ..PersistentVolumeClaimSpec::default()
        }),
        status: None,
    })
}

/// Creates `build`'s claim unless it exists (a claim of that name already there is used as it
/// is, as a StatefulSet adopts the claims its template names).
pub(crate) async fn ensure(ctx: &Context, build: &Build) -> Result<(), Error> {
    let Some(claim) = claim(build, &ctx.settings.pod.storage) else {
        return Ok(());
    };
    let name = claim.name_any();
    let api: Api<PersistentVolumeClaim> =
        Api::namespaced(ctx.client.clone(), &build.namespace().unwrap_or_default());
    match api.create(&PostParams::default(), &claim).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
        Err(e) => Err(api_error(format!("creating PersistentVolumeClaim {name}"))(
            e,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn build(extra: serde_json::Value) -> Build {
        let mut value = json!({
            "apiVersion": "build.kiln.dev/v1alpha1", "kind": "Build",
            "metadata": {"name": "app-2", "namespace": "team-a", "uid": "b-uid",
                "ownerReferences": [{"apiVersion": "build.kiln.dev/v1alpha1", "kind": "BuildConfig",
                    "name": "app", "uid": "bc-uid", "controller": true, "blockOwnerDeletion": true}]},
            "spec": {"strategy": {"type": "Docker", "dockerStrategy": {}}}
        });
        if let (Some(a), serde_json::Value::Object(b)) = (value.as_object_mut(), extra) {
            for (k, v) in b {
                a.insert(k, v);
            }
        }
        serde_json::from_value(value).unwrap()
    }

    fn volume() -> StorageSettings {
        StorageSettings {
            mode: StorageMode::Volume,
            size: "5Gi".into(),
            storage_class: Some("local-path".into()),
        }
    }

    #[test]
    fn claim_name_table() {
        let ephemeral = StorageSettings::default();
        let long = "a".repeat(250);
        let cases: Vec<(&str, Build, StorageSettings, Option<String>)> = vec![
            (
                "a BuildConfig's build",
                build(json!({})),
                volume(),
                Some("app-build-storage".into()),
            ),
            (
                "ephemeral storage",
                build(json!({})),
                ephemeral.clone(),
                None,
            ),
            (
                "noCache: fresh storage",
                build(
                    json!({"spec": {"strategy": {"type": "Docker", "dockerStrategy": {"noCache": true}}}}),
                ),
                volume(),
                None,
            ),
            (
                "noCache false keeps the claim",
                build(
                    json!({"spec": {"strategy": {"type": "Docker", "dockerStrategy": {"noCache": false}}}}),
                ),
                volume(),
                Some("app-build-storage".into()),
            ),
            (
                "no BuildConfig owner (an annotation gives no uid to own the claim)",
                build(json!({"metadata": {"name": "x", "namespace": "team-a",
                    "annotations": {naming::BUILD_CONFIG_ANNOTATION: "app"}}})),
                volume(),
                None,
            ),
            (
                "an owner that is not the controller",
                build(json!({"metadata": {"name": "x", "namespace": "team-a",
                    "ownerReferences": [{"apiVersion": "build.kiln.dev/v1alpha1", "kind": "BuildConfig",
                        "name": "app", "uid": "bc-uid"}]}})),
                volume(),
                None,
            ),
            (
                "a long name is shortened with a hash",
                build(json!({"metadata": {"name": "x", "namespace": "team-a",
                    "ownerReferences": [{"apiVersion": "build.kiln.dev/v1alpha1", "kind": "BuildConfig",
                        "name": long, "uid": "bc-uid", "controller": true}]}})),
                volume(),
                Some(naming::join_name(
                    &long,
                    CLAIM_SUFFIX,
                    naming::MAX_NAME_LENGTH,
                )),
            ),
        ];
        for (what, b, settings, want) in cases {
            let got = claim_name(&b, &settings);
            assert_eq!(got, want, "{what}");
            if let Some(name) = got {
                assert!(name.len() <= naming::MAX_NAME_LENGTH, "{what}");
            }
        }
    }

    #[test]
    fn the_claim_is_the_buildconfigs_in_its_namespace() {
        let c = claim(&build(json!({})), &volume()).unwrap();
        assert_eq!(c.metadata.name.as_deref(), Some("app-build-storage"));
        assert_eq!(c.metadata.namespace.as_deref(), Some("team-a"));
        let owners = c.metadata.owner_references.unwrap();
        assert_eq!(owners.len(), 1);
        assert_eq!(
            (
                owners[0].kind.as_str(),
                owners[0].name.as_str(),
                owners[0].uid.as_str()
            ),
            ("BuildConfig", "app", "bc-uid")
        );
        assert_eq!(owners[0].controller, Some(true));
        assert_eq!(owners[0].block_owner_deletion, None);
        let spec = c.spec.unwrap();
        assert_eq!(spec.access_modes, Some(vec!["ReadWriteOnce".to_string()]));
        assert_eq!(spec.storage_class_name.as_deref(), Some("local-path"));
        let requests = spec.resources.unwrap().requests.unwrap();
        assert_eq!(requests["storage"], Quantity("5Gi".into()));

        let defaults = StorageSettings {
            mode: StorageMode::Volume,
            size: String::new(),
            storage_class: Some(String::new()),
        };
        let spec = claim(&build(json!({})), &defaults).unwrap().spec.unwrap();
        assert_eq!(spec.storage_class_name, None, "the cluster's default class");
        assert_eq!(
            spec.resources.unwrap().requests.unwrap()["storage"],
            Quantity(DEFAULT_SIZE.into())
        );
        assert!(claim(&build(json!({})), &StorageSettings::default()).is_none());
    }

    #[test]
    fn the_build_pod_mounts_the_claim_as_storage_root_and_keeps_the_run_root_ephemeral() {
        use crate::api::contract;
        use crate::controller::build::pod::{build_pod, PodSettings, SecurityProfile};
        let pod_settings = |storage: StorageSettings| PodSettings {
            builder_image: "kiln-builder:1".into(),
            security: SecurityProfile::Unprivileged,
            privileged_namespaces: Vec::new(),
            seccomp_profile: "kiln/builder.json".into(),
            insecure_registries: Vec::new(),
            binary_input_timeout: std::time::Duration::from_secs(90),
            clone_limits: contract::CloneLimits::DEFAULT,
            layer_cache_registry: None,
            storage,
            registry_token: None,
        };
        let no_cache = build(
            json!({"spec": {"strategy": {"type": "Docker", "dockerStrategy": {"noCache": true}}}}),
        );
        let cases: Vec<(&str, Build, StorageSettings, Option<&str>)> = vec![
            (
                "volume",
                build(json!({})),
                volume(),
                Some("app-build-storage"),
            ),
            (
                "ephemeral",
                build(json!({})),
                StorageSettings::default(),
                None,
            ),
            ("noCache", no_cache, volume(), None),
        ];
        for (what, b, storage, want) in cases {
            let spec = build_pod(&b, &pod_settings(storage)).unwrap().spec.unwrap();
            let volumes = spec.volumes.unwrap();
            let claims: Vec<&str> = volumes
                .iter()
                .filter_map(|v| v.persistent_volume_claim.as_ref())
                .map(|c| c.claim_name.as_str())
                .collect();
            assert_eq!(claims, want.into_iter().collect::<Vec<_>>(), "{what}");
            let storage_dir = volumes.iter().find(|v| v.name == "buildah-storage");
            assert!(
                storage_dir.is_some_and(|v| v.empty_dir.is_some()),
                "{what}: the run root stays on an emptyDir"
            );
            let mounts: Vec<(String, String)> = spec.containers[0]
                .volume_mounts
                .iter()
                .flatten()
                .map(|m| (m.name.clone(), m.mount_path.clone()))
                .collect();
            let at = |name: &str| mounts.iter().position(|(n, _)| n == name);
            match want {
                Some(_) => {
                    assert!(
                        mounts.contains(&("build-storage".into(), contract::GRAPHROOT_DIR.into()))
                    );
                    assert!(
                        at("buildah-storage") < at("build-storage"),
                        "{what}: the claim is mounted inside the emptyDir, after it"
                    );
                }
                None => assert_eq!(at("build-storage"), None, "{what}"),
            }
            // The clone step never sees the storage.
            let clone_mounts = spec
                .init_containers
                .iter()
                .flatten()
                .flat_map(|c| c.volume_mounts.iter().flatten().map(|m| m.name.clone()));
            assert!(
                clone_mounts.into_iter().all(|n| n != "build-storage"),
                "{what}"
            );
        }
    }
}
