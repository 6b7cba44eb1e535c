//! Bitbucket Cloud's `repo:push` and Bitbucket Server / Data Center's `repo:refs_changed` payloads
//! (pure).

use serde::Deserialize;

use super::*;

// --- Bitbucket Cloud ----------------------------------------------------------------------------

#[derive(Deserialize)]
pub(super) struct BitbucketCloudPush {
    push: BitbucketChanges,
    #[serde(default)]
    repository: Option<BitbucketRepository>,
}

#[derive(Deserialize)]
pub(super) struct BitbucketRepository {
    #[serde(default)]
    mainbranch: Option<BitbucketBranch>,
}

#[derive(Deserialize)]
pub(super) struct BitbucketBranch {
    name: String,
}

#[derive(Deserialize)]
pub(super) struct BitbucketChanges {
    #[serde(default)]
    changes: Vec<BitbucketChange>,
}

#[derive(Deserialize)]
pub(super) struct BitbucketChange {
    #[serde(default)]
    new: Option<BitbucketRef>,
    #[serde(default)]
    old: Option<BitbucketRef>,
}

#[derive(Deserialize)]
pub(super) struct BitbucketRef {
    #[serde(rename = "type")]
    type_: String,
    name: String,
    #[serde(default)]
    target: Option<BitbucketTarget>,
}

#[derive(Deserialize)]
pub(super) struct BitbucketTarget {
    hash: String,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    author: Option<BitbucketAuthor>,
}

#[derive(Deserialize)]
pub(super) struct BitbucketAuthor {
    #[serde(default)]
    raw: Option<String>,
}

/// `Name <email>` as Bitbucket and git write authors.
pub(super) fn parse_raw_person(raw: &str) -> Option<SourceControlUser> {
    match raw.rsplit_once('<') {
        Some((name, rest)) if rest.ends_with('>') => person(
            Some(name.trim().to_string()).filter(|n| !n.is_empty()),
            Some(rest.trim_end_matches('>').trim().to_string()).filter(|e| !e.is_empty()),
        ),
        _ => person(Some(raw.trim().to_string()).filter(|n| !n.is_empty()), None),
    }
}

fn full_ref(kind: &str, name: &str) -> String {
    match kind {
        "tag" | "TAG" => format!("refs/tags/{name}"),
        _ => format!("refs/heads/{name}"),
    }
}

impl BitbucketCloudPush {
    pub(super) fn into_pushes(self) -> Vec<Push> {
        let default_branch = self.repository.and_then(|r| r.mainbranch).map(|b| b.name);
        self.push
            .changes
            .into_iter()
            .filter_map(|change| {
                let (r, deleted) = match (change.new, change.old) {
                    (Some(new), _) => (new, false),
                    (None, Some(old)) => (old, true),
                    (None, None) => return None,
                };
                let revision = r.target.filter(|_| !deleted).map(|t| GitSourceRevision {
                    commit: Some(t.hash),
                    author: t
                        .author
                        .and_then(|a| a.raw)
                        .and_then(|raw| parse_raw_person(&raw)),
                    committer: None,
                    message: t.message,
                });
                Some(Push {
                    ref_: full_ref(&r.type_, &r.name),
                    deleted,
                    revision,
                    default_branch: default_branch.clone(),
                })
            })
            .collect()
    }
}

// --- Bitbucket Server / Data Center -------------------------------------------------------------

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct BitbucketServerPush {
    #[serde(default)]
    actor: Option<BitbucketServerActor>,
    #[serde(default)]
    changes: Vec<BitbucketServerChange>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct BitbucketServerActor {
    #[serde(default)]
    display_name: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    email_address: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct BitbucketServerChange {
    #[serde(default)]
    ref_id: Option<String>,
    #[serde(default, rename = "ref")]
    ref_: Option<BitbucketServerRef>,
    #[serde(default)]
    to_hash: Option<String>,
    #[serde(default, rename = "type")]
    type_: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct BitbucketServerRef {
    id: String,
}

impl BitbucketServerPush {
    pub(super) fn into_pushes(self) -> Vec<Push> {
        let author = self
            .actor
            .and_then(|a| person(a.display_name.or(a.name), a.email_address));
        self.changes
            .into_iter()
            .filter_map(|c| {
                let ref_ = c.ref_.map(|r| r.id).or(c.ref_id)?;
                let deleted = c.type_.as_deref() == Some("DELETE")
                    || c.to_hash.as_deref().is_some_and(is_zero);
                let revision = c.to_hash.filter(|_| !deleted).map(|h| GitSourceRevision {
                    commit: Some(h),
                    author: author.clone(),
                    committer: None,
                    message: None,
                });
                Some(Push {
                    ref_,
                    deleted,
                    revision,
                    default_branch: None,
                })
            })
            .collect()
    }
}
