//! Property test of the termination-message parser and the phase machine behind it: a build
//! container's termination message is whatever the Pod's processes wrote (at most 4096 bytes), so
//! for any message, exit code and reason the next status is decided without a panic, a reported
//! digest is taken only from a message that decodes as the builder's report.
//!
//! `KILN_TERMINATION_FUZZ_CASES` sets the number of cases (default 2,000 so the suite stays
//! fast); `make fuzz` runs 200,000. The seed is fixed; `KILN_TERMINATION_FUZZ_SEED=<u64>` picks
//! another.

use k8s_openapi::api::core::v1::{Pod, PodStatus};
use k8s_openapi::jiff::Timestamp;
use proptest::prelude::*;
use serde_json::json;

use super::*;

const REPORTS: [&str; 4] = [
    r#"{"imageDigest":"sha256:abc","outputReference":"reg/ns/app:latest","stages":[{"name":"Build","durationMilliseconds":5}]}"#,
    r#"{"reason":"DockerBuildFailed","message":"RUN make failed with exit code 2","logTail":"l1\nl2\nl3"}"#,
    r#"{"reason":"FetchSourceFailed","message":"cannot reach repository","source":{"revision":{"commit":"abc"}}}"#,
    r#"{"stages":[{"name":"FetchInputs","startTime":"2023-11-14T22:13:20Z","durationMilliseconds":-1}]}"#,
];

/// Messages: the builder's reports, mutated or cut, JSON of the wrong shape, and any text.
fn messages() -> impl Strategy<Value = String> {
    let report = (0..REPORTS.len()).prop_map(|i| REPORTS[i].to_string());
    let mutated = (
        0..REPORTS.len(),
        prop::collection::vec((any::<prop::sample::Index>(), any::<char>()), 1..6),
    )
        .prop_map(|(i, edits)| {
            let mut chars: Vec<char> = REPORTS[i].chars().collect();
            for (at, c) in edits {
                let n = at.index(chars.len());
                chars[n] = c;
            }
            chars.into_iter().collect()
        });
    let cut = (0..REPORTS.len(), any::<prop::sample::Index>()).prop_map(|(i, at)| {
        let text = REPORTS[i];
        let mut end = at.index(text.len());
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text[..end].to_string()
    });
    let shapes = prop_oneof![
        Just(r#"{"reason":7}"#.to_string()),
        Just(r#"{"reason":"NoSuchReason","message":"x"}"#.to_string()),
        Just(r#"{"stages":{"name":"Build"}}"#.to_string()),
        Just(r#"{"imageDigest":null,"logTail":[1,2]}"#.to_string()),
        Just("[]".to_string()),
        Just("null".to_string()),
        "\\{[\"a-zA-Z:,0-9\\[\\]{} ]{0,200}\\}",
    ];
    prop_oneof![
        2 => report,
        3 => mutated,
        2 => cut,
        2 => shapes,
        3 => ".{0,600}",
        1 => "(.|\n){1000,1100}",
    ]
    .prop_map(|mut text: String| {
        // The kubelet keeps at most 4096 bytes of a termination message.
        let mut end = text.len().min(4096);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text
    })
}

fn build(phase: &str) -> Build {
    serde_json::from_value(json!({
        "apiVersion": "build.kiln.dev/v1alpha1", "kind": "Build",
        "metadata": {"name": "app-1", "namespace": "ns", "creationTimestamp": "2023-11-14T22:13:00Z"},
        "spec": {"strategy": {"type": "Docker"}},
        "status": {"phase": phase, "startTimestamp": "2023-11-14T22:13:20Z"}
    }))
    .unwrap_or_default()
}

fn pod(container: &str, code: i32, reason: &str, message: &str) -> Pod {
    let status = json!({
        "phase": if code == 0 { "Succeeded" } else { "Failed" },
        "containerStatuses": [{
            "name": container, "image": "kiln", "imageID": "", "ready": false, "restartCount": 0,
            "state": {"terminated": {"exitCode": code, "reason": reason, "message": message}}
        }]
    });
    Pod {
        status: serde_json::from_value::<PodStatus>(status).ok(),
        ..Pod::default()
    }
}

#[test]
fn any_termination_message_gives_a_status_without_a_panic() {
    let (mut runner, seed) = crate::fuzz_runner::seeded_runner(
        "KILN_TERMINATION_FUZZ_SEED",
        0x7465_726d,
        "KILN_TERMINATION_FUZZ_CASES",
        2_000,
    );
    let observed = Observed {
        now: Timestamp::from_second(1_700_000_100).unwrap_or_default(),
        push_secret_missing: false,
        pending_timeout: None,
    };
    let strategy = (
        messages(),
        prop_oneof![Just(0), Just(1), Just(2), Just(137), any::<i32>()],
        prop_oneof![Just("build"), Just("clone"), Just("other")],
        prop_oneof![
            Just("Error".to_string()),
            Just("Completed".to_string()),
            Just("OOMKilled".to_string()),
            ".{0,20}".prop_map(String::from)
        ],
        prop_oneof![Just("Running"), Just("Pending")],
    );
    let tried = std::cell::Cell::new(0_u64);
    let result = runner.run(&strategy, |(message, code, container, reason, phase)| {
        tried.set(tried.get() + 1);
        let pod = pod(container, code, &reason, &message);
        let decoded = serde_json::from_str::<BuildReport>(message.trim()).ok();
        if let Some(c) = pod
            .status
            .as_ref()
            .and_then(|s| s.container_statuses.as_ref())
            .and_then(|c| c.first())
        {
            prop_assert_eq!(
                report_of(c),
                decoded.clone().filter(|_| !message.trim().is_empty())
            );
        }
        let build = build(phase);
        if let Some(next) = next_status(&build, Some(&pod), &observed) {
            // A digest is only ever the one a report carried.
            if let Some(digest) = next
                .output
                .as_ref()
                .and_then(|o| o.to.as_ref())
                .and_then(|t| t.image_digest.as_ref())
            {
                prop_assert_eq!(
                    decoded.as_ref().and_then(|r| r.image_digest.as_ref()),
                    Some(digest)
                );
            }
        }
        Ok(())
    });
    println!(
        "termination-message property: {} generated container states",
        tried.get()
    );
    if let Err(e) = result {
        panic!("seed {seed}: {e}");
    }
}
