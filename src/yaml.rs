//! Reading and writing manifests: YAML (one document or a stream) or JSON, and `List` objects.

use serde::Deserialize;
use serde_json::Value;

/// Why a manifest stream could not be read.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The text is not valid JSON; the message carries line and column.
    #[error("invalid JSON: {0}")]
    Json(#[source] serde_json::Error),
    /// The text is not valid YAML; the message carries line and column.
    #[error("invalid YAML: {0}")]
    Yaml(#[source] serde_norway::Error),
    /// Writing YAML failed.
    #[error("cannot write YAML: {0}")]
    Write(#[source] serde_norway::Error),
}

/// Parses a manifest stream: JSON when it starts with `{` or `[`, else YAML documents separated
/// by `---`. Empty documents are skipped; `List` objects and JSON arrays are flattened to items.
pub fn read_documents(text: &str) -> Result<Vec<Value>, Error> {
    let trimmed = text.trim_start();
    let raw: Vec<Value> = if trimmed.starts_with('{') || trimmed.starts_with('[') {
        let mut stream = serde_json::Deserializer::from_str(text).into_iter::<Value>();
        let mut docs = Vec::new();
        for doc in &mut stream {
            docs.push(doc.map_err(Error::Json)?);
        }
        docs
    } else {
        let mut docs = Vec::new();
        for document in serde_norway::Deserializer::from_str(text) {
            docs.push(Value::deserialize(document).map_err(Error::Yaml)?);
        }
        docs
    };
    let mut out = Vec::new();
    for doc in raw {
        flatten(doc, &mut out);
    }
    Ok(out)
}

fn flatten(doc: Value, out: &mut Vec<Value>) {
    match doc {
        Value::Null => {}
        Value::Array(items) => items.into_iter().for_each(|i| flatten(i, out)),
        Value::Object(mut map) if is_list_kind(&map) => {
            if let Some(Value::Array(items)) = map.remove("items") {
                items.into_iter().for_each(|i| flatten(i, out));
            }
        }
        other => out.push(other),
    }
}

fn is_list_kind(map: &serde_json::Map<String, Value>) -> bool {
    map.get("kind")
        .and_then(Value::as_str)
        .is_some_and(|k| k == "List" || k.ends_with("List"))
        && map.get("items").is_some_and(Value::is_array)
}

/// Writes documents as a YAML stream separated by `---`.
pub fn write_documents(docs: &[Value]) -> Result<String, Error> {
    let mut out = String::new();
    for (i, doc) in docs.iter().enumerate() {
        if i > 0 {
            out.push_str("---\n");
        }
        out.push_str(&serde_norway::to_string(doc).map_err(Error::Write)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_streams_lists_and_json() {
        let cases: &[(&str, usize)] = &[
            ("kind: A\n---\nkind: B\n", 2),
            ("---\nkind: A\n---\n", 1),
            (
                "apiVersion: v1\nkind: List\nitems:\n- kind: A\n- kind: B\n- kind: C\n",
                3,
            ),
            ("{\"kind\": \"A\"}", 1),
            ("[{\"kind\": \"A\"}, {\"kind\": \"B\"}]", 2),
            (
                "{\"kind\": \"BuildConfigList\", \"items\": [{\"kind\": \"BuildConfig\"}]}",
                1,
            ),
        ];
        for (text, n) in cases {
            assert_eq!(read_documents(text).unwrap().len(), *n, "{text}");
        }
    }

    #[test]
    fn syntax_errors_carry_line_and_column() {
        let err = read_documents("kind: A\nspec:\n  a: [1, 2\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("line") && err.contains("column"), "{err}");
        let err = read_documents("{\"kind\": \"A\",\n \"spec\": }")
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 2 column"), "{err}");
    }

    #[test]
    fn multiline_strings_round_trip() {
        let text = "kind: A\ndockerfile: |\n  FROM x\n  RUN <<EOF\n  echo hi\n  EOF\n";
        let docs = read_documents(text).unwrap();
        let again = read_documents(&write_documents(&docs).unwrap()).unwrap();
        assert_eq!(docs, again);
        assert_eq!(docs[0]["dockerfile"], "FROM x\nRUN <<EOF\necho hi\nEOF\n");
    }
}
