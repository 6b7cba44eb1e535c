//! Publishing `events.k8s.io/v1` Events about Builds and BuildConfigs.
//!
//! kube's `Recorder` keeps every event it sent for six minutes so a repeat can be folded into a
//! series; a Build's events (BuildStarted, BuildCompleted, …) never repeat, so that cache would
//! only grow with the build rate. This publisher creates each event and keeps nothing.

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, PostParams};

/// Normal or Warning.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum EventType {
    /// Something expected happened.
    Normal,
    /// Something went wrong.
    Warning,
}

/// Creates events as one reporting controller.
#[derive(Clone)]
pub(crate) struct EventPublisher {
    client: kube::Client,
    controller: String,
    instance: String,
}

impl EventPublisher {
    /// A publisher reporting as `controller` (instance: the Pod name when known).
    pub(crate) fn new(client: kube::Client, controller: &str, instance: Option<String>) -> Self {
        Self {
            client,
            controller: controller.into(),
            instance: instance.unwrap_or_else(|| controller.into()),
        }
    }

    /// Publishes one event about the object `regarding`.
    pub(crate) async fn publish(
        &self,
        regarding: &ObjectReference,
        event_type: EventType,
        reason: &str,
        note: String,
    ) -> Result<(), kube::Error> {
        let event = event_about(
            regarding,
            event_type,
            reason,
            note,
            (&self.controller, &self.instance),
            Timestamp::now(),
        );
        let namespace = event.metadata.namespace.clone().unwrap_or_default();
        Api::<Event>::namespaced(self.client.clone(), &namespace)
            .create(&PostParams::default(), &event)
            .await
            .map(|_| ())
    }
}

/// The most bytes of note an `events.k8s.io/v1` Event may carry; the API refuses longer ones.
pub(crate) const NOTE_LIMIT: usize = 1024;
/// Ends a note that was cut to fit [`NOTE_LIMIT`].
pub(crate) const TRUNCATED_MARKER: &str = " … [truncated]";

/// `note` cut at a character boundary to fit [`NOTE_LIMIT`] bytes with [`TRUNCATED_MARKER`], so a
/// long message (a build's log tail, say) shortens the Event instead of losing it.
pub(crate) fn fit_note(note: String) -> String {
    if note.len() <= NOTE_LIMIT {
        return note;
    }
    let mut end = NOTE_LIMIT - TRUNCATED_MARKER.len();
    while !note.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{TRUNCATED_MARKER}", &note[..end])
}

/// The Event for `regarding`, named `<object>.<nanoseconds in hex>` as kubectl and client-go do.
pub(crate) fn event_about(
    regarding: &ObjectReference,
    event_type: EventType,
    reason: &str,
    note: String,
    (controller, instance): (&str, &str),
    now: Timestamp,
) -> Event {
    let object = regarding.name.as_deref().unwrap_or(controller);
    Event {
        metadata: ObjectMeta {
            name: Some(format!("{object}.{:x}", now.as_nanosecond())),
            namespace: Some(
                regarding
                    .namespace
                    .clone()
                    .unwrap_or_else(|| "default".into()),
            ),
            ..ObjectMeta::default()
        },
        action: Some("Build".into()),
        reason: Some(reason.into()),
        note: Some(fit_note(note)),
        event_time: Some(MicroTime(now)),
        regarding: Some(regarding.clone()),
        reporting_controller: Some(controller.into()),
        reporting_instance: Some(instance.into()),
        type_: Some(
            match event_type {
                EventType::Normal => "Normal",
                EventType::Warning => "Warning",
            }
            .into(),
        ),
        ..Event::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_notes_are_truncated_with_a_marker() {
        let short = "Build app-3 failed".to_string();
        assert_eq!(fit_note(short.clone()), short);
        let exact = "x".repeat(NOTE_LIMIT);
        assert_eq!(fit_note(exact.clone()), exact);
        for long in [
            "y".repeat(5000),
            "é".repeat(3000),
            format!("a{}", "日本".repeat(700)),
        ] {
            let fitted = fit_note(long.clone());
            assert!(fitted.len() <= NOTE_LIMIT, "{}", fitted.len());
            assert!(fitted.len() > NOTE_LIMIT - TRUNCATED_MARKER.len() - 4);
            assert!(fitted.ends_with(TRUNCATED_MARKER));
            assert!(long.starts_with(fitted.trim_end_matches(TRUNCATED_MARKER)));
        }
        let event = event_about(
            &ObjectReference::default(),
            EventType::Warning,
            "BuildFailed",
            "z".repeat(4000),
            ("kiln-controller", "kiln-controller-0"),
            "2026-01-02T03:04:05Z".parse().unwrap(),
        );
        let note = event.note.unwrap();
        assert!(note.len() <= NOTE_LIMIT && note.ends_with(TRUNCATED_MARKER));
    }

    #[test]
    fn events_name_their_object_and_reporter() {
        let regarding = ObjectReference {
            kind: Some("Build".into()),
            name: Some("app-3".into()),
            namespace: Some("team".into()),
            ..ObjectReference::default()
        };
        let now: Timestamp = "2026-01-02T03:04:05Z".parse().unwrap();
        let event = event_about(
            &regarding,
            EventType::Warning,
            "BuildFailed",
            "Build app-3 failed".into(),
            ("kiln-controller", "kiln-controller-0"),
            now,
        );
        assert_eq!(
            event.metadata.name.as_deref(),
            Some(format!("app-3.{:x}", now.as_nanosecond()).as_str())
        );
        assert_eq!(event.metadata.namespace.as_deref(), Some("team"));
        assert_eq!(event.type_.as_deref(), Some("Warning"));
        assert_eq!(event.reason.as_deref(), Some("BuildFailed"));
        assert_eq!(event.regarding, Some(regarding));
        assert_eq!(
            event.reporting_controller.as_deref(),
            Some("kiln-controller")
        );
        assert_eq!(
            event.reporting_instance.as_deref(),
            Some("kiln-controller-0")
        );
        assert_eq!(event.event_time, Some(MicroTime(now)));
    }
}
