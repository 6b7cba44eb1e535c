//! GitLab's `Push Hook` and `Tag Push Hook` payloads (pure).

use serde::Deserialize;

use super::github::{GitHubPerson, Repository};
use super::*;

#[derive(Deserialize)]
pub(super) struct GitLabPush {
    #[serde(rename = "ref")]
    ref_: String,
    #[serde(default)]
    after: Option<String>,
    #[serde(default)]
    checkout_sha: Option<String>,
    #[serde(default)]
    commits: Vec<GitLabCommit>,
    #[serde(default)]
    project: Option<Repository>,
}

#[derive(Deserialize)]
pub(super) struct GitLabCommit {
    id: String,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    author: Option<GitHubPerson>,
}

impl GitLabPush {
    pub(super) fn into_push(self) -> Push {
        // The newest commit is `checkout_sha`; in `commits[]` it is the last entry (OpenShift
        // takes the first, the oldest).
        let head = self
            .checkout_sha
            .filter(|s| !s.is_empty() && !is_zero(s))
            .or_else(|| self.after.filter(|a| !a.is_empty() && !is_zero(a)));
        let deleted = head.is_none();
        let revision = head.map(|sha| {
            let commit = self.commits.into_iter().rev().find(|c| c.id == sha);
            match commit {
                Some(c) => GitSourceRevision {
                    commit: Some(sha),
                    author: c.author.and_then(GitHubPerson::user),
                    committer: None,
                    message: c.message,
                },
                None => GitSourceRevision {
                    commit: Some(sha),
                    ..GitSourceRevision::default()
                },
            }
        });
        Push {
            ref_: self.ref_,
            deleted,
            revision,
            default_branch: self.project.and_then(|p| p.default_branch),
        }
    }
}
