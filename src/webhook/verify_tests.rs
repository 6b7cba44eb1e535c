//! Authentication table: every provider, both URL shapes, every way of getting it wrong.

use super::*;

const BODY: &[u8] = b"{\"ref\":\"refs/heads/main\"}";

#[test]
fn signatures_table() {
    let good = sign(b"s3cr3t", BODY);
    let upper = good.to_uppercase().replace("SHA256=", "sha256=");
    #[allow(clippy::type_complexity)]
    let cases: Vec<(Option<&[u8]>, &[u8], Signature)> = vec![
        (None, b"s3cr3t", Signature::Missing),
        (Some(good.as_bytes()), b"s3cr3t", Signature::Valid),
        (Some(upper.as_bytes()), b"s3cr3t", Signature::Valid),
        (Some(good.as_bytes()), b"other", Signature::Bad),
        (Some(b"sha1=0123"), b"s3cr3t", Signature::Bad),
        (Some(b"sha256="), b"s3cr3t", Signature::Bad),
        (
            Some(&good.as_bytes()[..good.len() - 2]),
            b"s3cr3t",
            Signature::Bad,
        ),
        (
            Some(b"sha256=zz00000000000000000000000000000000000000000000000000000000000000"),
            b"s3cr3t",
            Signature::Bad,
        ),
    ];
    for (header, secret, want) in cases {
        assert_eq!(check_signature(header, secret, BODY), want, "{header:?}");
    }
    // The signature covers the body byte for byte.
    assert_eq!(
        check_signature(
            Some(good.as_bytes()),
            b"s3cr3t",
            b"{\"ref\": \"refs/heads/main\"}"
        ),
        Signature::Bad
    );
}

#[test]
fn secrets_equal_table() {
    let cases: [(&[u8], &[u8], bool); 5] = [
        (b"abc", b"abc", true),
        (b"abc", b"abd", false),
        (b"abc", b"abcd", false),
        (b"", b"", true),
        (b"a", b"", false),
    ];
    for (a, b, want) in cases {
        assert_eq!(secrets_equal(a, b), want, "{a:?} {b:?}");
    }
}

struct Case {
    provider: Provider,
    url_secret: Option<&'static str>,
    hub256: Option<String>,
    hub: Option<String>,
    token: Option<&'static str>,
    secrets: Vec<Option<&'static [u8]>>,
    want: Result<usize, AuthFailure>,
}

fn case(provider: Provider, want: Result<usize, AuthFailure>) -> Case {
    Case {
        provider,
        url_secret: None,
        hub256: None,
        hub: None,
        token: None,
        secrets: vec![Some(b"s3cr3t")],
        want,
    }
}

#[test]
fn authentication_table() {
    use AuthFailure::*;
    use Provider::*;
    let signed = || Some(sign(b"s3cr3t", BODY));
    let wrongly = || Some(sign(b"guess", BODY));
    let cases = vec![
        // GitHub: the URL secret and the signature are both required.
        Case {
            url_secret: Some("s3cr3t"),
            hub256: signed(),
            ..case(GitHub, Ok(0))
        },
        Case {
            url_secret: Some("s3cr3t"),
            ..case(GitHub, Err(MissingSignature))
        },
        Case {
            url_secret: Some("s3cr3t"),
            hub256: wrongly(),
            ..case(GitHub, Err(BadSignature))
        },
        Case {
            url_secret: Some("wrong"),
            hub256: signed(),
            ..case(GitHub, Err(WrongSecret))
        },
        Case {
            hub256: signed(),
            ..case(GitHub, Ok(0))
        },
        Case {
            hub256: wrongly(),
            ..case(GitHub, Err(BadSignature))
        },
        case(GitHub, Err(MissingSignature)),
        // The legacy sha1 header does not count.
        Case {
            hub: Some("sha1=abc".into()),
            ..case(GitHub, Err(MissingSignature))
        },
        // GitLab: the token.
        Case {
            url_secret: Some("s3cr3t"),
            token: Some("s3cr3t"),
            ..case(GitLab, Ok(0))
        },
        Case {
            url_secret: Some("s3cr3t"),
            ..case(GitLab, Err(MissingSignature))
        },
        Case {
            token: Some("s3cr3t"),
            ..case(GitLab, Ok(0))
        },
        Case {
            token: Some("s3cr3"),
            ..case(GitLab, Err(BadSignature))
        },
        Case {
            token: Some(""),
            ..case(GitLab, Err(BadSignature))
        },
        // Bitbucket: the signature when present; required without a URL secret.
        Case {
            url_secret: Some("s3cr3t"),
            ..case(Bitbucket, Ok(0))
        },
        Case {
            url_secret: Some("s3cr3t"),
            hub: signed(),
            ..case(Bitbucket, Ok(0))
        },
        Case {
            url_secret: Some("s3cr3t"),
            hub: wrongly(),
            ..case(Bitbucket, Err(BadSignature))
        },
        Case {
            hub: signed(),
            ..case(Bitbucket, Ok(0))
        },
        case(Bitbucket, Err(MissingSignature)),
        // GitHub's header is not Bitbucket's.
        Case {
            hub256: signed(),
            ..case(Bitbucket, Err(MissingSignature))
        },
        // Generic: the URL secret; without it, a GitHub-style signature.
        Case {
            url_secret: Some("s3cr3t"),
            ..case(Generic, Ok(0))
        },
        Case {
            url_secret: Some("s3cr3t"),
            hub256: wrongly(),
            ..case(Generic, Err(BadSignature))
        },
        Case {
            url_secret: Some("S3CR3T"),
            ..case(Generic, Err(WrongSecret))
        },
        Case {
            url_secret: Some(""),
            ..case(Generic, Err(WrongSecret))
        },
        Case {
            hub256: signed(),
            ..case(Generic, Ok(0))
        },
        case(Generic, Err(MissingSignature)),
        // Several triggers: the one whose secret matches.
        Case {
            url_secret: Some("s3cr3t"),
            secrets: vec![Some(b"first"), None, Some(b"s3cr3t")],
            ..case(Generic, Ok(2))
        },
        Case {
            hub256: signed(),
            secrets: vec![Some(b"first"), Some(b"s3cr3t")],
            ..case(GitHub, Ok(1))
        },
        // No trigger, or triggers without a secret, never authenticate.
        Case {
            url_secret: Some("s3cr3t"),
            secrets: vec![],
            ..case(Generic, Err(NoTrigger))
        },
        Case {
            url_secret: Some(""),
            secrets: vec![None],
            ..case(Generic, Err(NoSecret))
        },
        Case {
            url_secret: Some(""),
            secrets: vec![Some(b"")],
            ..case(Generic, Err(NoSecret))
        },
        Case {
            hub256: Some(sign(b"", BODY)),
            secrets: vec![Some(b"")],
            ..case(GitHub, Err(NoSecret))
        },
    ];
    for c in cases {
        let creds = Credentials {
            url_secret: c.url_secret.map(str::as_bytes),
            hub_signature_256: c.hub256.as_deref().map(str::as_bytes),
            hub_signature: c.hub.as_deref().map(str::as_bytes),
            gitlab_token: c.token.map(str::as_bytes),
        };
        assert_eq!(
            authenticate(c.provider, &creds, &c.secrets, BODY),
            c.want,
            "{:?} url={:?} hub256={:?} hub={:?} token={:?}",
            c.provider,
            c.url_secret,
            c.hub256,
            c.hub,
            c.token
        );
    }
}
