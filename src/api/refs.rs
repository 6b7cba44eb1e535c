//! References between kiln objects (pure): the ImageStreamTag a trigger, strategy or output names,
//! and the BuildConfig and number a Build belongs to.

use k8s_openapi::api::core::v1::ObjectReference;
use kube::ResourceExt;

use super::build_config::ImageStreamTagReference;
use super::{path_names, validate, Build};
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
    /// an empty namespace to `default_namespace`. Other kinds, and a reference without a name,
    /// give `Ok(None)`; a namespace, stream or tag that could not be one (and so could change the
    /// API path or repository it goes into) gives the reason.
    pub fn parse(r: &ObjectReference, default_namespace: &str) -> Result<Option<Self>, String> {
        if r.kind.as_deref().is_some_and(|k| k != "ImageStreamTag") {
            return Ok(None);
        }
        let Some(name) = r.name.as_deref() else {
            return Ok(None);
        };
        let (stream, tag) = name.split_once(':').unwrap_or((name, "latest"));
        let tag = Self {
            namespace: namespace_or(r, default_namespace),
            stream: stream.to_string(),
            tag: tag.to_string(),
        };
        path_names::check(&[
            ("namespace", &tag.namespace, validate::object_name),
            ("ImageStream name", &tag.stream, validate::object_name),
            ("tag", &tag.tag, path_names::image_tag),
        ])?;
        Ok(Some(tag))
    }

    /// [`TagRef::parse`], with names that could not be an ImageStreamTag's giving `None` too.
    pub fn from_object_reference(r: &ObjectReference, default_namespace: &str) -> Option<Self> {
        Self::parse(r, default_namespace).ok().flatten()
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

/// An ImageStreamImage named in a `from`: namespace, stream and image digest (`<stream>@<digest>`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ImageRef {
    /// The namespace of the ImageStream.
    pub namespace: String,
    /// The ImageStream's name.
    pub stream: String,
    /// The image's digest, `sha256:…`.
    pub digest: String,
}

impl ImageRef {
    /// Parses an ImageStreamImage reference (`<stream>@<digest>`), resolving an empty namespace
    /// to `default_namespace`. Other kinds, and a reference without a name, give `Ok(None)`; a
    /// name without `@`, or a namespace, stream or digest that could not be one, gives the reason.
    pub fn parse(r: &ObjectReference, default_namespace: &str) -> Result<Option<Self>, String> {
        if r.kind.as_deref() != Some("ImageStreamImage") {
            return Ok(None);
        }
        let Some(name) = r.name.as_deref() else {
            return Ok(None);
        };
        let (stream, digest) = name
            .split_once('@')
            .ok_or_else(|| format!("name {name:?} must be <stream>@<digest>"))?;
        let image = Self {
            namespace: namespace_or(r, default_namespace),
            stream: stream.to_string(),
            digest: digest.to_string(),
        };
        path_names::check(&[
            ("namespace", &image.namespace, validate::object_name),
            ("ImageStream name", &image.stream, validate::object_name),
            ("digest", &image.digest, path_names::digest),
        ])?;
        Ok(Some(image))
    }

    /// [`ImageRef::parse`], with names that could not be an ImageStreamImage's giving `None` too.
    pub fn from_object_reference(r: &ObjectReference, default_namespace: &str) -> Option<Self> {
        Self::parse(r, default_namespace).ok().flatten()
    }

    /// The `<stream>@<digest>` name.
    pub fn name(&self) -> String {
        format!("{}@{}", self.stream, self.digest)
    }
}

/// The reference's namespace, or `default_namespace` when it has none.
fn namespace_or(r: &ObjectReference, default_namespace: &str) -> String {
    r.namespace
        .clone()
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| default_namespace.to_string())
}

/// The TagEvent of image `digest` in any tag of a stream's status (newest first per tag), as
/// OpenShift resolves an ImageStreamImage.
pub fn find_image<'a>(
    status: &'a super::ImageStreamStatus,
    digest: &str,
) -> Option<&'a super::TagEvent> {
    status
        .tags
        .iter()
        .flat_map(|t| t.items.iter())
        .find(|e| e.image == digest)
}

/// The current image of `tag` in an ImageStream's status: its newest TagEvent.
pub fn current_image<'a>(
    status: &'a super::ImageStreamStatus,
    tag: &str,
) -> Option<&'a super::TagEvent> {
    status.tags.iter().find(|t| t.tag == tag)?.items.first()
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

    #[test]
    fn image_references() {
        let cases = [
            (
                Some("ImageStreamImage"),
                "base@sha256:ab",
                None,
                Some(("ns", "base", "sha256:ab")),
            ),
            (
                Some("ImageStreamImage"),
                "base@sha256:ab",
                Some("other"),
                Some(("other", "base", "sha256:ab")),
            ),
            (Some("ImageStreamImage"), "base:latest", None, None),
            (Some("ImageStreamImage"), "@sha256:ab", None, None),
            (Some("ImageStreamTag"), "base@sha256:ab", None, None),
            (None, "base@sha256:ab", None, None),
        ];
        for (kind, name, namespace, want) in cases {
            let r = ObjectReference {
                kind: kind.map(Into::into),
                name: Some(name.into()),
                namespace: namespace.map(Into::into),
                ..ObjectReference::default()
            };
            let got = ImageRef::from_object_reference(&r, "ns");
            let got = got
                .as_ref()
                .map(|t| (t.namespace.as_str(), t.stream.as_str(), t.digest.as_str()));
            assert_eq!(got, want, "{kind:?} {name} {namespace:?}");
        }
    }

    #[test]
    fn images_are_found_in_any_tag() {
        use crate::api::image_stream::NamedTagEventList;
        use crate::api::{ImageStreamStatus, TagEvent};
        let event = |image: &str| TagEvent {
            created: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
            ),
            docker_image_reference: format!("reg/ns/s@{image}"),
            image: image.into(),
            generation: 1,
        };
        let status = ImageStreamStatus {
            tags: vec![
                NamedTagEventList {
                    tag: "a".into(),
                    items: vec![event("sha256:2"), event("sha256:1")],
                    conditions: vec![],
                },
                NamedTagEventList {
                    tag: "b".into(),
                    items: vec![event("sha256:3")],
                    conditions: vec![],
                },
            ],
            ..ImageStreamStatus::default()
        };
        for (digest, want) in [
            ("sha256:1", Some("reg/ns/s@sha256:1")),
            ("sha256:3", Some("reg/ns/s@sha256:3")),
            ("sha256:4", None),
        ] {
            assert_eq!(
                find_image(&status, digest).map(|e| e.docker_image_reference.as_str()),
                want
            );
        }
    }
}
