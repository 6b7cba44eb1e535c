//! GitHub's `push` payload (pure).

use serde::Deserialize;

use super::*;

#[derive(Deserialize)]
pub(super) struct GitHubPush {
    #[serde(rename = "ref")]
    ref_: String,
    #[serde(default)]
    after: Option<String>,
    #[serde(default)]
    deleted: bool,
    #[serde(default)]
    head_commit: Option<GitHubCommit>,
    #[serde(default)]
    repository: Option<Repository>,
}

#[derive(Deserialize)]
pub(super) struct GitHubCommit {
    id: String,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    author: Option<GitHubPerson>,
    #[serde(default)]
    committer: Option<GitHubPerson>,
}

#[derive(Deserialize)]
pub(super) struct GitHubPerson {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    email: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct Repository {
    #[serde(default)]
    pub(super) default_branch: Option<String>,
}

impl GitHubPerson {
    pub(super) fn user(self) -> Option<SourceControlUser> {
        person(self.name, self.email)
    }
}

impl GitHubPush {
    pub(super) fn into_push(self) -> Push {
        let deleted = self.deleted || self.after.as_deref().is_some_and(is_zero);
        let revision = match self.head_commit {
            Some(c) if !deleted => Some(GitSourceRevision {
                commit: Some(c.id),
                author: c.author.and_then(GitHubPerson::user),
                committer: c.committer.and_then(GitHubPerson::user),
                message: c.message,
            }),
            _ => self
                .after
                .filter(|a| !is_zero(a))
                .map(|a| GitSourceRevision {
                    commit: Some(a),
                    ..GitSourceRevision::default()
                }),
        };
        Push {
            ref_: self.ref_,
            deleted,
            revision: if deleted { None } else { revision },
            default_branch: self.repository.and_then(|r| r.default_branch),
        }
    }
}
