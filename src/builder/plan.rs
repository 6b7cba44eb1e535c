//! From a Build (and the source info) to what the builder does: pure, no I/O.

use std::path::{Path, PathBuf};

use super::dockerfile::Edits;
use super::report::Failure;
use crate::api::common::{BuildPostCommitSpec, ImageOptimizationPolicy};
use crate::api::contract::SourceInfo;
use crate::api::{Build, StatusReason};

/// What the build container will do.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Plan {
    /// The Build's name.
    pub(crate) name: String,
    /// The Build's namespace.
    pub(crate) namespace: String,
    /// `source.contextDir`.
    pub(crate) context_dir: Option<String>,
    /// The Dockerfile path relative to the context (default `Dockerfile`).
    pub(crate) dockerfile_path: String,
    /// An inline Dockerfile that replaces the source's.
    pub(crate) inline_dockerfile: Option<String>,
    /// The Dockerfile edits (from, env, provenance, labels).
    pub(crate) edits: Edits,
    /// `--build-arg` pairs.
    pub(crate) build_args: Vec<(String, String)>,
    /// `--no-cache`.
    pub(crate) no_cache: bool,
    /// `--pull-always`.
    pub(crate) force_pull: bool,
    /// `--layers`.
    pub(crate) layers: bool,
    /// `--target`.
    pub(crate) target: Option<String>,
    /// Build volumes: (volume name, destination path).
    pub(crate) volumes: Vec<(String, String)>,
    /// The post-commit command, as argv.
    pub(crate) post_commit: Option<Vec<String>>,
    /// The image reference to push to (None: the caller decides, e.g. an OCI layout).
    pub(crate) output: Option<String>,
}

/// Plans a Build. `source` is what the clone container found (None for builds without source).
/// A strategy env `valueFrom` fails the plan; see [`plan_with`].
#[cfg(test)]
pub(crate) fn plan(build: &Build, source: Option<&SourceInfo>) -> Result<Plan, Failure> {
    plan_with(build, source, &|_| None)
}

/// Plans a Build, with `value_from(i)` the value the kubelet resolved for `dockerStrategy.env[i]`'s
/// `valueFrom` (the build container's [`crate::api::contract::value_from_env`] variables).
pub(crate) fn plan_with(
    build: &Build,
    source: Option<&SourceInfo>,
    value_from: &dyn Fn(usize) -> Option<String>,
) -> Result<Plan, Failure> {
    let spec = &build.spec.common;
    let name = build.metadata.name.clone().unwrap_or_default();
    let namespace = build.metadata.namespace.clone().unwrap_or_default();
    let docker = spec.strategy.docker_strategy.clone().unwrap_or_default();
    let src = spec.source.clone().unwrap_or_default();
    let from = match &docker.from {
        Some(r) if r.kind.as_deref().is_none_or(|k| k == "DockerImage") => r.name.clone(),
        Some(r) => {
            return Err(Failure::new(
                StatusReason::InvalidImageReference,
                format!(
                    "dockerStrategy.from of kind {} must be resolved to a DockerImage before the build runs",
                    r.kind.as_deref().unwrap_or("?")
                ),
            ))
        }
        None => None,
    };
    if let Some(f) = &from {
        super::registry::check_reference(f).map_err(|e| {
            Failure::new(
                StatusReason::InvalidImageReference,
                format!("dockerStrategy.from {f:?} is not an image reference: {e}"),
            )
        })?;
    }
    crate::api::validate::build_volumes(&docker.volumes, "spec.strategy.dockerStrategy.volumes")
        .map_err(|e| Failure::new(StatusReason::CannotCreateBuildPodSpec, e))?;
    let env = pairs(&docker.env, "dockerStrategy.env", value_from)?;
    // OpenShift does not resolve valueFrom in build arguments either.
    let build_args = pairs(&docker.build_args, "dockerStrategy.buildArgs", &|_| None)?;
    // The location reaches the image's ENV and labels: never with credentials.
    let location = source
        .and_then(|s| s.location.clone())
        .or_else(|| src.git.as_ref().map(|g| g.uri.clone()))
        .map(|l| crate::api::validate::redact_url(&l));
    let reference = source
        .and_then(|s| s.ref_.clone())
        .or_else(|| src.git.as_ref().and_then(|g| g.ref_.clone()));
    let commit = source.and_then(|s| s.revision.commit.clone());
    let mut provenance = vec![
        ("KILN_BUILD_NAME".to_string(), name.clone()),
        ("KILN_BUILD_NAMESPACE".to_string(), namespace.clone()),
    ];
    let mut labels = Vec::new();
    for (key, value) in [
        ("KILN_BUILD_SOURCE", &location),
        ("KILN_BUILD_REFERENCE", &reference),
        ("KILN_BUILD_COMMIT", &commit),
    ] {
        if let Some(v) = value.as_ref().filter(|v| !v.is_empty()) {
            provenance.push((key.to_string(), v.clone()));
        }
    }
    let author = source.and_then(|s| s.revision.author.as_ref()).map(|a| {
        format!(
            "{} <{}>",
            a.name.as_deref().unwrap_or(""),
            a.email.as_deref().unwrap_or("")
        )
        .trim()
        .to_string()
    });
    let date = source.and_then(|s| s.date.clone());
    let message = source
        .and_then(|s| s.revision.message.as_deref())
        .map(super::report::one_line);
    for (key, value) in [
        ("io.kiln.build.commit.author", &author),
        ("io.kiln.build.commit.date", &date),
        ("io.kiln.build.commit.id", &commit),
        ("io.kiln.build.commit.message", &message),
        ("io.kiln.build.commit.ref", &reference),
        ("io.kiln.build.source-location", &location),
        ("io.kiln.build.source-context-dir", &src.context_dir),
    ] {
        if let Some(v) = value.as_ref().filter(|v| !v.is_empty()) {
            labels.push((key.to_string(), v.clone()));
        }
    }
    labels.push(("io.kiln.build.name".to_string(), name.clone()));
    labels.push(("io.kiln.build.namespace".to_string(), namespace.clone()));
    // OpenShift's names beside kiln's, so applications that read them keep working.
    provenance.extend(renamed(&provenance, "KILN_BUILD_", "OPENSHIFT_BUILD_"));
    labels.extend(renamed(&labels, "io.kiln.build.", "io.openshift.build."));
    let output = spec.output.clone().unwrap_or_default();
    for l in &output.image_labels {
        labels.push((l.name.clone(), l.value.clone().unwrap_or_default()));
    }
    provenance.retain(|(_, v)| !v.is_empty());
    let output_ref = build
        .status
        .as_ref()
        .and_then(|s| s.output_docker_image_reference.clone())
        .or_else(|| {
            output
                .to
                .as_ref()
                .filter(|t| t.kind.as_deref() == Some("DockerImage"))
                .and_then(|t| t.name.clone())
        });
    if let Some(o) = &output_ref {
        super::registry::check_reference(o).map_err(|e| {
            Failure::new(
                StatusReason::InvalidOutputReference,
                format!("the output image {o:?} is not an image reference: {e}"),
            )
        })?;
    }
    let volumes = docker
        .volumes
        .iter()
        .flat_map(|v| {
            v.mounts
                .iter()
                .map(|m| (v.name.clone(), m.destination_path.clone()))
        })
        .collect();
    Ok(Plan {
        name,
        namespace,
        context_dir: src.context_dir.clone().filter(|c| !c.is_empty()),
        dockerfile_path: docker
            .dockerfile_path
            .clone()
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| "Dockerfile".into()),
        inline_dockerfile: src.dockerfile.clone().filter(|d| !d.is_empty()),
        edits: Edits {
            from,
            env,
            provenance,
            labels,
        },
        build_args,
        no_cache: docker.no_cache.unwrap_or(false),
        force_pull: docker.force_pull.unwrap_or(false),
        layers: matches!(
            docker.image_optimization_policy.unwrap_or_default(),
            ImageOptimizationPolicy::None
        ),
        target: docker.target.clone().filter(|t| !t.is_empty()),
        volumes,
        post_commit: spec.post_commit.as_ref().and_then(post_commit_argv),
        output: output_ref,
    })
}

fn pairs(
    vars: &[k8s_openapi::api::core::v1::EnvVar],
    field: &str,
    value_from: &dyn Fn(usize) -> Option<String>,
) -> Result<Vec<(String, String)>, Failure> {
    vars.iter()
        .enumerate()
        .map(|(i, v)| {
            if v.value_from.is_some() && v.value.is_none() {
                let value = value_from(i).ok_or_else(|| {
                    Failure::new(
                        StatusReason::UnresolvableEnvironmentVariable,
                        format!(
                            "{field} {:?} uses valueFrom, which the build Pod resolves (it was not resolved here)",
                            v.name
                        ),
                    )
                })?;
                Ok((v.name.clone(), value))
            } else {
                Ok((v.name.clone(), v.value.clone().unwrap_or_default()))
            }
        })
        .collect()
}

/// OpenShift's post-commit rules: `script` runs with `/bin/sh -c` (args become `$1…`), `command` runs
/// with `args`, and `args` alone run as the command.
pub(crate) fn post_commit_argv(hook: &BuildPostCommitSpec) -> Option<Vec<String>> {
    if let Some(script) = hook.script.as_ref().filter(|s| !s.trim().is_empty()) {
        let mut argv = vec![
            "/bin/sh".to_string(),
            "-c".to_string(),
            script.clone(),
            "sh".to_string(),
        ];
        argv.extend(hook.args.iter().cloned());
        return Some(argv);
    }
    let mut argv: Vec<String> = hook.command.clone();
    argv.extend(hook.args.iter().cloned());
    (!argv.is_empty()).then_some(argv)
}

/// The volume directories to bind for RUN steps: (host path under `volumes_dir`, destination).
pub(crate) fn volume_mounts(plan: &Plan, volumes_dir: &Path) -> Vec<(PathBuf, String)> {
    plan.volumes
        .iter()
        .map(|(name, dest)| (volumes_dir.join(name), dest.clone()))
        .collect()
}

/// The pairs whose name starts with `from`, renamed to start with `to`.
fn renamed(pairs: &[(String, String)], from: &str, to: &str) -> Vec<(String, String)> {
    pairs
        .iter()
        .filter_map(|(k, v)| Some((format!("{to}{}", k.strip_prefix(from)?), v.clone())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::common::{GitSourceRevision, SourceControlUser};

    fn build(json: serde_json::Value) -> Build {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn plan_from_build() {
        let b = build(serde_json::json!({
            "apiVersion": "build.kiln.dev/v1alpha1", "kind": "Build",
            "metadata": {"name": "app-3", "namespace": "demo"},
            "spec": {
                "source": {"type": "Git", "git": {"uri": "git://h/app.git", "ref": "main"}, "contextDir": "sub"},
                "strategy": {"type": "Docker", "dockerStrategy": {
                    "from": {"kind": "DockerImage", "name": "reg/base:1"},
                    "env": [{"name": "E", "value": "1"}],
                    "buildArgs": [{"name": "REGISTRY", "value": "r:5000"}],
                    "noCache": true, "imageOptimizationPolicy": "SkipLayers", "target": "builder",
                    "volumes": [{"name": "s", "source": {"type": "Secret"}, "mounts": [{"destinationPath": "/run/s"}]}]
                }},
                "output": {"to": {"kind": "DockerImage", "name": "r:5000/demo/app:latest"},
                           "imageLabels": [{"name": "io.kiln.build.name", "value": "mine"}]},
                "postCommit": {"script": "test -x /app/server"}
            }
        }));
        let info = SourceInfo {
            revision: GitSourceRevision {
                commit: Some("abc".into()),
                author: Some(SourceControlUser {
                    name: Some("A".into()),
                    email: Some("a@x".into()),
                }),
                message: Some("fix\n\nbody".into()),
                ..Default::default()
            },
            ..Default::default()
        };
        let p = plan(&b, Some(&info)).unwrap();
        assert_eq!(p.edits.from.as_deref(), Some("reg/base:1"));
        assert_eq!(p.edits.env, vec![("E".to_string(), "1".to_string())]);
        assert!(p
            .edits
            .provenance
            .contains(&("KILN_BUILD_COMMIT".into(), "abc".into())));
        assert!(p
            .edits
            .provenance
            .contains(&("KILN_BUILD_SOURCE".into(), "git://h/app.git".into())));
        assert!(p
            .edits
            .labels
            .contains(&("io.kiln.build.commit.author".into(), "A <a@x>".into())));
        assert!(p
            .edits
            .labels
            .contains(&("io.kiln.build.commit.message".into(), "fix".into())));
        for (name, value) in [
            ("OPENSHIFT_BUILD_NAME", "app-3"),
            ("OPENSHIFT_BUILD_NAMESPACE", "demo"),
            ("OPENSHIFT_BUILD_SOURCE", "git://h/app.git"),
            ("OPENSHIFT_BUILD_REFERENCE", "main"),
            ("OPENSHIFT_BUILD_COMMIT", "abc"),
        ] {
            assert!(
                p.edits.provenance.contains(&(name.into(), value.into())),
                "{name}: {:?}",
                p.edits.provenance
            );
        }
        for (name, value) in [
            ("io.openshift.build.name", "app-3"),
            ("io.openshift.build.namespace", "demo"),
            ("io.openshift.build.commit.id", "abc"),
            ("io.openshift.build.commit.author", "A <a@x>"),
            ("io.openshift.build.commit.message", "fix"),
            ("io.openshift.build.commit.ref", "main"),
            ("io.openshift.build.source-location", "git://h/app.git"),
            ("io.openshift.build.source-context-dir", "sub"),
        ] {
            assert!(
                p.edits.labels.contains(&(name.into(), value.into())),
                "{name}: {:?}",
                p.edits.labels
            );
        }
        assert_eq!(
            p.edits.labels.last(),
            Some(&("io.kiln.build.name".to_string(), "mine".to_string()))
        );
        assert_eq!(
            p.build_args,
            vec![("REGISTRY".to_string(), "r:5000".to_string())]
        );
        assert!(p.no_cache && !p.layers);
        assert_eq!(p.target.as_deref(), Some("builder"));
        assert_eq!(p.volumes, vec![("s".to_string(), "/run/s".to_string())]);
        assert_eq!(p.output.as_deref(), Some("r:5000/demo/app:latest"));
        assert_eq!(p.context_dir.as_deref(), Some("sub"));
        assert_eq!(
            p.post_commit.unwrap()[..3],
            ["/bin/sh", "-c", "test -x /app/server"]
        );
    }

    #[test]
    fn plan_refuses_unresolved_inputs() {
        let b = build(serde_json::json!({
            "apiVersion": "build.kiln.dev/v1alpha1", "kind": "Build", "metadata": {"name": "a"},
            "spec": {"strategy": {"type": "Docker", "dockerStrategy": {"from": {"kind": "ImageStreamTag", "name": "x:1"}}}}
        }));
        assert_eq!(
            plan(&b, None).unwrap_err().reason,
            StatusReason::InvalidImageReference
        );
        let b = build(serde_json::json!({
            "apiVersion": "build.kiln.dev/v1alpha1", "kind": "Build", "metadata": {"name": "a"},
            "spec": {"strategy": {"type": "Docker", "dockerStrategy": {"env": [{"name": "X", "valueFrom": {"fieldRef": {"fieldPath": "x"}}}]}}}
        }));
        assert_eq!(
            plan(&b, None).unwrap_err().reason,
            StatusReason::UnresolvableEnvironmentVariable
        );
    }

    #[test]
    fn value_from_env_takes_the_value_the_pod_resolved() {
        let b = build(serde_json::json!({
            "apiVersion": "build.kiln.dev/v1alpha1", "kind": "Build", "metadata": {"name": "a"},
            "spec": {"strategy": {"type": "Docker", "dockerStrategy": {
                "env": [{"name": "A", "value": "1"},
                        {"name": "B", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
                        {"name": "C", "value": "3", "valueFrom": {"fieldRef": {"fieldPath": "x"}}}],
                "buildArgs": [{"name": "D", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]}}}
        }));
        // Only env[1] is asked for (a value beside valueFrom wins, as in Kubernetes).
        let resolved = |i: usize| (i == 1).then(|| "from-secret".to_string());
        let err = plan_with(&b, None, &resolved).unwrap_err();
        assert_eq!(err.reason, StatusReason::UnresolvableEnvironmentVariable);
        assert!(err.message.contains("buildArgs \"D\""), "{}", err.message);
        let mut b = b;
        if let Some(d) = b.spec.common.strategy.docker_strategy.as_mut() {
            d.build_args.clear();
        }
        let p = plan_with(&b, None, &resolved).unwrap();
        assert_eq!(
            p.edits.env,
            [("A", "1"), ("B", "from-secret"), ("C", "3")]
                .map(|(n, v)| (n.to_string(), v.to_string()))
        );
    }

    #[test]
    fn image_references_are_checked_with_a_reason() {
        for (from, to, want) in [
            ("busybox:1.36", "127.0.0.1:5000/a/b:latest", None),
            (
                "registry.example/team/base@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                "h/x",
                None,
            ),
            ("-ignored", "h/x", Some(StatusReason::InvalidImageReference)),
            ("Busy Box", "h/x", Some(StatusReason::InvalidImageReference)),
            ("a::b", "h/x", Some(StatusReason::InvalidImageReference)),
            ("busybox", "h/x:bad tag", Some(StatusReason::InvalidOutputReference)),
            ("busybox", "h/UPPER", Some(StatusReason::InvalidOutputReference)),
            ("busybox", "h/x@sha256:short", Some(StatusReason::InvalidOutputReference)),
        ] {
            let b = build(serde_json::json!({
                "apiVersion": "build.kiln.dev/v1alpha1", "kind": "Build", "metadata": {"name": "a"},
                "spec": {"strategy": {"type": "Docker", "dockerStrategy": {"from": {"kind": "DockerImage", "name": from}}},
                         "output": {"to": {"kind": "DockerImage", "name": to}}}
            }));
            let got = plan(&b, None).err().map(|f| f.reason);
            assert_eq!(got, want, "{from} -> {to}");
        }
    }

    #[test]
    fn credentials_in_the_url_never_reach_the_image() {
        let b = build(serde_json::json!({
            "apiVersion": "build.kiln.dev/v1alpha1", "kind": "Build", "metadata": {"name": "a"},
            "spec": {"source": {"type": "Git", "git": {"uri": "https://user:s3cret-tok@h/app.git"}},
                     "strategy": {"type": "Docker"}}
        }));
        let p = plan(&b, None).unwrap();
        let values: Vec<&String> = p
            .edits
            .labels
            .iter()
            .chain(&p.edits.provenance)
            .chain(&p.edits.env)
            .map(|(_, v)| v)
            .collect();
        assert!(values.iter().all(|v| !v.contains("s3cret")), "{values:?}");
        assert!(
            values.iter().any(|v| *v == "https://***@h/app.git"),
            "{values:?}"
        );
    }

    #[test]
    fn plan_refuses_volumes_that_would_bind_host_paths() {
        let long = "v".repeat(64);
        for (name, path, want) in [
            ("/", "/run/s", "volumes[0].name \"/\""),
            ("/dev", "/run/s", "volumes[0].name \"/dev\""),
            ("..", "/run/s", "volumes[0].name \"..\""),
            ("../../../usr/bin", "/run/s", "DNS-1123"),
            (long.as_str(), "/run/s", "1 to 63 characters"),
            ("s", "/", "not be the root directory"),
            ("s", "/dev", "below /dev"),
            ("s", "/proc/1", "below /proc"),
            ("s", "/a/../../etc", "'..'"),
            ("s", "run/s", "absolute"),
        ] {
            let b = build(serde_json::json!({
                "apiVersion": "build.kiln.dev/v1alpha1", "kind": "Build", "metadata": {"name": "a"},
                "spec": {"strategy": {"type": "Docker", "dockerStrategy": {
                    "volumes": [{"name": name, "source": {"type": "Secret", "secret": {"secretName": "x"}},
                                 "mounts": [{"destinationPath": path}]}]}}}
            }));
            let err = plan(&b, None).unwrap_err();
            assert_eq!(err.reason, StatusReason::CannotCreateBuildPodSpec);
            assert!(err.message.contains(want), "{name} {path}: {}", err.message);
        }
    }

    #[test]
    fn post_commit_table() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let cases = [
            (
                BuildPostCommitSpec {
                    script: Some("make test".into()),
                    args: s(&["a"]),
                    ..Default::default()
                },
                Some(s(&["/bin/sh", "-c", "make test", "sh", "a"])),
            ),
            (
                BuildPostCommitSpec {
                    command: s(&["/bin/true"]),
                    args: s(&["x"]),
                    ..Default::default()
                },
                Some(s(&["/bin/true", "x"])),
            ),
            (
                BuildPostCommitSpec {
                    args: s(&["/bin/check"]),
                    ..Default::default()
                },
                Some(s(&["/bin/check"])),
            ),
            (BuildPostCommitSpec::default(), None),
        ];
        for (hook, want) in cases {
            assert_eq!(post_commit_argv(&hook), want);
        }
    }
}
