//! References between kiln objects (pure): the ImageStreamTag a trigger, strategy or output names,
//! and the BuildConfig and number a Build belongs to.

use k8s_openapi::api::core::v1::ObjectReference;
use kube::ResourceExt;

use super::build_config::ImageStreamTagReference;
use super::Build;
use crate::naming;

/// An ImageStreamTag named in a trigger or strategy: namespace, stream and tag.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TagRef {
    /// The namespace of the ImageStream.
    pub namespace: String,
    /// The ImageStream's name.
    pub stream: String,
    /// The tag.
    pub tag: String,
}

impl TagRef {
    /// Parses an ImageStreamTag reference (`<stream>:<tag>`, tag `latest` when omitted), resolving
    /// an empty namespace to `default_namespace`. Other kinds give `None`.
    pub fn from_object_reference(r: &ObjectReference, default_namespace: &str) -> Option<Self> {
        if r.kind.as_deref().is_some_and(|k| k != "ImageStreamTag") {
            return None;
        }
        let name = r.name.as_deref()?;
        let (stream, tag) = name.split_once(':').unwrap_or((name, "latest"));
        Some(Self {
            namespace: r
                .namespace
                .clone()
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| default_namespace.to_string()),
            stream: stream.to_string(),
            tag: tag.to_string(),
        })
    }

    /// The `<stream>:<tag>` name.
    pub fn name(&self) -> String {
        format!("{}:{}", self.stream, self.tag)
    }

    /// `<registry>/<namespace>/<stream>`: where the ImageStream's images live.
    pub fn repository(&self, registry: &str) -> String {
        format!("{registry}/{}/{}", self.namespace, self.stream)
    }

    /// `<registry>/<namespace>/<stream>:<tag>`: where a build with this tag as output pushes.
    pub fn pull_spec(&self, registry: &str) -> String {
        format!("{}:{}", self.repository(registry), self.tag)
    }

    /// The reference as written to `status.imageChangeTriggers[].from` of a BuildConfig in
    /// `bc_namespace` (the namespace only when it differs).
    pub fn status_reference(&self, bc_namespace: &str) -> ImageStreamTagReference {
        ImageStreamTagReference {
            namespace: (self.namespace != bc_namespace).then(|| self.namespace.clone()),
            name: self.name(),
        }
    }
}

/// The build number stored on a Build.
pub fn build_number(build: &Build) -> Option<i64> {
    build
        .annotations()
        .get(naming::BUILD_NUMBER_ANNOTATION)?
        .parse()
        .ok()
}

/// The BuildConfig a Build belongs to, as (namespace, name): its controller owner of kind
/// BuildConfig, else its annotation.
pub fn config_of(build: &Build) -> Option<(String, String)> {
    let namespace = build.namespace()?;
    let owner = build
        .owner_references()
        .iter()
        .find(|o| o.kind == "BuildConfig" && o.controller == Some(true))
        .map(|o| o.name.clone())
        .or_else(|| {
            build
                .annotations()
                .get(naming::BUILD_CONFIG_ANNOTATION)
                .cloned()
        })?;
    Some((namespace, owner))
}

/// The `status.config` reference of a Build: its BuildConfig.
pub fn config_reference(build: &Build) -> Option<ObjectReference> {
    let (namespace, name) = config_of(build)?;
    Some(ObjectReference {
        kind: Some("BuildConfig".into()),
        api_version: Some(format!("{}/{}", super::BUILD_GROUP, super::VERSION)),
        namespace: Some(namespace),
        name: Some(name),
        ..ObjectReference::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_references() {
        let cases = [
            (
                Some("ImageStreamTag"),
                "app",
                None,
                Some(("ns", "app", "latest")),
            ),
            (None, "app:v1", Some("other"), Some(("other", "app", "v1"))),
            (
                Some("ImageStreamTag"),
                "app:v1",
                Some(""),
                Some(("ns", "app", "v1")),
            ),
            (Some("DockerImage"), "quay.io/x/app:v1", None, None),
        ];
        for (kind, name, namespace, want) in cases {
            let r = ObjectReference {
                kind: kind.map(Into::into),
                name: Some(name.into()),
                namespace: namespace.map(Into::into),
                ..ObjectReference::default()
            };
            let got = TagRef::from_object_reference(&r, "ns");
            let got = got
                .as_ref()
                .map(|t| (t.namespace.as_str(), t.stream.as_str(), t.tag.as_str()));
            assert_eq!(got, want, "{kind:?} {name} {namespace:?}");
        }
        let tag = TagRef {
            namespace: "ns".into(),
            stream: "app".into(),
            tag: "v1".into(),
        };
        assert_eq!(tag.pull_spec("reg:5000"), "reg:5000/ns/app:v1");
        assert_eq!(tag.repository("reg:5000"), "reg:5000/ns/app");
        assert_eq!(tag.status_reference("ns").namespace, None);
        assert_eq!(
            tag.status_reference("elsewhere").namespace.as_deref(),
            Some("ns")
        );
    }
}
