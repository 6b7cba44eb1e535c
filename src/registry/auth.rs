//! Registry credentials from Kubernetes docker-config secrets (`.dockerconfigjson`, `.dockercfg`).

use std::path::Path;

use base64::Engine;
use serde_json::{Map, Value};

/// Why a docker config could not be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    /// Reading failed.
    #[error("reading {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Not JSON, or not a docker config.
    #[error("{path} is not a docker config JSON: {detail}")]
    Invalid {
        /// The file.
        path: String,
        /// What is wrong.
        detail: String,
    },
}

/// The file names a docker-config secret may use, in order of preference.
const CONFIG_FILES: [&str; 3] = [".dockerconfigjson", "config.json", ".dockercfg"];

/// Reads a docker config from a file, or from the first known file name in a secret directory,
/// and returns it as `{"auths": {...}}`; `Ok(None)` when the directory has none.
pub(crate) fn load(path: &Path) -> Result<Option<Value>, Error> {
    let file = if path.is_dir() {
        match CONFIG_FILES
            .iter()
            .map(|n| path.join(n))
            .find(|p| p.is_file())
        {
            Some(f) => f,
            None => return Ok(None),
        }
    } else if path.exists() {
        path.to_path_buf()
    } else {
        return Ok(None);
    };
    let shown = file.display().to_string();
    let text = std::fs::read_to_string(&file).map_err(|source| Error::Io {
        path: shown.clone(),
        source,
    })?;
    normalize(&text).map(Some).map_err(|detail| Error::Invalid {
        path: shown,
        detail,
    })
}

/// Turns either format into `{"auths": {...}}`.
pub(crate) fn normalize(text: &str) -> Result<Value, String> {
    let value: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let Value::Object(map) = value else {
        return Err("expected a JSON object".into());
    };
    let auths = match map.get("auths") {
        Some(Value::Object(a)) => a.clone(),
        Some(_) => return Err("\"auths\" must be an object".into()),
        None => map, // legacy .dockercfg: the object is the auths map
    };
    let mut out = Map::new();
    out.insert("auths".into(), Value::Object(auths));
    Ok(Value::Object(out))
}

/// A docker config holding one registry's basic credentials.
pub(crate) fn basic_config(registry: &str, user: &str, password: &str) -> Value {
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    serde_json::json!({"auths": {registry: {"auth": auth}}})
}

/// Merges configs; later entries win for the same registry.
pub(crate) fn merge(configs: &[Value]) -> Value {
    let mut auths = Map::new();
    for c in configs {
        if let Some(Value::Object(a)) = c.get("auths") {
            for (k, v) in a {
                auths.insert(k.clone(), v.clone());
            }
        }
    }
    let mut out = Map::new();
    out.insert("auths".into(), Value::Object(auths));
    Value::Object(out)
}

/// The user name and password a config holds for `registry` (`host[:port]`).
pub(crate) fn credentials_for(config: &Value, registry: &str) -> Option<(String, String)> {
    let auths = config.get("auths")?.as_object()?;
    let entry = auths
        .iter()
        .find(|(k, _)| registry_key_matches(k, registry))
        .map(|(_, v)| v)?;
    if let (Some(u), Some(p)) = (
        entry.get("username").and_then(Value::as_str),
        entry.get("password").and_then(Value::as_str),
    ) {
        return Some((u.to_string(), p.to_string()));
    }
    let auth = entry.get("auth")?.as_str()?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(auth.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (u, p) = text.split_once(':')?;
    Some((u.to_string(), p.to_string()))
}

/// Whether a config key (`host`, `https://host/v1/`, `host/path`) names `registry`.
pub(crate) fn registry_key_matches(key: &str, registry: &str) -> bool {
    let k = key
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    let host = k.split('/').next().unwrap_or("");
    host == registry || (registry == "docker.io" && host == "index.docker.io")
}

/// The registry host of an image reference (`docker.io` when the first part is not a host).
pub(crate) fn registry_of(image: &str) -> String {
    match image.split_once('/') {
        Some((first, _)) if first.contains('.') || first.contains(':') || first == "localhost" => {
            first.to_string()
        }
        _ => "docker.io".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_and_lookup() {
        let basic = base64::engine::general_purpose::STANDARD.encode("u:p:w");
        let cases = [
            (
                format!(r#"{{"auths":{{"reg:5000":{{"auth":"{basic}"}}}}}}"#),
                "reg:5000",
                Some(("u", "p:w")),
            ),
            (
                format!(r#"{{"https://reg:5000/v1/":{{"auth":"{basic}"}}}}"#),
                "reg:5000",
                Some(("u", "p:w")),
            ),
            (
                r#"{"auths":{"reg":{"username":"a","password":"b"}}}"#.to_string(),
                "reg",
                Some(("a", "b")),
            ),
            (
                r#"{"auths":{"reg":{"username":"a","password":"b"}}}"#.to_string(),
                "other",
                None,
            ),
            (
                r#"{"auths":{"index.docker.io":{"username":"a","password":"b"}}}"#.to_string(),
                "docker.io",
                Some(("a", "b")),
            ),
        ];
        for (text, reg, want) in cases {
            let config = normalize(&text).unwrap();
            let got = credentials_for(&config, reg);
            assert_eq!(
                got,
                want.map(|(u, p)| (u.to_string(), p.to_string())),
                "{text}"
            );
        }
        assert!(normalize("[1]").is_err());
        assert!(normalize(r#"{"auths": 3}"#).is_err());
    }

    #[test]
    fn registry_of_table() {
        for (image, want) in [
            ("127.0.0.1:5000/a/b:c", "127.0.0.1:5000"),
            ("quay.io/a/b", "quay.io"),
            ("localhost/a", "localhost"),
            ("library/golang", "docker.io"),
            ("golang", "docker.io"),
        ] {
            assert_eq!(registry_of(image), want);
        }
    }

    #[test]
    fn merge_later_wins() {
        let a = normalize(r#"{"auths":{"r":{"auth":"YQ=="},"s":{"auth":"cw=="}}}"#).unwrap();
        let b = normalize(r#"{"auths":{"r":{"auth":"Yg=="}}}"#).unwrap();
        let m = merge(&[a, b]);
        assert_eq!(m["auths"]["r"]["auth"], "Yg==");
        assert_eq!(m["auths"]["s"]["auth"], "cw==");
    }
}
