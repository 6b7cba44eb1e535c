//! Trigger evaluation (pure): ConfigChange and ImageChange triggers of a BuildConfig.

use crate::api::build_config::BuildTriggerType;
use crate::api::{BuildConfig, TagRef};

/// Whether the ConfigChange trigger should fire: present, and no build was ever started.
pub(crate) fn config_change_due(bc: &BuildConfig) -> bool {
    let has_trigger = bc
        .spec
        .triggers
        .iter()
        .any(|t| t.type_ == BuildTriggerType::ConfigChange);
    has_trigger && bc.status.as_ref().map_or(0, |s| s.last_version) == 0
}

/// The ImageStreamTags the BuildConfig's unpaused ImageChange triggers watch (a trigger without
/// `from` watches the strategy's `from`).
pub(crate) fn watched_tags(bc: &BuildConfig) -> Vec<TagRef> {
    crate::instantiate::trigger_images::image_change_tags(bc, false)
}

/// The ImageChange triggers that should fire: the tag's current image differs from the one that
/// last started a build. `current` resolves a tag to its current image pull spec.
pub(crate) fn due_image_changes(
    bc: &BuildConfig,
    current: impl Fn(&TagRef) -> Option<String>,
) -> Vec<(TagRef, String)> {
    watched_tags(bc)
        .into_iter()
        .filter_map(|tag| {
            let image = current(&tag)?;
            (bc.last_triggered_image(&tag).as_deref() != Some(image.as_str()))
                .then_some((tag, image))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::build_config::{
        BuildConfigStatus, ImageChangeTriggerStatus, ImageStreamTagReference,
    };

    fn bc(yaml: &str) -> BuildConfig {
        let doc = crate::yaml::read_documents(yaml).unwrap().remove(0);
        serde_json::from_value(doc).unwrap()
    }

    const BC: &str = r#"
apiVersion: build.kiln.dev/v1alpha1
kind: BuildConfig
metadata: {name: app, namespace: ns}
spec:
  strategy:
    type: Docker
    dockerStrategy:
      from: {kind: ImageStreamTag, name: "base:1"}
  triggers:
  - type: ImageChange
    imageChange: {}
  - type: ImageChange
    imageChange:
      from: {kind: ImageStreamTag, name: tools, namespace: shared}
  - type: ImageChange
    imageChange:
      paused: true
      from: {kind: ImageStreamTag, name: "paused:x"}
  - type: ConfigChange
"#;

    #[test]
    fn watched_tags_resolve_strategy_from_and_skip_paused() {
        let got = watched_tags(&bc(BC));
        let want = vec![
            TagRef {
                namespace: "ns".into(),
                stream: "base".into(),
                tag: "1".into(),
            },
            TagRef {
                namespace: "shared".into(),
                stream: "tools".into(),
                tag: "latest".into(),
            },
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn image_changes_fire_once_per_image() {
        let mut config = bc(BC);
        let current =
            |t: &TagRef| Some(format!("reg/{}/{}@sha256:{}", t.namespace, t.stream, t.tag));
        assert_eq!(due_image_changes(&config, current).len(), 2);
        config.status = Some(BuildConfigStatus {
            last_version: 1,
            image_change_triggers: vec![ImageChangeTriggerStatus {
                last_triggered_image_id: Some("reg/ns/base@sha256:1".into()),
                from: Some(ImageStreamTagReference {
                    namespace: None,
                    name: "base:1".into(),
                }),
                last_trigger_time: None,
            }],
        });
        let due = due_image_changes(&config, current);
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].0.stream, "tools");
        assert!(
            due_image_changes(&config, |_| None).is_empty(),
            "no image yet: nothing to do"
        );
    }

    #[test]
    fn config_change_fires_only_before_the_first_build() {
        let mut config = bc(BC);
        assert!(config_change_due(&config));
        config.status = Some(BuildConfigStatus {
            last_version: 1,
            ..BuildConfigStatus::default()
        });
        assert!(!config_change_due(&config));
        config.status = None;
        config
            .spec
            .triggers
            .retain(|t| t.type_ != BuildTriggerType::ConfigChange);
        assert!(!config_change_due(&config));
    }
}
