//! Property test of the parsers and the verification over generated requests: no panic, and no
//! build from a request that is unsigned, wrongly signed or malformed while a secret is set.
//!
//! `WEBHOOK_FUZZ_CASES` sets the number of cases (default 20,000 so the suite stays fast);
//! `make fuzz` runs 1,000,000. The generator's seed is fixed (the same cases every run);
//! `WEBHOOK_FUZZ_SEED=<u64>` picks another.

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use proptest::prelude::*;

use super::decide::{decide, Decision, Incoming};
use super::provider::Provider;
use super::verify::{check_signature, sign, Signature};
use crate::api::BuildConfig;

const SECRET: &[u8] = b"s3cr3t";

const FIXTURES: [&[u8]; 12] = [
    include_bytes!("../../tests/fixtures/webhooks/github-push.json"),
    include_bytes!("../../tests/fixtures/webhooks/github-push-tag.json"),
    include_bytes!("../../tests/fixtures/webhooks/github-push-deleted.json"),
    include_bytes!("../../tests/fixtures/webhooks/github-ping.json"),
    include_bytes!("../../tests/fixtures/webhooks/gitlab-push.json"),
    include_bytes!("../../tests/fixtures/webhooks/gitlab-tag-push.json"),
    include_bytes!("../../tests/fixtures/webhooks/gitlab-push-deleted.json"),
    include_bytes!("../../tests/fixtures/webhooks/bitbucket-cloud-push.json"),
    include_bytes!("../../tests/fixtures/webhooks/bitbucket-cloud-push-deleted.json"),
    include_bytes!("../../tests/fixtures/webhooks/bitbucket-server-refs-changed.json"),
    include_bytes!("../../tests/fixtures/webhooks/generic.json"),
    include_bytes!("../../tests/fixtures/webhooks/generic.yaml"),
];

const EVENTS: [&str; 9] = [
    "push",
    "ping",
    "Push Hook",
    "Tag Push Hook",
    "repo:push",
    "repo:refs_changed",
    "diagnostics:ping",
    "issues",
    "",
];

const CONTENT_TYPES: [&str; 5] = [
    "application/json",
    "application/json; charset=utf-8",
    "application/yaml",
    "application/x-www-form-urlencoded",
    "text/plain",
];

fn config() -> BuildConfig {
    let doc = crate::yaml::read_documents(
        r#"
apiVersion: build.kiln.dev/v1alpha1
kind: BuildConfig
metadata: {name: app, namespace: demo, uid: u-1}
spec:
  source: {type: Git, git: {uri: "https://example.com/app.git", ref: main}}
  strategy: {type: Docker}
  triggers:
    - {type: GitHub, github: {secret: s3cr3t}}
    - {type: GitLab, gitlab: {secret: s3cr3t}}
    - {type: Bitbucket, bitbucket: {secret: s3cr3t, tags: ["*"]}}
    - {type: Generic, generic: {secret: s3cr3t, allowEnv: true, branches: ["**"]}}
"#,
    )
    .unwrap_or_default()
    .remove(0);
    serde_json::from_value(doc).unwrap_or_default()
}

/// Bodies: the fixtures, mutated fixtures, random bytes and JSON-looking text.
fn bodies() -> impl Strategy<Value = Vec<u8>> {
    let fixture = (0..FIXTURES.len()).prop_map(|i| FIXTURES[i].to_vec());
    let mutated = (
        0..FIXTURES.len(),
        prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..8),
        any::<prop::sample::Index>(),
        any::<bool>(),
    )
        .prop_map(|(i, edits, cut, truncate)| {
            let mut body = FIXTURES[i].to_vec();
            for (at, byte) in edits {
                let at = at.index(body.len());
                body[at] = byte;
            }
            if truncate {
                body.truncate(cut.index(body.len() + 1));
            }
            body
        });
    let random = prop::collection::vec(any::<u8>(), 0..256);
    let jsonish = "[{}\\[\\]\":, a-z0-9_/.-]{0,160}".prop_map(String::into_bytes);
    prop_oneof![fixture, mutated, random, jsonish]
}

/// How a signature or token header is chosen.
#[derive(Clone, Copy, Debug)]
enum Proof {
    Right,
    OtherBody,
    OtherSecret,
    Garbage,
    Absent,
}

fn proofs() -> impl Strategy<Value = Proof> {
    prop_oneof![
        Just(Proof::Right),
        Just(Proof::OtherBody),
        Just(Proof::OtherSecret),
        Just(Proof::Garbage),
        Just(Proof::Absent),
    ]
}

fn signature(proof: Proof, body: &[u8], garbage: &str) -> Option<String> {
    match proof {
        Proof::Right => Some(sign(SECRET, body)),
        Proof::OtherBody => Some(sign(SECRET, b"another body")),
        Proof::OtherSecret => Some(sign(b"s3cr3t!", body)),
        Proof::Garbage => Some(garbage.to_string()),
        Proof::Absent => None,
    }
}

fn insert(headers: &mut HeaderMap, name: &'static str, value: Option<String>) {
    if let Some(value) = value.and_then(|v| HeaderValue::from_str(&v).ok()) {
        headers.insert(HeaderName::from_static(name), value);
    }
}

/// Whether a body is well-formed for the provider (a JSON document; generic: empty, JSON or YAML).
fn well_formed(provider: Provider, body: &[u8]) -> bool {
    let json = serde_json::from_slice::<serde_json::Value>(body).is_ok();
    match provider {
        Provider::Generic => {
            json || body.iter().all(u8::is_ascii_whitespace)
                || std::str::from_utf8(body)
                    .is_ok_and(|t| serde_norway::from_str::<serde_norway::Value>(t).is_ok())
        }
        _ => json,
    }
}

fn cases() -> u32 {
    std::env::var("WEBHOOK_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000)
}

#[test]
fn no_panic_and_no_build_without_proof_or_from_malformed_bodies() {
    let bc = config();
    let (mut runner, seed) = crate::fuzz_runner::seeded_runner(
        "WEBHOOK_FUZZ_SEED",
        0x6b69_6c6e,
        "WEBHOOK_FUZZ_CASES",
        20_000,
    );
    let strategy = (
        (
            0..Provider::ALL.len(),
            bodies(),
            proofs(),
            proofs(),
            "[ -~]{0,80}",
        ),
        (
            prop::option::of(prop_oneof![Just("s3cr3t".to_string()), "[ -~]{0,12}"]),
            prop::option::of((0..EVENTS.len()).prop_map(|i| EVENTS[i].to_string())),
            prop::option::of((0..CONTENT_TYPES.len()).prop_map(|i| CONTENT_TYPES[i].to_string())),
            prop::option::of("[ -~]{0,40}"),
        ),
    );
    let built = std::cell::Cell::new(0_u64);
    runner
        .run(
            &strategy,
            |((p, body, sig, token, garbage), (url_secret, event, content_type, delivery))| {
                let provider = Provider::ALL[p];
                let mut headers = HeaderMap::new();
                let hub = signature(sig, &body, &garbage);
                insert(&mut headers, "x-hub-signature-256", hub.clone());
                insert(&mut headers, "x-hub-signature", hub);
                let token_value = match token {
                    Proof::Right => Some("s3cr3t".to_string()),
                    Proof::Absent => None,
                    _ => Some(garbage.clone()),
                };
                insert(&mut headers, "x-gitlab-token", token_value);
                for name in ["x-github-event", "x-gitlab-event", "x-event-key"] {
                    insert(&mut headers, name, event.clone());
                }
                insert(&mut headers, "content-type", content_type);
                for name in [
                    "x-github-delivery",
                    "x-gitlab-event-uuid",
                    "x-request-uuid",
                    "x-request-id",
                ] {
                    insert(&mut headers, name, delivery.clone());
                }
                let incoming = Incoming {
                    provider,
                    url_secret: url_secret.as_deref(),
                    headers: &headers,
                    body: &body,
                };
                let decision = decide(&incoming, Some(&bc), &[Some(SECRET)]);
                if let Decision::Build(_) = decision {
                    built.set(built.get() + 1);
                    let valid = |name: &str| {
                        check_signature(headers.get(name).map(|v| v.as_bytes()), SECRET, &body)
                            == Signature::Valid
                    };
                    let url_ok = url_secret.as_deref() == Some("s3cr3t");
                    let proven = match provider {
                        Provider::GitHub => valid("x-hub-signature-256"),
                        Provider::GitLab => {
                            headers.get("x-gitlab-token").map(|v| v.as_bytes()) == Some(SECRET)
                        }
                        Provider::Bitbucket => url_ok || valid("x-hub-signature"),
                        Provider::Generic => url_ok || valid("x-hub-signature-256"),
                    };
                    prop_assert!(proven, "{provider:?} built without proof: {headers:?}");
                    prop_assert!(
                        well_formed(provider, &body),
                        "{provider:?} built from a malformed body: {}",
                        String::from_utf8_lossy(&body)
                    );
                }
                Ok(())
            },
        )
        .unwrap_or_else(|e| panic!("{e}"));
    // The generator must reach the accepting paths, or the property says nothing.
    let built = built.get();
    assert!(built > 0, "no generated request was accepted");
    eprintln!(
        "webhook fuzz: {} cases (seed {seed}), {built} accepted",
        cases()
    );
}
