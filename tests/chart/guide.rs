//! The install guide (docs/install.md) against the sandbox: its commands run (but the image builds
//! and waiting for rollouts), with its values files, and the result is what it says.

use super::sandbox::TcpSandbox;
use super::*;

/// The fenced blocks of `lang` in a Markdown text, each as its lines (the Markdown's indentation
/// kept: the guide's YAML blocks start at column 0).
fn fenced_blocks(markdown: &str, lang: &str) -> Vec<Vec<String>> {
    let mut blocks = Vec::new();
    let mut current: Option<Vec<String>> = None;
    for line in markdown.lines() {
        let trimmed = line.trim_start();
        match current.as_mut() {
            None if trimmed == format!("```{lang}") => current = Some(Vec::new()),
            None => {}
            Some(_) if trimmed == "```" => blocks.extend(current.take()),
            Some(block) => block.push(line.to_string()),
        }
    }
    blocks
}

/// The shell commands of the install guide, `\`-continued lines joined.
fn guide_commands(markdown: &str) -> Vec<String> {
    let mut commands = Vec::new();
    for block in fenced_blocks(markdown, "sh") {
        let mut pending = String::new();
        for line in block {
            let line = line.trim();
            if let Some(head) = line.strip_suffix('\\') {
                pending.push_str(head.trim_end());
                pending.push(' ');
                continue;
            }
            pending.push_str(line);
            let command = std::mem::take(&mut pending);
            let command = command.split(" #").next().unwrap_or_default().trim();
            if !command.is_empty() && !command.starts_with('#') {
                commands.push(command.to_string());
            }
        }
    }
    commands
}

#[test]
fn the_install_guide_commands_run_against_the_sandbox() {
    let guide = std::fs::read_to_string(repo_root().join("docs/install.md")).unwrap();
    let sandbox = TcpSandbox::start();
    let home = tempfile::tempdir().unwrap();
    // What the guide takes as given: tenant namespaces, and the Prometheus Operator's CRD (its
    // values enable the ServiceMonitor).
    for ns in ["team-a", "team-b"] {
        sandbox.ok(&["create", "namespace", ns]);
    }
    sandbox.ok(&[
        "apply",
        "-f",
        &repo_root()
            .join("tests/fixtures/chart/servicemonitor-crd.yaml")
            .display()
            .to_string(),
    ]);
    // The guide's values file, its placeholder digests filled in.
    let yaml = fenced_blocks(&guide, "yaml")
        .into_iter()
        .find(|b| b.iter().any(|l| l.starts_with("image:")))
        .expect("the guide shows a values file")
        .join("\n");
    let values = home.path().join("my-values.yaml");
    std::fs::write(
        &values,
        yaml.replace("sha256:…", &format!("sha256:{}", "0".repeat(64))),
    )
    .unwrap();
    // The commands run in a directory of their own (the files they make stay there), with the
    // repository's charts/ beside them.
    let cwd = home.path().join("work");
    std::fs::create_dir(&cwd).unwrap();
    std::os::unix::fs::symlink(repo_root().join("charts"), cwd.join("charts")).unwrap();

    let mut ran = Vec::new();
    for command in guide_commands(&guide) {
        // Not here: image builds and what they need (a release build, base images, a registry;
        // tests/images.rs builds the images), and waiting for a rollout (the sandbox runs no
        // Deployment controller).
        let image_build = ["buildah ", "cargo ", "scripts/make-base-images.sh"]
            .iter()
            .any(|p| command.starts_with(p));
        if image_build || command.contains(" rollout status ") {
            continue;
        }
        let mut line = command.replace("my-values.yaml", &values.display().to_string());
        if line.starts_with("helm ") {
            // The sandbox serves OpenAPI v3 only; helm validates against v2 unless told not to.
            line.push_str(" --disable-openapi-validation");
        }
        require_on_path("helm");
        require_on_path("kubectl");
        require_on_path("openssl");
        let mut cmd = Command::new("sh");
        cmd.args(["-c", &line])
            .current_dir(&cwd)
            .env("KUBECONFIG", &sandbox.kubeconfig)
            .env("HELM_CACHE_HOME", home.path().join("cache"))
            .env("HELM_CONFIG_HOME", home.path().join("config"))
            .env("HELM_DATA_HOME", home.path().join("data"))
            .env_remove("KUBERNETES_SERVICE_HOST")
            .stdin(Stdio::null());
        let out = run_bounded(cmd, LIMIT);
        assert!(
            out.status.success(),
            "install guide command `{command}` failed:\n{}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        ran.push(command);
    }
    for expected in [
        "openssl req",
        "create secret tls kiln-registry-token",
        "helm install kiln",
        "kubectl label namespace team-a",
        "--clusterrole=kiln-image-puller",
        "kubectl apply --server-side",
        "helm upgrade kiln",
    ] {
        assert!(
            ran.iter().any(|c| c.contains(expected)),
            "the guide no longer runs `{expected}`: {ran:?}"
        );
    }
    // The result is what the guide says it is.
    let history = sandbox.helm(home.path(), &["history", "kiln", "-n", "kiln-system"]);
    assert!(
        text(&history.stdout).contains("Upgrade complete"),
        "{}",
        text(&history.stdout)
    );
    let labels = sandbox.ok(&[
        "get",
        "namespace",
        "team-a",
        "-o",
        "jsonpath={.metadata.labels.pod-security\\.kubernetes\\.io/enforce}",
    ]);
    assert_eq!(labels, "baseline");
    sandbox.ok(&[
        "-n",
        "team-a",
        "get",
        "serviceaccount/builder",
        "rolebinding/alice-edit",
    ]);
    sandbox.ok(&["-n", "team-b", "get", "rolebinding/team-a-pulls"]);
    let image = sandbox.ok(&[
        "-n",
        "kiln-system",
        "get",
        "deployment/kiln",
        "-o",
        "jsonpath={.spec.template.spec.containers[0].image}",
    ]);
    assert_eq!(
        image,
        format!(
            "registry.example.org/platform/kiln@sha256:{}",
            "0".repeat(64)
        )
    );
    guide_token_secret_is_the_controllers(&sandbox, &cwd);
    guide_in_cluster_registry_values_install(&guide, &sandbox, home.path(), &values);
}

/// The guide's token key and certificate are in the Secret the controller mounts: a PKCS#8 key
/// (what `--registry-token-key` reads) and the certificate openssl wrote.
fn guide_token_secret_is_the_controllers(sandbox: &TcpSandbox, cwd: &Path) {
    use base64::Engine;
    let secret: Value = serde_json::from_str(&sandbox.ok(&[
        "-n",
        "kiln-system",
        "get",
        "secret",
        "kiln-registry-token",
        "-o",
        "json",
    ]))
    .unwrap();
    assert_eq!(secret["type"], "kubernetes.io/tls");
    let data = |key: &str| {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(str_at(&secret, &format!("/data/{key}")))
            .unwrap();
        text(&bytes)
    };
    assert_eq!(
        data("tls.crt"),
        std::fs::read_to_string(cwd.join("token.crt")).unwrap()
    );
    assert!(
        data("tls.key").starts_with("-----BEGIN PRIVATE KEY-----"),
        "not PKCS#8"
    );
    let deployment: Value = serde_json::from_str(&sandbox.ok(&[
        "-n",
        "kiln-system",
        "get",
        "deployment",
        "kiln",
        "-o",
        "json",
    ]))
    .unwrap();
    assert_eq!(
        env_value(&deployment, "KILN_REGISTRY_TOKEN_KEY").as_deref(),
        Some("/var/run/secrets/kiln.dev/registry-token/tls.key")
    );
    assert_eq!(
        deployment["spec"]["template"]["spec"]["volumes"][0]["secret"]["secretName"],
        "kiln-registry-token"
    );
}

/// The guide's in-cluster registry values (step 1) on top of its values file: the registry is
/// installed, the controller's `--registry` is its Service, and its `auth.token` is kiln's.
fn guide_in_cluster_registry_values_install(
    guide: &str,
    sandbox: &TcpSandbox,
    home: &Path,
    values: &Path,
) {
    let block = fenced_blocks(guide, "yaml")
        .into_iter()
        .find(|b| {
            b.first().is_some_and(|l| l.trim() == "registry:")
                && b.iter().any(|l| l.trim() == "deploy:")
        })
        .expect("the guide shows the in-cluster registry's values");
    let indent = block[0].len() - block[0].trim_start().len();
    let yaml: Vec<&str> = block
        .iter()
        .map(|l| l.get(indent..).unwrap_or(""))
        .collect();
    let in_cluster = home.join("in-cluster.yaml");
    std::fs::write(&in_cluster, yaml.join("\n")).unwrap();
    let chart = chart_dir().display().to_string();
    let (values, in_cluster) = (
        values.display().to_string(),
        in_cluster.display().to_string(),
    );
    let out = sandbox.helm(
        home,
        &[
            "upgrade",
            "kiln",
            &chart,
            "-n",
            "kiln-system",
            "-f",
            &values,
            "-f",
            &in_cluster,
            "--disable-openapi-validation",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let get = |kind: &str| -> Value {
        serde_json::from_str(&sandbox.ok(&[
            "-n",
            "kiln-system",
            "get",
            kind,
            "kiln-registry",
            "-o",
            "json",
        ]))
        .unwrap()
    };
    let claim = get("persistentvolumeclaim");
    assert_eq!(claim["spec"]["resources"]["requests"]["storage"], "100Gi");
    assert_eq!(claim["spec"]["storageClassName"], "standard");
    get("service");
    get("deployment");
    let config = kiln::yaml::read_documents(str_at(&get("configmap"), "/data/config.yml"))
        .unwrap()
        .remove(0);
    assert_eq!(
        config["auth"]["token"]["realm"],
        "http://kiln.kiln-system.svc:8080/registry/token"
    );
    let controller: Value = serde_json::from_str(&sandbox.ok(&[
        "-n",
        "kiln-system",
        "get",
        "deployment",
        "kiln",
        "-o",
        "json",
    ]))
    .unwrap();
    assert_eq!(
        env_value(&controller, "KILN_REGISTRY").as_deref(),
        Some("kiln-registry.kiln-system.svc:5000")
    );
    assert_eq!(
        config["auth"]["token"]["service"].as_str(),
        env_value(&controller, "KILN_REGISTRY_TOKEN_SERVICE").as_deref()
    );
}
