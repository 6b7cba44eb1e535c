//! Which layer-cache repository a build Pod reads and writes (pure): one per BuildConfig, inside
//! the Build's own namespace of the internal registry, derived here and never taken from the
//! Build, so one namespace's builds never see another's layers.

use kube::ResourceExt;

use crate::api::refs::config_of;
use crate::api::Build;
use crate::naming;
use crate::registry::auth::registry_of;
use crate::registry::digest::repository as parsed_repository;

/// The suffix of a BuildConfig's cache repository: `<registry>/<namespace>/<config>-cache`.
pub(crate) const CACHE_SUFFIX: &str = "cache";

/// The longest repository name (`host[:port]/path`) registries accept.
const MAX_REPOSITORY_LENGTH: usize = 255;

/// The layer-cache repository of `build` in `registry` (the internal registry; None: no cache):
/// `<registry>/<namespace>/<config>-cache`, or None when the build must not use one: it asks for
/// `noCache`, belongs to no BuildConfig, or pushes its output anywhere but the internal registry
/// (its push secret, which also pushes the cache, is then for another registry). The name is
/// shortened with a stable hash past the registry's length limit; a name that would not stay a
/// single path component under the namespace gives no cache.
pub(crate) fn repository(build: &Build, registry: Option<&str>) -> Option<String> {
    let registry = registry.filter(|r| !r.is_empty())?;
    let docker = build.spec.common.strategy.docker_strategy.as_ref();
    if docker.and_then(|d| d.no_cache).unwrap_or(false) {
        return None;
    }
    let namespace = build.namespace()?;
    let (config_namespace, config) = config_of(build)?;
    if config_namespace != namespace || !is_component(&namespace) || !is_component(&config) {
        return None;
    }
    let output = build
        .status
        .as_ref()
        .and_then(|s| s.output_docker_image_reference.clone())
        .or_else(|| {
            let to = build.spec.common.output.as_ref()?.to.as_ref()?;
            (to.kind.as_deref() == Some("DockerImage"))
                .then(|| to.name.clone())
                .flatten()
        })?;
    if registry_of(&output) != registry {
        return None;
    }
    let room = MAX_REPOSITORY_LENGTH.checked_sub(registry.len() + namespace.len() + 2)?;
    if room < 24 {
        return None;
    }
    let name = naming::join_name(&config, CACHE_SUFFIX, room);
    let prefix = format!("{registry}/{namespace}/");
    let cache = format!("{prefix}{name}");
    // What buildah will parse must be exactly this repository, still under the namespace (a
    // name that does not parse has no repository).
    let parsed = parsed_repository(&cache)?;
    (parsed == cache && parsed.starts_with(&prefix)).then_some(cache)
}

/// Whether `name` is one lower-case path component of a repository name (what a namespace or a
/// BuildConfig name is when the API server checked it).
fn is_component(name: &str) -> bool {
    let bytes = name.as_bytes();
    let alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    bytes.first().is_some_and(alnum)
        && bytes.last().is_some_and(alnum)
        && bytes.iter().all(|b| alnum(b) || *b == b'-' || *b == b'.')
        && !name.contains("..")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn build(namespace: &str, config: Option<&str>, extra: serde_json::Value) -> Build {
        let mut value = json!({
            "apiVersion": "build.kiln.dev/v1alpha1", "kind": "Build",
            "metadata": {"name": "b-1", "namespace": namespace},
            "spec": {"strategy": {"type": "Docker", "dockerStrategy": {}}},
            "status": {"phase": "New", "outputDockerImageReference": format!("r:5000/{namespace}/app:latest")}
        });
        if let Some(c) = config {
            value["metadata"]["annotations"] = json!({ naming::BUILD_CONFIG_ANNOTATION: c });
        }
        merge(&mut value, extra);
        serde_json::from_value(value).unwrap()
    }

    fn merge(into: &mut serde_json::Value, from: serde_json::Value) {
        match (into, from) {
            (serde_json::Value::Object(a), serde_json::Value::Object(b)) => {
                for (k, v) in b {
                    merge(a.entry(k).or_insert(serde_json::Value::Null), v);
                }
            }
            (slot, v) => *slot = v,
        }
    }

    #[test]
    fn repository_table() {
        let long = "a".repeat(253);
        let cases: Vec<(&str, Build, Option<&str>, Option<String>)> = vec![
            (
                "a BuildConfig's build pushing to the internal registry",
                build("team-a", Some("app"), json!({})),
                Some("r:5000"),
                Some("r:5000/team-a/app-cache".into()),
            ),
            (
                "the same BuildConfig name in another namespace: that namespace's repository",
                build("team-b", Some("app"), json!({})),
                Some("r:5000"),
                Some("r:5000/team-b/app-cache".into()),
            ),
            (
                "the owner reference names the BuildConfig",
                build(
                    "team-a",
                    None,
                    json!({"metadata": {"ownerReferences": [{"apiVersion": "build.kiln.dev/v1alpha1",
                        "kind": "BuildConfig", "name": "web", "uid": "u", "controller": true}]}}),
                ),
                Some("r:5000"),
                Some("r:5000/team-a/web-cache".into()),
            ),
            (
                "a DockerImage output in the internal registry, before status is set",
                build(
                    "team-a",
                    Some("app"),
                    json!({"status": {"outputDockerImageReference": null},
                        "spec": {"output": {"to": {"kind": "DockerImage", "name": "r:5000/team-a/x:1"}}}}),
                ),
                Some("r:5000"),
                Some("r:5000/team-a/app-cache".into()),
            ),
            (
                "no internal registry",
                build("team-a", Some("app"), json!({})),
                None,
                None,
            ),
            (
                "the layer cache switched off (empty registry)",
                build("team-a", Some("app"), json!({})),
                Some(""),
                None,
            ),
            (
                "noCache bypasses the cache",
                build(
                    "team-a",
                    Some("app"),
                    json!({"spec": {"strategy": {"dockerStrategy": {"noCache": true}}}}),
                ),
                Some("r:5000"),
                None,
            ),
            (
                "noCache false keeps it",
                build(
                    "team-a",
                    Some("app"),
                    json!({"spec": {"strategy": {"dockerStrategy": {"noCache": false}}}}),
                ),
                Some("r:5000"),
                Some("r:5000/team-a/app-cache".into()),
            ),
            (
                "a Build of no BuildConfig",
                build("team-a", None, json!({})),
                Some("r:5000"),
                None,
            ),
            (
                "output to another registry: the push secret is not the internal registry's",
                build(
                    "team-a",
                    Some("app"),
                    json!({"status": {"outputDockerImageReference": "quay.io/team-a/app:latest"}}),
                ),
                Some("r:5000"),
                None,
            ),
            (
                "no output at all",
                build(
                    "team-a",
                    Some("app"),
                    json!({"status": {"outputDockerImageReference": null}}),
                ),
                Some("r:5000"),
                None,
            ),
            (
                "an annotation trying to leave the namespace",
                build("team-a", Some("../team-b/app"), json!({})),
                Some("r:5000"),
                None,
            ),
            (
                "an annotation with a path",
                build("team-a", Some("team-b/app"), json!({})),
                Some("r:5000"),
                None,
            ),
            (
                "an upper-case name no API server admits",
                build("team-a", Some("App"), json!({})),
                Some("r:5000"),
                None,
            ),
            (
                "a long BuildConfig name is shortened with a hash",
                build("team-a", Some(&long), json!({})),
                Some("r:5000"),
                Some(format!(
                    "r:5000/team-a/{}",
                    naming::join_name(&long, "cache", 255 - "r:5000".len() - "team-a".len() - 2)
                )),
            ),
        ];
        for (what, b, registry, want) in cases {
            let got = repository(&b, registry);
            assert_eq!(got, want, "{what}");
            if let Some(repo) = got {
                assert!(repo.len() <= MAX_REPOSITORY_LENGTH, "{what}: {repo}");
                assert!(
                    repo.starts_with(&format!("r:5000/{}/", b.namespace().unwrap())),
                    "{what}"
                );
            }
        }
    }
}
