//! Which repository URLs a build may clone: http(s), ssh and git only in the Pod; local paths too on
//! a developer's machine. `ext::`/`fd::` transports and option-like hosts are always refused.

/// Where the clone runs, which decides whether local paths are allowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Inside a build Pod: remote URLs only.
    Pod,
    /// `kiln build` on a developer's machine: local paths and `file://` too.
    Local,
}

/// What kind of location a URL names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Location {
    /// A remote repository (http, https, ssh, git, or scp-like `user@host:path`).
    Remote,
    /// A repository on the local file system.
    Local,
}

/// Why a URL is refused.
#[derive(Debug, PartialEq, thiserror::Error)]
pub(crate) enum Error {
    /// The URL is empty.
    #[error("the repository URL is empty")]
    Empty,
    /// A scheme other than http, https, ssh or git.
    #[error(
        "repository URL scheme {0:?} is not allowed (use https://, http://, ssh:// or git://)"
    )]
    Scheme(String),
    /// A git remote-helper transport such as `ext::` that runs commands.
    #[error("repository URL transport {0:?} is not allowed")]
    Transport(String),
    /// A host that starts with `-` (it would be read as an option).
    #[error("repository host {0:?} is not allowed")]
    OptionLikeHost(String),
    /// Credentials in the URL's user part.
    #[error("{}", crate::api::validate::URL_CREDENTIALS_MESSAGE)]
    Credentials,
    /// A local path or `file://` URL inside the Pod.
    #[error("local repository paths are not allowed in a build Pod: {0:?}")]
    LocalPath(String),
}

/// Checks a repository URL against the policy of `mode`.
pub(crate) fn check(url: &str, mode: Mode) -> Result<Location, Error> {
    let url = url.trim();
    if url.is_empty() {
        return Err(Error::Empty);
    }
    if url.starts_with('-') {
        return Err(Error::OptionLikeHost(url.to_string()));
    }
    if crate::api::validate::url_credentials(url).is_some() {
        return Err(Error::Credentials);
    }
    if let Some((scheme, rest)) = url.split_once("://") {
        let scheme_lc = scheme.to_ascii_lowercase();
        if scheme_lc.contains("::") {
            return Err(Error::Transport(scheme.to_string()));
        }
        return match scheme_lc.as_str() {
            "http" | "https" | "ssh" | "git" | "git+ssh" | "ssh+git" => {
                let authority = rest.split('/').next().unwrap_or("");
                let host = authority.rsplit('@').next().unwrap_or("");
                if host.is_empty() || host.starts_with('-') {
                    Err(Error::OptionLikeHost(host.to_string()))
                } else {
                    Ok(Location::Remote)
                }
            }
            "file" => local(url, mode),
            _ => Err(Error::Scheme(scheme.to_string())),
        };
    }
    if let Some((transport, _)) = url.split_once("::") {
        if !transport.contains('/') {
            return Err(Error::Transport(transport.to_string()));
        }
    }
    // scp-like syntax: [user@]host:path, where host has no slash before the colon.
    if let Some((before, _)) = url.split_once(':') {
        if !before.contains('/') && !before.is_empty() {
            let host = before.rsplit('@').next().unwrap_or("");
            if host.is_empty() || host.starts_with('-') {
                return Err(Error::OptionLikeHost(host.to_string()));
            }
            return Ok(Location::Remote);
        }
    }
    local(url, mode)
}

/// The host a repository URL names, lower-cased, without user or port (`https://u@Host:8443/r`
/// → `host`; scp-like `git@host:r` → `host`; `[::1]` → `::1`); None for local paths.
pub(crate) fn host(url: &str) -> Option<String> {
    let url = url.trim();
    let authority = match url.split_once("://") {
        Some((scheme, rest)) if !scheme.eq_ignore_ascii_case("file") => {
            rest.split(['/', '?', '#']).next()?
        }
        Some(_) => return None,
        None => {
            let (before, _) = url.split_once(':')?;
            if before.contains('/') || before.is_empty() {
                return None;
            }
            before
        }
    };
    let host_port = authority.rsplit('@').next()?;
    let host = match host_port.strip_prefix('[') {
        Some(bracketed) => bracketed.split(']').next()?,
        None => host_port.split(':').next()?,
    };
    (!host.is_empty()).then(|| host.to_ascii_lowercase())
}

fn local(url: &str, mode: Mode) -> Result<Location, Error> {
    match mode {
        Mode::Local => Ok(Location::Local),
        Mode::Pod => Err(Error::LocalPath(url.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts() {
        for (url, want) in [
            ("https://github.com/o/r.git", Some("github.com")),
            ("https://u@GitHub.com:8443/o/r.git", Some("github.com")),
            ("http://127.0.0.1:8080/r.git", Some("127.0.0.1")),
            ("ssh://git@[::1]:22/r.git", Some("::1")),
            ("git://h?x", Some("h")),
            ("git@host.example:o/r.git", Some("host.example")),
            ("file:///srv/r.git", None),
            ("/srv/r.git", None),
            ("./r", None),
            ("https:///r", None),
        ] {
            assert_eq!(host(url).as_deref(), want, "{url}");
        }
    }

    #[test]
    fn policy_table() {
        use Location::*;
        type Want = Result<Location, &'static str>;
        let cases: &[(&str, Want, Want)] = &[
            ("https://github.com/o/r.git", Ok(Remote), Ok(Remote)),
            ("http://127.0.0.1:8080/r.git", Ok(Remote), Ok(Remote)),
            ("git://127.0.0.1:9418/r.git", Ok(Remote), Ok(Remote)),
            ("ssh://git@host:22/r.git", Ok(Remote), Ok(Remote)),
            ("git@github.com:o/r.git", Ok(Remote), Ok(Remote)),
            ("file:///srv/r.git", Err("local"), Ok(Local)),
            ("/srv/r.git", Err("local"), Ok(Local)),
            ("./r", Err("local"), Ok(Local)),
            (
                "ext::sh -c touch% /tmp/pwned",
                Err("transport"),
                Err("transport"),
            ),
            ("fd::3", Err("transport"), Err("transport")),
            ("-uhelp", Err("host"), Err("host")),
            ("ssh://-oProxyCommand=x/r", Err("host"), Err("host")),
            ("ssh://user@-oProxyCommand=x/r", Err("host"), Err("host")),
            ("-oProxyCommand=x:r", Err("host"), Err("host")),
            ("ftp://host/r", Err("scheme"), Err("scheme")),
            (
                "https://u:tok@h/r.git",
                Err("credentials"),
                Err("credentials"),
            ),
            (
                "https://tok@h/r.git",
                Err("credentials"),
                Err("credentials"),
            ),
            (
                "ssh://git:pw@h/r.git",
                Err("credentials"),
                Err("credentials"),
            ),
            ("", Err("empty"), Err("empty")),
        ];
        for (url, pod, local) in cases {
            for (mode, want) in [(Mode::Pod, pod), (Mode::Local, local)] {
                let got = check(url, mode);
                match (want, &got) {
                    (Ok(w), Ok(g)) => assert_eq!(w, g, "{url} {mode:?}"),
                    (Err(kind), Err(e)) => {
                        let matches = match *kind {
                            "local" => matches!(e, Error::LocalPath(_)),
                            "transport" => matches!(e, Error::Transport(_)),
                            "host" => matches!(e, Error::OptionLikeHost(_)),
                            "scheme" => matches!(e, Error::Scheme(_)),
                            "credentials" => matches!(e, Error::Credentials),
                            _ => matches!(e, Error::Empty),
                        };
                        assert!(matches, "{url} {mode:?}: {e:?}");
                    }
                    _ => panic!("{url} {mode:?}: want {want:?}, got {got:?}"),
                }
            }
        }
    }
}
