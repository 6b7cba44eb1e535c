//! What `kiln new-build` generates, as `oc new-build` does (pure: no I/O, the webhook secrets are
//! given): the webhook Secrets, the base-image ImageStream importing the Dockerfile's last `FROM`,
//! the output ImageStream and the BuildConfig, in that order.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{EnvVar, LocalObjectReference, ObjectReference, Secret};
use k8s_openapi::ByteString;
use kube::api::ObjectMeta;
use serde_json::Value;

use crate::api::build_config::{
    BuildTriggerPolicy, BuildTriggerType, ImageChangeTrigger, SecretLocalReference, WebHookTrigger,
};
use crate::api::common::{
    BinaryBuildSource, BuildOutput, BuildSource, BuildSourceType, BuildStrategy, BuildStrategyType,
    DockerBuildStrategy, GitBuildSource,
};
use crate::api::image_stream::ImageLookupPolicy;
use crate::api::{BuildConfig, BuildConfigSpec, CommonSpec, ImageStream, ImageStreamSpec};
use crate::builder::dockerfile;

mod base;
mod names;

use base::{base_image, base_stream};
use names::{bc_name, output_target};

/// The label every generated object carries, with the BuildConfig's name (as `oc new-build`).
pub(crate) const BUILD_LABEL: &str = "build";
/// The annotation naming what generated an object.
pub(crate) const GENERATED_BY_ANNOTATION: &str = "build.kiln.dev/generated-by";
/// Its value for `kiln new-build`.
pub(crate) const GENERATED_BY: &str = "KilnNewBuild";
/// The tag annotation naming the image a base-image tag imports (OpenShift's key).
pub(crate) const IMPORTED_FROM_ANNOTATION: &str = "openshift.io/imported-from";
/// The longest generated name: `oc new-build` leaves room for a build number's suffix.
pub(crate) const MAX_NAME: usize = 58;

/// Why nothing could be generated.
#[derive(Debug, PartialEq, thiserror::Error)]
pub(crate) enum Error {
    /// `--name` is not a valid name.
    #[error("--name {name:?} {reason}")]
    InvalidName {
        /// The name given.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// No name was given and none can be derived.
    #[error("cannot derive a name from {0}; pass --name")]
    NoName(String),
    /// `--to` is not `<stream>[:<tag>]`.
    #[error("--to {to:?} {reason}; write it as <imagestream>[:<tag>], or use --to-docker for a registry image")]
    InvalidTo {
        /// The value given.
        to: String,
        /// What is wrong with it.
        reason: String,
    },
    /// `--to-docker` is not an image reference.
    #[error("--to-docker {to:?} is not an image reference: {reason}")]
    InvalidToDocker {
        /// The value given.
        to: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The Dockerfile cannot be parsed or has no FROM.
    #[error("{origin}: {source}")]
    Dockerfile {
        /// Where the Dockerfile came from.
        origin: String,
        /// The parser's complaint.
        source: dockerfile::Error,
    },
    /// A Git or Dockerfile source without a Dockerfile to read the base image from.
    #[error("no Dockerfile to build: pass --dockerfile, or a repository with a Dockerfile in its context directory")]
    NoDockerfile,
    /// The last FROM is not an image reference.
    #[error("{origin}: the last FROM {image:?} is not an image reference: {reason}")]
    InvalidFrom {
        /// Where the Dockerfile came from.
        origin: String,
        /// The image as expanded.
        image: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The base image's stream would be the output stream: every build would trigger the next.
    #[error("the output image stream {0:?} is also the base image's stream (the last FROM); choose another output with --name or --to")]
    SameStream(String),
    /// The base image's repository gives no usable ImageStream name.
    #[error("cannot name an image stream after the base image {0:?}; build from another image or use --to-docker")]
    BaseName(String),
}

/// Where the source comes from.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Source {
    /// A git repository (`URL#ref`).
    Git {
        /// The repository URL without the `#ref`.
        uri: String,
        /// The branch or tag after `#`.
        ref_: Option<String>,
    },
    /// Only the `--dockerfile` text.
    Dockerfile,
    /// A binary upload at each build start (`--binary`).
    Binary,
}

/// Where the image goes.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Output {
    /// `<name>:latest` in an ImageStream generated with the BuildConfig.
    Default,
    /// `--to <stream>[:<tag>]`, an ImageStream generated with the BuildConfig.
    ImageStreamTag(String),
    /// `--to-docker <reference>`: pushed to a registry; no output ImageStream.
    DockerImage(String),
}

/// What `kiln new-build` was asked for.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Request {
    /// The source.
    pub(crate) source: Source,
    /// `--name`.
    pub(crate) name: Option<String>,
    /// `--to` / `--to-docker`.
    pub(crate) output: Output,
    /// `--context-dir`.
    pub(crate) context_dir: Option<String>,
    /// `--dockerfile`: replaces the repository's Dockerfile.
    pub(crate) dockerfile: Option<String>,
    /// `-e`: the strategy's environment.
    pub(crate) env: Vec<EnvVar>,
    /// `--build-arg`: the strategy's build arguments (also expanded in `FROM`).
    pub(crate) build_args: Vec<EnvVar>,
    /// `--source-secret`.
    pub(crate) source_secret: Option<String>,
    /// `--push-secret`.
    pub(crate) push_secret: Option<String>,
    /// `--insecure-registry`: the base image is imported over plain HTTP or unverified TLS.
    pub(crate) insecure_registry: bool,
}

/// The secrets of the two webhook triggers (random, 20 characters; made by the caller).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct WebhookSecrets {
    /// The GitHub trigger's.
    pub(crate) github: String,
    /// The generic trigger's.
    pub(crate) generic: String,
}

/// The generated objects.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Generated {
    /// The BuildConfig's name.
    pub(crate) name: String,
    /// The webhook Secrets: GitHub's, then the generic trigger's.
    pub(crate) secrets: Vec<Secret>,
    /// The ImageStream importing the last FROM's image, if it names one.
    pub(crate) base: Option<ImageStream>,
    /// The image the last FROM names, as written after expansion.
    pub(crate) base_image: Option<String>,
    /// The output ImageStream (none for `--to-docker`).
    pub(crate) output: Option<ImageStream>,
    /// The BuildConfig.
    pub(crate) build_config: BuildConfig,
    /// What the user should know (a last FROM that is a stage, `scratch`, an unset variable).
    pub(crate) notes: Vec<String>,
}

impl Generated {
    /// Every object as JSON, in apply order: Secrets, base ImageStream, output ImageStream,
    /// BuildConfig.
    pub(crate) fn documents(&self) -> Vec<Value> {
        let mut docs: Vec<Value> = self.secrets.iter().map(to_value).collect();
        docs.extend(self.base.iter().map(to_value));
        docs.extend(self.output.iter().map(to_value));
        docs.push(to_value(&self.build_config));
        docs
    }
}

/// A typed object as JSON (these types always serialize).
fn to_value<T: serde::Serialize>(object: &T) -> Value {
    serde_json::to_value(object).unwrap_or(Value::Null)
}

/// The name of the Secret holding a webhook trigger's secret (`github` or `generic`).
pub(crate) fn webhook_secret_name(name: &str, provider: &str) -> String {
    format!("{name}-{provider}-webhook-secret")
}

/// Splits `URL#ref` into the URL and the ref (an empty ref is none).
pub(crate) fn split_ref(url: &str) -> (String, Option<String>) {
    match url.split_once('#') {
        Some((uri, r)) => (
            uri.to_string(),
            Some(r.to_string()).filter(|r| !r.is_empty()),
        ),
        None => (url.to_string(), None),
    }
}

/// The name of the BuildConfig `req` generates.
pub(crate) fn name(req: &Request) -> Result<String, Error> {
    bc_name(req, output_target(&req.output)?.as_ref())
}

/// Generates the objects for `req`. `repo_dockerfile` is the repository's Dockerfile (read by the
/// caller from the context directory) and `origin` says where it came from, for messages.
pub(crate) fn generate(
    req: &Request,
    repo_dockerfile: Option<&str>,
    origin: &str,
    secrets: &WebhookSecrets,
) -> Result<Generated, Error> {
    let output = output_target(&req.output)?;
    let name = bc_name(req, output.as_ref())?;
    let output = output.unwrap_or_else(|| (name.clone(), "latest".to_string()));
    let (text, origin) = match (&req.dockerfile, repo_dockerfile) {
        (Some(inline), _) => (Some(inline.as_str()), "the --dockerfile text".to_string()),
        (None, Some(repo)) => (Some(repo), origin.to_string()),
        (None, None) => (None, String::new()),
    };
    let binary = req.source == Source::Binary;
    if text.is_none() && !binary {
        return Err(Error::NoDockerfile);
    }
    let mut notes = Vec::new();
    let base_image = match text {
        Some(text) => base_image(text, &req.build_args, &origin, &mut notes)?,
        None => None,
    };
    let base = match &base_image {
        Some(image) => Some(base_stream(&name, image, req.insecure_registry)?),
        None => None,
    };
    let output_stream = match &req.output {
        Output::DockerImage(_) => None,
        _ => Some(&output.0),
    };
    if let (Some((stream, _)), Some(out)) = (&base, output_stream) {
        if stream.metadata.name.as_deref() == Some(out.as_str()) {
            return Err(Error::SameStream(out.clone()));
        }
    }
    let from = base.as_ref().map(|(stream, tag)| ObjectReference {
        kind: Some("ImageStreamTag".into()),
        name: Some(format!(
            "{}:{tag}",
            stream.metadata.name.as_deref().unwrap_or_default()
        )),
        ..ObjectReference::default()
    });
    let to = match &req.output {
        Output::DockerImage(reference) => ObjectReference {
            kind: Some("DockerImage".into()),
            name: Some(reference.clone()),
            ..ObjectReference::default()
        },
        _ => ObjectReference {
            kind: Some("ImageStreamTag".into()),
            name: Some(format!("{}:{}", output.0, output.1)),
            ..ObjectReference::default()
        },
    };
    let mut triggers = vec![
        webhook_trigger(BuildTriggerType::GitHub, &name, "github"),
        webhook_trigger(BuildTriggerType::Generic, &name, "generic"),
    ];
    if !binary {
        triggers.push(trigger(BuildTriggerType::ConfigChange));
        if from.is_some() {
            triggers.push(BuildTriggerPolicy {
                image_change: Some(ImageChangeTrigger::default()),
                ..trigger(BuildTriggerType::ImageChange)
            });
        }
    }
    let mut bc = BuildConfig::new(
        &name,
        BuildConfigSpec {
            triggers,
            common: CommonSpec {
                source: Some(source(req)),
                strategy: BuildStrategy {
                    type_: BuildStrategyType::Docker,
                    docker_strategy: Some(DockerBuildStrategy {
                        from,
                        env: req.env.clone(),
                        build_args: req.build_args.clone(),
                        ..DockerBuildStrategy::default()
                    }),
                },
                output: Some(BuildOutput {
                    to: Some(to),
                    push_secret: req
                        .push_secret
                        .as_ref()
                        .map(|n| LocalObjectReference { name: n.clone() }),
                    ..BuildOutput::default()
                }),
                ..CommonSpec::default()
            },
            ..BuildConfigSpec::default()
        },
    );
    bc.metadata = meta(&name, &name);
    let output_is = output_stream.map(|stream| {
        let mut is = ImageStream::new(
            stream,
            ImageStreamSpec {
                lookup_policy: Some(ImageLookupPolicy { local: false }),
                ..ImageStreamSpec::default()
            },
        );
        is.metadata = meta(stream, &name);
        is
    });
    Ok(Generated {
        secrets: vec![
            webhook_secret(&name, "github", &secrets.github),
            webhook_secret(&name, "generic", &secrets.generic),
        ],
        base: base.map(|(stream, _)| stream),
        base_image,
        output: output_is,
        build_config: bc,
        notes,
        name,
    })
}

/// The source of the BuildConfig.
fn source(req: &Request) -> BuildSource {
    let mut source = BuildSource {
        context_dir: req.context_dir.clone().filter(|c| !c.is_empty()),
        dockerfile: req.dockerfile.clone(),
        source_secret: req
            .source_secret
            .as_ref()
            .map(|n| LocalObjectReference { name: n.clone() }),
        ..BuildSource::default()
    };
    match &req.source {
        Source::Git { uri, ref_ } => {
            source.git = Some(GitBuildSource {
                uri: uri.clone(),
                ref_: ref_.clone(),
                ..GitBuildSource::default()
            });
        }
        Source::Binary => source.binary = Some(BinaryBuildSource::default()),
        Source::Dockerfile => {}
    }
    source.type_ = Some(match &req.source {
        Source::Git { .. } => BuildSourceType::Git,
        Source::Binary => BuildSourceType::Binary,
        Source::Dockerfile => BuildSourceType::Dockerfile,
    });
    source
}

/// A trigger of `type_` without settings.
fn trigger(type_: BuildTriggerType) -> BuildTriggerPolicy {
    BuildTriggerPolicy {
        type_,
        github: None,
        generic: None,
        gitlab: None,
        bitbucket: None,
        image_change: None,
    }
}

/// A webhook trigger whose secret is in the generated Secret.
fn webhook_trigger(type_: BuildTriggerType, name: &str, provider: &str) -> BuildTriggerPolicy {
    let hook = Some(WebHookTrigger {
        secret_reference: Some(SecretLocalReference {
            name: webhook_secret_name(name, provider),
        }),
        ..WebHookTrigger::default()
    });
    let mut policy = trigger(type_);
    match type_ {
        BuildTriggerType::GitHub => policy.github = hook,
        _ => policy.generic = hook,
    }
    policy
}

/// The Secret holding a webhook trigger's secret under `WebHookSecretKey`.
fn webhook_secret(name: &str, provider: &str, value: &str) -> Secret {
    Secret {
        metadata: meta(&webhook_secret_name(name, provider), name),
        type_: Some("Opaque".into()),
        data: Some(BTreeMap::from([(
            crate::webhook::secrets::SECRET_KEY.to_string(),
            ByteString(value.as_bytes().to_vec()),
        )])),
        ..Secret::default()
    }
}

/// Metadata of a generated object: its name, the `build` label and the generated-by annotation.
fn meta(object: &str, build: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(object.to_string()),
        labels: Some(BTreeMap::from([(
            BUILD_LABEL.to_string(),
            build.to_string(),
        )])),
        annotations: Some(BTreeMap::from([(
            GENERATED_BY_ANNOTATION.to_string(),
            GENERATED_BY.to_string(),
        )])),
        ..ObjectMeta::default()
    }
}

#[cfg(test)]
#[path = "generate_tests.rs"]
mod tests;
