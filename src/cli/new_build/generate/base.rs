//! The base image of a generated BuildConfig: the Dockerfile's last `FROM`, and the ImageStream
//! importing it (pure).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{EnvVar, ObjectReference};

use super::{meta, Error, IMPORTED_FROM_ANNOTATION};
use crate::api::image_stream::{ImageLookupPolicy, TagImportPolicy, TagReference};
use crate::api::{ImageStream, ImageStreamSpec};
use crate::builder::dockerfile::{self, LastFrom};

/// The image the last FROM names, or None with a note saying why there is none.
pub(super) fn base_image(
    text: &str,
    build_args: &[EnvVar],
    origin: &str,
    notes: &mut Vec<String>,
) -> Result<Option<String>, Error> {
    let args: Vec<(String, String)> = build_args
        .iter()
        .map(|a| (a.name.clone(), a.value.clone().unwrap_or_default()))
        .collect();
    let last = dockerfile::last_from(text, &args).map_err(|source| Error::Dockerfile {
        origin: origin.to_string(),
        source,
    })?;
    let consequence = "so no base image stream and no ImageChange trigger are generated";
    match last {
        LastFrom::Image(image) => {
            crate::builder::registry::check_reference(&image).map_err(|reason| {
                Error::InvalidFrom {
                    origin: origin.to_string(),
                    image: image.clone(),
                    reason,
                }
            })?;
            Ok(Some(image))
        }
        LastFrom::Stage(stage) => {
            notes.push(format!(
                "the last FROM of {origin} is the stage {stage:?}, {consequence}"
            ));
            Ok(None)
        }
        LastFrom::Scratch => {
            notes.push(format!(
                "the last FROM of {origin} is scratch, {consequence}"
            ));
            Ok(None)
        }
        LastFrom::Unresolved(image) => {
            notes.push(format!(
                "the last FROM of {origin} is {image:?}, which names a variable no ARG default or --build-arg sets, {consequence}"
            ));
            Ok(None)
        }
    }
}

/// The ImageStream importing `image` (named after its repository's last component, tag its tag
/// or `latest`) and the tag.
pub(super) fn base_stream(
    name: &str,
    image: &str,
    insecure: bool,
) -> Result<(ImageStream, String), Error> {
    let (repository, tag) = split_image(image);
    let stream: String = repository
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .chars()
        .map(|c| if c == '_' { '-' } else { c })
        .collect();
    crate::api::validate::object_name(&stream).map_err(|_| Error::BaseName(image.to_string()))?;
    let tag = tag.unwrap_or("latest").to_string();
    let mut is = ImageStream::new(
        &stream,
        ImageStreamSpec {
            lookup_policy: Some(ImageLookupPolicy { local: false }),
            tags: vec![TagReference {
                name: tag.clone(),
                annotations: Some(BTreeMap::from([(
                    IMPORTED_FROM_ANNOTATION.to_string(),
                    image.to_string(),
                )])),
                from: Some(ObjectReference {
                    kind: Some("DockerImage".into()),
                    name: Some(image.to_string()),
                    ..ObjectReference::default()
                }),
                import_policy: Some(TagImportPolicy {
                    insecure: insecure.then_some(true),
                    ..TagImportPolicy::default()
                }),
                ..TagReference::default()
            }],
            ..ImageStreamSpec::default()
        },
    );
    is.metadata = meta(&stream, name);
    Ok((is, tag))
}

/// Splits `[host[:port]/]repo[:tag][@digest]` into the repository and the tag.
pub(super) fn split_image(image: &str) -> (&str, Option<&str>) {
    let without_digest = image.split_once('@').map_or(image, |(r, _)| r);
    let last_slash = without_digest.rfind('/').map_or(0, |i| i + 1);
    match without_digest[last_slash..].rfind(':') {
        Some(colon) => {
            let at = last_slash + colon;
            (&without_digest[..at], Some(&without_digest[at + 1..]))
        }
        None => (without_digest, None),
    }
}
