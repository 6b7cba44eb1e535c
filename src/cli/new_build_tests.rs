use super::*;
use clap::Parser;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: NewBuildArgs,
}

fn parse(argv: &[&str]) -> Result<NewBuildArgs, clap::Error> {
    let mut all = vec!["kiln"];
    all.extend_from_slice(argv);
    Cli::try_parse_from(all).map(|c| c.args)
}

#[test]
fn bad_flag_combinations_are_usage_errors() {
    for argv in [
        &["https://h/r.git", "--to", "a:b", "--to-docker", "r/x"][..],
        &["https://h/r.git", "--binary"],
        &[],
        &["https://h/r.git", "--strategy", "source"],
        &["https://h/r.git", "-o", "xml"],
        &["https://h/r.git", "--build-arg", "novalue"],
    ] {
        let err = parse(argv)
            .err()
            .unwrap_or_else(|| panic!("{argv:?} parsed"));
        assert_eq!(err.exit_code(), 2, "{argv:?}: {err}");
    }
}

#[test]
fn arguments_become_a_request() {
    let args = parse(&[
        "git://h/app.git#dev",
        "--to",
        "web:v1",
        "--context-dir",
        "srv",
        "-e",
        "A=1",
        "--build-arg",
        "R=r:5000",
        "--source-secret",
        "creds",
        "--push-secret",
        "push",
    ])
    .unwrap();
    let req = request(&args).unwrap();
    assert_eq!(
        req.source,
        Source::Git {
            uri: "git://h/app.git".into(),
            ref_: Some("dev".into())
        }
    );
    assert_eq!(req.output, Output::ImageStreamTag("web:v1".into()));
    assert_eq!(req.context_dir.as_deref(), Some("srv"));
    assert_eq!(req.env[0].name, "A");
    assert_eq!(req.build_args[0].value.as_deref(), Some("r:5000"));
    assert_eq!(req.source_secret.as_deref(), Some("creds"));
    assert_eq!(req.push_secret.as_deref(), Some("push"));
    let binary = request(&parse(&["--binary", "--name", "x"]).unwrap()).unwrap();
    assert_eq!(binary.source, Source::Binary);
    let inline = request(&parse(&["-D", "FROM a", "--name", "x"]).unwrap()).unwrap();
    assert_eq!(inline.source, Source::Dockerfile);
}

#[test]
fn urls_the_cluster_cannot_clone_are_refused() {
    for url in ["/srv/repo", "ext::sh -c x", "https://user:pw@h/r.git"] {
        let err = request(&parse(&[url]).unwrap()).unwrap_err();
        assert!(matches!(err, super::super::Error::Usage(_)), "{url}: {err}");
        assert!(!err.to_string().contains("pw@"), "{err}");
    }
    let err = request(&parse(&["https://h/r.git", "--context-dir", "../x"]).unwrap()).unwrap_err();
    assert!(err.to_string().contains("--context-dir"), "{err}");
}

#[test]
fn secrets_are_twenty_url_safe_characters_and_differ() {
    let a = random_secret().unwrap();
    let b = random_secret().unwrap();
    assert_eq!(a.len(), SECRET_CHARS);
    assert!(a
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
    assert_ne!(a, b);
}

#[test]
fn json_output_is_a_list_and_yaml_a_stream() {
    let req = request(&parse(&["-D", "FROM img:1", "--name", "app"]).unwrap()).unwrap();
    let g = generate(&req, None, "", None).unwrap();
    let json: serde_json::Value = serde_json::from_str(&render(&g, Format::Json).unwrap()).unwrap();
    assert_eq!(json["kind"], "List");
    assert_eq!(json["items"].as_array().map(Vec::len), Some(5));
    let yaml_text = render(&g, Format::Yaml).unwrap();
    let docs = crate::yaml::read_documents(&yaml_text).unwrap();
    assert_eq!(docs, json["items"].as_array().cloned().unwrap());
    assert_eq!(docs[0]["kind"], "Secret");
    assert_eq!(yaml_text.matches("\n---\n").count(), 4, "{yaml_text}");
}
