//! The build Pod: a pure function of the Build and the controller's settings.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Capabilities, Container, EmptyDirVolumeSource, EnvVar, PersistentVolumeClaimVolumeSource, Pod,
    PodSecurityContext, PodSpec, ProjectedVolumeSource, SeccompProfile, SecretVolumeSource,
    SecurityContext, ServiceAccountTokenProjection, Volume, VolumeMount, VolumeProjection,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::{Resource, ResourceExt};

use crate::api::common::BuildSourceType;
use crate::api::contract::{self, BUILD_CONTAINER, BUILD_VOLUMES_DIR, CLONE_CONTAINER};
use crate::api::Build;
use crate::naming;

/// The ServiceAccount build Pods run as unless the spec names another (OpenShift's `builder`).
pub(crate) const DEFAULT_SERVICE_ACCOUNT: &str = "builder";
/// The completion deadline when the spec sets none: one week, as OpenShift.
pub(crate) const DEFAULT_COMPLETION_DEADLINE_SECONDS: i64 = 604_800;

/// The `Localhost` seccomp profile the `unprivileged` profile names unless configured otherwise
/// (relative to the kubelet's seccomp root; the chart installs it there).
pub const DEFAULT_SECCOMP_PROFILE: &str = "kiln/builder.json";

/// How build containers are isolated.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum SecurityProfile {
    /// A user namespace (`hostUsers: false`), root there and nobody on the node, the runtime's
    /// default capabilities less `KILL` and `MKNOD`, no privilege escalation, and a `Localhost`
    /// seccomp profile: the runtime default plus `unshare`, `clone` with namespace flags,
    /// `mount` and `umount2`. Admitted by Pod Security `baseline`.
    #[default]
    Unprivileged,
    /// A user namespace with `SETFCAP` and `SYS_CHROOT` added and seccomp `Unconfined`
    /// (needs Pod Security `privileged`; for nodes without the `Localhost` profile).
    UserNamespace,
    /// Privileged containers running as root on the node (OpenShift's default; reaches the
    /// node's devices, so only for namespaces the cluster admin lists).
    Privileged,
}

impl SecurityProfile {
    /// The name `--security-profile` and the chart use.
    pub fn name(self) -> &'static str {
        match self {
            SecurityProfile::Unprivileged => "unprivileged",
            SecurityProfile::UserNamespace => "user-namespace",
            SecurityProfile::Privileged => "privileged",
        }
    }

    /// The Pod Security Standards level a namespace must allow for a build Pod of this profile.
    pub fn pod_security_level(self) -> &'static str {
        match self {
            SecurityProfile::Unprivileged => "baseline",
            SecurityProfile::UserNamespace | SecurityProfile::Privileged => "privileged",
        }
    }
}

/// What the controller's configuration contributes to every build Pod.
#[derive(Clone, Debug, PartialEq)]
pub struct PodSettings {
    /// The image holding `kiln` and buildah.
    pub builder_image: String,
    /// How build containers are isolated, unless the namespace is listed below.
    pub security: SecurityProfile,
    /// Namespaces whose builds run `privileged` (the cluster admin's list; empty by default).
    pub privileged_namespaces: Vec<String>,
    /// The `Localhost` seccomp profile of the `unprivileged` profile, relative to the kubelet's
    /// seccomp root.
    pub seccomp_profile: String,
    /// Registries reached without TLS verification (the internal registry, typically).
    pub insecure_registries: Vec<String>,
    /// How long a Binary build's clone step waits for its upload (before the first byte and
    /// between reads) before it fails with `FetchSourceFailed`.
    pub binary_input_timeout: std::time::Duration,
    /// The git clone bounds the clone step gets (in its `KILN_CLONE_*` variables).
    pub clone_limits: contract::CloneLimits,
    /// The registry build Pods keep a layer cache per BuildConfig in (the internal registry, with
    /// `--layer-cache`); None: builds start from empty storage every time.
    pub layer_cache_registry: Option<String>,
    /// Where buildah's storage root lives: an emptyDir, or a claim per BuildConfig.
    pub storage: super::storage::StorageSettings,
    /// Registry credentials every build gets when kiln is the internal registry's token server.
    pub registry_token: Option<RegistryToken>,
}

/// The internal registry and the audience of the ServiceAccount token build Pods present to
/// kiln's registry token server as their password.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegistryToken {
    /// The registry (`host[:port]`).
    pub registry: String,
    /// The token server's audience.
    pub audience: String,
}

/// Why a Build cannot be turned into a Pod.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum Error {
    /// The Build has no name, namespace or uid yet.
    #[error("the Build has no {0}")]
    MissingMetadata(&'static str),
    /// The Build could not be serialized for the builder.
    #[error("cannot serialize the Build: {0}")]
    Serialize(String),
    /// A build volume's name or mount path is refused (see `api::validate`).
    #[error("{0}")]
    InvalidVolumes(String),
}

/// The Pod that runs `build`: init container `clone` (when there is a git or binary source) and
/// container `build`, sharing a workspace; secrets mounted only where used; no API token.
pub(crate) fn build_pod(build: &Build, settings: &PodSettings) -> Result<Pod, Error> {
    let name = build
        .metadata
        .name
        .clone()
        .ok_or(Error::MissingMetadata("name"))?;
    let namespace = build
        .metadata
        .namespace
        .clone()
        .ok_or(Error::MissingMetadata("namespace"))?;
    let owner = owner_reference(build)?;
    let spec = &build.spec.common;
    let build_json = serde_json::to_string(build).map_err(|e| Error::Serialize(e.to_string()))?;
    let source = spec.source.clone().unwrap_or_default();
    let docker = spec.strategy.docker_strategy.clone().unwrap_or_default();
    // The name becomes a directory of the Pod and the path a bind mount: checked again here, for
    // objects that reached the controller without the CRD's rules.
    crate::api::validate::build_volumes(&docker.volumes, "spec.strategy.dockerStrategy.volumes")
        .map_err(Error::InvalidVolumes)?;

    let mut env = vec![
        env_var(contract::BUILD_ENV, &build_json),
        env_var("LANG", "C.utf8"),
    ];
    env.extend(whitelisted_strategy_env(&docker.env));
    let workspace_mount = mount("workspace", contract::WORKSPACE_DIR, false);
    let mut volumes = vec![empty_dir("workspace"), empty_dir("buildah-storage")];

    // Every source but none gets the `clone` step: it clones git, unpacks a binary, or (for a
    // Dockerfile-only source) creates the empty source directory the inline Dockerfile goes to.
    let needs_clone = source.inferred_type() != BuildSourceType::None;
    let mut init_containers = Vec::new();
    if needs_clone {
        let mut mounts = vec![workspace_mount.clone()];
        if let Some(secret) = &source.source_secret {
            volumes.push(secret_volume("source-secret", &secret.name));
            mounts.push(mount("source-secret", contract::SOURCE_SECRET_DIR, true));
        }
        let binary = source.inferred_type() == BuildSourceType::Binary;
        let mut args = vec!["builder".to_string(), "clone".to_string()];
        if binary {
            args.extend([
                "--from-archive".to_string(),
                "-".to_string(),
                contract::INPUT_TIMEOUT_ARG.to_string(),
                settings.binary_input_timeout.as_secs().max(1).to_string(),
            ]);
        }
        let mut clone_env = env.clone();
        clone_env.extend(
            settings
                .clone_limits
                .env()
                .iter()
                .map(|(name, value)| env_var(name, value)),
        );
        let mut clone = container(CLONE_CONTAINER, settings, args, clone_env, mounts, build);
        if binary {
            clone.stdin = Some(true);
            clone.stdin_once = Some(true);
        }
        clone.security_context = Some(clone_security_context());
        init_containers.push(clone);
    }

    let mut build_mounts = vec![
        workspace_mount,
        mount("buildah-storage", contract::STORAGE_DIR, false),
    ];
    // The storage root on the BuildConfig's claim, below the emptyDir that keeps the run root.
    let storage_claim = super::storage::claim_name(build, &settings.storage);
    if let Some(claim) = &storage_claim {
        volumes.push(claim_volume("build-storage", claim));
        build_mounts.push(mount("build-storage", contract::GRAPHROOT_DIR, false));
    }
    if let Some(push) = spec.output.as_ref().and_then(|o| o.push_secret.as_ref()) {
        volumes.push(secret_volume("push-secret", &push.name));
        build_mounts.push(mount("push-secret", contract::PUSH_SECRET_DIR, true));
    }
    if let Some(pull) = &docker.pull_secret {
        volumes.push(secret_volume("pull-secret", &pull.name));
        build_mounts.push(mount("pull-secret", contract::PULL_SECRET_DIR, true));
    }
    if let Some(token) = &settings.registry_token {
        volumes.push(registry_token_volume(&token.audience));
        build_mounts.push(mount("registry-token", contract::REGISTRY_TOKEN_DIR, true));
    }
    for (i, volume) in docker.volumes.iter().enumerate() {
        let volume_name = format!("build-volume-{i}");
        let source = &volume.source;
        let mut v = Volume {
            name: volume_name.clone(),
            ..Volume::default()
        };
        v.secret = source.secret.clone();
        v.config_map = source.config_map.clone();
        v.csi = source.csi.clone();
        volumes.push(v);
        build_mounts.push(mount(
            &volume_name,
            &format!("{BUILD_VOLUMES_DIR}/{}", volume.name),
            true,
        ));
    }
    let mut build_env = env;
    // The strategy env's valueFrom, resolved by the kubelet like any container env: the Build
    // and the controller carry only the reference, never a Secret's value.
    for (i, var) in docker.env.iter().enumerate() {
        if var.value.is_none() {
            if let Some(from) = &var.value_from {
                build_env.push(EnvVar {
                    name: contract::value_from_env(i),
                    value: None,
                    value_from: Some(from.clone()),
                });
            }
        }
    }
    if let Some(token) = &settings.registry_token {
        build_env.push(env_var(
            contract::REGISTRY_TOKEN_REGISTRY_ENV,
            &token.registry,
        ));
    }
    if !settings.insecure_registries.is_empty() {
        build_env.push(env_var(
            contract::INSECURE_REGISTRIES_ENV,
            &settings.insecure_registries.join(","),
        ));
    }
    // A build on its BuildConfig's kept storage already has its bases and layers; pushing every
    // step to the registry cache as well costs about what the kept storage saves.
    let layer_cache =
        super::layer_cache::repository(build, settings.layer_cache_registry.as_deref())
            .filter(|_| storage_claim.is_none());
    if let Some(cache) = layer_cache {
        build_env.push(env_var(contract::LAYER_CACHE_ENV, &cache));
    }
    let mut main = container(
        BUILD_CONTAINER,
        settings,
        vec!["builder".into(), "build".into()],
        build_env,
        build_mounts,
        build,
    );
    let profile = settings.profile_for(&namespace);
    main.security_context = Some(build_security_context(profile));
    Ok(Pod {
        metadata: ObjectMeta {
            name: Some(naming::pod_name(&name)),
            namespace: Some(namespace),
            labels: Some(BTreeMap::from([(
                naming::BUILD_NAME_LABEL.to_string(),
                naming::label_value(&name),
            )])),
            annotations: build
                .annotations()
                .get(naming::BUILD_CONFIG_ANNOTATION)
                .map(|config| {
                    BTreeMap::from([(naming::BUILD_CONFIG_ANNOTATION.to_string(), config.clone())])
                }),
            owner_references: Some(vec![owner]),
            ..ObjectMeta::default()
        },
        spec: Some(PodSpec {
            restart_policy: Some("Never".into()),
            service_account_name: Some(
                spec.service_account
                    .clone()
                    .filter(|s| !s.is_empty())
                    .unwrap_or_else(|| DEFAULT_SERVICE_ACCOUNT.into()),
            ),
            automount_service_account_token: Some(false),
            active_deadline_seconds: Some(
                spec.completion_deadline_seconds
                    .unwrap_or(DEFAULT_COMPLETION_DEADLINE_SECONDS),
            ),
            node_selector: spec.node_selector.clone().filter(|s| !s.is_empty()),
            host_users: (profile != SecurityProfile::Privileged).then_some(false),
            security_context: Some(PodSecurityContext {
                seccomp_profile: pod_seccomp_profile(profile, &settings.seccomp_profile),
                ..PodSecurityContext::default()
            }),
            init_containers: (!init_containers.is_empty()).then_some(init_containers),
            containers: vec![main],
            volumes: Some(volumes),
            ..PodSpec::default()
        }),
        status: None,
    })
}

impl PodSettings {
    /// The profile of a build in `namespace`: `privileged` where the cluster admin listed the
    /// namespace, the configured profile everywhere else.
    pub(crate) fn profile_for(&self, namespace: &str) -> SecurityProfile {
        if self.privileged_namespaces.iter().any(|n| n == namespace) {
            SecurityProfile::Privileged
        } else {
            self.security
        }
    }
}

/// The Pod's seccomp profile: every container's unless it sets its own.
fn pod_seccomp_profile(profile: SecurityProfile, localhost: &str) -> Option<SeccompProfile> {
    match profile {
        SecurityProfile::Unprivileged => Some(SeccompProfile {
            type_: "Localhost".into(),
            localhost_profile: Some(localhost.into()),
        }),
        SecurityProfile::UserNamespace => Some(SeccompProfile {
            type_: "Unconfined".into(),
            ..SeccompProfile::default()
        }),
        SecurityProfile::Privileged => None,
    }
}

/// The controller owner reference from a Pod (or any child) to its Build.
pub(crate) fn owner_reference(build: &Build) -> Result<OwnerReference, Error> {
    build
        .controller_owner_ref(&())
        .ok_or(Error::MissingMetadata("uid"))
}

fn container(
    name: &str,
    settings: &PodSettings,
    args: Vec<String>,
    env: Vec<EnvVar>,
    mounts: Vec<VolumeMount>,
    build: &Build,
) -> Container {
    Container {
        name: name.into(),
        image: Some(settings.builder_image.clone()),
        command: Some(vec!["kiln".into()]),
        args: Some(args),
        env: Some(env),
        volume_mounts: Some(mounts),
        resources: build.spec.common.resources.clone(),
        termination_message_path: Some(contract::TERMINATION_LOG_PATH.into()),
        termination_message_policy: Some("FallbackToLogsOnError".into()),
        image_pull_policy: Some("IfNotPresent".into()),
        ..Container::default()
    }
}

/// Strategy env that reaches the container itself (OpenShift's whitelist); the rest goes into the
/// Dockerfile only.
fn whitelisted_strategy_env(env: &[EnvVar]) -> Vec<EnvVar> {
    const ALLOWED: &[&str] = &[
        "BUILD_LOGLEVEL",
        "GIT_SSL_NO_VERIFY",
        "GIT_LFS_SKIP_SMUDGE",
        "LANG",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "NO_PROXY",
        "http_proxy",
        "https_proxy",
        "no_proxy",
    ];
    env.iter()
        .filter(|e| ALLOWED.contains(&e.name.as_str()))
        .cloned()
        .collect()
}

/// The clone step needs no privilege at all, whatever the build's profile: no capabilities and
/// the runtime's default seccomp profile.
fn clone_security_context() -> SecurityContext {
    SecurityContext {
        allow_privilege_escalation: Some(false),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".into()]),
            add: None,
        }),
        seccomp_profile: Some(SeccompProfile {
            type_: "RuntimeDefault".into(),
            ..SeccompProfile::default()
        }),
        ..SecurityContext::default()
    }
}

fn build_security_context(profile: SecurityProfile) -> SecurityContext {
    match profile {
        SecurityProfile::Privileged => SecurityContext {
            privileged: Some(true),
            run_as_user: Some(0),
            ..SecurityContext::default()
        },
        // buildah with chroot isolation inside the Pod's user namespace, without CAP_SYS_ADMIN:
        // it re-executes itself in a nested user namespace (unshare, mount and umount2 come from
        // the Localhost seccomp profile); the runtime's default capabilities cover the rest
        // (SETFCAP maps root in the nested namespace, SYS_CHROOT the chroot). KILL and MKNOD
        // dropped as OpenShift's unprivileged builds do; nothing needs privilege escalation.
        SecurityProfile::Unprivileged => SecurityContext {
            privileged: Some(false),
            run_as_user: Some(0),
            allow_privilege_escalation: Some(false),
            capabilities: Some(Capabilities {
                add: None,
                drop: Some(vec!["KILL".into(), "MKNOD".into()]),
            }),
            ..SecurityContext::default()
        },
        // buildah with chroot isolation inside a user namespace: root there, nobody on the host.
        // SETFCAP lets it write file capabilities; SYS_CHROOT the chroot; KILL and MKNOD dropped
        // as OpenShift's unprivileged builds do.
        SecurityProfile::UserNamespace => SecurityContext {
            privileged: Some(false),
            run_as_user: Some(0),
            allow_privilege_escalation: Some(true),
            capabilities: Some(Capabilities {
                add: Some(vec!["SETFCAP".into(), "SYS_CHROOT".into()]),
                drop: Some(vec!["KILL".into(), "MKNOD".into()]),
            }),
            seccomp_profile: Some(SeccompProfile {
                type_: "Unconfined".into(),
                ..SeccompProfile::default()
            }),
            ..SecurityContext::default()
        },
    }
}

fn env_var(name: &str, value: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value: Some(value.into()),
        value_from: None,
    }
}

fn mount(name: &str, path: &str, read_only: bool) -> VolumeMount {
    VolumeMount {
        name: name.into(),
        mount_path: path.into(),
        read_only: read_only.then_some(true),
        ..VolumeMount::default()
    }
}

fn empty_dir(name: &str) -> Volume {
    Volume {
        name: name.into(),
        empty_dir: Some(EmptyDirVolumeSource::default()),
        ..Volume::default()
    }
}

fn claim_volume(name: &str, claim: &str) -> Volume {
    Volume {
        name: name.into(),
        persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
            claim_name: claim.into(),
            read_only: None,
        }),
        ..Volume::default()
    }
}

/// The build's registry password: a ServiceAccount token projected for the token server's
/// audience (bound to the Pod, refreshed by the kubelet; not an API credential, whose audience
/// differs).
fn registry_token_volume(audience: &str) -> Volume {
    Volume {
        name: "registry-token".into(),
        projected: Some(ProjectedVolumeSource {
            default_mode: None,
            sources: Some(vec![VolumeProjection {
                service_account_token: Some(ServiceAccountTokenProjection {
                    audience: Some(audience.to_string()),
                    expiration_seconds: Some(contract::REGISTRY_TOKEN_SECONDS),
                    path: contract::REGISTRY_TOKEN_FILE.into(),
                }),
                ..VolumeProjection::default()
            }]),
        }),
        ..Volume::default()
    }
}

fn secret_volume(name: &str, secret: &str) -> Volume {
    Volume {
        name: name.into(),
        secret: Some(SecretVolumeSource {
            secret_name: Some(secret.into()),
            ..SecretVolumeSource::default()
        }),
        ..Volume::default()
    }
}

/// Whether `pod` is `build`'s own: an owner reference carries the Build's uid. Only such a Pod
/// may move the Build (anyone who can create Pods could otherwise complete it with any digest).
pub(crate) fn owned_by(pod: &Pod, build: &Build) -> bool {
    build
        .metadata
        .uid
        .as_ref()
        .is_some_and(|uid| pod.owner_references().iter().any(|o| &o.uid == uid))
}

#[cfg(test)]
#[path = "pod_tests.rs"]
mod tests;
