//! Which cross-namespace image access a build needs, as OpenShift authorizes it (pure).
//!
//! A build may push to another namespace's ImageStream (or its repository in the internal
//! registry) and may build from, or be triggered by, another namespace's images. OpenShift allows
//! this only when the build's ServiceAccount may `update` (push) or `get` (pull)
//! `imagestreams/layers` in that namespace — what `system:image-pusher` and `system:image-puller`
//! grant, and what the chart's `kiln-image-pusher`/`kiln-image-puller` ClusterRoles grant. The
//! controller asks the API server with a SubjectAccessReview per check before the build Pod
//! exists; access within the build's own namespace needs no check.

use k8s_openapi::api::core::v1::ObjectReference;

use crate::api::{Build, StatusReason, TagRef};
use crate::controller::build::pod::DEFAULT_SERVICE_ACCOUNT;

/// Pushing or pulling.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Access {
    /// Pull: `get imagestreams/layers`.
    Pull,
    /// Push: `update imagestreams/layers`.
    Push,
}

impl Access {
    /// The RBAC verb on `imagestreams/layers`.
    pub(crate) fn verb(self) -> &'static str {
        match self {
            Access::Pull => "get",
            Access::Push => "update",
        }
    }
}

/// Why the build touches another namespace's images.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Purpose {
    /// `spec.output.to`.
    Output,
    /// The strategy's `from`.
    From,
    /// The ImageChange trigger that started it.
    Trigger,
}

/// One access the build's ServiceAccount needs in another namespace.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct AccessCheck {
    /// What the access is for.
    pub(crate) purpose: Purpose,
    /// Push or pull.
    pub(crate) access: Access,
    /// The other namespace.
    pub(crate) namespace: String,
    /// The ImageStream there.
    pub(crate) stream: String,
}

impl AccessCheck {
    /// The Build's reason and message when the check is refused.
    pub(crate) fn refusal(
        &self,
        build_namespace: &str,
        service_account: &str,
    ) -> (StatusReason, String) {
        let (reason, what, role) = match self.purpose {
            Purpose::Output => (
                StatusReason::InvalidOutputReference,
                "push to",
                "image-pusher",
            ),
            Purpose::From => (
                StatusReason::InvalidImageReference,
                "pull from",
                "image-puller",
            ),
            Purpose::Trigger => (
                StatusReason::InvalidImageReference,
                "be triggered by",
                "image-puller",
            ),
        };
        (
            reason,
            format!(
                "service account {build_namespace}/{service_account} may not {what} ImageStream {}/{} \
                 ({} imagestreams/layers is not allowed in namespace {}); an admin of {} can grant \
                 it by binding ClusterRole kiln-{role} to that service account",
                self.namespace,
                self.stream,
                self.access.verb(),
                self.namespace,
                self.namespace,
            ),
        )
    }
}

/// The ServiceAccount the build Pod runs as.
pub(crate) fn service_account(build: &Build) -> String {
    build
        .spec
        .common
        .service_account
        .clone()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| DEFAULT_SERVICE_ACCOUNT.into())
}

/// The namespace and ImageStream a reference names, when it is another namespace's: an
/// ImageStreamTag or ImageStreamImage with a namespace, or a DockerImage pull spec in the
/// internal registry (`<registry>/<namespace>/<stream>[:tag|@digest]`).
fn foreign_stream(
    reference: &ObjectReference,
    own_namespace: &str,
    registry: Option<&str>,
) -> Option<(String, String)> {
    let (namespace, stream) = match reference.kind.as_deref() {
        Some("DockerImage") => {
            let rest = reference
                .name
                .as_deref()?
                .strip_prefix(registry?)?
                .strip_prefix('/')?;
            let (namespace, path) = rest.split_once('/')?;
            let stream = path.split(['@', ':']).next()?;
            (namespace.to_string(), stream.to_string())
        }
        Some("ImageStreamImage") => {
            let name = reference.name.as_deref()?;
            let stream = name.split_once('@').map_or(name, |(s, _)| s);
            let namespace = reference
                .namespace
                .clone()
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| own_namespace.to_string());
            (namespace, stream.to_string())
        }
        _ => {
            let tag = TagRef::from_object_reference(reference, own_namespace)?;
            (tag.namespace, tag.stream)
        }
    };
    (namespace != own_namespace && !stream.is_empty()).then_some((namespace, stream))
}

/// Every cross-namespace access `build` needs, sorted and without duplicates. `registry` is the
/// internal registry, whose repositories belong to the namespaces they are named after.
pub(crate) fn cross_namespace_checks(build: &Build, registry: Option<&str>) -> Vec<AccessCheck> {
    let own = build.metadata.namespace.clone().unwrap_or_default();
    let common = &build.spec.common;
    let mut wanted: Vec<(Purpose, Access, &ObjectReference)> = Vec::new();
    if let Some(to) = common.output.as_ref().and_then(|o| o.to.as_ref()) {
        wanted.push((Purpose::Output, Access::Push, to));
    }
    if let Some(from) = common
        .strategy
        .docker_strategy
        .as_ref()
        .and_then(|d| d.from.as_ref())
    {
        wanted.push((Purpose::From, Access::Pull, from));
    }
    for cause in &build.spec.triggered_by {
        if let Some(from) = cause
            .image_change_build
            .as_ref()
            .and_then(|c| c.from_ref.as_ref())
        {
            wanted.push((Purpose::Trigger, Access::Pull, from));
        }
    }
    let mut checks: Vec<AccessCheck> = wanted
        .into_iter()
        .filter_map(|(purpose, access, reference)| {
            let (namespace, stream) = foreign_stream(reference, &own, registry)?;
            Some(AccessCheck {
                purpose,
                access,
                namespace,
                stream,
            })
        })
        .collect();
    checks.sort();
    checks.dedup();
    checks
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(yaml: &str) -> Build {
        let doc = crate::yaml::read_documents(yaml).unwrap().remove(0);
        serde_json::from_value(doc).unwrap()
    }

    fn check(purpose: Purpose, access: Access, namespace: &str, stream: &str) -> AccessCheck {
        AccessCheck {
            purpose,
            access,
            namespace: namespace.into(),
            stream: stream.into(),
        }
    }

    #[test]
    fn only_other_namespaces_need_a_check() {
        let cases: [(&str, &str, Vec<AccessCheck>); 9] = [
            (
                "own namespace output and from",
                r#"{output: {to: {kind: ImageStreamTag, name: "app:latest"}},
                    strategy: {type: Docker, dockerStrategy: {from: {kind: ImageStreamTag, namespace: a, name: "base:1"}}}}"#,
                vec![],
            ),
            (
                "output to b",
                r#"{output: {to: {kind: ImageStreamTag, namespace: b, name: "app:latest"}}, strategy: {type: Docker}}"#,
                vec![check(Purpose::Output, Access::Push, "b", "app")],
            ),
            (
                "from b",
                r#"{strategy: {type: Docker, dockerStrategy: {from: {kind: ImageStreamTag, namespace: b, name: "base:1"}}}}"#,
                vec![check(Purpose::From, Access::Pull, "b", "base")],
            ),
            (
                "from an ImageStreamImage in b",
                r#"{strategy: {type: Docker, dockerStrategy: {from: {kind: ImageStreamImage, namespace: b, name: "base@sha256:abc"}}}}"#,
                vec![check(Purpose::From, Access::Pull, "b", "base")],
            ),
            (
                "output to b's repository in the internal registry",
                r#"{output: {to: {kind: DockerImage, name: "registry.local:5000/b/app:v1"}}, strategy: {type: Docker}}"#,
                vec![check(Purpose::Output, Access::Push, "b", "app")],
            ),
            (
                "from b's repository by digest",
                r#"{strategy: {type: Docker, dockerStrategy: {from: {kind: DockerImage, name: "registry.local:5000/b/base@sha256:abc"}}}}"#,
                vec![check(Purpose::From, Access::Pull, "b", "base")],
            ),
            (
                "another registry is nobody's namespace",
                r#"{output: {to: {kind: DockerImage, name: "quay.example.com/b/app:v1"}}, strategy: {type: Docker}}"#,
                vec![],
            ),
            (
                "own repository in the internal registry",
                r#"{output: {to: {kind: DockerImage, name: "registry.local:5000/a/app"}}, strategy: {type: Docker}}"#,
                vec![],
            ),
            (
                "triggered by b's tag, pushing to b, pulling from b: one check each",
                r#"{output: {to: {kind: ImageStreamTag, namespace: b, name: "app:latest"}},
                    strategy: {type: Docker, dockerStrategy: {from: {kind: ImageStreamTag, namespace: b, name: "base:1"}}},
                    triggeredBy: [{message: "Image change", imageChangeBuild: {imageID: "x", fromRef: {kind: ImageStreamTag, namespace: b, name: "base:1"}}}]}"#,
                vec![
                    check(Purpose::Output, Access::Push, "b", "app"),
                    check(Purpose::From, Access::Pull, "b", "base"),
                    check(Purpose::Trigger, Access::Pull, "b", "base"),
                ],
            ),
        ];
        for (what, spec, want) in cases {
            let b = build(&format!(
                "apiVersion: build.kiln.dev/v1alpha1\nkind: Build\nmetadata: {{name: x-1, namespace: a}}\nspec: {spec}\n"
            ));
            assert_eq!(
                cross_namespace_checks(&b, Some("registry.local:5000")),
                want,
                "{what}"
            );
        }
    }

    #[test]
    fn a_refusal_names_the_account_the_stream_and_the_grant() {
        let (reason, message) =
            check(Purpose::Output, Access::Push, "b", "app").refusal("a", "builder");
        assert_eq!(reason, StatusReason::InvalidOutputReference);
        assert_eq!(
            message,
            "service account a/builder may not push to ImageStream b/app (update \
             imagestreams/layers is not allowed in namespace b); an admin of b can grant it by \
             binding ClusterRole kiln-image-pusher to that service account"
        );
        let (reason, message) = check(Purpose::From, Access::Pull, "b", "base").refusal("a", "ci");
        assert_eq!(reason, StatusReason::InvalidImageReference);
        assert!(
            message.contains("a/ci may not pull from ImageStream b/base"),
            "{message}"
        );
        assert!(message.contains("kiln-image-puller"), "{message}");
    }
}
