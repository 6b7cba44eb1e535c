//! Git source: a shallow clone with libgit2 at a branch, a tag or a commit, and its source info.
//!
//! The remote is listed first (like `git ls-remote`), so an unreachable repository and an unknown ref
//! fail early with a precise message. Only the one ref is fetched, at depth 1; a commit that is not
//! the tip is found by deepening step by step. libgit2 never runs hooks. Submodules are cloned
//! recursively as OpenShift's builder does (`git submodule update --init --recursive`), each one
//! the same way: shallow at its recorded commit, deeper only when that commit is below the tip.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use git2::{AutotagOption, FetchOptions, Oid, ProxyOptions, RemoteRedirect, Repository};

use super::clone_watch::{self, Activity, Phase};
pub use super::git_auth::SourceAuth;
pub(crate) use super::git_auth::{choose_proxy, trust_ca};
use super::{git_auth, url_policy};
use crate::api::common::{GitSourceRevision, SourceControlUser};
use crate::api::contract::{CloneLimits, SourceInfo};
use crate::api::validate::{redact_url, scrub};

mod submodules;

use submodules::update_submodules;

/// Why a clone failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The remote could not be reached or listed.
    #[error("cannot reach repository {url}: {detail}")]
    Unreachable {
        /// The repository URL.
        url: String,
        /// libgit2's message.
        detail: String,
    },
    /// The ref is neither a branch nor a tag of the remote.
    #[error("ref {ref_:?} not found in {url} (branches: {branches})")]
    UnknownRef {
        /// The requested ref.
        ref_: String,
        /// The repository URL.
        url: String,
        /// Up to ten branches the remote has.
        branches: String,
    },
    /// The commit is not reachable from the fetched ref.
    #[error("commit {commit} not found in {url} at {ref_}")]
    UnknownCommit {
        /// The requested commit.
        commit: String,
        /// The repository URL.
        url: String,
        /// The ref searched.
        ref_: String,
    },
    /// The remote sent more than the bound on fetched bytes.
    #[error("the repository {url} sent more than {limit} bytes; the clone was stopped")]
    TooLarge {
        /// The repository URL.
        url: String,
        /// The bound.
        limit: u64,
    },
    /// A submodule could not be cloned (its URL refused, unreachable, or nested too deep).
    #[error("submodule {path}: {detail}")]
    Submodule {
        /// The submodule's path in the superproject.
        path: String,
        /// Why.
        detail: String,
    },
    /// The server stopped answering (see [`CloneRequest::connect_timeout`]).
    #[error("the clone of {url} was given up: {detail}")]
    Stalled {
        /// The repository URL.
        url: String,
        /// Which limit passed.
        detail: String,
    },
    /// Any other git failure.
    #[error("{context}: {source}")]
    Git {
        /// What was being done.
        context: String,
        /// libgit2's error.
        source: git2::Error,
    },
}

fn git(context: impl Into<String>) -> impl FnOnce(git2::Error) -> Error {
    let context = context.into();
    move |source| Error::Git { context, source }
}

/// What to clone and where.
#[derive(Clone, Debug, Default)]
pub struct CloneRequest {
    /// The repository URL (already checked by [`super::url_policy`]).
    pub url: String,
    /// A branch or tag (default: the remote's HEAD).
    pub ref_: Option<String>,
    /// An exact commit to check out.
    pub commit: Option<String>,
    /// The directory to clone into (created; must be empty if it exists).
    pub dest: PathBuf,
    /// Credentials and host-key trust.
    pub auth: SourceAuth,
    /// The proxy to use, already chosen for the URL's scheme and noProxy.
    pub proxy: Option<String>,
    /// Also clone submodules, recursively.
    pub submodules: bool,
    /// Whether submodule URLs may name local paths (`kiln build` on a developer's machine; never
    /// in a build Pod). The superproject's own URL is checked by the caller.
    pub allow_local_paths: bool,
    /// The most bytes one fetch may receive (default [`DEFAULT_MAX_FETCH_BYTES`]).
    pub max_bytes: Option<u64>,
    /// How long connecting and listing the remote may take (default
    /// [`DEFAULT_CONNECT_TIMEOUT`]).
    pub connect_timeout: Option<Duration>,
    /// How long receiving may go without data (default [`DEFAULT_IDLE_TIMEOUT`]).
    pub idle_timeout: Option<Duration>,
    /// The only host the credentials are offered to (default: the host of `url`; a submodule
    /// keeps its superproject's).
    pub credentials_host: Option<String>,
}

impl CloneRequest {
    /// Sets the connect and idle timeouts and the fetched-bytes bound from `limits`.
    pub fn with_limits(mut self, limits: CloneLimits) -> Self {
        self.connect_timeout = Some(limits.connect_timeout);
        self.idle_timeout = Some(limits.idle_timeout);
        self.max_bytes = Some(limits.max_bytes);
        self
    }

    /// The host the source secret's credentials belong to.
    fn own_host(&self) -> Option<String> {
        self.credentials_host
            .clone()
            .or_else(|| url_policy::host(&self.url))
    }
}

/// How deep submodules may nest (a submodule of a submodule is depth 2).
const MAX_SUBMODULE_DEPTH: usize = 8;

/// How long a clone may take by default to connect and list the remote's refs.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = CloneLimits::DEFAULT.connect_timeout;
/// How long a clone may go without data by default while receiving.
pub const DEFAULT_IDLE_TIMEOUT: Duration = CloneLimits::DEFAULT.idle_timeout;

/// The default bound on the bytes one fetch may receive (8 GiB).
pub const DEFAULT_MAX_FETCH_BYTES: u64 = CloneLimits::DEFAULT.max_bytes;

/// Depths tried, in order, to find a commit below the ref's tip (`i32::MAX` unshallows).
const DEEPEN: [i32; 4] = [1, 50, 1000, i32::MAX];

/// Clones `req.url` into `req.dest` and returns the checked-out commit's source info.
///
/// The clone gives up when it is quiet too long ([`clone_watch`]): no list of refs within
/// `connect_timeout`, no data for `idle_timeout` while receiving.
pub fn clone(req: &CloneRequest) -> Result<SourceInfo, Error> {
    let limits = clone_watch::Limits {
        connect: req.connect_timeout.unwrap_or(DEFAULT_CONNECT_TIMEOUT),
        idle: req.idle_timeout.unwrap_or(DEFAULT_IDLE_TIMEOUT),
    };
    let activity = clone_watch::Activity::new();
    let watched = activity.clone();
    let owned = req.clone();
    clone_watch::run(limits, activity, move || clone_nested(&owned, 0, &watched)).unwrap_or_else(
        |stall| {
            Err(Error::Stalled {
                url: redact_url(&req.url),
                detail: stall.to_string(),
            })
        },
    )
}

fn clone_nested(
    req: &CloneRequest,
    depth: usize,
    activity: &Arc<Activity>,
) -> Result<SourceInfo, Error> {
    activity.enter(Phase::Connecting);
    std::fs::create_dir_all(&req.dest).map_err(|e| Error::Git {
        context: format!("creating {}", req.dest.display()),
        source: git2::Error::from_str(&e.to_string()),
    })?;
    let repo = Repository::init(&req.dest).map_err(git("initializing the checkout"))?;
    // Redirects to another host are refused: the connect below reads this (fetches say so in
    // their options). A redirect within the host is still followed.
    repo.config()
        .and_then(|mut c| c.set_bool("http.followRedirects", false))
        .map_err(git("configuring the checkout"))?;
    let mut remote = repo
        .remote("origin", &req.url)
        .map_err(git("adding the remote"))?;

    // ls-remote: reachability, default branch and ref resolution; the same connection then
    // serves the first fetch.
    let mut conn = remote
        .connect_auth(
            git2::Direction::Fetch,
            Some(git_auth::callbacks(&req.auth, req.own_host().as_deref())),
            proxy(req),
        )
        .map_err(|e| Error::Unreachable {
            url: redact_url(&req.url),
            detail: scrub(e.message(), &req.url),
        })?;
    activity.enter(Phase::Transferring);
    let heads: Vec<(String, Oid)> = conn
        .list()
        .map_err(git("listing remote refs"))?
        .iter()
        .map(|h| (h.name().to_string(), h.oid()))
        .collect();
    let default = conn
        .default_branch()
        .ok()
        .and_then(|b| b.as_str().ok().map(str::to_string));
    let wanted = match &req.ref_ {
        Some(r) if !r.is_empty() => resolve_ref(r, &heads),
        _ => default.or_else(|| {
            heads
                .iter()
                .find(|(n, _)| n.starts_with("refs/heads/"))
                .map(|(n, _)| n.clone())
        }),
    };
    let Some(target_ref) = wanted else {
        let branches: Vec<&str> = heads
            .iter()
            .filter_map(|(n, _)| n.strip_prefix("refs/heads/"))
            .take(10)
            .collect();
        return Err(Error::UnknownRef {
            ref_: req.ref_.clone().unwrap_or_else(|| "HEAD".into()),
            url: redact_url(&req.url),
            branches: if branches.is_empty() {
                "none".into()
            } else {
                branches.join(", ")
            },
        });
    };
    let local_ref = format!("refs/kiln/{}", target_ref.trim_start_matches("refs/"));
    let refspec = format!("+{target_ref}:{local_ref}");
    let wanted_commit = req.commit.as_deref().filter(|c| !c.is_empty());
    let mut found = None;
    // libgit2's local transport cannot fetch shallow: local repositories are fetched whole.
    let local = super::url_policy::check(&req.url, super::url_policy::Mode::Local)
        == Ok(super::url_policy::Location::Local);
    let depths: &[i32] = if local { &[0] } else { &DEEPEN };
    fetch_on(conn.remote(), req, &refspec, depths[0], activity)?;
    drop(conn);
    for (round, &depth) in depths.iter().enumerate() {
        if round > 0 {
            fetch(&repo, req, &refspec, depth, activity)?;
        }
        let tip = repo
            .refname_to_id(&local_ref)
            .map_err(git("reading the fetched ref"))?;
        let tip = repo
            .find_object(tip, None)
            .and_then(|o| o.peel_to_commit())
            .map_err(git("peeling the ref"))?;
        match wanted_commit {
            None => {
                found = Some(tip.id());
                break;
            }
            Some(c) => {
                if let Ok(commit) = repo.revparse_single(c).and_then(|o| o.peel_to_commit()) {
                    found = Some(commit.id());
                    break;
                }
                if !repo.is_shallow() {
                    break;
                }
            }
        }
    }
    if let (None, Some(c), None) = (found, wanted_commit, &req.ref_) {
        // No ref was named and the commit is not on the default branch: look in every branch.
        fetch(&repo, req, "+refs/heads/*:refs/kiln/heads/*", 0, activity)?;
        found = repo
            .revparse_single(c)
            .and_then(|o| o.peel_to_commit())
            .ok()
            .map(|c| c.id());
    }
    let Some(oid) = found else {
        return Err(Error::UnknownCommit {
            commit: wanted_commit.unwrap_or_default().to_string(),
            url: redact_url(&req.url),
            ref_: target_ref,
        });
    };
    let commit = repo.find_commit(oid).map_err(git("reading the commit"))?;
    let mut checkout = git2::build::CheckoutBuilder::new();
    checkout.force();
    activity.enter(Phase::Local);
    repo.checkout_tree(commit.as_object(), Some(&mut checkout))
        .map_err(git("checking out"))?;
    repo.set_head_detached(oid).map_err(git("setting HEAD"))?;
    if req.submodules {
        update_submodules(&repo, req, depth, activity)?;
    }
    Ok(source_info(
        &commit,
        &redact_url(&req.url),
        req.ref_.clone().or(Some(short_ref(&target_ref))),
    ))
}

fn fetch(
    repo: &Repository,
    req: &CloneRequest,
    refspec: &str,
    depth: i32,
    activity: &Arc<Activity>,
) -> Result<(), Error> {
    activity.enter(Phase::Transferring);
    let mut remote = repo
        .find_remote("origin")
        .map_err(git("finding the remote"))?;
    fetch_on(&mut remote, req, refspec, depth, activity)
}

/// Fetches one refspec; reuses the remote's connection when it is connected.
fn fetch_on(
    remote: &mut git2::Remote<'_>,
    req: &CloneRequest,
    refspec: &str,
    depth: i32,
    activity: &Arc<Activity>,
) -> Result<(), Error> {
    let limit = req.max_bytes.unwrap_or(DEFAULT_MAX_FETCH_BYTES);
    let exceeded = std::rc::Rc::new(std::cell::Cell::new(false));
    let flag = exceeded.clone();
    let mut callbacks = git_auth::callbacks(&req.auth, req.own_host().as_deref());
    let alive = activity.clone();
    callbacks.sideband_progress(move |_| {
        alive.touch();
        true
    });
    let alive = activity.clone();
    // Returning false from the progress callback makes libgit2 stop the transfer.
    callbacks.transfer_progress(move |p| {
        alive.touch();
        let within = (p.received_bytes() as u64) <= limit;
        flag.set(!within);
        within
    });
    let mut opts = FetchOptions::new();
    opts.remote_callbacks(callbacks)
        .download_tags(AutotagOption::None)
        .follow_redirects(RemoteRedirect::None)
        .depth(depth);
    if let Some(p) = proxy(req) {
        opts.proxy_options(p);
    }
    let result = remote.fetch(&[refspec], Some(&mut opts), None);
    drop(opts);
    result.map_err(|e| {
        if exceeded.get() {
            Error::TooLarge {
                url: redact_url(&req.url),
                limit,
            }
        } else {
            Error::Unreachable {
                url: redact_url(&req.url),
                detail: scrub(e.message(), &req.url),
            }
        }
    })
}

/// Resolves a user's ref against the advertised refs: full name, then branch, then tag.
pub(crate) fn resolve_ref(wanted: &str, heads: &[(String, Oid)]) -> Option<String> {
    let candidates = [
        wanted.to_string(),
        format!("refs/heads/{wanted}"),
        format!("refs/tags/{wanted}"),
    ];
    candidates
        .into_iter()
        .find(|c| c.starts_with("refs/") && heads.iter().any(|(n, _)| n == c))
}

fn short_ref(full: &str) -> String {
    full.strip_prefix("refs/heads/")
        .or_else(|| full.strip_prefix("refs/tags/"))
        .unwrap_or(full)
        .to_string()
}

fn proxy(req: &CloneRequest) -> Option<ProxyOptions<'static>> {
    req.proxy.as_ref().map(|url| {
        let mut p = ProxyOptions::new();
        p.url(url);
        p
    })
}

fn person(sig: &git2::Signature<'_>) -> SourceControlUser {
    SourceControlUser {
        name: sig.name().ok().map(str::to_string),
        email: sig.email().ok().map(str::to_string),
    }
}

fn source_info(commit: &git2::Commit<'_>, url: &str, ref_: Option<String>) -> SourceInfo {
    let time = commit.committer().when();
    let offset = chrono::FixedOffset::east_opt(time.offset_minutes() * 60);
    let date = chrono::DateTime::from_timestamp(time.seconds(), 0)
        .zip(offset)
        .map(|(utc, off)| utc.with_timezone(&off).to_rfc3339());
    SourceInfo {
        location: Some(url.to_string()),
        ref_,
        revision: GitSourceRevision {
            commit: Some(commit.id().to_string()),
            author: Some(person(&commit.author())),
            committer: Some(person(&commit.committer())),
            message: commit.message().ok().map(|m| m.trim_end().to_string()),
        },
        date,
    }
}

#[cfg(test)]
#[path = "source_tests.rs"]
mod tests;
