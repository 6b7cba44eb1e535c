//! The builder's side of the layer cache: whether this build reads and writes the repository the
//! controller chose (`buildah bud --layers --cache-from/--cache-to`), a reachability probe, and
//! which buildah failures are the cache's. A cache that misses, cannot be reached or refuses a
//! push never fails a build: the build goes on without it.

use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use super::auth::registry_of;
use super::registry::check_reference;

/// How long the probe waits for the cache's registry to accept a connection.
pub(crate) const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// What the build does with the layer cache.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Decision {
    /// No cache was given.
    Off,
    /// A cache was given but this build does not use it, for the reason said.
    Bypassed(String),
    /// Read cached layers from this repository and push new ones to it.
    Use(String),
}

/// Whether a build uses the cache `repository` (pure): not with `noCache`, not when the
/// optimization policy squashes layers (there are no per-step layers to cache), and only for a
/// repository that parses as an image reference without a tag or digest.
pub(crate) fn decide(repository: Option<&str>, no_cache: bool, layers: bool) -> Decision {
    let Some(repo) = repository.map(str::trim).filter(|r| !r.is_empty()) else {
        return Decision::Off;
    };
    if no_cache {
        return Decision::Bypassed("noCache is set".into());
    }
    if !layers {
        return Decision::Bypassed("the imageOptimizationPolicy squashes layers".into());
    }
    let last = repo.rsplit('/').next().unwrap_or(repo);
    if last.contains(':') || last.contains('@') || !repo.contains('/') {
        return Decision::Bypassed(format!("{repo:?} is not a repository"));
    }
    match check_reference(repo) {
        Ok(()) => Decision::Use(repo.to_string()),
        Err(e) => Decision::Bypassed(format!("{repo:?} is not a repository: {e}")),
    }
}

/// Whether the cache's registry accepts a TCP connection within `timeout` (a port-less host is
/// tried on 443, then 80). buildah retries an unreachable registry for every step, so an
/// unreachable cache is left out up front.
pub(crate) fn probe(repository: &str, timeout: Duration) -> Result<(), String> {
    let host = registry_of(repository);
    let candidates: Vec<String> = if host.rsplit_once(':').is_some_and(|(_, p)| {
        !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) && !host.ends_with(']')
    }) {
        vec![host.clone()]
    } else {
        vec![format!("{host}:443"), format!("{host}:80")]
    };
    let mut last = String::from("no address");
    for candidate in candidates {
        let addrs = match candidate.to_socket_addrs() {
            Ok(a) => a,
            Err(e) => {
                last = format!("{candidate}: {e}");
                continue;
            }
        };
        for addr in addrs {
            match TcpStream::connect_timeout(&addr, timeout) {
                Ok(_) => return Ok(()),
                Err(e) => last = format!("{candidate}: {e}"),
            }
        }
    }
    Err(last)
}

/// Whether buildah failed because of the cache (pushing or pulling a cached layer), not the
/// build itself: then the build runs again without the cache.
pub(crate) fn is_cache_failure(error: &str) -> bool {
    let e = error.to_ascii_lowercase();
    e.contains("pushing cache") || e.contains("pulling cache")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decide_table() {
        let repo = Some("r:5000/team-a/app-cache");
        let use_it = Decision::Use("r:5000/team-a/app-cache".into());
        for (repository, no_cache, layers, want) in [
            (repo, false, true, use_it.clone()),
            (Some("  r:5000/team-a/app-cache "), false, true, use_it),
            (None, false, true, Decision::Off),
            (Some(""), false, true, Decision::Off),
            (
                repo,
                true,
                true,
                Decision::Bypassed("noCache is set".into()),
            ),
            (
                repo,
                false,
                false,
                Decision::Bypassed("the imageOptimizationPolicy squashes layers".into()),
            ),
            (
                Some("r:5000/team-a/app-cache:latest"),
                false,
                true,
                Decision::Bypassed("\"r:5000/team-a/app-cache:latest\" is not a repository".into()),
            ),
            (
                Some("app-cache"),
                false,
                true,
                Decision::Bypassed("\"app-cache\" is not a repository".into()),
            ),
        ] {
            assert_eq!(
                decide(repository, no_cache, layers),
                want,
                "{repository:?} {no_cache} {layers}"
            );
        }
        assert!(matches!(
            decide(Some("r:5000/Team A/x"), false, true),
            Decision::Bypassed(_)
        ));
    }

    #[test]
    fn cache_failures_are_told_from_build_failures() {
        for (error, want) in [
            (
                "failed pushing cache to {{{\"127.0.0.1:1\" \"ns/bc-cache\"} \"5497\"}}: connection refused",
                true,
            ),
            ("failed while pulling cache from \"r/x\": denied", true),
            (
                "building at STEP \"RUN make\": while running runtime: exit status 2",
                false,
            ),
            ("cannot pull r:5000/library/busybox: unauthorized", false),
        ] {
            assert_eq!(is_cache_failure(error), want, "{error}");
        }
    }

    #[test]
    fn probe_finds_listening_and_closed_ports() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        assert_eq!(
            probe(&format!("127.0.0.1:{port}/ns/app-cache"), PROBE_TIMEOUT),
            Ok(())
        );
        drop(listener);
        let err = probe(&format!("127.0.0.1:{port}/ns/app-cache"), PROBE_TIMEOUT).unwrap_err();
        assert!(err.contains(&format!("127.0.0.1:{port}")), "{err}");
    }
}
