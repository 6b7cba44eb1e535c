//! `kiln new-build <git-url>[#ref]`: clones the repository shallowly to read its Dockerfile's last
//! `FROM`, generates what `oc new-build` generates ([`generate`]) and prints it (`-o yaml|json`)
//! or creates it with server-side apply.

use std::process::ExitCode;

use clap::{Args, ValueEnum};
use k8s_openapi::api::core::v1::EnvVar;

use super::cluster::object_name;
use super::start_build::name_value;
use crate::builder::{context_dir, source, url_policy};

mod create;
pub(crate) mod generate;

use generate::{Generated, Output, Request, Source, WebhookSecrets};

/// How many characters a generated webhook secret has (as `oc new-build`).
const SECRET_CHARS: usize = 20;

/// The output formats of `-o`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    /// A multi-document YAML stream.
    Yaml,
    /// A `List` in JSON.
    Json,
}

/// Arguments of `kiln new-build`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  # A BuildConfig (and image streams, webhook Secrets) for a repository's Dockerfile, on branch main
  kiln new-build https://github.com/example/app.git#main --context-dir server

  # The same objects as YAML, for a GitOps repository, instead of creating them
  kiln new-build https://github.com/example/app.git -o yaml > app.yaml

  # A Dockerfile given inline, pushing to a registry instead of an image stream
  kiln new-build --name hello -D $'FROM busybox\\nRUN echo hi' --to-docker registry.example.com/team/hello:1

  # A build that takes its source from `kiln start-build --from-dir`
  kiln new-build --binary --name site --strategy docker")]
pub(crate) struct NewBuildArgs {
    /// The git repository to build, `URL[#ref]` (a branch or tag after `#`).
    #[arg(
        value_name = "GIT-URL[#REF]",
        required_unless_present_any = ["dockerfile", "binary"]
    )]
    pub(crate) repository: Option<String>,
    /// The name of the BuildConfig and its output image stream (default: the repository's).
    #[arg(long)]
    pub(crate) name: Option<String>,
    /// Push to this image stream tag, `<stream>[:<tag>]` (default `<name>:latest`).
    #[arg(long, value_name = "IS:TAG")]
    pub(crate) to: Option<String>,
    /// Push to this registry image instead of an image stream.
    #[arg(long = "to-docker", value_name = "REF", conflicts_with = "to")]
    pub(crate) to_docker: Option<String>,
    /// The directory of the repository to build in (where the Dockerfile is).
    #[arg(long = "context-dir", value_name = "DIR")]
    pub(crate) context_dir: Option<String>,
    /// The Dockerfile to build, replacing the repository's (`-` reads standard input).
    #[arg(short = 'D', long, value_name = "TEXT|-")]
    pub(crate) dockerfile: Option<String>,
    /// The build strategy; kiln builds Dockerfiles (`docker`).
    #[arg(long, value_parser = ["docker", "Docker"])]
    pub(crate) strategy: Option<String>,
    /// Build argument `NAME=VALUE` (repeatable); also expanded in `FROM`.
    #[arg(long = "build-arg", value_parser = name_value, value_name = "NAME=VALUE")]
    pub(crate) build_args: Vec<EnvVar>,
    /// Environment variable `NAME=VALUE` for the build (repeatable).
    #[arg(short = 'e', long = "env", value_parser = name_value, value_name = "NAME=VALUE")]
    pub(crate) env: Vec<EnvVar>,
    /// The Secret the build clones a private repository with.
    #[arg(long = "source-secret", value_parser = object_name, value_name = "SECRET")]
    pub(crate) source_secret: Option<String>,
    /// The Secret the build pushes with.
    #[arg(long = "push-secret", value_parser = object_name, value_name = "SECRET")]
    pub(crate) push_secret: Option<String>,
    /// Take the source from `kiln start-build --from-dir|--from-file|--from-archive` (no
    /// repository; no ConfigChange or ImageChange trigger).
    #[arg(long, conflicts_with = "repository")]
    pub(crate) binary: bool,
    /// The base image's registry is plain HTTP or has an untrusted certificate (its import is
    /// insecure).
    #[arg(long = "insecure-registry")]
    pub(crate) insecure_registry: bool,
    /// Print the objects (YAML stream or JSON List) instead of creating them.
    #[arg(short = 'o', long, value_enum)]
    pub(crate) output: Option<Format>,
    /// The cluster and namespace to create them in (kubectl's `--kubeconfig`, `--context`, `-n`).
    #[command(flatten)]
    pub(crate) cluster: super::cluster::ClusterArgs,
    /// The base URL the webhooks are served at (scheme and host), for the URLs printed.
    #[arg(long, env = "KILN_WEBHOOK_URL", default_value = crate::webhook::urls::PLACEHOLDER_BASE)]
    pub(crate) webhook_url: String,
}

/// Why `kiln new-build` failed at run time.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The repository could not be cloned.
    #[error("{0}")]
    Clone(String),
    /// The context directory is not in the repository.
    #[error("{0}")]
    ContextDir(String),
    /// No Dockerfile in the context directory.
    #[error("no Dockerfile found at context dir {dir:?} of {url} ({at}); pass --context-dir DIR for the directory holding it, or --dockerfile TEXT")]
    NoDockerfile {
        /// The context directory (`.` for the root).
        dir: String,
        /// The repository, redacted.
        url: String,
        /// The commit.
        at: String,
    },
    /// The Dockerfile could not be read.
    #[error("cannot read the Dockerfile of {url}: {detail}")]
    ReadDockerfile {
        /// The repository, redacted.
        url: String,
        /// Why.
        detail: String,
    },
    /// The objects could not be generated.
    #[error("{0}")]
    Generate(String),
    /// Applying an object failed.
    #[error("{0}")]
    Apply(String),
}

/// Runs `kiln new-build`.
pub(crate) fn run(args: &NewBuildArgs) -> Result<ExitCode, super::Error> {
    let mut req = request(args)?;
    if req.dockerfile.as_deref() == Some("-") {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text).map_err(|source| {
            super::Error::Io {
                context: "reading the Dockerfile from standard input".into(),
                source,
            }
        })?;
        req.dockerfile = Some(text);
    }
    // Bad flags are reported before anything is cloned.
    generate::name(&req).map_err(usage)?;
    let mut log = String::new();
    let (repo_dockerfile, origin) = read_dockerfile(&req, &mut log)?;
    match args.output {
        Some(format) => {
            let generated = generate(&req, repo_dockerfile.as_deref(), &origin, None)?;
            eprint!("{log}");
            for note in &generated.notes {
                eprintln!("note: {note}");
            }
            super::write_stdout(&render(&generated, format)?)?;
        }
        None => {
            let runtime = tokio::runtime::Runtime::new().map_err(|source| super::Error::Io {
                context: "starting the runtime".into(),
                source,
            })?;
            let text =
                runtime.block_on(create::create(args, &req, repo_dockerfile, &origin, log))?;
            super::write_stdout(&text)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The request the arguments describe; bad combinations are usage errors.
fn request(args: &NewBuildArgs) -> Result<Request, super::Error> {
    let source = match &args.repository {
        Some(url) => {
            let (uri, ref_) = generate::split_ref(url);
            url_policy::check(&uri, url_policy::Mode::Pod).map_err(|e| {
                super::Error::Usage(format!(
                    "{}: {e}; give a URL the cluster can clone",
                    crate::api::validate::redact_url(&uri)
                ))
            })?;
            Source::Git { uri, ref_ }
        }
        None if args.binary => Source::Binary,
        None => Source::Dockerfile,
    };
    let output = match (&args.to, &args.to_docker) {
        (_, Some(reference)) => Output::DockerImage(reference.clone()),
        (Some(to), None) => Output::ImageStreamTag(to.clone()),
        (None, None) => Output::Default,
    };
    if let Some(dir) = &args.context_dir {
        context_dir::normalize(dir)
            .map_err(|e| super::Error::Usage(format!("--context-dir: {e}")))?;
    }
    Ok(Request {
        source,
        name: args.name.clone(),
        output,
        context_dir: args.context_dir.clone(),
        dockerfile: args.dockerfile.clone(),
        env: args.env.clone(),
        build_args: args.build_args.clone(),
        source_secret: args.source_secret.clone(),
        push_secret: args.push_secret.clone(),
        insecure_registry: args.insecure_registry,
    })
}

/// Clones the repository (only when its Dockerfile is needed) and reads the Dockerfile of the
/// context directory; returns it and where it came from.
fn read_dockerfile(req: &Request, log: &mut String) -> Result<(Option<String>, String), Error> {
    let Source::Git { uri, ref_ } = &req.source else {
        return Ok((None, String::new()));
    };
    if req.dockerfile.is_some() {
        return Ok((None, String::new()));
    }
    let shown = crate::api::validate::redact_url(uri);
    let work = tempfile::tempdir()
        .map_err(|e| Error::Clone(format!("creating a directory to clone into: {e}")))?;
    let root = work.path().join("source");
    let env = |name: &str| {
        std::env::var(name)
            .or_else(|_| std::env::var(name.to_ascii_lowercase()))
            .ok()
    };
    let clone = source::CloneRequest {
        url: uri.clone(),
        ref_: ref_.clone(),
        dest: root.clone(),
        proxy: source::choose_proxy(
            uri,
            env("HTTP_PROXY").as_deref(),
            env("HTTPS_PROXY").as_deref(),
            env("NO_PROXY").as_deref(),
        ),
        ..source::CloneRequest::default()
    };
    let info = source::clone(&clone).map_err(|e| {
        let hint = match e {
            source::Error::Unreachable { .. } => "; check the URL and the network (a private repository cannot be read here: pass --dockerfile with its Dockerfile and --source-secret for the build)",
            source::Error::UnknownRef { .. } => "; check the ref after '#'",
            _ => "",
        };
        Error::Clone(format!(
            "{}{hint}",
            crate::api::validate::scrub(&e.to_string(), uri)
        ))
    })?;
    let commit = info.revision.commit.clone().unwrap_or_default();
    let short = commit.get(..12).unwrap_or(&commit).to_string();
    let at = format!("commit {short}");
    let dir_shown = req
        .context_dir
        .clone()
        .filter(|d| !d.is_empty())
        .unwrap_or_else(|| ".".into());
    let dir = context_dir::resolve(
        &root,
        req.context_dir.as_deref().filter(|d| !d.is_empty()),
        &at,
    )
    .map_err(|e| match e {
        context_dir::Error::Missing { dir, at } => Error::ContextDir(format!(
            "context dir {dir:?} does not exist in {shown} at {at}; check --context-dir and the ref after '#'"
        )),
        other => Error::ContextDir(format!("--context-dir: {other} (repository {shown})")),
    })?;
    let text = match context_dir::read_file_inside(&root, &dir, "Dockerfile") {
        Ok(text) => text,
        Err(_) if !dir.join("Dockerfile").exists() => {
            return Err(Error::NoDockerfile {
                dir: dir_shown,
                url: shown,
                at,
            })
        }
        Err(detail) => return Err(Error::ReadDockerfile { url: shown, detail }),
    };
    let origin = format!("the Dockerfile at {dir_shown} of {shown} ({at})");
    log.push_str(&format!(
        "--> Found Dockerfile in {shown} at {at} (context dir {dir_shown})\n"
    ));
    Ok((Some(text), origin))
}

/// Generates the objects; webhook secrets already in the cluster (`existing`) are kept.
fn generate(
    req: &Request,
    repo_dockerfile: Option<&str>,
    origin: &str,
    existing: Option<&WebhookSecrets>,
) -> Result<Generated, super::Error> {
    let secrets = match existing {
        Some(s) => s.clone(),
        None => WebhookSecrets {
            github: random_secret()?,
            generic: random_secret()?,
        },
    };
    generate::generate(req, repo_dockerfile, origin, &secrets).map_err(usage)
}

/// A generation error as a usage error (bad flags: exit 2) or a run-time one.
fn usage(e: generate::Error) -> super::Error {
    use generate::Error as G;
    match e {
        G::InvalidName { .. } | G::NoName(_) | G::InvalidTo { .. } | G::InvalidToDocker { .. } => {
            super::Error::Usage(e.to_string())
        }
        _ => Error::Generate(e.to_string()).into(),
    }
}

/// A random webhook secret: 20 URL-safe characters (15 bytes from the OS, base64url).
fn random_secret() -> Result<String, super::Error> {
    use base64::Engine;
    let mut bytes = [0u8; SECRET_CHARS / 4 * 3];
    getrandom::fill(&mut bytes).map_err(|e| super::Error::Io {
        context: "reading random bytes for the webhook secrets".into(),
        source: std::io::Error::other(e.to_string()),
    })?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// The objects as a YAML stream or a JSON `List`.
fn render(generated: &Generated, format: Format) -> Result<String, super::Error> {
    let docs = generated.documents();
    match format {
        Format::Yaml => {
            crate::yaml::write_documents(&docs).map_err(|e| Error::Generate(e.to_string()).into())
        }
        Format::Json => {
            let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": docs});
            serde_json::to_string_pretty(&list)
                .map(|t| t + "\n")
                .map_err(|e| Error::Generate(e.to_string()).into())
        }
    }
}

#[cfg(test)]
#[path = "new_build_tests.rs"]
mod tests;
