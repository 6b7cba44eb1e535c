//! Submodules, cloned recursively as OpenShift's builder does (`git submodule update --init
//! --recursive`): each at its recorded commit, its relative URL resolved against the
//! superproject's, checked by the same URL policy and limits as the superproject.

use std::sync::Arc;

use git2::Repository;

use super::{clone_nested, git, Activity, CloneRequest, Error, MAX_SUBMODULE_DEPTH};
use crate::api::validate::redact_url;
use crate::builder::url_policy;

/// Clones every submodule of HEAD's tree at its recorded commit into its path, recursively.
pub(super) fn update_submodules(
    repo: &Repository,
    req: &CloneRequest,
    depth: usize,
    activity: &Arc<Activity>,
) -> Result<(), Error> {
    let Some(workdir) = repo.workdir().map(std::path::Path::to_path_buf) else {
        return Ok(());
    };
    let mode = if req.allow_local_paths {
        url_policy::Mode::Local
    } else {
        url_policy::Mode::Pod
    };
    for sub in repo.submodules().map_err(git("listing submodules"))? {
        let path = sub.path().to_path_buf();
        let shown = path.display().to_string();
        let failed = |detail: String| Error::Submodule {
            path: shown.clone(),
            detail,
        };
        // Only gitlinks of the checked-out tree: a .gitmodules entry without one is not cloned.
        let Some(commit) = sub.head_id() else {
            continue;
        };
        if !path
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)))
        {
            return Err(failed("the path must stay inside the repository".into()));
        }
        if depth + 1 >= MAX_SUBMODULE_DEPTH {
            return Err(failed(format!(
                "submodules nest deeper than {MAX_SUBMODULE_DEPTH} levels"
            )));
        }
        let url = sub
            .url()
            .ok()
            .flatten()
            .map(|u| submodule_url(&req.url, u))
            .ok_or_else(|| failed("no url in .gitmodules".into()))?;
        url_policy::check(&url, mode).map_err(|e| failed(e.to_string()))?;
        let child = CloneRequest {
            url,
            ref_: None,
            commit: Some(commit.to_string()),
            dest: workdir.join(&path),
            credentials_host: req.own_host(),
            ..req.clone()
        };
        println!(
            "    submodule {shown}: {} at {commit}",
            redact_url(&child.url)
        );
        clone_nested(&child, depth + 1, activity).map_err(|e| match e {
            nested @ Error::Submodule { .. } => nested,
            other => failed(other.to_string()),
        })?;
    }
    Ok(())
}

/// A submodule's URL as git resolves it: `./` and `../` relative to the superproject's remote
/// URL (each `../` drops one path component; scp-like `host:path` URLs keep their colon).
pub(super) fn submodule_url(parent: &str, url: &str) -> String {
    if !(url.starts_with("./") || url.starts_with("../")) {
        return url.to_string();
    }
    let mut base = parent.trim_end_matches('/').to_string();
    let mut rest = url;
    loop {
        if let Some(r) = rest.strip_prefix("./") {
            rest = r;
        } else if let Some(r) = rest.strip_prefix("../") {
            // The authority of scheme://host/ is not a path component.
            let floor = base.find("://").map_or(0, |i| i + 3);
            match base[floor..].rfind(['/', ':']) {
                Some(i) => {
                    base.truncate(floor + i + usize::from(base[floor + i..].starts_with(':')))
                }
                None => base.truncate(floor),
            }
            rest = r;
        } else {
            break;
        }
    }
    if base.ends_with(':') || base.is_empty() {
        format!("{base}{rest}")
    } else {
        format!("{base}/{rest}")
    }
}
