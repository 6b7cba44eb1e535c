//! The Helm chart, rendered and linted by the real `helm` (scripts/install-deps.sh puts it on
//! PATH) for the default values and for a full set (`tests/fixtures/chart/values-full.yaml`):
//! object names come from the release, every object carries the standard labels, values reach the
//! manifests, a mistyped value fails with the schema's error, the CRDs are the repository's, the
//! rendered manifests are accepted by the sandbox through the real `kubectl`, `helm install` and
//! `helm upgrade` work against the sandbox, the controller's ClusterRole grants exactly the
//! requests the controller makes, and the optional in-cluster registry is the controller's
//! `--registry` and, served by the real `docker-registry` from its rendered config, accepts the
//! tokens kiln signs with the settings the chart gives it.

mod controller_support;
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;
use support::{repo_root, run_bounded};

/// Upper bound for one helm or kubectl run.
const LIMIT: Duration = Duration::from_secs(60);

fn chart_dir() -> PathBuf {
    repo_root().join("charts/kiln")
}

fn full_values() -> PathBuf {
    repo_root().join("tests/fixtures/chart/values-full.yaml")
}

/// Runs `program` from PATH (bounded), failing the test with a clear message when it is missing.
fn tool(program: &str, args: &[&str]) -> Output {
    require_on_path(program);
    let mut cmd = Command::new(program);
    cmd.args(args).stdin(Stdio::null());
    run_bounded(cmd, LIMIT)
}

/// Fails the test unless `program` is an executable file in a PATH directory.
fn require_on_path(program: &str) {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = std::env::split_paths(&path).any(|dir| dir.join(program).is_file());
    assert!(
        found,
        "{program} is not on PATH: run scripts/install-deps.sh (make deps), which installs it"
    );
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `helm template RELEASE charts/kiln -n NAMESPACE [args]`: the rendered documents, or stderr.
fn template(release: &str, namespace: &str, args: &[&str]) -> Result<Vec<Value>, String> {
    let chart = chart_dir().display().to_string();
    let mut all = vec!["template", release, &chart, "--namespace", namespace];
    all.extend_from_slice(args);
    let out = tool("helm", &all);
    if !out.status.success() {
        return Err(text(&out.stderr));
    }
    Ok(kiln::yaml::read_documents(&text(&out.stdout)).expect("helm renders YAML"))
}

fn render(release: &str, namespace: &str, args: &[&str]) -> Vec<Value> {
    template(release, namespace, args).unwrap_or_else(|e| panic!("helm template failed:\n{e}"))
}

fn render_full(release: &str, namespace: &str) -> Vec<Value> {
    let values = full_values().display().to_string();
    render(release, namespace, &["-f", &values])
}

fn str_at<'a>(doc: &'a Value, pointer: &str) -> &'a str {
    doc.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

fn kind_of(doc: &Value) -> &str {
    str_at(doc, "/kind")
}

fn name_of(doc: &Value) -> &str {
    str_at(doc, "/metadata/name")
}

fn find<'a>(docs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    docs.iter()
        .find(|d| kind_of(d) == kind && name_of(d) == name)
        .unwrap_or_else(|| panic!("no {kind} {name} rendered"))
}

fn only<'a>(docs: &'a [Value], kind: &str) -> &'a Value {
    let found: Vec<&Value> = docs.iter().filter(|d| kind_of(d) == kind).collect();
    assert_eq!(found.len(), 1, "exactly one {kind}");
    found[0]
}

/// The objects' identities as the API server sees them: (apiVersion, kind, namespace, name).
fn identities(docs: &[Value]) -> Vec<(String, String, String, String)> {
    docs.iter()
        .map(|d| {
            (
                str_at(d, "/apiVersion").to_string(),
                kind_of(d).to_string(),
                str_at(d, "/metadata/namespace").to_string(),
                name_of(d).to_string(),
            )
        })
        .collect()
}

fn env_of(deployment: &Value) -> BTreeMap<String, Value> {
    deployment
        .pointer("/spec/template/spec/containers/0/env")
        .and_then(Value::as_array)
        .expect("the controller container has env")
        .iter()
        .map(|e| (str_at(e, "/name").to_string(), e.clone()))
        .collect()
}

fn env_value(deployment: &Value, name: &str) -> Option<String> {
    env_of(deployment)
        .get(name)
        .and_then(|e| e.get("value"))
        .and_then(Value::as_str)
        .map(str::to_string)
}

#[path = "chart/guide.rs"]
mod guide;
#[path = "chart/rbac.rs"]
mod rbac;
#[path = "chart/registry.rs"]
mod registry;
#[path = "chart/registry_serve.rs"]
mod registry_serve;
#[path = "chart/render.rs"]
mod render;
#[path = "chart/sandbox.rs"]
mod sandbox;
#[path = "chart/tenants.rs"]
mod tenants;
