//! The fetch step (the Pod's clone container): git clone or binary archive, then the contextDir check.

use std::io::Read;
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::time::Duration;

use super::input::{IdleLimited, Progress};
use super::report::{Failure, StageClock};
use super::{archive, context_dir, source, url_policy};
use crate::api::build::StageName;
use crate::api::common::BuildSourceType;
use crate::api::contract::{BuildReport, SourceInfo};
use crate::api::{Build, StatusReason};

/// Where the binary source comes from.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Binary {
    /// Read the archive from standard input.
    Stdin,
    /// Read the archive from a file.
    File(PathBuf),
    /// Use a local directory as the source as it is (`kiln build --context`).
    Directory(PathBuf),
}

/// Options of the fetch step.
#[derive(Clone, Debug)]
pub(crate) struct FetchOptions {
    /// The directory the source is checked out or unpacked into.
    pub(crate) source_dir: PathBuf,
    /// The source secret directory (basic-auth, ssh-privatekey, known_hosts).
    pub(crate) source_secret: Option<PathBuf>,
    /// Whether local paths are allowed as repository URLs.
    pub(crate) mode: url_policy::Mode,
    /// The binary source, for `Binary` builds (or to override any source locally).
    pub(crate) binary: Option<Binary>,
    /// The most bytes a binary source may unpack to.
    pub(crate) max_archive_bytes: u64,
    /// Clone submodules, recursively (OpenShift always does).
    pub(crate) submodules: bool,
    /// How long a binary source on standard input may keep the step waiting for data (None:
    /// no bound).
    pub(crate) input_timeout: Option<Duration>,
    /// The git clone's connect and idle timeouts and fetched-bytes bound.
    pub(crate) clone_limits: crate::api::contract::CloneLimits,
}

/// Fetches the source of `build` and checks its contextDir; the report holds FetchInputs and the source info.
pub(crate) fn fetch(build: &Build, opts: &FetchOptions) -> BuildReport {
    let mut clock = StageClock::default();
    clock.start(StageName::FetchInputs);
    let result = fetch_inner(build, opts);
    let mut report = BuildReport {
        stages: clock.into_stages(),
        ..Default::default()
    };
    match result {
        Ok(info) => report.source = Some(info),
        Err(f) => report.fail(&f),
    }
    report
}

fn fetch_inner(build: &Build, opts: &FetchOptions) -> Result<SourceInfo, Failure> {
    let src = build.spec.common.source.clone().unwrap_or_default();
    let source_type = src.type_.unwrap_or(if src.git.is_some() {
        BuildSourceType::Git
    } else {
        BuildSourceType::None
    });
    let fetch_failed = |m: String| Failure::new(StatusReason::FetchSourceFailed, m);
    let (info, at) = match (&opts.binary, source_type) {
        (Some(Binary::Directory(dir)), _) => {
            println!(
                "==> FetchInputs: using the local directory {}",
                dir.display()
            );
            (
                SourceInfo {
                    location: Some(dir.display().to_string()),
                    ..Default::default()
                },
                "the local directory".to_string(),
            )
        }
        (Some(_), _) | (None, BuildSourceType::Binary) => {
            let bin = opts.binary.clone().unwrap_or(Binary::Stdin);
            let as_file = src.binary.as_ref().and_then(|b| b.as_file.clone());
            println!("==> FetchInputs: receiving the binary source");
            let mut waited: Option<(Progress, Duration)> = None;
            let input: Box<dyn Read> = match &bin {
                Binary::Stdin => {
                    // The descriptor itself, unbuffered: `poll` must see every byte not yet read.
                    let fd = std::io::stdin().as_fd().try_clone_to_owned().map_err(|e| {
                        fetch_failed(format!("cannot read the binary source from stdin: {e}"))
                    })?;
                    let stdin = std::fs::File::from(fd);
                    match opts.input_timeout {
                        Some(idle) => {
                            let (reader, progress) = IdleLimited::new(stdin, idle);
                            waited = Some((progress, idle));
                            Box::new(reader)
                        }
                        None => Box::new(stdin),
                    }
                }
                Binary::File(p) => Box::new(std::fs::File::open(p).map_err(|e| {
                    fetch_failed(format!(
                        "cannot open the binary source {}: {e}",
                        p.display()
                    ))
                })?),
                Binary::Directory(_) => {
                    return Err(fetch_failed("internal: directory source".into()))
                }
            };
            let n = archive::extract(
                input,
                &opts.source_dir,
                as_file.as_deref(),
                opts.max_archive_bytes,
            )
            .map_err(|e| {
                let stalled = waited.as_ref().and_then(|(p, idle)| p.stall_message(*idle));
                fetch_failed(stalled.unwrap_or_else(|| match (&e, &waited) {
                    // The uploader went away (killed, disconnected) before the archive ended.
                    (archive::Error::Truncated(detail), Some((p, _))) => format!(
                        "the binary input ended after {} bytes, before its archive was complete: \
                         the upload was interrupted ({detail}); start the build again",
                        p.received()
                    ),
                    _ => format!("binary source refused: {e}"),
                }))
            })?;
            println!("    unpacked {n} entries");
            (
                SourceInfo {
                    location: Some("binary".into()),
                    ..Default::default()
                },
                "the binary source".to_string(),
            )
        }
        (None, BuildSourceType::Git) => {
            let git = src.git.clone().ok_or_else(|| {
                fetch_failed("source.type is Git but source.git is missing".into())
            })?;
            url_policy::check(&git.uri, opts.mode).map_err(|e| fetch_failed(e.to_string()))?;
            if let Some(ca) = opts
                .source_secret
                .as_ref()
                .map(|d| d.join("ca.crt"))
                .filter(|p| p.is_file())
            {
                let bundle = opts.source_dir.with_file_name("ca-bundle.crt");
                source::trust_ca(&ca, &bundle).map_err(|e| {
                    fetch_failed(format!("cannot use the source secret's ca.crt: {e}"))
                })?;
            }
            let commit = build
                .spec
                .common
                .revision
                .as_ref()
                .and_then(|r| r.git.as_ref())
                .and_then(|g| g.commit.clone());
            if let Some(c) = &commit {
                crate::api::validate::commit(c)
                    .map_err(|e| fetch_failed(format!("spec.revision.git.commit {c:?}: {e}")))?;
            }
            let req = source::CloneRequest {
                url: git.uri.clone(),
                ref_: git.ref_.clone().filter(|r| !r.is_empty()),
                commit: commit.filter(|c| !c.is_empty()),
                dest: opts.source_dir.clone(),
                auth: opts
                    .source_secret
                    .as_deref()
                    .map(source::SourceAuth::from_dir)
                    .unwrap_or_default(),
                proxy: source::choose_proxy(
                    &git.uri,
                    git.http_proxy.as_deref(),
                    git.https_proxy.as_deref(),
                    git.no_proxy.as_deref(),
                ),
                submodules: opts.submodules,
                allow_local_paths: opts.mode == url_policy::Mode::Local,
                max_bytes: None,
                credentials_host: None,
                connect_timeout: None,
                idle_timeout: None,
            }
            .with_limits(opts.clone_limits);
            let at = req
                .commit
                .clone()
                .or(req.ref_.clone())
                .unwrap_or_else(|| "the default branch".into());
            println!(
                "==> FetchInputs: cloning {} at {at}",
                crate::api::validate::redact_url(&git.uri)
            );
            let info = source::clone(&req).map_err(|e| {
                fetch_failed(crate::api::validate::scrub(&clone_message(&e), &git.uri))
            })?;
            println!(
                "    commit {} {}",
                info.revision.commit.as_deref().unwrap_or("?"),
                info.revision
                    .message
                    .as_deref()
                    .map(super::report::one_line)
                    .unwrap_or_default()
            );
            let at = info.revision.commit.clone().unwrap_or(at);
            (info, format!("commit {at}"))
        }
        (None, _) => {
            std::fs::create_dir_all(&opts.source_dir)
                .map_err(|e| fetch_failed(format!("creating the workspace: {e}")))?;
            (SourceInfo::default(), "the empty source".to_string())
        }
    };
    let root = match &opts.binary {
        Some(Binary::Directory(dir)) => dir.clone(),
        _ => opts.source_dir.clone(),
    };
    context_dir::resolve(
        &root,
        src.context_dir.as_deref().filter(|c| !c.is_empty()),
        &at,
    )
    .map_err(|e| Failure::new(StatusReason::InvalidContextDirectory, e.to_string()))?;
    Ok(info)
}

fn clone_message(e: &source::Error) -> String {
    match e {
        source::Error::Unreachable { .. } => {
            format!("{e}; check source.git.uri, the network and the source secret")
        }
        source::Error::UnknownRef { .. } => format!("{e}; check source.git.ref"),
        _ => e.to_string(),
    }
}
