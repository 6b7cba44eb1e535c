//! End to end: `kiln new-build` with the real binary against `kiln-sandbox serve` enforcing RBAC,
//! as a tenant bound only to `edit`, on a repository served by a real `git daemon`. The objects
//! `new-build -o yaml` prints, applied with the real `kubectl apply` in one namespace, are the
//! objects `new-build` creates itself (server-side apply) in another: same kinds, names, labels,
//! annotations and specs, the webhook Secrets present and referenced, with different random
//! values. The API server keeps every field printed (the CRD schemas prune nothing), a second run
//! keeps the secrets, and bad input ends with one actionable line and exit code 2 or 1.

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use base64::Engine;
use serde_json::Value;
use support::sandbox::Sandbox;
use support::{git, kiln, run_bounded, GitDaemon};

const GITOPS: &str = "gitops";
const DIRECT: &str = "direct";

/// What a `kiln` run printed.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn kiln_as<S: AsRef<std::ffi::OsStr>>(kubeconfig: &Path, args: &[S]) -> Run {
    let mut cmd = kiln();
    cmd.args(args)
        .env("KUBECONFIG", kubeconfig)
        .env_remove("KILN_WEBHOOK_URL")
        .env_remove("HTTP_PROXY")
        .env_remove("HTTPS_PROXY");
    let out = run_bounded(cmd, Duration::from_secs(60));
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A bare repository with the go-server example under `examples/go-server`, served over git://.
fn serve_repository(dir: &Path) -> (GitDaemon, String) {
    let src = dir.join("src");
    std::fs::create_dir_all(&src).unwrap();
    git(&src, &["init", "-q", "-b", "main"]);
    support::copy_dir(
        &support::repo_root().join("examples/go-server"),
        &src.join("examples/go-server"),
    );
    git(&src, &["add", "-A"]);
    git(&src, &["commit", "-q", "-m", "go-server example"]);
    git(dir, &["clone", "-q", "--bare", "src", "go-server.git"]);
    let daemon = GitDaemon::start(dir);
    let url = daemon.url("go-server.git");
    (daemon, url)
}

/// The objects labelled `build=go-server` in `namespace`, by `Kind/name`, as the server has them.
fn generated_objects(
    sandbox: &Sandbox,
    kubeconfig: &Path,
    namespace: &str,
) -> BTreeMap<String, Value> {
    let text = sandbox.kubectl_ok(
        kubeconfig,
        &[
            "-n",
            namespace,
            "get",
            "secrets,imagestreams,buildconfigs",
            "-l",
            "build=go-server",
            "-o",
            "json",
        ],
    );
    let list: Value = serde_json::from_str(&text).unwrap();
    list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|o| {
            (
                format!(
                    "{}/{}",
                    o["kind"].as_str().unwrap(),
                    o["metadata"]["name"].as_str().unwrap()
                ),
                o.clone(),
            )
        })
        .collect()
}

/// What must be equal between the two namespaces: kind, name, labels, annotations (without
/// kubectl's last-applied copy), spec; for Secrets the type and the data keys, and each value
/// is a 20-character secret.
fn comparable(object: &Value) -> Value {
    let mut annotations = object["metadata"]["annotations"].clone();
    if let Some(map) = annotations.as_object_mut() {
        map.remove("kubectl.kubernetes.io/last-applied-configuration");
    }
    let mut out = serde_json::json!({
        "apiVersion": object["apiVersion"],
        "kind": object["kind"],
        "name": object["metadata"]["name"],
        "labels": object["metadata"]["labels"],
        "annotations": annotations,
        "spec": object["spec"],
    });
    if object["kind"] == "Secret" {
        let data = object["data"].as_object().cloned().unwrap_or_default();
        for value in data.values() {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(value.as_str().unwrap())
                .unwrap();
            assert_eq!(decoded.len(), 20, "a 20-character webhook secret: {object}");
        }
        out["type"] = object["type"].clone();
        out["dataKeys"] = data.keys().cloned().collect::<Vec<_>>().into();
    }
    out
}

/// Whether every field of `want` is in `have` with the same value (arrays element by element).
fn contains(have: &Value, want: &Value) -> bool {
    match (have, want) {
        (Value::Object(h), Value::Object(w)) => w
            .iter()
            .all(|(k, v)| h.get(k).is_some_and(|hv| contains(hv, v))),
        (Value::Array(h), Value::Array(w)) => {
            h.len() == w.len() && h.iter().zip(w).all(|(hv, wv)| contains(hv, wv))
        }
        _ => have == want,
    }
}

/// Asserts `run` failed with exit `code` and one `error:` line naming `says`.
fn assert_one_line_error(run: &Run, code: i32, says: &str) {
    assert_eq!(run.code, Some(code), "exit code; stderr:\n{}", run.stderr);
    let errors: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.starts_with("error:"))
        .collect();
    assert_eq!(errors.len(), 1, "one error line:\n{}", run.stderr);
    assert!(
        errors[0].contains(says),
        "{:?} should say {says:?}",
        errors[0]
    );
    for debug in ["Error {", "Api(", "Status {", "panicked", "backtrace"] {
        assert!(
            !run.stderr.contains(debug),
            "no Debug dump:\n{}",
            run.stderr
        );
    }
}

#[test]
fn new_build_output_applied_with_kubectl_equals_what_new_build_creates() {
    let started = std::time::Instant::now();
    let work = tempfile::tempdir().unwrap();
    let repos = work.path().join("git");
    std::fs::create_dir_all(&repos).unwrap();
    let (_daemon, url) = serve_repository(&repos);
    eprintln!("{:?} repository served", started.elapsed());
    let sandbox = Sandbox::start_rbac(work.path());
    eprintln!("{:?} sandbox up", started.elapsed());
    for namespace in [GITOPS, DIRECT, "elsewhere"] {
        sandbox.admin_ok(&["create", "namespace", namespace]);
    }
    let tenant = sandbox.tenant("developer", GITOPS, &[GITOPS, DIRECT]);
    eprintln!("{:?} tenant admitted", started.elapsed());

    let flags = [
        "--context-dir",
        "examples/go-server",
        "--build-arg",
        "REGISTRY=127.0.0.1:5000",
        "--insecure-registry",
        "-e",
        "GOFLAGS=-mod=mod",
        "--source-secret",
        "repo-credentials",
        "--push-secret",
        "registry-credentials",
    ];
    let with_ref = format!("{url}#main");
    let args = |extra: &[&str]| -> Vec<String> {
        let mut all = vec!["new-build".to_string(), with_ref.clone()];
        all.extend(flags.iter().chain(extra).map(|s| s.to_string()));
        all
    };

    // GitOps: print, then apply with kubectl as the tenant.
    let printed = kiln_as(&tenant, &args(&["-o", "yaml"]));
    assert_eq!(
        printed.code,
        Some(0),
        "new-build -o yaml: {}",
        printed.stderr
    );
    let documents = kiln::yaml::read_documents(&printed.stdout).unwrap();
    let kinds: Vec<String> = documents
        .iter()
        .map(|d| {
            format!(
                "{}/{}",
                d["kind"].as_str().unwrap(),
                d["metadata"]["name"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "Secret/go-server-github-webhook-secret",
            "Secret/go-server-generic-webhook-secret",
            "ImageStream/busybox",
            "ImageStream/go-server",
            "BuildConfig/go-server",
        ],
        "stable order"
    );
    for document in &documents {
        assert!(
            document.get("status").is_none(),
            "no server fields: {document}"
        );
        for field in [
            "namespace",
            "uid",
            "resourceVersion",
            "creationTimestamp",
            "managedFields",
        ] {
            assert!(
                document["metadata"].get(field).is_none(),
                "no {field}: {document}"
            );
        }
    }
    let printed_again = kiln_as(&tenant, &args(&["-o", "yaml"]));
    let again = kiln::yaml::read_documents(&printed_again.stdout).unwrap();
    assert_eq!(
        documents[2..],
        again[2..],
        "the same flags print the same objects"
    );
    assert_ne!(
        documents[0]["data"], again[0]["data"],
        "with new random secrets"
    );
    // -o json prints the same objects as a List (kubectl apply takes it on a real cluster; the
    // sandbox serves no /openapi/v2, which kubectl's client-side check of a List asks for).
    let json = kiln_as(&tenant, &args(&["-o", "json"]));
    assert_eq!(json.code, Some(0), "new-build -o json: {}", json.stderr);
    let list: Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(
        (&list["apiVersion"], &list["kind"]),
        (&"v1".into(), &"List".into())
    );
    assert_eq!(
        list["items"].as_array().map(|i| &i[2..]),
        Some(&documents[2..])
    );
    let manifest = work.path().join("go-server.yaml");
    std::fs::write(&manifest, &printed.stdout).unwrap();
    sandbox.kubectl_ok(
        &tenant,
        &["apply", "-n", GITOPS, "-f", &manifest.display().to_string()],
    );

    eprintln!("{:?} printed and applied with kubectl", started.elapsed());
    // Directly: server-side apply by kiln, as the tenant.
    let direct_args = args(&["-n", DIRECT]);
    let created = kiln_as(&tenant, &direct_args);
    assert_eq!(
        created.code,
        Some(0),
        "new-build: {}{}",
        created.stdout,
        created.stderr
    );
    eprintln!("kiln new-build printed:\n{}", created.stdout);
    for line in [
        "secret/go-server-github-webhook-secret created",
        "secret/go-server-generic-webhook-secret created",
        "imagestream.image.kiln.dev/busybox created",
        "imagestream.image.kiln.dev/go-server created",
        "buildconfig.build.kiln.dev/go-server created",
        "base image (last FROM): 127.0.0.1:5000/library/busybox:latest",
        &format!("/apis/build.kiln.dev/v1alpha1/namespaces/{DIRECT}/buildconfigs/go-server/webhooks/<secret>/github"),
        &format!("/webhooks/{DIRECT}/go-server/generic"),
    ] {
        assert!(created.stdout.contains(line), "prints {line:?}:\n{}", created.stdout);
    }

    let gitops = generated_objects(&sandbox, &tenant, GITOPS);
    let direct = generated_objects(&sandbox, &tenant, DIRECT);
    assert_eq!(
        gitops.keys().collect::<Vec<_>>(),
        direct.keys().collect::<Vec<_>>()
    );
    assert_eq!(gitops.len(), 5, "{:?}", gitops.keys());
    for (key, object) in &gitops {
        assert_eq!(comparable(object), comparable(&direct[key]), "{key}");
    }
    // Nothing printed was pruned or changed by the CRD schemas (the server only adds defaults).
    for document in &documents {
        let key = format!(
            "{}/{}",
            document["kind"].as_str().unwrap(),
            document["metadata"]["name"].as_str().unwrap()
        );
        assert!(
            contains(&gitops[&key], document),
            "{key} kept every field:\n{document:#}\n{:#}",
            gitops[&key]
        );
        let mut without_data = document.clone();
        if let Some(map) = without_data.as_object_mut() {
            map.remove("data");
        }
        assert!(contains(&direct[&key], &without_data), "{key}");
    }
    // The secrets differ, and each BuildConfig references its own namespace's Secrets.
    for provider in ["github", "generic"] {
        let key = format!("Secret/go-server-{provider}-webhook-secret");
        assert_ne!(
            gitops[&key]["data"], direct[&key]["data"],
            "{key}: random per run"
        );
    }
    for objects in [&gitops, &direct] {
        let triggers = objects["BuildConfig/go-server"]["spec"]["triggers"]
            .as_array()
            .unwrap()
            .clone();
        let referenced: Vec<String> = triggers
            .iter()
            .filter_map(|t| {
                t["github"]["secretReference"]["name"]
                    .as_str()
                    .or(t["generic"]["secretReference"]["name"].as_str())
                    .map(String::from)
            })
            .collect();
        assert_eq!(referenced.len(), 2, "{triggers:?}");
        for name in referenced {
            assert!(
                objects.contains_key(&format!("Secret/{name}")),
                "{name} exists"
            );
        }
        assert!(
            !serde_json::to_string(&triggers)
                .unwrap()
                .contains("\"secret\""),
            "never inline"
        );
    }

    // Again: configured, and the webhook secrets (so their URLs) stay.
    let rerun = kiln_as(&tenant, &direct_args);
    assert_eq!(rerun.code, Some(0), "{}", rerun.stderr);
    assert!(
        rerun
            .stdout
            .contains("buildconfig.build.kiln.dev/go-server configured"),
        "{}",
        rerun.stdout
    );
    let after = generated_objects(&sandbox, &tenant, DIRECT);
    for provider in ["github", "generic"] {
        let key = format!("Secret/go-server-{provider}-webhook-secret");
        assert_eq!(after[&key]["data"], direct[&key]["data"], "{key} kept");
    }

    eprintln!("{:?} created and compared", started.elapsed());
    // Bad input: one actionable line, exit 2 for usage, 1 at run time.
    let cases: Vec<(Vec<String>, i32, &str)> = vec![
        (
            vec![
                "new-build".into(),
                url.clone(),
                "--to".into(),
                "a:b".into(),
                "--to-docker".into(),
                "r.example.com/a".into(),
            ],
            2,
            "cannot be used with",
        ),
        (
            vec![
                "new-build".into(),
                url.clone(),
                "--name".into(),
                "Go_Server".into(),
                "-o".into(),
                "yaml".into(),
            ],
            2,
            "--name \"Go_Server\"",
        ),
        (
            vec![
                "new-build".into(),
                url.replace("go-server.git", "missing.git"),
                "-o".into(),
                "yaml".into(),
            ],
            1,
            "cannot reach repository",
        ),
        (
            vec![
                "new-build".into(),
                format!("{url}#no-such-branch"),
                "-o".into(),
                "yaml".into(),
            ],
            1,
            "ref \"no-such-branch\" not found",
        ),
        (
            vec!["new-build".into(), url.clone(), "-o".into(), "yaml".into()],
            1,
            "no Dockerfile found at context dir \".\"",
        ),
        (
            vec![
                "new-build".into(),
                url.clone(),
                "--context-dir".into(),
                "nowhere".into(),
                "-o".into(),
                "yaml".into(),
            ],
            1,
            "context dir \"nowhere\" does not exist",
        ),
        (
            vec![
                "new-build".into(),
                url.clone(),
                "--context-dir".into(),
                "examples/go-server".into(),
                "-n".into(),
                "elsewhere".into(),
            ],
            1,
            "forbidden",
        ),
    ];
    for (argv, code, says) in cases {
        let run = kiln_as(&tenant, &argv);
        eprint!("{}", run.stderr);
        assert_one_line_error(&run, code, says);
    }
    let refused = sandbox.refusals();
    assert!(
        !refused.is_empty() && refused.iter().all(|l| l.contains("elsewhere")),
        "only the requests into namespace elsewhere are refused:\n{}",
        refused.join("\n")
    );
    eprintln!("e2e_new_build: {:?}", started.elapsed());
}
