//! `kiln import-image IS[:TAG]`: as `oc import-image`, makes the stream's tag import an external
//! image (creating the stream with `--confirm`), asks the controller to import it now, waits for
//! the import and prints its outcome. The import itself is the controller's (with the namespace's
//! pull secrets); this verb writes only the ImageStream's spec and the request annotation.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Args;
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, PostParams};

use super::Error;
use crate::api::image_stream::{TagImportPolicy, TagReference, IMPORT_REQUEST_ANNOTATION};
use crate::api::{ImageStream, ImageStreamSpec};

/// Arguments of `kiln import-image`.
#[derive(Debug, Args)]
pub(crate) struct ImportImageArgs {
    /// The ImageStream and tag, `IS[:TAG]` (tag `latest` when omitted).
    #[arg(value_parser = stream_and_tag)]
    pub(crate) target: (String, String),
    /// The image to import (`host/repo:tag`); default: the tag's `from`, or `IS:TAG` for a new
    /// stream.
    #[arg(long)]
    pub(crate) from: Option<String>,
    /// Create the stream or tag if missing, or point an existing tag at a different `--from`.
    #[arg(long)]
    pub(crate) confirm: bool,
    /// Import again periodically (`importPolicy.scheduled`).
    #[arg(long)]
    pub(crate) scheduled: bool,
    /// Allow a registry without TLS, or with an unverified certificate (`importPolicy.insecure`).
    #[arg(long)]
    pub(crate) insecure: bool,
    /// Seconds to wait for the controller's import.
    #[arg(long, default_value_t = 60)]
    pub(crate) timeout: u64,
    /// The cluster and namespace (kubectl's `--kubeconfig`, `--context`, `-n`).
    #[command(flatten)]
    pub(crate) cluster: super::cluster::ClusterArgs,
}

/// Parses `IS[:TAG]`.
fn stream_and_tag(text: &str) -> Result<(String, String), String> {
    let (stream, tag) = text.split_once(':').unwrap_or((text, "latest"));
    crate::api::validate::object_name(stream)?;
    crate::api::path_names::image_tag(tag).map_err(|why| format!("tag {tag:?} {why}"))?;
    Ok((stream.to_string(), tag.to_string()))
}

/// What the verb was asked, without the cluster.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Request<'a> {
    /// The stream's namespace.
    pub(crate) namespace: &'a str,
    /// The stream.
    pub(crate) stream: &'a str,
    /// The tag.
    pub(crate) tag: &'a str,
    /// `--from`.
    pub(crate) from: Option<&'a str>,
    /// `--confirm`.
    pub(crate) confirm: bool,
    /// `--scheduled`.
    pub(crate) scheduled: bool,
    /// `--insecure`.
    pub(crate) insecure: bool,
}

/// The ImageStream to write for `request` given the existing one (pure), with the request
/// annotation set to `token`; `Err` is why `oc import-image` would refuse.
pub(crate) fn desired(
    existing: Option<&ImageStream>,
    request: &Request<'_>,
    token: &str,
) -> Result<ImageStream, String> {
    let Request {
        namespace,
        stream,
        tag,
        ..
    } = *request;
    let mut is = match existing {
        Some(is) => is.clone(),
        None if !request.confirm => {
            return Err(format!(
                "ImageStream {namespace}/{stream} does not exist; pass --confirm to create it"
            ))
        }
        None => ImageStream {
            metadata: ObjectMeta {
                name: Some(stream.into()),
                namespace: Some(namespace.into()),
                ..ObjectMeta::default()
            },
            spec: ImageStreamSpec::default(),
            status: None,
        },
    };
    let index = is.spec.tags.iter().position(|t| t.name == tag);
    let default_from = format!("{stream}:{tag}");
    let wanted = |from: &str| ObjectReference {
        kind: Some("DockerImage".into()),
        name: Some(from.into()),
        ..ObjectReference::default()
    };
    let spec_tag = match index {
        Some(i) => &mut is.spec.tags[i],
        None => {
            let from = match (request.from, existing.is_some()) {
                (Some(from), _) => from,
                (None, false) => default_from.as_str(),
                (None, true) => {
                    return Err(format!(
                        "ImageStream {stream} has no tag {tag:?}; pass --from IMAGE to import one"
                    ))
                }
            };
            if existing.is_some() && !request.confirm {
                return Err(format!(
                    "ImageStream {stream} has no tag {tag:?}; pass --confirm to add it importing {from}"
                ));
            }
            is.spec.tags.push(TagReference {
                name: tag.into(),
                from: Some(wanted(from)),
                ..TagReference::default()
            });
            let last = is.spec.tags.len() - 1;
            &mut is.spec.tags[last]
        }
    };
    match (&spec_tag.from, request.from) {
        (None, None) => {
            return Err(format!(
            "tag {tag:?} of {stream} imports nothing (it has no from); pass --from IMAGE --confirm"
        ))
        }
        (Some(current), Some(from))
            if current.kind.as_deref().unwrap_or("DockerImage") != "DockerImage"
                || current.name.as_deref() != Some(from) =>
        {
            if !request.confirm {
                return Err(format!(
                    "tag {tag:?} of {stream} imports {}; pass --confirm to import {from} instead",
                    current.name.as_deref().unwrap_or_default()
                ));
            }
            spec_tag.from = Some(wanted(from));
        }
        (None, Some(from)) => {
            if !request.confirm {
                return Err(format!(
                    "tag {tag:?} of {stream} imports nothing; pass --confirm to import {from}"
                ));
            }
            spec_tag.from = Some(wanted(from));
        }
        _ => {}
    }
    if spec_tag.reference == Some(true)
        && spec_tag.from.as_ref().and_then(|f| f.kind.as_deref()) == Some("DockerImage")
    {
        return Err(format!(
            "tag {tag:?} of {stream} is a reference (reference: true), which is never imported"
        ));
    }
    if request.scheduled || request.insecure {
        let policy = spec_tag
            .import_policy
            .get_or_insert_with(TagImportPolicy::default);
        if request.scheduled {
            policy.scheduled = Some(true);
        }
        if request.insecure {
            policy.insecure = Some(true);
        }
    }
    is.metadata
        .annotations
        .get_or_insert_with(Default::default)
        .insert(IMPORT_REQUEST_ANNOTATION.into(), token.into());
    Ok(is)
}

/// What the controller made of the request, from the stream's status (pure): `Ok` the tag's pull
/// spec (None while it follows a source without an image), `Err` the failed import's
/// `reason: message`; `None` while the controller has not acted on `token` yet.
pub(crate) fn outcome(
    is: &ImageStream,
    tag: &str,
    token: &str,
) -> Option<Result<Option<String>, String>> {
    let status = is.status.as_ref()?;
    if status.observed_import_request.as_deref() != Some(token) {
        return None;
    }
    let list = status.tags.iter().find(|t| t.tag == tag);
    if let Some(failed) = list.and_then(|l| {
        l.conditions
            .iter()
            .find(|c| c.type_ == "ImportSuccess" && c.status == "False")
    }) {
        return Some(Err(format!(
            "{}: {}",
            failed.reason.as_deref().unwrap_or("ImportFailed"),
            failed.message.as_deref().unwrap_or_default()
        )));
    }
    Some(Ok(list
        .and_then(|l| l.items.first())
        .map(|e| e.docker_image_reference.clone())))
}

/// A value the request annotation has not had before.
fn new_token() -> String {
    format!(
        "{}-{}",
        k8s_openapi::jiff::Timestamp::now().as_nanosecond(),
        std::process::id()
    )
}

/// Runs `kiln import-image`.
pub(crate) fn run(args: &ImportImageArgs) -> Result<ExitCode, Error> {
    let runtime = tokio::runtime::Runtime::new().map_err(|source| Error::Io {
        context: "starting the runtime".into(),
        source,
    })?;
    let (stream, tag) = (&args.target.0, &args.target.1);
    let result = runtime.block_on(async {
        let cluster = args.cluster.connect().await?;
        let client = cluster.client.clone();
        let namespace = cluster.namespace.clone();
        let api: Api<ImageStream> = Api::namespaced(client, &namespace);
        let request = Request {
            namespace: &namespace,
            stream,
            tag,
            from: args.from.as_deref(),
            confirm: args.confirm,
            scheduled: args.scheduled,
            insecure: args.insecure,
        };
        let token = new_token();
        write(&api, &request, &token).await?;
        let deadline = Instant::now() + Duration::from_secs(args.timeout);
        loop {
            let is = api.get(stream).await.map_err(Error::Kube)?;
            if let Some(outcome) = outcome(&is, tag, &token) {
                return Ok(outcome);
            }
            if Instant::now() >= deadline {
                return Err(Error::ImportImage(format!(
                    "the controller did not import {namespace}/{stream}:{tag} within {}s (is kiln controller running?)",
                    args.timeout
                )));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })?;
    match result {
        Ok(Some(reference)) => {
            super::write_stdout(&format!(
                "imagestream.image.kiln.dev/{stream} imported\n{stream}:{tag} -> {reference}\n"
            ))?;
            Ok(ExitCode::SUCCESS)
        }
        Ok(None) => {
            super::write_stdout(&format!(
                "imagestream.image.kiln.dev/{stream} updated; {stream}:{tag} has no image yet\n"
            ))?;
            Ok(ExitCode::SUCCESS)
        }
        Err(failure) => Err(Error::ImportImage(format!(
            "importing {stream}:{tag} failed: {failure}"
        ))),
    }
}

/// Creates or replaces the stream as [`desired`] says, retrying a lost race.
async fn write(api: &Api<ImageStream>, request: &Request<'_>, token: &str) -> Result<(), Error> {
    for _ in 0..5 {
        let existing = api.get_opt(request.stream).await.map_err(Error::Kube)?;
        let wanted = desired(existing.as_ref(), request, token).map_err(Error::ImportImage)?;
        let written = match existing {
            None => api.create(&PostParams::default(), &wanted).await,
            Some(_) => {
                api.replace(request.stream, &PostParams::default(), &wanted)
                    .await
            }
        };
        match written {
            Ok(_) => return Ok(()),
            Err(kube::Error::Api(s)) if s.code == 409 => continue,
            Err(e) => return Err(Error::Kube(e)),
        }
    }
    Err(Error::ImportImage(format!(
        "ImageStream {} kept changing while being updated; try again",
        request.stream
    )))
}

#[cfg(test)]
#[path = "import_image_tests.rs"]
mod tests;
