//! Strict decoding of API objects: wrong types name their field path, and fields the types
//! cannot carry are reported instead of being dropped silently.

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use super::common::CommonSpec;

/// Why a document does not decode strictly into a kiln type.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    /// A value has the wrong type or an unknown enum variant.
    #[error("{path}: {message}")]
    Invalid {
        /// The field path, e.g. `spec.runPolicy`.
        path: String,
        /// What is wrong with the value.
        message: String,
    },
    /// Fields that the kiln types do not know.
    #[error("unknown field{} {}", if .0.len() == 1 { "" } else { "s" }, .0.join(", "))]
    UnknownFields(Vec<String>),
}

/// Decodes `value` into `T`, failing on wrong types (with the field path) and on unknown fields.
pub fn from_value<T: DeserializeOwned + Serialize>(value: &Value) -> Result<T, Error> {
    let decoded: T = serde_path_to_error::deserialize(value.clone()).map_err(|err| {
        let path = err.path().to_string();
        let message = err.into_inner().to_string();
        match path.as_str() {
            "." => Error::Invalid {
                path: "(document)".to_string(),
                message,
            },
            "spec" => refine_common_spec(value, message),
            _ => Error::Invalid { path, message },
        }
    })?;
    let reencoded = serde_json::to_value(&decoded).map_err(|err| Error::Invalid {
        path: "(document)".to_string(),
        message: err.to_string(),
    })?;
    let mut dropped = Vec::new();
    dropped_paths(value, &reencoded, "", &mut dropped);
    if dropped.is_empty() {
        Ok(decoded)
    } else {
        Err(Error::UnknownFields(dropped))
    }
}

/// serde loses the path inside a `#[serde(flatten)]` field, and both BuildConfig and Build flatten
/// [`CommonSpec`] into their spec: decode the spec as a `CommonSpec` alone to name the field.
fn refine_common_spec(value: &Value, message: String) -> Error {
    let spec = value.get("spec").cloned().unwrap_or(Value::Null);
    match serde_path_to_error::deserialize::<_, CommonSpec>(spec) {
        Err(err) if err.path().to_string() != "." => Error::Invalid {
            path: format!("spec.{}", err.path()),
            message: err.into_inner().to_string(),
        },
        _ => Error::Invalid {
            path: "spec".to_string(),
            message,
        },
    }
}

/// Collects the paths present (and non-empty) in `input` that `output` lacks.
pub fn dropped_paths(input: &Value, output: &Value, prefix: &str, found: &mut Vec<String>) {
    match (input, output) {
        (Value::Object(inp), Value::Object(out)) => {
            for (key, value) in inp {
                let path = join(prefix, key);
                match out.get(key) {
                    Some(o) => dropped_paths(value, o, &path, found),
                    None if is_empty(value) => {}
                    None => found.push(path),
                }
            }
        }
        (Value::Array(inp), Value::Array(out)) => {
            for (i, value) in inp.iter().enumerate() {
                let path = format!("{prefix}[{i}]");
                match out.get(i) {
                    Some(o) => dropped_paths(value, o, &path, found),
                    None if is_empty(value) => {}
                    None => found.push(path),
                }
            }
        }
        _ => {}
    }
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    }
}

fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Object(m) => m.values().all(is_empty),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::BuildConfig;
    use serde_json::json;

    fn bc(spec: Value) -> Value {
        json!({"apiVersion": "build.kiln.dev/v1alpha1", "kind": "BuildConfig",
               "metadata": {"name": "x"}, "spec": spec})
    }

    #[test]
    fn strict_decoding_table() {
        let cases: Vec<(Value, Result<(), Error>)> = vec![
            (bc(json!({"strategy": {"type": "Docker"}})), Ok(())),
            (
                bc(json!({"runPolicy": "Sometimes"})),
                Err(Error::Invalid {
                    path: "spec.runPolicy".into(),
                    message: "unknown variant `Sometimes`, expected one of `Serial`, `SerialLatestOnly`, `Parallel`".into(),
                }),
            ),
            (
                bc(json!({"successfulBuildsHistoryLimit": "five"})),
                Err(Error::Invalid {
                    path: "spec.successfulBuildsHistoryLimit".into(),
                    message: "invalid type: string \"five\", expected a JSON number".into(),
                }),
            ),
            (
                bc(json!({"source": {"git": {"uri": "https://x", "branch": "main"}}})),
                Err(Error::UnknownFields(vec!["spec.source.git.branch".into()])),
            ),
            (
                bc(json!({"triggers": [{"type": "GitHub", "github": {"secret": "s", "hmac": true}}]})),
                Err(Error::UnknownFields(vec!["spec.triggers[0].github.hmac".into()])),
            ),
            (
                bc(json!({"completionDeadlineSeconds": "soon"})),
                Err(Error::Invalid {
                    path: "spec.completionDeadlineSeconds".into(),
                    message: "invalid type: string \"soon\", expected i64".into(),
                }),
            ),
            (
                bc(json!({"strategy": {"dockerStrategy": {"noCache": "yes"}}})),
                Err(Error::Invalid {
                    path: "spec.strategy.dockerStrategy.noCache".into(),
                    message: "invalid type: string \"yes\", expected a boolean".into(),
                }),
            ),
            // Empty and null values are not data: nothing is lost by dropping them.
            (bc(json!({"source": {"contextDir": null}, "triggers": []})), Ok(())),
        ];
        for (input, want) in cases {
            let got = from_value::<BuildConfig>(&input).map(|_| ());
            assert_eq!(got, want, "input: {input}");
        }
    }
}
