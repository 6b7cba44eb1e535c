//! `imagePullSecrets` → registry credentials for an image (pure), as the kubelet matches them:
//! `kubernetes.io/dockerconfigjson` (`.dockerconfigjson`: `{"auths": {...}}`) and
//! `kubernetes.io/dockercfg` (`.dockercfg`: the map itself); a key matches when its host equals
//! the image's registry and its path, if any, is a prefix of the repository.

use std::collections::BTreeMap;

use base64::Engine;
use serde::Deserialize;

/// A user name and password for a registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    /// User name.
    pub username: String,
    /// Password or token.
    pub password: String,
}

#[derive(Deserialize)]
struct Entry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
}

#[derive(Deserialize)]
struct ConfigJson {
    #[serde(default)]
    auths: BTreeMap<String, Entry>,
}

fn credential(entry: &Entry) -> Option<Credential> {
    if let (Some(u), Some(p)) = (&entry.username, &entry.password) {
        return Some(Credential {
            username: u.clone(),
            password: p.clone(),
        });
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(entry.auth.as_deref()?.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (u, p) = text.split_once(':')?;
    Some(Credential {
        username: u.to_string(),
        password: p.to_string(),
    })
}

/// Docker Hub's spellings, all meaning `docker.io`.
fn canonical_host(host: &str) -> &str {
    match host {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => "docker.io",
        other => other,
    }
}

/// Whether a config key (`https://host[:port][/path]`, `host/path`, ...) matches the image's
/// registry and repository.
pub fn key_matches(key: &str, registry: &str, repository: &str) -> bool {
    let key = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    let (host, path) = match key.split_once('/') {
        Some((h, p)) => (h, p.trim_end_matches('/')),
        None => (key, ""),
    };
    // Docker Hub's legacy `/v1/` key is for the whole registry.
    let path = if path == "v1" || path == "v2" {
        ""
    } else {
        path
    };
    if canonical_host(host) != canonical_host(registry) {
        return false;
    }
    path.is_empty() || repository == path || repository.starts_with(&format!("{path}/"))
}

/// The credentials of one pull Secret (by its data) for an image, in key order.
pub fn credentials_for(
    data: &BTreeMap<String, Vec<u8>>,
    registry: &str,
    repository: &str,
) -> Vec<Credential> {
    let mut entries: BTreeMap<String, Entry> = BTreeMap::new();
    if let Some(bytes) = data.get(".dockerconfigjson") {
        if let Ok(config) = serde_json::from_slice::<ConfigJson>(bytes) {
            entries.extend(config.auths);
        }
    }
    if let Some(bytes) = data.get(".dockercfg") {
        if let Ok(map) = serde_json::from_slice::<BTreeMap<String, Entry>>(bytes) {
            entries.extend(map);
        }
    }
    // Longer (more specific) keys first, as the kubelet's keyring does.
    let mut keys: Vec<&String> = entries.keys().collect();
    keys.sort_by_key(|k| std::cmp::Reverse(k.len()));
    keys.into_iter()
        .filter(|k| key_matches(k, registry, repository))
        .filter_map(|k| entries.get(k).and_then(credential))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_match_like_the_kubelet() {
        let cases = [
            ("127.0.0.1:5000", "127.0.0.1:5000", "team/app", true),
            ("https://127.0.0.1:5000", "127.0.0.1:5000", "team/app", true),
            ("127.0.0.1:5000/team", "127.0.0.1:5000", "team/app", true),
            ("127.0.0.1:5000/team", "127.0.0.1:5000", "teamx/app", false),
            (
                "127.0.0.1:5000/team/app",
                "127.0.0.1:5000",
                "team/app",
                true,
            ),
            ("127.0.0.1:5001", "127.0.0.1:5000", "team/app", false),
            (
                "https://index.docker.io/v1/",
                "docker.io",
                "library/busybox",
                true,
            ),
            ("quay.io", "docker.io", "library/busybox", false),
        ];
        for (key, registry, repo, want) in cases {
            assert_eq!(
                key_matches(key, registry, repo),
                want,
                "{key} {registry}/{repo}"
            );
        }
    }

    #[test]
    fn credentials_from_both_secret_types() {
        let auth = base64::engine::general_purpose::STANDARD.encode("u:p:w");
        let json = format!(
            r#"{{"auths":{{"r.example:5000":{{"auth":"{auth}"}},"r.example:5000/team":{{"username":"t","password":"s"}},"other":{{"auth":"{auth}"}}}}}}"#
        );
        let mut data = BTreeMap::new();
        data.insert(".dockerconfigjson".to_string(), json.into_bytes());
        let got = credentials_for(&data, "r.example:5000", "team/app");
        assert_eq!(
            got,
            vec![
                Credential {
                    username: "t".into(),
                    password: "s".into()
                },
                Credential {
                    username: "u".into(),
                    password: "p:w".into()
                },
            ]
        );
        assert!(credentials_for(&data, "r.example:5000", "else/app").len() == 1);
        let mut old = BTreeMap::new();
        old.insert(
            ".dockercfg".to_string(),
            format!(r#"{{"r.example:5000":{{"auth":"{auth}"}}}}"#).into_bytes(),
        );
        assert_eq!(credentials_for(&old, "r.example:5000", "a").len(), 1);
        let mut broken = BTreeMap::new();
        broken.insert(".dockerconfigjson".to_string(), b"nope".to_vec());
        assert!(credentials_for(&broken, "r.example:5000", "a").is_empty());
    }
}
