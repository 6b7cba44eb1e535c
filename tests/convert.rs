//! `kiln convert`: OpenShift manifests become kiln manifests without losing anything silently.

use std::io::Write;
use std::process::{Command, Stdio};

use kiln::api::{strict, Build, BuildConfig, ImageStream};
use kiln::convert::convert_documents;
use serde_json::{json, Value};

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/fixtures/openshift/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

/// Runs `kiln convert -f -` with `input` on stdin; returns (success, stdout, stderr).
fn run_convert(input: &str, extra: &[&str]) -> (bool, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args(["convert", "-f", "-"])
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // kiln may refuse its arguments before reading any input: a closed pipe is not an error.
    match child.stdin.take().unwrap().write_all(input.as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => panic!("writing stdin: {e}"),
        _ => {}
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// The input with exactly the changes convert is allowed to make.
fn expected_conversion(mut input: Value, api_version: &str) -> Value {
    input["apiVersion"] = json!(api_version);
    input.as_object_mut().unwrap().remove("status");
    let meta = input["metadata"].as_object_mut().unwrap();
    for key in [
        "uid",
        "resourceVersion",
        "creationTimestamp",
        "generation",
        "managedFields",
        "selfLink",
    ] {
        meta.remove(key);
    }
    if let Some(triggers) = input["spec"]
        .get_mut("triggers")
        .and_then(Value::as_array_mut)
    {
        for t in triggers {
            let ty = t["type"].as_str().unwrap();
            t["type"] = json!(kiln::convert::normalise_trigger_type(ty).unwrap());
        }
    }
    input
}

#[test]
fn full_buildconfig_converts_keeping_every_value() {
    let input = kiln::yaml::read_documents(&fixture("buildconfig-full.yaml")).unwrap();
    let output = convert_documents(input.clone()).unwrap();
    assert_eq!(output.len(), 1);
    assert_eq!(
        output[0],
        expected_conversion(input[0].clone(), "build.kiln.dev/v1alpha1")
    );
    // Spot checks of what the rules above imply.
    let types: Vec<_> = output[0]["spec"]["triggers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["type"].clone())
        .collect();
    assert_eq!(
        types,
        [
            json!("GitHub"),
            json!("GitLab"),
            json!("Bitbucket"),
            json!("Generic"),
            json!("ImageChange"),
            json!("ConfigChange")
        ]
    );
    assert_eq!(
        output[0]["spec"]["source"]["dockerfile"],
        input[0]["spec"]["source"]["dockerfile"]
    );
    assert!(output[0]["spec"]["source"]["dockerfile"]
        .as_str()
        .unwrap()
        .starts_with("# syntax=docker/dockerfile:1\n"));
    assert!(output[0].get("status").is_none());
    assert!(output[0]["metadata"].get("uid").is_none());
    assert_eq!(
        output[0]["metadata"]["annotations"]["openshift.io/generated-by"],
        "OpenShiftNewBuild"
    );
}

#[test]
fn converted_documents_round_trip_through_the_types() {
    let mut docs = kiln::yaml::read_documents(&fixture("buildconfig-full.yaml")).unwrap();
    docs.extend(kiln::yaml::read_documents(&fixture("build-and-imagestream.yaml")).unwrap());
    for doc in convert_documents(docs).unwrap() {
        let back = match doc["kind"].as_str().unwrap() {
            "BuildConfig" => serde_json::to_value(strict::from_value::<BuildConfig>(&doc).unwrap()),
            "Build" => serde_json::to_value(strict::from_value::<Build>(&doc).unwrap()),
            "ImageStream" => serde_json::to_value(strict::from_value::<ImageStream>(&doc).unwrap()),
            _ => continue,
        }
        .unwrap();
        let mut lost = Vec::new();
        strict::dropped_paths(&doc, &back, "", &mut lost);
        assert!(lost.is_empty(), "lost {lost:?}");
        // And nothing changed value on the way (defaults may be added, never altered).
        let again: Value = serde_json::from_value(back.clone()).unwrap();
        assert_eq!(again, back);
    }
}

#[test]
fn lists_convert_and_other_kinds_pass_through_unchanged() {
    let input = kiln::yaml::read_documents(&fixture("build-and-imagestream.yaml")).unwrap();
    assert_eq!(input.len(), 3);
    let output = convert_documents(input.clone()).unwrap();
    assert_eq!(
        output[0],
        expected_conversion(input[0].clone(), "build.kiln.dev/v1alpha1")
    );
    assert_eq!(
        output[1],
        expected_conversion(input[1].clone(), "image.kiln.dev/v1alpha1")
    );
    assert_eq!(output[2], input[2], "a Secret passes through unchanged");
}

#[test]
fn the_binary_writes_yaml_that_reads_back_identically() {
    let (ok, stdout, stderr) = run_convert(&fixture("buildconfig-full.yaml"), &[]);
    assert!(ok, "{stderr}");
    let docs = kiln::yaml::read_documents(&stdout).unwrap();
    let input = kiln::yaml::read_documents(&fixture("buildconfig-full.yaml")).unwrap();
    assert_eq!(docs, convert_documents(input).unwrap());
    let (ok, stdout, _) = run_convert(&fixture("buildconfig-full.yaml"), &["-o", "json"]);
    assert!(ok);
    let list: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(list["items"][0]["apiVersion"], "build.kiln.dev/v1alpha1");
}

#[test]
fn json_input_is_accepted() {
    let input = kiln::yaml::read_documents(&fixture("buildconfig-full.yaml")).unwrap();
    let (ok, stdout, stderr) = run_convert(&serde_json::to_string(&input[0]).unwrap(), &[]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("apiVersion: build.kiln.dev/v1alpha1"));
}

#[test]
fn s2i_is_refused_naming_the_field_and_nothing_is_written() {
    let (ok, stdout, stderr) = run_convert(&fixture("buildconfig-s2i.yaml"), &[]);
    assert!(!ok);
    assert!(stdout.is_empty(), "nothing may be written: {stdout}");
    assert!(
        stderr.contains("document 1 (BuildConfig/ruby-app): spec.strategy.sourceStrategy:"),
        "{stderr}"
    );
    assert!(stderr.contains("spec.strategy.type"), "{stderr}");
}

#[test]
fn bad_input_gets_precise_errors() {
    let base =
        "apiVersion: build.openshift.io/v1\nkind: BuildConfig\nmetadata:\n  name: x\nspec:\n";
    let cases: &[(&str, &[&str])] = &[
        // YAML syntax error: line and column.
        (
            "kind: BuildConfig\nspec:\n  triggers: [\n",
            &["invalid YAML", "line", "column"],
        ),
        // An unknown field is named by its path.
        (
            &format!("{base}  source:\n    git:\n      uri: https://x\n      branch: main\n"),
            &["spec.source.git.branch", "no such field"],
        ),
        // A wrong type names the field path.
        (
            &format!("{base}  completionDeadlineSeconds: soon\n"),
            &["spec.completionDeadlineSeconds", "invalid type"],
        ),
        (
            &format!("{base}  runPolicy: Sometimes\n"),
            &["spec.runPolicy", "unknown variant"],
        ),
        (
            &format!("{base}  triggers:\n  - type: Jenkins\n"),
            &["spec.triggers[0].type", "unknown trigger type"],
        ),
        (
            "apiVersion: image.openshift.io/v1\nkind: ImageStreamTag\nmetadata:\n  name: a:b\n",
            &["ImageStreamTag has no kiln equivalent"],
        ),
        (
            "{\"kind\": \"BuildConfig\",\n \"spec\": }",
            &["invalid JSON", "line 2 column"],
        ),
    ];
    for (input, needles) in cases {
        let (ok, stdout, stderr) = run_convert(input, &[]);
        assert!(!ok, "must fail: {input}");
        assert!(stdout.is_empty(), "{input}");
        for needle in *needles {
            assert!(
                stderr.contains(needle),
                "{input}\n--- stderr lacks {needle:?}:\n{stderr}"
            );
        }
    }
}

#[test]
fn credentials_in_a_git_url_and_revision_expressions_are_refused() {
    let input = "apiVersion: build.openshift.io/v1\nkind: BuildConfig\nmetadata:\n  name: app\nspec:\n  source:\n    type: Git\n    git:\n      uri: https://deploy:s3cret-token@git.example/app.git\n  revision:\n    type: Git\n    git:\n      commit: HEAD~1\n  strategy:\n    type: Docker\n";
    let (ok, stdout, stderr) = run_convert(input, &[]);
    assert!(!ok, "accepted: {stdout}");
    assert!(
        stderr.contains("spec.source.git.uri") && stderr.contains("source secret"),
        "{stderr}"
    );
    assert!(stderr.contains("spec.revision.git.commit"), "{stderr}");
    assert!(
        !stderr.contains("s3cret") && !stdout.contains("s3cret"),
        "{stderr}"
    );
}

#[test]
fn image_references_of_a_kind_openshift_refuses_are_refused_by_path() {
    let input = r#"apiVersion: v1
kind: List
items:
- apiVersion: build.openshift.io/v1
  kind: BuildConfig
  metadata: {name: app}
  spec:
    strategy:
      type: Docker
      dockerStrategy:
        from: {kind: ImageStream, name: base}
    output:
      to: {kind: ImageStream, name: app}
    triggers:
    - type: ImageChange
      imageChange:
        from: {kind: DockerImage, name: quay.io/x/base:1}
- apiVersion: image.openshift.io/v1
  kind: ImageStream
  metadata: {name: base}
  spec:
    tags:
    - name: "1"
      from: {kind: ImageStream, name: upstream}
"#;
    let (ok, stdout, stderr) = run_convert(input, &[]);
    assert!(!ok, "accepted: {stdout}");
    assert!(stdout.is_empty(), "{stdout}");
    for (path, allowed) in [
        (
            "spec.strategy.dockerStrategy.from.kind",
            "use DockerImage or ImageStreamTag or ImageStreamImage",
        ),
        ("spec.output.to.kind", "use ImageStreamTag or DockerImage"),
        (
            "spec.triggers[0].imageChange.from.kind",
            "use ImageStreamTag",
        ),
        (
            "spec.tags[0].from.kind",
            "use DockerImage or ImageStreamTag or ImageStreamImage",
        ),
    ] {
        let line = stderr
            .lines()
            .find(|l| l.contains(path))
            .unwrap_or_else(|| panic!("{path} not named: {stderr}"));
        assert!(line.contains(allowed), "{line}");
    }
    assert!(
        stderr.contains("kind ImageStreamTag, name <stream>:<tag>"),
        "{stderr}"
    );
}

fn corpus(name: &str) -> String {
    fixture(&format!("corpus/{name}"))
}

#[test]
fn lower_case_and_absent_types_are_written_canonically() {
    let (ok, stdout, stderr) = run_convert(&corpus("bc-lowercase-enums.yaml"), &[]);
    assert!(ok, "{stderr}");
    let doc = &kiln::yaml::read_documents(&stdout).unwrap()[0];
    let types: Vec<_> = doc["spec"]["triggers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["type"].clone())
        .collect();
    assert_eq!(
        types,
        [json!("GitHub"), json!("Generic"), json!("ImageChange")]
    );
    assert_eq!(doc["spec"]["source"]["type"], "Git");

    let (ok, stdout, stderr) = run_convert(&corpus("bc-binary-lowercase.yaml"), &[]);
    assert!(ok, "{stderr}");
    let doc = &kiln::yaml::read_documents(&stdout).unwrap()[0];
    assert_eq!(
        doc["spec"]["source"],
        json!({"type": "Binary", "binary": {}})
    );

    let (ok, stdout, stderr) = run_convert(&corpus("bc-strategy-from-docker-image.yaml"), &[]);
    assert!(ok, "{stderr}");
    let doc = &kiln::yaml::read_documents(&stdout).unwrap()[0];
    assert_eq!(doc["spec"]["strategy"]["type"], "Docker");
    assert_eq!(doc["spec"]["source"]["type"], "Git", "inferred from git");

    let (ok, stdout, stderr) = run_convert(&corpus("is-no-spec.yaml"), &[]);
    assert!(ok, "{stderr}");
    let doc = &kiln::yaml::read_documents(&stdout).unwrap()[0];
    assert_eq!(doc["apiVersion"], "image.kiln.dev/v1alpha1");
    assert_eq!(
        doc["spec"],
        json!({}),
        "written as the CRD defaults it, so kiln's type decodes the output"
    );
}

#[test]
fn templates_are_processed_like_oc_process() {
    let params = format!(
        "{}/tests/fixtures/openshift/corpus/template-docker-build.params",
        env!("CARGO_MANIFEST_DIR")
    );
    let (ok, stdout, stderr) = run_convert(
        &corpus("template-docker-build.yaml"),
        &[
            "--param-file",
            &params,
            "-p",
            "SOURCE_REPOSITORY_REF=release",
            "-p",
            "HISTORY_LIMIT=7",
        ],
    );
    assert!(ok, "{stderr}");
    let docs = kiln::yaml::read_documents(&stdout).unwrap();
    assert_eq!(docs.len(), 2);
    let (is, bc) = (&docs[0], &docs[1]);
    assert_eq!(is["apiVersion"], "image.kiln.dev/v1alpha1");
    assert_eq!(is["metadata"]["name"], "quickstart");
    assert!(
        is["metadata"].get("namespace").is_none(),
        "a hard-coded namespace is stripped"
    );
    assert_eq!(
        is["metadata"]["labels"],
        json!({"template": "docker-build", "app": "quickstart"})
    );
    assert_eq!(bc["apiVersion"], "build.kiln.dev/v1alpha1");
    assert_eq!(
        bc["spec"]["successfulBuildsHistoryLimit"],
        json!(7),
        "${{{{..}}}} is a number"
    );
    assert_eq!(
        bc["spec"]["source"]["git"]["uri"],
        "https://github.com/example/quickstart.git"
    );
    assert_eq!(
        bc["spec"]["source"]["git"]["ref"], "release",
        "-p wins over the default"
    );
    assert_eq!(bc["spec"]["output"]["to"]["name"], "quickstart:latest");
    let secret = bc["spec"]["triggers"][0]["github"]["secret"]
        .as_str()
        .unwrap();
    assert_eq!(secret.len(), 40);
    assert!(
        secret.chars().all(|c| c.is_ascii_alphanumeric()),
        "{secret}"
    );
    // Generated anew on every run.
    let (_, again, _) = run_convert(
        &corpus("template-docker-build.yaml"),
        &["--param-file", &params],
    );
    let again = kiln::yaml::read_documents(&again).unwrap();
    assert_ne!(
        again[1]["spec"]["triggers"][0]["github"]["secret"],
        json!(secret)
    );
}

#[test]
fn templates_without_needed_parameters_are_refused_naming_them() {
    let cases: &[(&str, &[&str], &[&str])] = &[
        (
            "template-docker-build.yaml",
            &[],
            &[
                "document 1 (Template/docker-build): parameters[0]: parameter NAME is required",
                "parameters[1]: parameter SOURCE_REPOSITORY_URL is required",
            ],
        ),
        (
            "template-binary.yaml",
            &["-p", "NAMEE=x"],
            &["parameters: NAMEE: no Template in the input has this parameter"],
        ),
        (
            "template-binary.yaml",
            &["-p", "oops"],
            &["expected NAME=VALUE"],
        ),
    ];
    for (name, args, needles) in cases {
        let (ok, stdout, stderr) = run_convert(&corpus(name), args);
        assert!(!ok, "{name} {args:?} must fail");
        assert!(stdout.is_empty(), "{stdout}");
        for needle in *needles {
            assert!(
                stderr.contains(needle),
                "{name} {args:?}: lacks {needle:?}:\n{stderr}"
            );
        }
    }
}

#[test]
fn inert_fields_are_warned_about_and_strict_refuses_them() {
    let (ok, stdout, stderr) = run_convert(&corpus("bc-trusted-ca.yaml"), &[]);
    assert!(ok, "{stderr}");
    assert!(!stdout.is_empty());
    assert!(
        stderr.contains("warning: document 1 (BuildConfig/trusted-ca): spec.mountTrustedCA: kiln mounts no cluster trust bundle"),
        "{stderr}"
    );
    let (ok, stdout, stderr) = run_convert(&corpus("bc-trusted-ca.yaml"), &["--strict"]);
    assert!(!ok);
    assert!(stdout.is_empty(), "{stdout}");
    assert!(
        stderr.contains("1 problem found; nothing was written"),
        "{stderr}"
    );
    // env valueFrom is resolved in the build Pod, and imports work: nothing inert.
    for name in ["bc-valuefrom.yaml", "list-new-build.yaml"] {
        let (ok, _, stderr) = run_convert(&corpus(name), &["--strict"]);
        assert!(ok, "{name}: {stderr}");
        assert!(stderr.is_empty(), "{name}: {stderr}");
    }
    // Nothing inert: --strict accepts it.
    let (ok, _, stderr) = run_convert(&corpus("bc-volumes.yaml"), &["--strict"]);
    assert!(ok, "{stderr}");
    assert!(stderr.is_empty(), "{stderr}");
}
