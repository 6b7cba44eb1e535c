//! Decoding what OpenShift accepts: the deprecated and lower-case spellings of enums, and the
//! source type inferred from which source is set. Everything is normalised while decoding, so the
//! rest of kiln only ever sees canonical values; the CRD schemas list the same spellings.

use schemars::Schema;
use serde_json::{Map, Value};

/// A string schema whose `enum` lists `values`.
pub fn string_enum<'a>(values: impl IntoIterator<Item = &'a str>) -> Schema {
    let mut map = Map::new();
    map.insert("type".into(), Value::String("string".into()));
    map.insert(
        "enum".into(),
        Value::Array(
            values
                .into_iter()
                .map(|v| Value::String(v.into()))
                .collect(),
        ),
    );
    Schema::from(map)
}

#[cfg(test)]
mod tests {
    use crate::api::build_config::{BuildTriggerPolicy, BuildTriggerType};
    use crate::api::common::{BuildSource, BuildSourceType, BuildStrategy, BuildStrategyType};
    use serde_json::{json, Value};

    #[test]
    fn source_type_is_inferred_as_openshift_does() {
        use BuildSourceType::*;
        let cases: Vec<(Value, BuildSourceType, bool)> = vec![
            // (source as written, decoded type, has binary afterwards)
            (json!({"git": {"uri": "https://x"}}), Git, false),
            (
                json!({"type": "git", "git": {"uri": "https://x"}}),
                Git,
                false,
            ),
            (
                json!({"type": "Dockerfile", "git": {"uri": "https://x"}, "dockerfile": "FROM a"}),
                Git,
                false,
            ),
            (json!({"type": "binary"}), Binary, true),
            (json!({"type": "Binary"}), Binary, true),
            (json!({"binary": {"asFile": "app.jar"}}), Binary, true),
            (json!({"dockerfile": "FROM a"}), Dockerfile, false),
            (
                json!({"type": "dockerfile", "dockerfile": "FROM a"}),
                Dockerfile,
                false,
            ),
            (json!({"type": "Git"}), None, false),
            (json!({}), None, false),
            (json!({"type": "none", "contextDir": "app"}), None, false),
        ];
        for (written, want, binary) in cases {
            let source: BuildSource = serde_json::from_value(written.clone()).unwrap();
            assert_eq!(source.type_, Some(want), "{written}");
            assert_eq!(source.binary.is_some(), binary, "{written}");
        }
        assert!(serde_json::from_value::<BuildSource>(json!({"type": "Image"})).is_err());
    }

    #[test]
    fn deprecated_spellings_decode_to_canonical_values() {
        let cases = [
            ("github", BuildTriggerType::GitHub),
            ("generic", BuildTriggerType::Generic),
            ("imageChange", BuildTriggerType::ImageChange),
            ("ConfigChange", BuildTriggerType::ConfigChange),
        ];
        for (spelling, want) in cases {
            let t: BuildTriggerPolicy = serde_json::from_value(json!({"type": spelling})).unwrap();
            assert_eq!(t.type_, want);
            assert_eq!(serde_json::to_value(t.type_).unwrap(), want.as_str());
            assert_eq!(BuildTriggerType::parse(spelling), Some(want));
        }
        // OpenShift has no lower-case configChange, gitlab or bitbucket.
        for spelling in ["configChange", "gitlab", "bitbucket", "Jenkins"] {
            assert!(
                serde_json::from_value::<BuildTriggerPolicy>(json!({"type": spelling})).is_err()
            );
            assert_eq!(BuildTriggerType::parse(spelling), None);
        }
        let s: BuildStrategy = serde_json::from_value(json!({"type": "docker"})).unwrap();
        assert_eq!(s.type_, BuildStrategyType::Docker);
    }
}
