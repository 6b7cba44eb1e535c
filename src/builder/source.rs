//! Git source: a shallow clone with libgit2 at a branch, a tag or a commit, and its source info.
//!
//! The remote is listed first (like `git ls-remote`), so an unreachable repository and an unknown ref
//! fail early with a precise message. Only the one ref is fetched, at depth 1; a commit that is not
//! the tip is found by deepening step by step. libgit2 never runs hooks. Submodules only on request.

use std::path::{Path, PathBuf};

use git2::{
    AutotagOption, CertificateCheckStatus, Cred, CredentialType, FetchOptions, Oid, ProxyOptions,
    RemoteCallbacks, Repository,
};

use super::report::SourceInfo;
use crate::api::common::SourceControlUser;

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

/// Credentials and trust for a clone, read from the source secret's files.
#[derive(Clone, Debug, Default)]
pub struct SourceAuth {
    /// Basic-auth user name.
    pub username: Option<String>,
    /// Basic-auth password or token.
    pub password: Option<String>,
    /// An SSH private key (PEM/OpenSSH text).
    pub ssh_private_key: Option<String>,
    /// known_hosts lines the SSH host key must match.
    pub known_hosts: Option<String>,
    /// Accept unknown SSH host keys (only when the secret says so explicitly).
    pub insecure_ignore_host_key: bool,
}

impl SourceAuth {
    /// Reads `username`, `password`, `ssh-privatekey`, `known_hosts` and `insecure-ignore-host-key`
    /// from a mounted secret directory; absent files are absent fields.
    pub fn from_dir(dir: &Path) -> Self {
        let read = |name: &str| {
            std::fs::read_to_string(dir.join(name))
                .ok()
                .filter(|s| !s.is_empty())
        };
        Self {
            username: read("username").map(|s| s.trim().to_string()),
            password: read("password")
                .or_else(|| read("token"))
                .map(|s| s.trim_end().to_string()),
            ssh_private_key: read("ssh-privatekey"),
            known_hosts: read("known_hosts"),
            insecure_ignore_host_key: read("insecure-ignore-host-key")
                .is_some_and(|s| s.trim() == "true"),
        }
    }
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
    /// Also check out submodules.
    pub submodules: bool,
}

/// Depths tried, in order, to find a commit below the ref's tip (`i32::MAX` unshallows).
const DEEPEN: [i32; 4] = [1, 50, 1000, i32::MAX];

/// Clones `req.url` into `req.dest` and returns the checked-out commit's source info.
pub fn clone(req: &CloneRequest) -> Result<SourceInfo, Error> {
    std::fs::create_dir_all(&req.dest).map_err(|e| Error::Git {
        context: format!("creating {}", req.dest.display()),
        source: git2::Error::from_str(&e.to_string()),
    })?;
    let repo = Repository::init(&req.dest).map_err(git("initializing the checkout"))?;
    let mut remote = repo
        .remote("origin", &req.url)
        .map_err(git("adding the remote"))?;

    // ls-remote: reachability, default branch and ref resolution in one round trip.
    let (target_ref, advertised) = {
        let conn = remote
            .connect_auth(
                git2::Direction::Fetch,
                Some(callbacks(&req.auth)),
                proxy(req),
            )
            .map_err(|e| Error::Unreachable {
                url: req.url.clone(),
                detail: e.message().to_string(),
            })?;
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
        (wanted, heads)
    };
    let Some(target_ref) = target_ref else {
        let branches: Vec<&str> = advertised
            .iter()
            .filter_map(|(n, _)| n.strip_prefix("refs/heads/"))
            .take(10)
            .collect();
        return Err(Error::UnknownRef {
            ref_: req.ref_.clone().unwrap_or_else(|| "HEAD".into()),
            url: req.url.clone(),
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
    for depth in DEEPEN {
        fetch(&repo, req, &refspec, depth)?;
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
    let Some(oid) = found else {
        return Err(Error::UnknownCommit {
            commit: wanted_commit.unwrap_or_default().to_string(),
            url: req.url.clone(),
            ref_: target_ref,
        });
    };
    let commit = repo.find_commit(oid).map_err(git("reading the commit"))?;
    let mut checkout = git2::build::CheckoutBuilder::new();
    checkout.force();
    repo.checkout_tree(commit.as_object(), Some(&mut checkout))
        .map_err(git("checking out"))?;
    repo.set_head_detached(oid).map_err(git("setting HEAD"))?;
    if req.submodules {
        update_submodules(&repo, req)?;
    }
    Ok(source_info(
        &commit,
        &req.url,
        req.ref_.clone().or(Some(short_ref(&target_ref))),
    ))
}

fn fetch(repo: &Repository, req: &CloneRequest, refspec: &str, depth: i32) -> Result<(), Error> {
    let mut remote = repo
        .find_remote("origin")
        .map_err(git("finding the remote"))?;
    let mut opts = FetchOptions::new();
    opts.remote_callbacks(callbacks(&req.auth))
        .download_tags(AutotagOption::None)
        .depth(depth);
    if let Some(p) = proxy(req) {
        opts.proxy_options(p);
    }
    remote
        .fetch(&[refspec], Some(&mut opts), None)
        .map_err(|e| Error::Unreachable {
            url: req.url.clone(),
            detail: e.message().to_string(),
        })
}

fn update_submodules(repo: &Repository, req: &CloneRequest) -> Result<(), Error> {
    for mut sub in repo.submodules().map_err(git("listing submodules"))? {
        let mut opts = git2::SubmoduleUpdateOptions::new();
        let mut fetch = FetchOptions::new();
        fetch.remote_callbacks(callbacks(&req.auth));
        opts.fetch(fetch);
        let name = sub.name().ok().unwrap_or("?").to_string();
        sub.update(true, Some(&mut opts))
            .map_err(git(format!("updating submodule {name}")))?;
    }
    Ok(())
}

/// Resolves a user's ref against the advertised refs: full name, then branch, then tag.
pub fn resolve_ref(wanted: &str, heads: &[(String, Oid)]) -> Option<String> {
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

fn callbacks(auth: &SourceAuth) -> RemoteCallbacks<'static> {
    let mut cb = RemoteCallbacks::new();
    let creds = auth.clone();
    let mut attempts = 0;
    cb.credentials(move |_url, user_from_url, allowed| {
        attempts += 1;
        if attempts > 3 {
            return Err(git2::Error::from_str(
                "authentication failed: the source secret's credentials were rejected",
            ));
        }
        if allowed.contains(CredentialType::SSH_KEY) {
            if let Some(key) = &creds.ssh_private_key {
                return Cred::ssh_key_from_memory(user_from_url.unwrap_or("git"), None, key, None);
            }
        }
        if allowed.contains(CredentialType::USER_PASS_PLAINTEXT) {
            if let Some(password) = &creds.password {
                let user = creds.username.as_deref().or(user_from_url).unwrap_or("git");
                return Cred::userpass_plaintext(user, password);
            }
        }
        if allowed.contains(CredentialType::USERNAME) {
            return Cred::username(user_from_url.unwrap_or("git"));
        }
        Err(git2::Error::from_str(
            "the repository needs credentials: add a source secret (basic-auth or ssh-privatekey)",
        ))
    });
    let known_hosts = auth.known_hosts.clone();
    let insecure = auth.insecure_ignore_host_key;
    cb.certificate_check(move |cert, host| {
        let Some(hostkey) = cert.as_hostkey().and_then(|h| h.hostkey()) else {
            return Ok(CertificateCheckStatus::CertificatePassthrough);
        };
        if insecure {
            return Ok(CertificateCheckStatus::CertificateOk);
        }
        let encoded = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, hostkey);
        if known_hosts
            .as_deref()
            .is_some_and(|k| known_host_matches(k, host, &encoded))
        {
            Ok(CertificateCheckStatus::CertificateOk)
        } else {
            Err(git2::Error::from_str(&format!(
                "unknown SSH host key for {host}: add it to the source secret's known_hosts"
            )))
        }
    });
    cb
}

/// Whether a known_hosts text lists `host` (or `[host]:port`) with this base64 key.
pub fn known_host_matches(known_hosts: &str, host: &str, key_b64: &str) -> bool {
    known_hosts
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .any(|line| {
            let mut fields = line.split_whitespace();
            let hosts = fields.next().unwrap_or("");
            let _key_type = fields.next();
            let key = fields.next().unwrap_or("");
            key == key_b64
                && hosts.split(',').any(|h| {
                    h == host
                        || h.strip_prefix('[')
                            .and_then(|r| r.split_once("]:"))
                            .is_some_and(|(n, _)| n == host)
                })
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
        commit: Some(commit.id().to_string()),
        author: Some(person(&commit.author())),
        committer: Some(person(&commit.committer())),
        date,
        message: commit.message().ok().map(|m| m.trim_end().to_string()),
    }
}

/// System CA bundles, the first present one is extended with the source secret's `ca.crt`.
const SYSTEM_BUNDLES: [&str; 3] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/cert.pem",
];

/// Trusts `ca` for https clones: writes the system bundle plus `ca` to `bundle` and points
/// `SSL_CERT_FILE` at it (read by libgit2's OpenSSL when it first initializes, so call this before
/// any clone, while the process is single-threaded).
pub fn trust_ca(ca: &Path, bundle: &Path) -> std::io::Result<()> {
    let mut text = SYSTEM_BUNDLES
        .iter()
        .find_map(|p| std::fs::read_to_string(p).ok())
        .unwrap_or_default();
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(&std::fs::read_to_string(ca)?);
    std::fs::write(bundle, text)?;
    std::env::set_var("SSL_CERT_FILE", bundle);
    Ok(())
}

/// Picks the proxy for `url` from OpenShift's `httpProxy`/`httpsProxy`/`noProxy`.
pub fn choose_proxy(
    url: &str,
    http: Option<&str>,
    https: Option<&str>,
    no_proxy: Option<&str>,
) -> Option<String> {
    let lower = url.to_ascii_lowercase();
    let proxy = if lower.starts_with("https://") {
        https
    } else if lower.starts_with("http://") {
        http
    } else {
        None
    }?;
    let host = lower
        .split("://")
        .nth(1)?
        .split('/')
        .next()?
        .rsplit('@')
        .next()?
        .split(':')
        .next()?
        .to_string();
    let bypass = no_proxy
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .any(|entry| {
            entry == "*"
                || host == entry.trim_start_matches('.')
                || host.ends_with(&format!(".{}", entry.trim_start_matches('.')))
        });
    (!bypass && !proxy.is_empty()).then(|| proxy.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_ref_table() {
        let oid = Oid::ZERO_SHA1;
        let heads: Vec<(String, Oid)> = [
            "HEAD",
            "refs/heads/main",
            "refs/heads/v1",
            "refs/tags/v1",
            "refs/tags/v2",
            "refs/pull/1/head",
        ]
        .iter()
        .map(|n| (n.to_string(), oid))
        .collect();
        for (wanted, want) in [
            ("main", Some("refs/heads/main")),
            ("v1", Some("refs/heads/v1")),
            ("v2", Some("refs/tags/v2")),
            ("refs/pull/1/head", Some("refs/pull/1/head")),
            ("nope", None),
            ("HEAD", None),
        ] {
            assert_eq!(resolve_ref(wanted, &heads).as_deref(), want, "{wanted}");
        }
    }

    #[test]
    fn known_hosts_table() {
        let kh = "# c\nexample.com,10.0.0.1 ssh-ed25519 AAAA\n[git.local]:2222 ssh-rsa BBBB\n";
        for (host, key, want) in [
            ("example.com", "AAAA", true),
            ("10.0.0.1", "AAAA", true),
            ("example.com", "BBBB", false),
            ("git.local", "BBBB", true),
            ("other", "AAAA", false),
        ] {
            assert_eq!(known_host_matches(kh, host, key), want, "{host} {key}");
        }
    }

    #[test]
    fn proxy_table() {
        let h = Some("http://p:3128");
        let s = Some("http://sp:3128");
        for (url, no, want) in [
            ("https://github.com/o/r", None, Some("http://sp:3128")),
            ("http://git.corp/r", None, Some("http://p:3128")),
            ("http://git.corp/r", Some("corp"), None),
            ("http://git.corpx/r", Some("corp"), Some("http://p:3128")),
            ("http://git.corp/r", Some(".corp"), None),
            ("https://user@git.corp:8443/r", Some("git.corp"), None),
            ("ssh://git.corp/r", None, None),
            ("https://x/r", Some("*"), None),
        ] {
            assert_eq!(choose_proxy(url, h, s, no).as_deref(), want, "{url} {no:?}");
        }
    }
}
