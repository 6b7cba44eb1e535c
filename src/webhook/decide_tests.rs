//! The decision table: one BuildConfig, requests from every provider.

use axum::http::HeaderValue;

use super::*;
use crate::webhook::verify::sign;

macro_rules! fixture {
    ($name:literal) => {
        include_bytes!(concat!("../../tests/fixtures/webhooks/", $name)).as_slice()
    };
}

const SECRET: &[u8] = b"s3cr3t";

fn bc(extra: &str) -> BuildConfig {
    let yaml = format!(
        r#"
metadata: {{name: app, namespace: demo, uid: u-1}}
spec:
  source: {{type: Git, git: {{uri: "https://example.com/app.git", ref: main}}}}
  strategy: {{type: Docker}}
  triggers:
    - {{type: GitHub, github: {{secret: s3cr3t{extra}}}}}
    - {{type: GitLab, gitlab: {{secret: s3cr3t{extra}}}}}
    - {{type: Bitbucket, bitbucket: {{secret: s3cr3t{extra}}}}}
    - {{type: Generic, generic: {{secret: s3cr3t, allowEnv: true{extra}}}}}
"#
    );
    let mut doc = crate::yaml::read_documents(&yaml).unwrap().remove(0);
    doc["apiVersion"] = "build.kiln.dev/v1alpha1".into();
    doc["kind"] = "BuildConfig".into();
    serde_json::from_value(doc).unwrap()
}

fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (name, value) in pairs {
        h.insert(*name, HeaderValue::from_str(value).unwrap());
    }
    h
}

/// The headers a provider sends for `event`, signed or tokened with SECRET.
fn provider_headers(provider: Provider, event: &str, body: &[u8]) -> HeaderMap {
    let sig = sign(SECRET, body);
    match provider {
        Provider::GitHub => headers(&[
            ("content-type", "application/json"),
            ("x-github-event", event),
            ("x-github-delivery", "d-1"),
            ("x-hub-signature-256", &sig),
        ]),
        Provider::GitLab => headers(&[
            ("content-type", "application/json"),
            ("x-gitlab-event", event),
            ("x-gitlab-event-uuid", "d-1"),
            ("x-gitlab-token", "s3cr3t"),
        ]),
        Provider::Bitbucket => headers(&[
            ("content-type", "application/json"),
            ("x-event-key", event),
            ("x-request-uuid", "d-1"),
            ("x-hub-signature", &sig),
        ]),
        Provider::Generic => headers(&[
            ("content-type", "application/json"),
            ("x-hub-signature-256", &sig),
        ]),
    }
}

fn run(
    bc: &BuildConfig,
    provider: Provider,
    url_secret: Option<&str>,
    headers: &HeaderMap,
    body: &[u8],
) -> Decision {
    let secrets: Vec<Option<&[u8]>> = provider.triggers(bc).iter().map(|_| Some(SECRET)).collect();
    decide(
        &Incoming {
            provider,
            url_secret,
            headers,
            body,
        },
        Some(bc),
        &secrets,
    )
}

fn built(d: Decision) -> BuildRequest {
    match d {
        Decision::Build(r) => *r,
        Decision::Answer(o) => panic!("expected a build, got {o:?}"),
    }
}

fn commit(r: &BuildRequest) -> Option<&str> {
    r.revision.as_ref()?.git.as_ref()?.commit.as_deref()
}

#[test]
fn provider_events_table() {
    let plain = bc("");
    let globs = bc(", branches: [\"release/*\"], tags: [\"v*\"]");
    let ignored = |i| Decision::Answer(Outcome::Ignored(i));
    // (config, provider, event, body, expected commit or answer)
    #[allow(clippy::type_complexity)]
    let cases: Vec<(&BuildConfig, Provider, &str, &[u8], Result<&str, Decision>)> = vec![
        (
            &plain,
            Provider::GitHub,
            "push",
            fixture!("github-push.json"),
            Ok("0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c"),
        ),
        (
            &plain,
            Provider::GitHub,
            "ping",
            fixture!("github-ping.json"),
            Err(ignored(Ignored::Ping)),
        ),
        (
            &plain,
            Provider::GitHub,
            "push",
            fixture!("github-push-tag.json"),
            Err(ignored(Ignored::RefMismatch)),
        ),
        (
            &globs,
            Provider::GitHub,
            "push",
            fixture!("github-push-tag.json"),
            Ok("0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c"),
        ),
        (
            &plain,
            Provider::GitHub,
            "push",
            fixture!("github-push-deleted.json"),
            Err(ignored(Ignored::DeletedRef)),
        ),
        (
            &plain,
            Provider::GitLab,
            "Push Hook",
            fixture!("gitlab-push.json"),
            Ok("da1560886d4f094c3e6c9ef40349f7d38b5d27d7"),
        ),
        (
            &plain,
            Provider::GitLab,
            "Tag Push Hook",
            fixture!("gitlab-tag-push.json"),
            Err(ignored(Ignored::RefMismatch)),
        ),
        (
            &globs,
            Provider::GitLab,
            "Tag Push Hook",
            fixture!("gitlab-tag-push.json"),
            Ok("82b3d5ae55f7080f1e6022629cdb57bfae7cccc7"),
        ),
        (
            &plain,
            Provider::GitLab,
            "Push Hook",
            fixture!("gitlab-push-deleted.json"),
            Err(ignored(Ignored::DeletedRef)),
        ),
        (
            &plain,
            Provider::Bitbucket,
            "repo:push",
            fixture!("bitbucket-cloud-push.json"),
            Ok("709d658dc5b6d6afcd46049c2f332ee3f515a67d"),
        ),
        (
            &plain,
            Provider::Bitbucket,
            "repo:push",
            fixture!("bitbucket-cloud-push-deleted.json"),
            Err(ignored(Ignored::DeletedRef)),
        ),
        (
            &plain,
            Provider::Bitbucket,
            "repo:refs_changed",
            fixture!("bitbucket-server-refs-changed.json"),
            Ok("178864a7d521b6f5e720b386b2c2b0ef8563e0dc"),
        ),
        (
            &plain,
            Provider::Generic,
            "",
            fixture!("generic.json"),
            Ok("5a3e4d0b9a9f1d4f3c2b1a0f9e8d7c6b5a4f3e2d"),
        ),
        // Branch globs replace the exact match: main is no longer built.
        (
            &globs,
            Provider::GitHub,
            "push",
            fixture!("github-push.json"),
            Err(ignored(Ignored::RefMismatch)),
        ),
    ];
    for (config, provider, event, body, want) in cases {
        let got = run(
            config,
            provider,
            None,
            &provider_headers(provider, event, body),
            body,
        );
        match want {
            Ok(want) => {
                let request = built(got);
                assert_eq!(commit(&request), Some(want), "{provider:?} {event}");
            }
            Err(want) => assert_eq!(got, want, "{provider:?} {event}"),
        }
    }
}

#[test]
fn a_build_request_pins_the_commit_and_names_the_cause() {
    let body = fixture!("github-push.json");
    let request = built(run(
        &bc(""),
        Provider::GitHub,
        Some("s3cr3t"),
        &provider_headers(Provider::GitHub, "push", body),
        body,
    ));
    assert_eq!(request.request_id, "webhook:github:d-1");
    let git = request
        .revision
        .as_ref()
        .and_then(|r| r.git.clone())
        .unwrap();
    assert_eq!(
        git.author.and_then(|a| a.name).as_deref(),
        Some("Mona Lisa")
    );
    assert_eq!(
        git.committer.and_then(|a| a.email).as_deref(),
        Some("noreply@github.com")
    );
    assert_eq!(git.message.as_deref(), Some("Serve /version"));
    assert_eq!(request.cause.message.as_deref(), Some("GitHub WebHook"));
    let hook = request.cause.github_web_hook.as_ref().unwrap();
    assert_eq!(hook.secret.as_deref(), Some("<secret>"));
    assert_eq!(hook.revision, request.revision);
    assert_eq!(request.git_ref, None, "the BuildConfig's own ref is kept");
    let text = serde_json::to_string(&request.cause).unwrap();
    assert!(!text.contains("s3cr3t"), "{text}");

    let tag = fixture!("github-push-tag.json");
    let globs = bc(", tags: [\"v*\"]");
    let request = built(run(
        &globs,
        Provider::GitHub,
        None,
        &provider_headers(Provider::GitHub, "push", tag),
        tag,
    ));
    assert_eq!(request.git_ref.as_deref(), Some("refs/tags/v1.2.0"));
}

#[test]
fn generic_events_table() {
    let body = fixture!("generic.json");
    let with_env = built(run(
        &bc(""),
        Provider::Generic,
        Some("s3cr3t"),
        &provider_headers(Provider::Generic, "", body),
        body,
    ));
    assert_eq!(with_env.env.len(), 1);
    assert_eq!(with_env.build_args[0].name, "VERSION");
    assert_eq!(with_env.no_cache, Some(true));
    assert_eq!(
        with_env.request_id, "",
        "no delivery id: the caller makes one"
    );

    // env is dropped without allowEnv.
    let mut no_env = bc("");
    if let Some(g) = no_env.spec.triggers[3].generic.as_mut() {
        g.allow_env = None;
    }
    let request = built(run(
        &no_env,
        Provider::Generic,
        Some("s3cr3t"),
        &provider_headers(Provider::Generic, "", body),
        body,
    ));
    assert!(request.env.is_empty());

    let yaml = fixture!("generic.yaml");
    let h = headers(&[
        ("content-type", "application/yaml"),
        ("x-request-id", "g-7"),
    ]);
    let request = built(run(&bc(""), Provider::Generic, Some("s3cr3t"), &h, yaml));
    assert_eq!(request.request_id, "webhook:generic:g-7");

    #[allow(clippy::type_complexity)]

    let cases: Vec<(&[u8], Result<Option<&str>, Ignored>)> = vec![
        (b"", Ok(None)),
        (b"{}", Ok(None)),
        (br#"{"git": {"ref": "main", "commit": "c1"}}"#, Ok(Some("c1"))),
        (br#"{"git": {"ref": "dev", "commit": "c1"}}"#, Err(Ignored::RefMismatch)),
        (br#"{"git": {"commit": "c1"}}"#, Ok(Some("c1"))),
        (br#"{"git": {"refs": [{"ref": "dev", "commit": "c1"}, {"ref": "refs/heads/main", "commit": "c2"}]}}"#, Ok(Some("c2"))),
        (br#"{"git": {"refs": [{"ref": "dev", "commit": "c1"}]}}"#, Err(Ignored::RefMismatch)),
    ];
    let h = headers(&[("content-type", "application/json")]);
    for (body, want) in cases {
        let got = run(&bc(""), Provider::Generic, Some("s3cr3t"), &h, body);
        match want {
            Ok(c) => assert_eq!(commit(&built(got)), c, "{}", String::from_utf8_lossy(body)),
            Err(i) => assert_eq!(got, Decision::Answer(Outcome::Ignored(i))),
        }
    }
}

#[test]
fn refusals_table() {
    let config = bc("");
    let push = fixture!("github-push.json");
    let good = provider_headers(Provider::GitHub, "push", push);
    let mut form = good.clone();
    form.insert(
        "content-type",
        HeaderValue::from_static("application/x-www-form-urlencoded"),
    );
    let mut issues = good.clone();
    issues.insert("x-github-event", HeaderValue::from_static("issues"));
    let mut bad_delivery = good.clone();
    bad_delivery.insert("x-github-delivery", HeaderValue::from_static("has space"));
    let malformed: &[u8] = b"{\"ref\": [";
    let malformed_headers = provider_headers(Provider::GitHub, "push", malformed);
    let mut generic_xml = headers(&[("content-type", "application/xml")]);
    generic_xml.insert(
        "x-hub-signature-256",
        HeaderValue::from_str(&sign(SECRET, b"<x/>")).unwrap(),
    );
    let empty = HeaderMap::new();
    #[allow(clippy::type_complexity)]
    let cases: Vec<(Provider, Option<&str>, &HeaderMap, &[u8], StatusCode, &str)> = vec![
        (
            Provider::GitHub,
            Some("wrong"),
            &good,
            push,
            StatusCode::UNAUTHORIZED,
            "wrong_secret",
        ),
        (
            Provider::GitHub,
            None,
            &empty,
            push,
            StatusCode::UNAUTHORIZED,
            "missing_signature",
        ),
        (
            Provider::GitHub,
            None,
            &good,
            b"{}",
            StatusCode::UNAUTHORIZED,
            "bad_signature",
        ),
        (
            Provider::GitHub,
            None,
            &form,
            push,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "content_type",
        ),
        (
            Provider::GitHub,
            None,
            &issues,
            push,
            StatusCode::BAD_REQUEST,
            "unsupported_event",
        ),
        (
            Provider::GitHub,
            None,
            &bad_delivery,
            push,
            StatusCode::BAD_REQUEST,
            "bad_delivery_id",
        ),
        (
            Provider::GitHub,
            None,
            &malformed_headers,
            malformed,
            StatusCode::BAD_REQUEST,
            "malformed_payload",
        ),
        (
            Provider::Generic,
            None,
            &generic_xml,
            b"<x/>",
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "content_type",
        ),
    ];
    for (provider, url_secret, h, body, status, reason) in cases {
        match run(&config, provider, url_secret, h, body) {
            Decision::Answer(o) => {
                assert_eq!(
                    (o.status(), o.reason()),
                    (status, reason),
                    "{provider:?} {reason}"
                );
                assert_eq!(o.kind(), "refused");
                assert!(Outcome::REASONS.contains(&o.reason()));
            }
            Decision::Build(_) => panic!("{reason}: built"),
        }
    }
    // An unknown BuildConfig and a BuildConfig without the trigger answer alike.
    let h = HeaderMap::new();
    let incoming = Incoming {
        provider: Provider::GitHub,
        url_secret: Some("s3cr3t"),
        headers: &h,
        body: b"",
    };
    let mut bare = config.clone();
    bare.spec.triggers.clear();
    let unknown = decide(&incoming, None, &[]);
    let no_trigger = decide(&incoming, Some(&bare), &[]);
    for d in [unknown, no_trigger] {
        let Decision::Answer(o) = d else {
            panic!("built")
        };
        assert_eq!(o.status(), StatusCode::UNAUTHORIZED);
    }
}

#[test]
fn the_reason_labels_are_a_fixed_set() {
    let outcomes = [
        Outcome::Accepted {
            build: "a-1".into(),
        },
        Outcome::Ignored(Ignored::Ping),
        Outcome::Ignored(Ignored::RefMismatch),
        Outcome::Ignored(Ignored::DeletedRef),
        Outcome::Refused(Refused::MethodNotAllowed),
        Outcome::Refused(Refused::BadPath),
        Outcome::Refused(Refused::UnknownType),
        Outcome::Refused(Refused::TooLarge),
        Outcome::Refused(Refused::Unauthorized(AuthFailure::NoSecret)),
        Outcome::Refused(Refused::ContentType(String::new())),
        Outcome::Refused(Refused::Paused),
        Outcome::Refused(Refused::NotReady),
        Outcome::Refused(Refused::InstantiateFailed),
    ];
    let statuses = [
        200, 200, 200, 200, 405, 400, 404, 413, 401, 415, 400, 503, 500,
    ];
    for (o, status) in outcomes.iter().zip(statuses) {
        assert_eq!(o.status().as_u16(), status, "{o:?}");
        assert!(Outcome::REASONS.contains(&o.reason()), "{o:?}");
    }
}
