//! Binary builds from the command line: `kiln start-build BC --from-dir DIR | --from-file FILE |
//! --from-archive ARCHIVE | --from-repo DIR [--commit C]`.
//!
//! The Build is started through instantiate with a Binary source ([`crate::instantiate::
//! BuildRequest::binary`]); then the input is streamed into its Pod's `clone` container over the
//! Pod's `attach` subresource, as the user (RBAC: `create` and `get` on `pods/attach`, which the
//! built-in `edit` role grants). See `docs/binary-builds.md`.

use std::path::PathBuf;

use clap::Args;

use crate::api::common::{BinaryBuildSource, GitSourceRevision, SourceControlUser, SourceRevision};
use crate::api::Build;
use crate::instantiate::BuildRequest;

pub(crate) mod pack;
mod send;

pub(crate) use pack::Input;

/// Why an upload failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The input cannot be read (missing, wrong kind, not a git repository…).
    #[error("{0}")]
    Input(String),
    /// The cluster refused or the connection failed.
    #[error("{0}")]
    Kube(#[source] kube::Error),
    /// The upload did not complete.
    #[error("{0}")]
    Upload(String),
}

/// The binary input flags of `kiln start-build` (at most one).
#[derive(Debug, Default, Args)]
#[group(id = "binary", multiple = false)]
pub(crate) struct UploadArgs {
    /// Upload a directory's contents (gzipped tar) as the build's binary source.
    #[arg(long, value_name = "DIR", conflicts_with = "commit")]
    pub(crate) from_dir: Option<PathBuf>,
    /// Upload one file; the build sees it, under its own name, as its whole source.
    #[arg(long, value_name = "FILE", conflicts_with = "commit")]
    pub(crate) from_file: Option<PathBuf>,
    /// Upload a tar, tar.gz or zip archive as it is; the build unpacks it.
    #[arg(long, value_name = "ARCHIVE", conflicts_with = "commit")]
    pub(crate) from_archive: Option<PathBuf>,
    /// Upload the files git tracks in a repository at HEAD (or at `--commit`).
    #[arg(long, value_name = "DIR")]
    pub(crate) from_repo: Option<PathBuf>,
}

impl UploadArgs {
    /// The input these flags name, with `commit` for `--from-repo`.
    pub(crate) fn input(&self, commit: Option<&str>) -> Option<Input> {
        let commit = commit.map(str::to_string);
        if let Some(d) = &self.from_dir {
            Some(Input::Dir(d.clone()))
        } else if let Some(f) = &self.from_file {
            Some(Input::File(f.clone()))
        } else if let Some(a) = &self.from_archive {
            Some(Input::Archive(a.clone()))
        } else {
            self.from_repo.as_ref().map(|dir| Input::Repo {
                dir: dir.clone(),
                commit,
            })
        }
    }
}

/// Makes `request` a binary build of `input`: the Binary source, and for `--from-repo` the
/// commit's revision (hash, author, committer, message) instead of `--commit`'s bare hash.
pub(crate) fn prepare(request: &mut BuildRequest, input: &Input) -> Result<(), Error> {
    input.check()?;
    request.binary = Some(BinaryBuildSource {
        as_file: input.as_file(),
    });
    if let Some(c) = input.commit()? {
        let user = |(name, email): (String, String)| SourceControlUser {
            name: Some(name),
            email: Some(email),
        };
        request.revision = Some(SourceRevision {
            type_: Some("Git".into()),
            git: Some(GitSourceRevision {
                commit: Some(c.id),
                author: Some(user(c.author)),
                committer: Some(user(c.committer)),
                message: Some(c.message),
            }),
        });
    }
    Ok(())
}

/// Streams `input` into `build`'s clone step; returns the bytes sent.
pub(crate) async fn upload(
    client: &kube::Client,
    build: &Build,
    input: &Input,
) -> Result<u64, Error> {
    send::send(client, build, input).await
}

/// The refusal for a Binary BuildConfig started without input (as `oc start-build`).
pub(crate) fn input_required(build_config: &str) -> String {
    format!(
        "BuildConfig {build_config:?} has a Binary source: start it with --from-dir DIR, \
         --from-file FILE, --from-archive ARCHIVE or --from-repo DIR"
    )
}
