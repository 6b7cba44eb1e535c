//! Recording a pushed image in its ImageStream (I/O around [`super::build_config::history`]).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, PostParams};
use kube::runtime::reflector::ObjectRef;
use kube::ResourceExt;

use super::build_config::history::record_tag_event;
use super::context::{api_error, Context, Error};
use crate::api::{ImageStream, ImageStreamSpec, TagEvent, TagRef};

/// Prepends the TagEvent for `digest` to `tag`, creating the ImageStream if missing (as
/// OpenShift's registry does on push). Idempotent: an image already in the tag's history is not
/// recorded again, so a retried reconcile never records a TagEvent twice.
pub(crate) async fn record_push(ctx: &Context, tag: &TagRef, digest: &str) -> Result<(), Error> {
    let api: Api<ImageStream> = Api::namespaced(ctx.client.clone(), &tag.namespace);
    let registry = ctx.settings.registry.clone().unwrap_or_default();
    let repo = tag.repository(&registry);
    let cached = ctx
        .image_streams
        .get(&ObjectRef::new(&tag.stream).within(&tag.namespace));
    let mut from_cache = cached.map(|s| (*s).clone());
    for _ in 0..10 {
        // The cache first; a stale copy fails the write with 409 and the next attempt reads fresh.
        let current = match from_cache.take() {
            Some(s) => Some(s),
            None => api
                .get_opt(&tag.stream)
                .await
                .map_err(api_error(format!("reading ImageStream {}", tag.stream)))?,
        };
        let mut stream = match current {
            Some(s) => s,
            None => {
                let new = ImageStream {
                    metadata: ObjectMeta {
                        name: Some(tag.stream.clone()),
                        namespace: Some(tag.namespace.clone()),
                        ..ObjectMeta::default()
                    },
                    spec: ImageStreamSpec::default(),
                    status: None,
                };
                match api.create(&PostParams::default(), &new).await {
                    Ok(created) => created,
                    Err(kube::Error::Api(s)) if s.code == 409 => continue,
                    Err(e) => {
                        return Err(api_error(format!("creating ImageStream {}", tag.stream))(e))
                    }
                }
            }
        };
        let mut status = stream.status.clone().unwrap_or_default();
        let already = status
            .tags
            .iter()
            .any(|t| t.tag == tag.tag && t.items.iter().any(|i| i.image == digest));
        status.docker_image_repository = Some(repo.clone());
        if !already {
            let event = TagEvent::pushed(
                &repo,
                digest,
                stream.metadata.generation.unwrap_or(1),
                Timestamp::now(),
            );
            record_tag_event(&mut status, &tag.tag, event, ctx.settings.tag_history_limit);
        }
        if stream.status.as_ref() == Some(&status) {
            return Ok(());
        }
        stream.status = Some(status);
        match api
            .replace_status(&stream.name_any(), &PostParams::default(), &stream)
            .await
        {
            Ok(_) => {
                if !already {
                    ctx.metrics.tag_event();
                }
                return Ok(());
            }
            Err(kube::Error::Api(s)) if s.code == 409 => continue,
            Err(e) => {
                return Err(api_error(format!(
                    "updating ImageStream {} status",
                    tag.stream
                ))(e))
            }
        }
    }
    Err(Error::Conflict(format!("ImageStream {}", tag.stream)))
}
