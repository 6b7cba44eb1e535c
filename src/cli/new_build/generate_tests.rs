//! Table-driven tests of [`super::generate`]: repository URL, ref, Dockerfile text and flags in,
//! objects out.

use serde_json::{json, Value};

use super::base::split_image;
use super::*;

const SEED: &str = "ARG REGISTRY=localhost:5000\nFROM ${REGISTRY}/library/golang:1.19 AS builder\nRUN go build\nFROM ${REGISTRY}/library/busybox:latest\nCOPY --from=builder /a /a\n";

fn secrets() -> WebhookSecrets {
    WebhookSecrets {
        github: "gh-0123456789abcdefg".into(),
        generic: "ge-0123456789abcdefg".into(),
    }
}

fn env(name: &str, value: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value: Some(value.into()),
        value_from: None,
    }
}

fn git(uri: &str, ref_: Option<&str>) -> Request {
    Request {
        source: Source::Git {
            uri: uri.into(),
            ref_: ref_.map(String::from),
        },
        name: None,
        output: Output::Default,
        context_dir: None,
        dockerfile: None,
        env: vec![],
        build_args: vec![],
        source_secret: None,
        push_secret: None,
        insecure_registry: false,
    }
}

fn run(req: &Request, dockerfile: Option<&str>) -> Result<Generated, Error> {
    generate(req, dockerfile, "the Dockerfile", &secrets())
}

/// `kind/name` of every document, in order.
fn kinds(g: &Generated) -> Vec<String> {
    g.documents()
        .iter()
        .map(|d| {
            format!(
                "{}/{}",
                d["kind"].as_str().unwrap_or("?"),
                d["metadata"]["name"].as_str().unwrap_or("?")
            )
        })
        .collect()
}

#[test]
fn generated_objects_table() {
    type Case = (
        &'static str,
        Request,
        Option<&'static str>,
        Vec<&'static str>,
        Vec<(&'static str, Value)>,
    );
    let cases: Vec<Case> = vec![
        (
            "repository with build args, env, secrets and context dir",
            Request {
                context_dir: Some("examples/go-server".into()),
                env: vec![env("LOG", "debug")],
                build_args: vec![env("REGISTRY", "127.0.0.1:5000")],
                source_secret: Some("creds".into()),
                push_secret: Some("push".into()),
                ..git("git://127.0.0.1:9418/go-server.git", Some("main"))
            },
            Some(SEED),
            vec![
                "Secret/go-server-github-webhook-secret",
                "Secret/go-server-generic-webhook-secret",
                "ImageStream/busybox",
                "ImageStream/go-server",
                "BuildConfig/go-server",
            ],
            vec![
                ("/2/spec/tags/0/name", json!("latest")),
                ("/2/spec/tags/0/from", json!({"kind": "DockerImage", "name": "127.0.0.1:5000/library/busybox:latest"})),
                ("/2/spec/tags/0/importPolicy", json!({})),
                ("/4/spec/source", json!({
                    "type": "Git",
                    "git": {"uri": "git://127.0.0.1:9418/go-server.git", "ref": "main"},
                    "contextDir": "examples/go-server",
                    "sourceSecret": {"name": "creds"}
                })),
                ("/4/spec/strategy/dockerStrategy/from", json!({"kind": "ImageStreamTag", "name": "busybox:latest"})),
                ("/4/spec/strategy/dockerStrategy/env", json!([{"name": "LOG", "value": "debug"}])),
                ("/4/spec/strategy/dockerStrategy/buildArgs", json!([{"name": "REGISTRY", "value": "127.0.0.1:5000"}])),
                ("/4/spec/output", json!({"to": {"kind": "ImageStreamTag", "name": "go-server:latest"}, "pushSecret": {"name": "push"}})),
                ("/4/spec/triggers", json!([
                    {"type": "GitHub", "github": {"secretReference": {"name": "go-server-github-webhook-secret"}}},
                    {"type": "Generic", "generic": {"secretReference": {"name": "go-server-generic-webhook-secret"}}},
                    {"type": "ConfigChange"},
                    {"type": "ImageChange", "imageChange": {}}
                ])),
            ],
        ),
        (
            "--to names the output stream and tag; the name still comes from the URL",
            Request { output: Output::ImageStreamTag("web:v1".into()), ..git("https://example.com/team/My_App.git/", None) },
            Some("FROM registry.example.com:5000/base/node:20-alpine\n"),
            vec![
                "Secret/my-app-github-webhook-secret",
                "Secret/my-app-generic-webhook-secret",
                "ImageStream/node",
                "ImageStream/web",
                "BuildConfig/my-app",
            ],
            vec![
                ("/2/spec/tags/0/name", json!("20-alpine")),
                ("/2/spec/tags/0/annotations", json!({"openshift.io/imported-from": "registry.example.com:5000/base/node:20-alpine"})),
                ("/4/spec/output/to", json!({"kind": "ImageStreamTag", "name": "web:v1"})),
                ("/4/spec/source/git", json!({"uri": "https://example.com/team/My_App.git/"})),
            ],
        ),
        (
            "--to without a tag means latest",
            Request { output: Output::ImageStreamTag("web".into()), ..git("ssh://git@h/app", None) },
            Some("FROM img\n"),
            vec!["Secret/app-github-webhook-secret", "Secret/app-generic-webhook-secret", "ImageStream/img", "ImageStream/web", "BuildConfig/app"],
            vec![("/4/spec/output/to/name", json!("web:latest")), ("/2/spec/tags/0/name", json!("latest"))],
        ),
        (
            "--to-docker: no output stream",
            Request { output: Output::DockerImage("registry.example.com/team/app:1".into()), ..git("git@github.com:team/app.git", None) },
            Some("FROM img@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n"),
            vec!["Secret/app-github-webhook-secret", "Secret/app-generic-webhook-secret", "ImageStream/img", "BuildConfig/app"],
            vec![
                ("/3/spec/output/to", json!({"kind": "DockerImage", "name": "registry.example.com/team/app:1"})),
                ("/2/spec/tags/0/name", json!("latest")),
                ("/2/spec/tags/0/from/name", json!("img@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")),
            ],
        ),
        (
            "an inline Dockerfile replaces the repository's",
            Request { dockerfile: Some("FROM alpine:3\nRUN true\n".into()), ..git("https://h/app.git", None) },
            Some("FROM ignored:1\n"),
            vec!["Secret/app-github-webhook-secret", "Secret/app-generic-webhook-secret", "ImageStream/alpine", "ImageStream/app", "BuildConfig/app"],
            vec![
                ("/4/spec/source/dockerfile", json!("FROM alpine:3\nRUN true\n")),
                ("/4/spec/source/type", json!("Git")),
                ("/2/spec/tags/0/name", json!("3")),
            ],
        ),
        (
            "Dockerfile only, named by --name",
            Request { source: Source::Dockerfile, name: Some("hello".into()), dockerfile: Some("FROM busybox\n".into()), ..git("", None) },
            None,
            vec!["Secret/hello-github-webhook-secret", "Secret/hello-generic-webhook-secret", "ImageStream/busybox", "ImageStream/hello", "BuildConfig/hello"],
            vec![("/4/spec/source", json!({"type": "Dockerfile", "dockerfile": "FROM busybox\n"}))],
        ),
        (
            "Dockerfile only, named after --to",
            Request { source: Source::Dockerfile, output: Output::ImageStreamTag("site:prod".into()), dockerfile: Some("FROM busybox\n".into()), ..git("", None) },
            None,
            vec!["Secret/site-github-webhook-secret", "Secret/site-generic-webhook-secret", "ImageStream/busybox", "ImageStream/site", "BuildConfig/site"],
            vec![("/4/spec/output/to/name", json!("site:prod"))],
        ),
        (
            "binary without a Dockerfile: webhooks only, no base image",
            Request { source: Source::Binary, name: Some("upload".into()), ..git("", None) },
            None,
            vec!["Secret/upload-github-webhook-secret", "Secret/upload-generic-webhook-secret", "ImageStream/upload", "BuildConfig/upload"],
            vec![
                ("/3/spec/source", json!({"type": "Binary", "binary": {}})),
                ("/3/spec/strategy", json!({"type": "Docker", "dockerStrategy": {}})),
                ("/3/spec/triggers/2", Value::Null),
            ],
        ),
        (
            "binary with a Dockerfile: base stream and from, but no ConfigChange or ImageChange",
            Request { source: Source::Binary, name: Some("upload".into()), dockerfile: Some("FROM busybox:1\n".into()), ..git("", None) },
            None,
            vec!["Secret/upload-github-webhook-secret", "Secret/upload-generic-webhook-secret", "ImageStream/busybox", "ImageStream/upload", "BuildConfig/upload"],
            vec![
                ("/4/spec/strategy/dockerStrategy/from/name", json!("busybox:1")),
                ("/4/spec/triggers/1/type", json!("Generic")),
                ("/4/spec/triggers/2", Value::Null),
            ],
        ),
        (
            "a last FROM naming a stage: no base stream, no ImageChange",
            git("https://h/app.git", None),
            Some("FROM golang:1 AS build\nRUN x\nFROM build\n"),
            vec!["Secret/app-github-webhook-secret", "Secret/app-generic-webhook-secret", "ImageStream/app", "BuildConfig/app"],
            vec![
                ("/3/spec/strategy/dockerStrategy", json!({})),
                ("/3/spec/triggers/2", json!({"type": "ConfigChange"})),
                ("/3/spec/triggers/3", Value::Null),
            ],
        ),
        (
            "--insecure-registry makes the import insecure",
            Request { insecure_registry: true, ..git("https://h/app.git", None) },
            Some("FROM 127.0.0.1:5000/library/busybox:latest\n"),
            vec!["Secret/app-github-webhook-secret", "Secret/app-generic-webhook-secret", "ImageStream/busybox", "ImageStream/app", "BuildConfig/app"],
            vec![("/2/spec/tags/0/importPolicy", json!({"insecure": true}))],
        ),
    ];
    for (what, req, dockerfile, want_kinds, pointers) in cases {
        let g = run(&req, dockerfile).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(kinds(&g), want_kinds, "{what}");
        let docs = Value::Array(g.documents());
        for (pointer, want) in pointers {
            assert_eq!(
                docs.pointer(pointer).cloned().unwrap_or(Value::Null),
                want,
                "{what}: {pointer}"
            );
        }
        // Every object: the build label and the generated-by annotation, no namespace, no status.
        for doc in docs.as_array().into_iter().flatten() {
            assert_eq!(
                doc["metadata"]["labels"],
                json!({"build": g.name}),
                "{what}"
            );
            assert_eq!(
                doc["metadata"]["annotations"],
                json!({GENERATED_BY_ANNOTATION: GENERATED_BY}),
                "{what}"
            );
            assert!(
                doc["metadata"].get("namespace").is_none() && doc.get("status").is_none(),
                "{what}: {doc}"
            );
        }
        // Webhook secrets only in the Secrets, never inline in the BuildConfig.
        let bc = docs
            .as_array()
            .and_then(|d| d.last())
            .cloned()
            .unwrap_or_default()
            .to_string();
        assert!(
            !bc.contains("0123456789abcdefg") && !bc.contains("\"secret\""),
            "{what}: {bc}"
        );
    }
}

#[test]
fn the_whole_output_of_a_repository_build() {
    let req = Request {
        build_args: vec![env("REGISTRY", "127.0.0.1:5000")],
        context_dir: Some("examples/go-server".into()),
        ..git("git://127.0.0.1:9418/go-server.git", Some("main"))
    };
    let g = run(&req, Some(SEED)).unwrap();
    let text = crate::yaml::write_documents(&g.documents()).unwrap();
    // Secret data is base64 of the given secrets.
    let want = r#"apiVersion: v1
data:
  WebHookSecretKey: Z2gtMDEyMzQ1Njc4OWFiY2RlZmc=
kind: Secret
metadata:
  annotations:
    build.kiln.dev/generated-by: KilnNewBuild
  labels:
    build: go-server
  name: go-server-github-webhook-secret
type: Opaque
---
apiVersion: v1
data:
  WebHookSecretKey: Z2UtMDEyMzQ1Njc4OWFiY2RlZmc=
kind: Secret
metadata:
  annotations:
    build.kiln.dev/generated-by: KilnNewBuild
  labels:
    build: go-server
  name: go-server-generic-webhook-secret
type: Opaque
---
apiVersion: image.kiln.dev/v1alpha1
kind: ImageStream
metadata:
  annotations:
    build.kiln.dev/generated-by: KilnNewBuild
  labels:
    build: go-server
  name: busybox
spec:
  lookupPolicy:
    local: false
  tags:
  - annotations:
      openshift.io/imported-from: 127.0.0.1:5000/library/busybox:latest
    from:
      kind: DockerImage
      name: 127.0.0.1:5000/library/busybox:latest
    importPolicy: {}
    name: latest
---
apiVersion: image.kiln.dev/v1alpha1
kind: ImageStream
metadata:
  annotations:
    build.kiln.dev/generated-by: KilnNewBuild
  labels:
    build: go-server
  name: go-server
spec:
  lookupPolicy:
    local: false
---
apiVersion: build.kiln.dev/v1alpha1
kind: BuildConfig
metadata:
  annotations:
    build.kiln.dev/generated-by: KilnNewBuild
  labels:
    build: go-server
  name: go-server
spec:
  output:
    to:
      kind: ImageStreamTag
      name: go-server:latest
  runPolicy: Serial
  source:
    contextDir: examples/go-server
    git:
      ref: main
      uri: git://127.0.0.1:9418/go-server.git
    type: Git
  strategy:
    dockerStrategy:
      buildArgs:
      - name: REGISTRY
        value: 127.0.0.1:5000
      from:
        kind: ImageStreamTag
        name: busybox:latest
    type: Docker
  triggers:
  - github:
      secretReference:
        name: go-server-github-webhook-secret
    type: GitHub
  - generic:
      secretReference:
        name: go-server-generic-webhook-secret
    type: Generic
  - type: ConfigChange
  - imageChange: {}
    type: ImageChange
"#;
    assert_eq!(text, want);
    assert_eq!(
        g.base_image.as_deref(),
        Some("127.0.0.1:5000/library/busybox:latest")
    );
    assert!(g.notes.is_empty());
}

#[test]
fn errors_table() {
    let inline = |text: &str| Request {
        source: Source::Dockerfile,
        name: Some("app".into()),
        dockerfile: Some(text.into()),
        ..git("", None)
    };
    type Case = (
        &'static str,
        Request,
        Option<&'static str>,
        fn(&Error) -> bool,
    );
    let cases: Vec<Case> = vec![
        (
            "upper-case --name",
            Request {
                name: Some("App".into()),
                ..git("https://h/a.git", None)
            },
            Some("FROM a\n"),
            |e| matches!(e, Error::InvalidName { .. }),
        ),
        (
            "--name starting with a digit",
            Request {
                name: Some("1app".into()),
                ..git("https://h/a.git", None)
            },
            Some("FROM a\n"),
            |e| matches!(e, Error::InvalidName { .. }),
        ),
        (
            "--name too long",
            Request {
                name: Some("a".repeat(59)),
                ..git("https://h/a.git", None)
            },
            Some("FROM a\n"),
            |e| matches!(e, Error::InvalidName { .. }),
        ),
        (
            "no name for a Dockerfile source",
            Request {
                name: None,
                ..inline("FROM a\n")
            },
            None,
            |e| matches!(e, Error::NoName(_)),
        ),
        (
            "a URL without a usable name",
            git("https://h/_.git", None),
            Some("FROM a\n"),
            |e| matches!(e, Error::NoName(_)),
        ),
        (
            "--to with a registry",
            Request {
                output: Output::ImageStreamTag("r.io/x:1".into()),
                ..git("https://h/a.git", None)
            },
            Some("FROM a\n"),
            |e| matches!(e, Error::InvalidTo { .. }),
        ),
        (
            "--to with an empty tag",
            Request {
                output: Output::ImageStreamTag("x:".into()),
                ..git("https://h/a.git", None)
            },
            Some("FROM a\n"),
            |e| matches!(e, Error::InvalidTo { .. }),
        ),
        (
            "--to with an upper-case stream",
            Request {
                output: Output::ImageStreamTag("X:1".into()),
                ..git("https://h/a.git", None)
            },
            Some("FROM a\n"),
            |e| matches!(e, Error::InvalidTo { .. }),
        ),
        (
            "--to-docker not a reference",
            Request {
                output: Output::DockerImage("Not A Ref".into()),
                ..git("https://h/a.git", None)
            },
            Some("FROM a\n"),
            |e| matches!(e, Error::InvalidToDocker { .. }),
        ),
        (
            "no Dockerfile for a repository",
            git("https://h/a.git", None),
            None,
            |e| *e == Error::NoDockerfile,
        ),
        (
            "a Dockerfile without FROM",
            git("https://h/a.git", None),
            Some("RUN x\n"),
            |e| {
                matches!(
                    e,
                    Error::Dockerfile {
                        source: dockerfile::Error::NoFrom,
                        ..
                    }
                )
            },
        ),
        (
            "an unknown instruction",
            inline("FROM a\nFRM b\n"),
            None,
            |e| {
                matches!(
                    e,
                    Error::Dockerfile {
                        source: dockerfile::Error::UnknownInstruction { line: 2, .. },
                        ..
                    }
                )
            },
        ),
        (
            "a last FROM that is no reference",
            git("https://h/a.git", None),
            Some("FROM Busy:Box\n"),
            |e| matches!(e, Error::InvalidFrom { .. }),
        ),
        (
            "building onto its own base stream",
            git("https://h/busybox.git", None),
            Some("FROM busybox\n"),
            |e| *e == Error::SameStream("busybox".into()),
        ),
        (
            "--to onto the base stream",
            Request {
                output: Output::ImageStreamTag("node:mine".into()),
                ..git("https://h/a.git", None)
            },
            Some("FROM node:20\n"),
            |e| *e == Error::SameStream("node".into()),
        ),
    ];
    for (what, req, dockerfile, check) in cases {
        match run(&req, dockerfile) {
            Ok(g) => panic!("{what}: generated {:?}", kinds(&g)),
            Err(e) => {
                assert!(check(&e), "{what}: {e:?}");
                assert!(!e.to_string().contains('\n'), "{what}: one line: {e}");
            }
        }
    }
}

#[test]
fn notes_say_why_there_is_no_base_stream() {
    for (dockerfile, says) in [
        ("FROM a AS b\nFROM b\n", "the stage \"b\""),
        ("FROM scratch\n", "is scratch"),
        ("FROM $BASE/x\n", "no ARG default or --build-arg sets"),
    ] {
        let g = run(&git("https://h/app.git", None), Some(dockerfile)).unwrap();
        assert!(g.base.is_none() && g.base_image.is_none(), "{dockerfile}");
        assert_eq!(g.notes.len(), 1, "{dockerfile}");
        assert!(g.notes[0].contains(says), "{dockerfile}: {}", g.notes[0]);
    }
}

#[test]
fn split_ref_and_image_table() {
    for (url, want) in [
        ("https://h/a.git#main", ("https://h/a.git", Some("main"))),
        ("https://h/a.git#", ("https://h/a.git", None)),
        ("git@h:a.git#v1.2", ("git@h:a.git", Some("v1.2"))),
        ("https://h/a.git", ("https://h/a.git", None)),
    ] {
        let (uri, r) = split_ref(url);
        assert_eq!((uri.as_str(), r.as_deref()), want, "{url}");
    }
    for (image, want) in [
        ("busybox", ("busybox", None)),
        ("busybox:1", ("busybox", Some("1"))),
        ("h:5000/a/b", ("h:5000/a/b", None)),
        ("h:5000/a/b:t", ("h:5000/a/b", Some("t"))),
        ("b@sha256:00", ("b", None)),
        ("b:t@sha256:00", ("b", Some("t"))),
    ] {
        assert_eq!(split_image(image), want, "{image}");
    }
}
