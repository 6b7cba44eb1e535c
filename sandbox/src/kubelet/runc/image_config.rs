//! The parts of an OCI image configuration a runtime uses (pure).

use serde::Deserialize;

/// `config` of an image configuration blob.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImageConfig {
    /// `Entrypoint`.
    #[serde(default)]
    pub entrypoint: Option<Vec<String>>,
    /// `Cmd`.
    #[serde(default)]
    pub cmd: Option<Vec<String>>,
    /// `Env`, `NAME=VALUE` each.
    #[serde(default)]
    pub env: Option<Vec<String>>,
    /// `WorkingDir`.
    #[serde(default)]
    pub working_dir: Option<String>,
    /// `User`: `name`, `uid`, `uid:gid` or `name:group`.
    #[serde(default)]
    pub user: Option<String>,
}

#[derive(Deserialize)]
struct Blob {
    #[serde(default)]
    config: Option<ImageConfig>,
    #[serde(default)]
    os: Option<String>,
}

/// Parses an image configuration blob; an image for another OS is refused.
pub fn parse(blob: &str) -> Result<ImageConfig, String> {
    let blob: Blob = serde_json::from_str(blob).map_err(|e| format!("image configuration: {e}"))?;
    if let Some(os) = blob.os.as_deref() {
        if os != "linux" {
            return Err(format!("image is for {os}, not linux"));
        }
    }
    Ok(blob.config.unwrap_or_default())
}

impl ImageConfig {
    /// `Env` as (name, value) pairs.
    pub fn env_pairs(&self) -> Vec<(String, String)> {
        self.env
            .iter()
            .flatten()
            .map(|kv| match kv.split_once('=') {
                Some((k, v)) => (k.to_string(), v.to_string()),
                None => (kv.clone(), String::new()),
            })
            .collect()
    }

    /// `User`, empty when unset.
    pub fn user(&self) -> &str {
        self.user.as_deref().unwrap_or("")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_configs() {
        let c = parse(
            r#"{"os":"linux","config":{"Entrypoint":["/bin/sh"],"Cmd":["-c","x"],"Env":["A=1=2","B"],"WorkingDir":"/w","User":"1000:1000"}}"#,
        )
        .unwrap();
        assert_eq!(c.entrypoint.as_deref(), Some(&["/bin/sh".to_string()][..]));
        assert_eq!(
            c.env_pairs(),
            vec![("A".into(), "1=2".into()), ("B".into(), String::new())]
        );
        assert_eq!(c.user(), "1000:1000");
        assert_eq!(
            parse(r#"{"architecture":"amd64"}"#).unwrap(),
            ImageConfig::default()
        );
        assert!(parse(r#"{"os":"windows","config":{}}"#)
            .unwrap_err()
            .contains("windows"));
        assert!(parse("nope").is_err());
    }
}
