//! OpenShift manifests port as they are: every manifest of `tests/fixtures/openshift/corpus/` (the
//! shapes OpenShift's documentation, `oc new-build` and old exports write) is converted with the
//! `kiln` binary and applied with real kubectl to `kiln-sandbox serve --cel-rules`; its
//! apiVersion-only variant (nothing changed but the apiVersion of kiln's kinds) is applied too.
//! Every kiln object stored then decodes into kiln's types with canonical values, and each
//! manifest's warnings (fields kiln keeps but does not act on) are exactly the expected ones.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use kiln::api::build_config::BuildTriggerType;
use kiln::api::common::BuildSourceType;
use kiln::api::{Build, BuildConfig, ImageStream};
use kiln_sandbox::{serve, ApiServer, ServerConfig};
use serde_json::Value;
use support::kiln;

/// Each manifest and the paths `kiln convert` must warn about, in order.
const CORPUS: &[(&str, &[&str])] = &[
    ("bc-binary-asfile.yaml", &[]),
    ("bc-binary-lowercase.yaml", &[]),
    ("bc-docker-git.yaml", &[]),
    ("bc-dockerfile-inline.yaml", &[]),
    ("bc-git-no-type.yaml", &[]),
    ("bc-legacy-v1.yaml", &[]),
    ("bc-lowercase-enums.yaml", &[]),
    ("bc-output-docker.yaml", &[]),
    ("bc-paused.yaml", &[]),
    ("bc-policies-args.yaml", &[]),
    ("bc-postcommit-limits.yaml", &[]),
    ("bc-strategy-from-docker-image.yaml", &[]),
    ("bc-trusted-ca.yaml", &["spec.mountTrustedCA"]),
    ("bc-valuefrom.yaml", &[]),
    ("bc-volumes.yaml", &[]),
    (
        "bc-webhook-both.yaml",
        &[
            "spec.triggers[0].github.secret",
            "spec.triggers[1].generic.secret",
        ],
    ),
    ("bc-webhook-inline.yaml", &[]),
    ("bc-webhook-secretref.yaml", &[]),
    ("build-object.yaml", &[]),
    ("is-legacy-v1.yaml", &[]),
    ("is-lookup-local.yaml", &["spec.lookupPolicy.local"]),
    ("is-no-spec.yaml", &[]),
    (
        "is-tags-import.yaml",
        &["spec.tags[0].importPolicy.importMode"],
    ),
    ("is-with-status.yaml", &[]),
    ("list-legacy-v1.yaml", &[]),
    ("list-new-build.yaml", &[]),
    ("stream-multi-doc.yaml", &[]),
    ("template-binary.yaml", &[]),
    ("template-docker-build.yaml", &[]),
    ("template-legacy-v1.yaml", &[]),
    (
        "template-webhook-secret.yaml",
        &["spec.triggers[0].generic.secret"],
    ),
];

fn corpus_dir() -> PathBuf {
    support::repo_root().join("tests/fixtures/openshift/corpus")
}

/// The sandbox API server with CEL rules on, served over TCP from this process (what
/// `kiln-sandbox serve --cel-rules` runs), with kiln's CRDs installed; kubectl runs against it.
struct Sandbox {
    _runtime: tokio::runtime::Runtime,
    dir: tempfile::TempDir,
}

impl Sandbox {
    fn start() -> Sandbox {
        let dir = tempfile::tempdir().unwrap();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let server = ApiServer::with_config(ServerConfig {
            cel_rules: true,
            ..ServerConfig::default()
        });
        let listener = runtime.block_on(serve::bind("127.0.0.1:0")).unwrap();
        serve::write_kubeconfig(
            &dir.path().join("kubeconfig"),
            listener.local_addr().unwrap(),
        )
        .unwrap();
        runtime.spawn(serve::run(server, listener));
        let sandbox = Sandbox {
            _runtime: runtime,
            dir,
        };
        let crds = support::repo_root().join("crds");
        sandbox.kubectl_ok(&["apply", "-f", &crds.display().to_string()], None);
        sandbox.kubectl_ok(
            &[
                "wait",
                "--for=condition=established",
                "--timeout=30s",
                "crd",
                "--all",
            ],
            None,
        );
        sandbox
    }

    /// Runs kubectl with `stdin`; returns (success, stdout + stderr).
    fn kubectl(&self, args: &[&str], stdin: Option<&str>) -> (bool, String) {
        let mut cmd = Command::new("kubectl");
        cmd.env("KUBECONFIG", self.dir.path().join("kubeconfig"))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let out = run_with_stdin(cmd, stdin.unwrap_or_default());
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    }

    fn kubectl_ok(&self, args: &[&str], stdin: Option<&str>) -> String {
        let (ok, out) = self.kubectl(args, stdin);
        assert!(ok, "kubectl {args:?} failed:\n{out}");
        out
    }
}

fn run_with_stdin(mut cmd: Command, input: &str) -> std::process::Output {
    use std::io::Write;
    let mut child = cmd.spawn().expect("spawn");
    // A child that exits without reading its input is not an error here.
    let _ = child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes());
    child.wait_with_output().expect("wait")
}

/// Runs `kiln convert` on `file` with the manifest's parameter file, if any, reading `stdin` when
/// `file` is `-`; returns (success, stdout, stderr).
fn convert(file: &str, params: Option<&Path>, stdin: &str) -> (bool, String, String) {
    let mut cmd = kiln();
    cmd.args(["convert", "-f", file]);
    if let Some(p) = params {
        cmd.arg("--param-file").arg(p);
    }
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let out = run_with_stdin(cmd, stdin);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The warned paths in `kiln convert`'s stderr (`warning: <document>: <path>: <why>`).
fn warned_paths(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .filter_map(|l| l.strip_prefix("warning: "))
        .filter_map(|l| l.split(": ").nth(1).map(String::from))
        .collect()
}

/// The OpenShift group a kiln kind comes from, and the kiln apiVersion it gets.
fn kiln_api_version(api_version: &str, kind: &str) -> Option<&'static str> {
    let openshift = matches!(
        api_version,
        "build.openshift.io/v1" | "image.openshift.io/v1" | "v1"
    );
    match kind {
        "BuildConfig" | "Build" if openshift => Some("build.kiln.dev/v1alpha1"),
        "ImageStream" if openshift => Some("image.kiln.dev/v1alpha1"),
        _ => None,
    }
}

/// The document with nothing changed but the apiVersion of kiln's kinds (in Lists and Template
/// objects too).
fn api_version_only(mut doc: Value) -> Value {
    let kind = doc["kind"].as_str().unwrap_or_default().to_string();
    let api = doc["apiVersion"].as_str().unwrap_or_default().to_string();
    if let Some(v) = kiln_api_version(&api, &kind) {
        doc["apiVersion"] = Value::String(v.into());
    }
    for key in ["items", "objects"] {
        if let Some(Value::Array(items)) = doc.get_mut(key) {
            for item in items.iter_mut() {
                *item = api_version_only(item.take());
            }
        }
    }
    doc
}

/// Reads a manifest keeping Lists and Templates whole (unlike `kiln::yaml::read_documents`).
fn raw_documents(text: &str) -> Vec<Value> {
    use serde::Deserialize;
    serde_norway::Deserializer::from_str(text)
        .map(|d| Value::deserialize(d).unwrap())
        .filter(|v| !v.is_null())
        .collect()
}

fn kiln_objects(sandbox: &Sandbox, namespace: &str) -> Vec<Value> {
    let out = sandbox.kubectl_ok(
        &[
            "-n",
            namespace,
            "get",
            "buildconfigs,builds,imagestreams",
            "-o",
            "json",
        ],
        None,
    );
    let list: Value = serde_json::from_str(&out).unwrap();
    list["items"].as_array().cloned().unwrap_or_default()
}

/// Every stored kiln object decodes into kiln's types, with canonical trigger and source types.
fn assert_decodes_canonically(objects: &[Value]) {
    for object in objects {
        let name = object["metadata"]["name"].as_str().unwrap_or("?");
        match object["kind"].as_str().unwrap_or_default() {
            "BuildConfig" => {
                let bc: BuildConfig = serde_json::from_value(object.clone())
                    .unwrap_or_else(|e| panic!("BuildConfig {name}: {e}"));
                for trigger in &bc.spec.triggers {
                    assert!(BuildTriggerType::parse(trigger.type_.as_str()).is_some());
                }
                if let Some(source) = &bc.spec.common.source {
                    assert_eq!(source.type_, Some(source.inferred_type()), "{name}");
                }
            }
            "Build" => {
                serde_json::from_value::<Build>(object.clone())
                    .unwrap_or_else(|e| panic!("Build {name}: {e}"));
            }
            "ImageStream" => {
                serde_json::from_value::<ImageStream>(object.clone())
                    .unwrap_or_else(|e| panic!("ImageStream {name}: {e}"));
            }
            other => panic!("unexpected kind {other}"),
        }
    }
}

#[test]
fn every_corpus_manifest_converts_and_applies_and_so_does_its_api_version_only_variant() {
    let dir = corpus_dir();
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".yaml"))
        .collect();
    on_disk.sort();
    let listed: Vec<&str> = CORPUS.iter().map(|(n, _)| *n).collect();
    assert_eq!(on_disk, listed, "every corpus manifest is listed, in order");
    assert!(CORPUS.len() >= 25);

    let sandbox = Sandbox::start();
    for ns in ["converted", "as-is"] {
        sandbox.kubectl_ok(&["create", "namespace", ns], None);
    }
    let mut kiln_objects_expected = 0;
    for (name, warnings) in CORPUS {
        let path = dir.join(name);
        let params = dir.join(name.replace(".yaml", ".params"));
        let params = params.exists().then_some(params.as_path());
        let (ok, converted, stderr) = convert(&path.display().to_string(), params, "");
        assert!(ok, "{name}: kiln convert failed:\n{stderr}");
        assert_eq!(
            warned_paths(&stderr),
            *warnings,
            "{name}: warnings:\n{stderr}"
        );
        kiln_objects_expected += kiln::yaml::read_documents(&converted)
            .unwrap()
            .iter()
            .filter(|d| kiln::convert::is_kiln_api_version(d["apiVersion"].as_str().unwrap_or("")))
            .count();
        let (ok, out) = sandbox.kubectl(&["-n", "converted", "apply", "-f", "-"], Some(&converted));
        assert!(
            ok,
            "{name}: applying the conversion failed:\n{out}\n{converted}"
        );

        let text = std::fs::read_to_string(&path).unwrap();
        let variant: Vec<Value> = raw_documents(&text)
            .into_iter()
            .map(api_version_only)
            .collect();
        // Lists go to kubectl as their items: the sandbox's OpenAPI documents carry no schema
        // for `v1 List`, which kubectl's validation asks for (a cluster has it).
        let variant =
            kiln::yaml::read_documents(&kiln::yaml::write_documents(&variant).unwrap()).unwrap();
        let mut variant_yaml = kiln::yaml::write_documents(&variant).unwrap();
        if variant.iter().any(kiln::template::is_template) {
            // A Template is processed before it is applied (`oc process` on OpenShift).
            let (ok, processed, stderr) = convert("-", params, &variant_yaml);
            assert!(ok, "{name}: processing the variant failed:\n{stderr}");
            variant_yaml = processed;
        }
        let (ok, out) = sandbox.kubectl(&["-n", "as-is", "apply", "-f", "-"], Some(&variant_yaml));
        assert!(
            ok,
            "{name}: applying the apiVersion-only variant failed:\n{out}\n{variant_yaml}"
        );
    }
    for ns in ["converted", "as-is"] {
        let objects = kiln_objects(&sandbox, ns);
        assert_eq!(objects.len(), kiln_objects_expected, "kiln objects in {ns}");
        assert_decodes_canonically(&objects);
    }
    // The apiVersion-only variants are stored as written and read canonically.
    let out = sandbox.kubectl_ok(
        &[
            "-n",
            "as-is",
            "get",
            "buildconfig",
            "lowercase",
            "-o",
            "json",
        ],
        None,
    );
    let stored: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(stored["spec"]["triggers"][2]["type"], "imageChange");
    let bc: BuildConfig = serde_json::from_value(stored).unwrap();
    assert_eq!(bc.spec.triggers[2].type_, BuildTriggerType::ImageChange);
    assert_eq!(
        bc.spec.common.source.and_then(|s| s.type_),
        Some(BuildSourceType::Git)
    );
    let out = sandbox.kubectl_ok(
        &[
            "-n",
            "as-is",
            "get",
            "imagestream",
            "ruby-hello-world",
            "-o",
            "json",
        ],
        None,
    );
    let stored: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        stored["spec"],
        serde_json::json!({}),
        "the CRD defaults spec"
    );
}

#[test]
fn what_the_crd_still_refuses_is_refused_with_the_field_named() {
    let sandbox = Sandbox::start();
    let base =
        "apiVersion: build.kiln.dev/v1alpha1\nkind: BuildConfig\nmetadata:\n  name: x\nspec:\n";
    let cases = [
        (
            format!("{base}  triggers:\n  - type: configChange\n"),
            "spec.triggers[0].type",
        ),
        (
            format!("{base}  source:\n    type: Image\n"),
            "spec.source.type",
        ),
        (
            format!("{base}  output:\n    to:\n      kind: ImageStreamTag\n      name: no-tag\n"),
            "an ImageStreamTag name must be <stream>:<tag>",
        ),
        (
            format!("{base}  output:\n    to:\n      kind: ImageStream\n      name: app\n"),
            "output.to.kind must be ImageStreamTag or DockerImage",
        ),
        (
            format!("{base}  strategy:\n    type: Docker\n    dockerStrategy:\n      from:\n        kind: ImageStream\n        name: base\n"),
            "from.kind must be DockerImage, ImageStreamTag or ImageStreamImage",
        ),
        (
            format!("{base}  triggers:\n  - type: ImageChange\n    imageChange:\n      from:\n        kind: DockerImage\n        name: quay.io/x/base:1\n"),
            "imageChange.from.kind must be ImageStreamTag",
        ),
        (
            "apiVersion: image.kiln.dev/v1alpha1\nkind: ImageStream\nmetadata:\n  name: base\nspec:\n  tags:\n  - name: \"1\"\n    from:\n      kind: ImageStream\n      name: upstream\n".to_string(),
            "from.kind must be DockerImage, ImageStreamTag or ImageStreamImage",
        ),
    ];
    for (manifest, needle) in cases {
        let (ok, out) = sandbox.kubectl(&["apply", "-f", "-"], Some(&manifest));
        assert!(!ok, "must be refused:\n{manifest}");
        assert!(
            out.contains(needle),
            "{manifest}\n--- lacks {needle:?}:\n{out}"
        );
    }
}
