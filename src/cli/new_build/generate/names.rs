//! The names `kiln new-build` gives what it generates, and the `--to` target, checked as `oc
//! new-build` checks them (pure).

use super::{Error, Output, Request, Source, MAX_NAME};

/// `--to` as (stream, tag); None for the default and for `--to-docker` (checked here).
pub(super) fn output_target(output: &Output) -> Result<Option<(String, String)>, Error> {
    match output {
        Output::Default => Ok(None),
        Output::DockerImage(reference) => crate::builder::registry::check_reference(reference)
            .map(|()| None)
            .map_err(|reason| Error::InvalidToDocker {
                to: reference.clone(),
                reason,
            }),
        Output::ImageStreamTag(to) => {
            let invalid = |reason: String| Error::InvalidTo {
                to: to.clone(),
                reason,
            };
            if to.contains('/') || to.contains('@') {
                return Err(invalid("names a registry image".into()));
            }
            let (stream, tag) = to.split_once(':').unwrap_or((to, "latest"));
            crate::api::validate::object_name(stream)
                .map_err(|e| invalid(format!("has an image stream name that {e}")))?;
            if !valid_tag(tag) {
                return Err(invalid(format!(
                    "has tag {tag:?}, which is not 1 to 128 letters, digits, '_', '.' or '-' (not starting with '.' or '-')"
                )));
            }
            Ok(Some((stream.to_string(), tag.to_string())))
        }
    }
}

/// A Docker tag: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
pub(super) fn valid_tag(tag: &str) -> bool {
    let ok = |c: char| c.is_ascii_alphanumeric() || c == '_';
    tag.len() <= 128
        && tag.chars().next().is_some_and(ok)
        && tag.chars().all(|c| ok(c) || c == '.' || c == '-')
}

/// The BuildConfig's name: `--name`, else the repository's, else `--to`'s stream (as `oc`).
pub(super) fn bc_name(req: &Request, to: Option<&(String, String)>) -> Result<String, Error> {
    if let Some(name) = &req.name {
        return check_name(name).map_err(|reason| Error::InvalidName {
            name: name.clone(),
            reason,
        });
    }
    let derived = match &req.source {
        Source::Git { uri, .. } => {
            let base = uri
                .trim_end_matches('/')
                .rsplit(['/', ':'])
                .next()
                .unwrap_or_default();
            let base = base.strip_suffix(".git").unwrap_or(base);
            let simple: String = base
                .to_ascii_lowercase()
                .chars()
                .map(|c| if c == '_' || c == '.' { '-' } else { c })
                .collect();
            check_name(&simple).map_err(|_| Error::NoName(format!("the repository URL {uri:?}")))
        }
        _ => Err(Error::NoName("a source without a repository".into())),
    };
    match (derived, to) {
        (Ok(name), _) => Ok(name),
        (Err(_), Some((stream, _))) if check_name(stream).is_ok() => Ok(stream.clone()),
        (Err(e), _) => Err(e),
    }
}

/// Why `name` cannot name the generated objects: a DNS-1035 label of at most 58 characters.
pub(super) fn check_name(name: &str) -> Result<String, String> {
    crate::api::validate::dns_label(name)?;
    if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        return Err("must start with a lowercase letter".into());
    }
    if name.len() > MAX_NAME {
        return Err(format!("is longer than {MAX_NAME} characters"));
    }
    Ok(name.to_string())
}
