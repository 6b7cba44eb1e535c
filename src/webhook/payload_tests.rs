//! Payload parsing against payloads written from each provider's documented format.

use super::bitbucket::parse_raw_person;
use super::*;

macro_rules! fixture {
    ($name:literal) => {
        include_bytes!(concat!("../../tests/fixtures/webhooks/", $name)).as_slice()
    };
}

fn user(name: &str, email: &str) -> Option<SourceControlUser> {
    Some(SourceControlUser {
        name: Some(name.into()),
        email: Some(email.into()),
    })
}

fn push(ref_: &str, commit: Option<&str>, default_branch: Option<&str>) -> Push {
    Push {
        ref_: ref_.into(),
        deleted: commit.is_none(),
        revision: commit.map(|c| GitSourceRevision {
            commit: Some(c.into()),
            ..GitSourceRevision::default()
        }),
        default_branch: default_branch.map(Into::into),
    }
}

#[test]
fn provider_payloads_table() {
    let mut github = push(
        "refs/heads/main",
        Some("0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c"),
        Some("main"),
    );
    if let Some(r) = github.revision.as_mut() {
        r.author = user("Mona Lisa", "mona@example.com");
        r.committer = user("GitHub", "noreply@github.com");
        r.message = Some("Serve /version".into());
    }
    let mut github_tag = github.clone();
    github_tag.ref_ = "refs/tags/v1.2.0".into();
    let mut gitlab = push(
        "refs/heads/main",
        Some("da1560886d4f094c3e6c9ef40349f7d38b5d27d7"),
        Some("main"),
    );
    if let Some(r) = gitlab.revision.as_mut() {
        // The newest commit: the last entry of commits[], not the first.
        r.author = user("GitLab dev user", "gitlabdev@dv6700.(none)");
        r.message = Some("fixed readme".into());
    }
    let gitlab_tag = push(
        "refs/tags/v1.0.0",
        Some("82b3d5ae55f7080f1e6022629cdb57bfae7cccc7"),
        Some("main"),
    );
    let mut bitbucket = push(
        "refs/heads/main",
        Some("709d658dc5b6d6afcd46049c2f332ee3f515a67d"),
        Some("main"),
    );
    if let Some(r) = bitbucket.revision.as_mut() {
        r.author = user("Emma Example", "emma@example.com");
        r.message = Some("Serve /version\n".into());
    }
    let mut bitbucket_server = push(
        "refs/heads/main",
        Some("178864a7d521b6f5e720b386b2c2b0ef8563e0dc"),
        None,
    );
    if let Some(r) = bitbucket_server.revision.as_mut() {
        r.author = user("Administrator", "admin@example.com");
    }
    let cases: Vec<(Provider, &str, &[u8], Event)> = vec![
        (
            Provider::GitHub,
            "push",
            fixture!("github-push.json"),
            Event::Pushes(vec![github]),
        ),
        (
            Provider::GitHub,
            "push",
            fixture!("github-push-tag.json"),
            Event::Pushes(vec![github_tag]),
        ),
        (
            Provider::GitHub,
            "push",
            fixture!("github-push-deleted.json"),
            Event::Pushes(vec![push("refs/heads/main", None, Some("main"))]),
        ),
        (
            Provider::GitHub,
            "ping",
            fixture!("github-ping.json"),
            Event::Ping,
        ),
        (
            Provider::GitLab,
            "Push Hook",
            fixture!("gitlab-push.json"),
            Event::Pushes(vec![gitlab]),
        ),
        (
            Provider::GitLab,
            "Tag Push Hook",
            fixture!("gitlab-tag-push.json"),
            Event::Pushes(vec![gitlab_tag]),
        ),
        (
            Provider::GitLab,
            "Push Hook",
            fixture!("gitlab-push-deleted.json"),
            Event::Pushes(vec![push("refs/heads/main", None, Some("main"))]),
        ),
        (
            Provider::Bitbucket,
            "repo:push",
            fixture!("bitbucket-cloud-push.json"),
            Event::Pushes(vec![bitbucket]),
        ),
        (
            Provider::Bitbucket,
            "repo:push",
            fixture!("bitbucket-cloud-push-deleted.json"),
            Event::Pushes(vec![push("refs/heads/main", None, None)]),
        ),
        (
            Provider::Bitbucket,
            "repo:refs_changed",
            fixture!("bitbucket-server-refs-changed.json"),
            Event::Pushes(vec![bitbucket_server]),
        ),
        (Provider::Bitbucket, "diagnostics:ping", b"{}", Event::Ping),
    ];
    for (provider, event, body, want) in cases {
        assert_eq!(
            parse(provider, Some(event), body),
            Ok(want),
            "{provider:?} {event}"
        );
    }
}

#[test]
fn refused_payloads_table() {
    let cases: Vec<(Provider, Option<&str>, &[u8], &str)> = vec![
        (Provider::GitHub, None, b"{}", "missing_event"),
        (Provider::GitHub, Some("issues"), b"{}", "unsupported_event"),
        (
            Provider::GitHub,
            Some("push"),
            b"{\"ref\": ",
            "malformed_payload",
        ),
        (Provider::GitHub, Some("push"), b"[]", "malformed_payload"),
        (
            Provider::GitHub,
            Some("push"),
            b"{\"ref\": 3}",
            "malformed_payload",
        ),
        (
            Provider::GitHub,
            Some("ping"),
            b"not json",
            "malformed_payload",
        ),
        (
            Provider::GitLab,
            Some("Merge Request Hook"),
            b"{}",
            "unsupported_event",
        ),
        (
            Provider::GitLab,
            Some("Push Hook"),
            b"{}",
            "malformed_payload",
        ),
        (
            Provider::Bitbucket,
            Some("pullrequest:created"),
            b"{}",
            "unsupported_event",
        ),
        (
            Provider::Bitbucket,
            Some("repo:push"),
            b"{\"push\": 1}",
            "malformed_payload",
        ),
        (Provider::Bitbucket, None, b"{}", "missing_event"),
    ];
    for (provider, event, body, label) in cases {
        let err = parse(provider, event, body).expect_err(label);
        assert_eq!(err.label(), label, "{provider:?} {event:?}: {err}");
    }
}

#[test]
fn generic_payloads_table() {
    let json = parse_generic(GenericEncoding::Json, fixture!("generic.json")).unwrap();
    let git = json.git.as_ref().unwrap();
    assert_eq!(git.ref_.as_deref(), Some("refs/heads/main"));
    assert_eq!(
        git.revision().and_then(|r| r.committer),
        user("CI", "ci@example.com")
    );
    assert_eq!(json.env[0].name, "EXTRA");
    let options = json.docker_strategy_options.as_ref().unwrap();
    assert_eq!(options.build_args[0].name, "VERSION");
    assert_eq!(options.no_cache, Some(true));

    let yaml = parse_generic(GenericEncoding::Yaml, fixture!("generic.yaml")).unwrap();
    assert_eq!(
        yaml.git.as_ref().and_then(|g| g.ref_.as_deref()),
        Some("main")
    );
    // Without a Content-Type, YAML is recognised after JSON fails.
    assert_eq!(
        parse_generic(GenericEncoding::Unspecified, fixture!("generic.yaml")).unwrap(),
        yaml
    );
    for encoding in [
        GenericEncoding::Json,
        GenericEncoding::Yaml,
        GenericEncoding::Unspecified,
    ] {
        assert_eq!(
            parse_generic(encoding, b" \n").unwrap(),
            GenericWebHookEvent::default()
        );
    }
    let refused: Vec<(GenericEncoding, &[u8])> = vec![
        (GenericEncoding::Json, b"{\"git\": "),
        (GenericEncoding::Json, fixture!("generic.yaml")),
        (GenericEncoding::Yaml, b"git: [unclosed"),
        (GenericEncoding::Unspecified, b"- just\n- a list\n"),
        (
            GenericEncoding::Unspecified,
            b"{\"git\": {\"ref\": 7, \"commit\": []}}",
        ),
    ];
    for (encoding, body) in refused {
        let err = parse_generic(encoding, body).expect_err("malformed");
        assert_eq!(err.label(), "malformed_payload");
    }
}

#[test]
fn raw_authors_table() {
    let cases = [
        (
            "Emma Example <emma@example.com>",
            user("Emma Example", "emma@example.com"),
        ),
        (
            "<only@example.com>",
            Some(SourceControlUser {
                name: None,
                email: Some("only@example.com".into()),
            }),
        ),
        (
            "Just A Name",
            Some(SourceControlUser {
                name: Some("Just A Name".into()),
                email: None,
            }),
        ),
        ("", None),
    ];
    for (raw, want) in cases {
        assert_eq!(parse_raw_person(raw), want, "{raw:?}");
    }
}
