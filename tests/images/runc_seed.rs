//! The seed example built by `kiln controller` with build Pods in the builder image the test just
//! built, run by the sandbox kubelet's runc runtime under kiln's default `unprivileged` profile
//! (a user namespace, the default capabilities less KILL and MKNOD, the chart's `Localhost`
//! seccomp profile), in a namespace enforcing Pod Security `baseline`, with the controller on the
//! chart's RBAC and the tenant on its own `edit` token. Then a hostile Dockerfile under the same
//! profile tries to reach the node and is refused at every step.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::cluster::{Cluster, Options, RuncKubelet, Storage};
use crate::support::repo_root;
use crate::support::seed::{
    assert_example_answer, patched_example, push_base_images, run_image, SeedSource,
};

const NAMESPACE: &str = "demo";
/// Upper bound for one build (the first user-namespaced Pod also waits for its shifted copy of
/// the builder image).
const BUILD_LIMIT: Duration = Duration::from_secs(900);

/// What the build Pod ran: its build container's image and the security settings kiln gave it.
fn pod_profile(cluster: &Cluster, build: &str) -> (String, Value, Value) {
    let pod = cluster
        .get("pod", &format!("{build}-build"))
        .expect("the build Pod is kept after the build");
    let spec = &pod["spec"];
    let build_container = spec["containers"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["name"] == "build"))
        .expect("a build container")
        .clone();
    let image = build_container["image"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    (
        image,
        spec.clone(),
        build_container["securityContext"].clone(),
    )
}

/// The seed example, end to end, in the builder image under runc with the default profile.
pub(crate) fn seed_builds_in_the_builder_image_under_runc(builder_image: &str) {
    let started = Instant::now();
    let profile = repo_root().join("charts/kiln/files/seccomp/builder.json");
    let cluster = Cluster::start(
        NAMESPACE,
        Options {
            registry: true,
            runc: Some(RuncKubelet {
                builder_image: builder_image.to_string(),
                seccomp_profiles: vec![("kiln/builder.json".into(), profile)],
            }),
            pod_security: true,
            ..Options::default()
        },
    );
    let registry = cluster.registry.as_ref().expect("a registry");
    let storage = Storage::new();
    push_base_images(registry, &storage);
    let source = SeedSource::start(cluster.work.path());
    let manifests = cluster.work.path().join("manifests");
    patched_example(&source.url, &registry.addr(), &manifests);
    for name in ["imagestream.yaml", "buildconfig.yaml"] {
        let manifest = manifests.join(name);
        cluster.tenant_kubectl_ok(&["apply", "-f", &manifest.display().to_string()]);
    }

    let build = cluster.wait_build("go-server-1", BUILD_LIMIT);
    assert_eq!(
        build["status"]["phase"], "Complete",
        "build status: {:#}",
        build["status"]
    );
    let built_in = started.elapsed();
    let (image, spec, security) = pod_profile(&cluster, "go-server-1");
    assert_eq!(
        image, builder_image,
        "the build Pod ran kiln's builder image"
    );
    assert_eq!(spec["hostUsers"], false);
    assert_eq!(
        spec["securityContext"]["seccompProfile"],
        serde_json::json!({"type": "Localhost", "localhostProfile": "kiln/builder.json"})
    );
    assert_eq!(security["privileged"], false);
    assert_eq!(security["allowPrivilegeEscalation"], false);
    assert!(security["capabilities"]["add"].is_null(), "{security}");
    let pod = cluster.get("pod", "go-server-1-build").unwrap();
    let image_id = pod["status"]["containerStatuses"][0]["imageID"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        image_id.contains("@sha256:"),
        "the kubelet pulled the builder image from its registry: {image_id:?}"
    );

    let repo = format!("{NAMESPACE}/go-server");
    let digest = registry
        .manifest_digest(&repo, "latest", None)
        .expect("the registry has demo/go-server:latest");
    assert_eq!(build["status"]["output"]["to"]["imageDigest"], digest);
    let stream = cluster.get("imagestream", "go-server").unwrap();
    let recorded = stream["status"]["tags"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|t| t["tag"] == "latest")
        .and_then(|t| t["items"][0]["image"].as_str())
        .map(String::from);
    assert_eq!(
        recorded.as_deref(),
        Some(digest.as_str()),
        "the ImageStream records the registry's digest"
    );
    let (body, _) = run_image(
        &storage,
        &format!("{}/{repo}@{digest}", registry.addr()),
        &cluster.log("server.log"),
    );
    assert_example_answer(&body);
    eprintln!(
        "images: the seed built in the builder image under runc (unprivileged, baseline) in {:.1}s",
        built_in.as_secs_f64()
    );

    hostile_dockerfile_cannot_reach_the_node(&cluster, &registry.addr());
    let refused = cluster.refusals();
    assert!(
        refused.is_empty(),
        "refused requests:\n{}",
        refused.join("\n")
    );
}

/// A block device of this machine (`major:minor` from /sys/dev/block), the one a build would most
/// like to read.
fn host_block_device() -> (String, String) {
    let mut devices: Vec<String> = std::fs::read_dir("/sys/dev/block")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    devices.sort();
    let first = devices.first().cloned().unwrap_or_else(|| "8:0".into());
    let (major, minor) = first.split_once(':').unwrap_or(("8", "0"));
    (major.to_string(), minor.to_string())
}

/// One `RUN` step tries each way out — a block device (every one in /dev, and one made with
/// mknod from this machine's numbers), a mount, /proc/1/root, a kernel module — and prints
/// `REFUSED <what>: <error>` or `ESCAPED <what>`; the step then fails, so the build fails with
/// `DockerBuildFailed` and its log says why each attempt failed.
fn hostile_dockerfile_cannot_reach_the_node(cluster: &Cluster, registry: &str) {
    let (major, minor) = host_block_device();
    let script = [
        "try() { what=$1; shift; if out=$(\"$@\" 2>&1); then echo \"ESCAPED $what: $out\"; else echo \"REFUSED $what: $out\"; fi; }",
        "busybox mkdir -p /tmp /mnt/t",
        "for dev in $(busybox find /dev -type b 2>/dev/null); do try \"read $dev\" busybox head -c 512 $dev; done",
        &format!("try 'mknod block device' busybox mknod /tmp/disk b {major} {minor}"),
        "try 'mount tmpfs' busybox mount -t tmpfs none /mnt/t",
        "try 'mount proc' busybox mount -t proc proc /mnt/t",
        "try 'list /proc/1/root' busybox ls /proc/1/root/",
        "try 'read /proc/1/root/etc/hostname' busybox cat /proc/1/root/etc/hostname",
        "printf '\\177ELF' > /tmp/evil.ko",
        "try 'load kernel module' busybox insmod /tmp/evil.ko",
        "echo hostile-done; exit 3",
    ]
    .join("; ");
    let dockerfile = format!(
        "FROM {registry}/library/busybox:latest\nRUN {}\n",
        script.replace('\n', " ")
    );
    let manifest = serde_json::json!({
        "apiVersion": "build.kiln.dev/v1alpha1", "kind": "BuildConfig",
        "metadata": {"name": "hostile", "namespace": NAMESPACE},
        "spec": {
            "source": {"type": "Dockerfile", "dockerfile": dockerfile},
            "strategy": {"type": "Docker"},
            "output": {"to": {"kind": "ImageStreamTag", "name": "hostile:latest"}},
            "triggers": [{"type": "ConfigChange"}]
        }
    });
    cluster.tenant_apply("hostile", &manifest);
    let build = cluster.wait_build("hostile-1", BUILD_LIMIT);
    assert_eq!(build["status"]["phase"], "Failed", "{:#}", build["status"]);
    assert_eq!(build["status"]["reason"], "DockerBuildFailed");
    let (_, log, _) = cluster.kubectl(&[
        "-n",
        NAMESPACE,
        "logs",
        "pod/hostile-1-build",
        "-c",
        "build",
    ]);
    // The attempts' own lines (the RUN step's command line, echoed by buildah, names them too).
    let attempts: Vec<&str> = log
        .lines()
        .filter(|l| l.starts_with("REFUSED ") || l.starts_with("ESCAPED "))
        .collect();
    eprintln!("images: the hostile build's attempts:");
    for line in &attempts {
        eprintln!("  {line}");
    }
    assert!(
        log.lines().any(|l| l == "hostile-done"),
        "the RUN step ran to its end: {log}"
    );
    let escaped: Vec<&&str> = attempts
        .iter()
        .filter(|l| l.starts_with("ESCAPED "))
        .collect();
    assert!(escaped.is_empty(), "ways out of the build: {escaped:?}");
    for (what, why) in [
        ("mknod block device", "Operation not permitted"),
        // busybox's words for EPERM from mount(2).
        ("mount tmpfs", "permission denied (are you root?)"),
        ("mount proc", "permission denied (are you root?)"),
        ("list /proc/1/root", "Permission denied"),
        ("read /proc/1/root/etc/hostname", "Permission denied"),
        ("load kernel module", "Operation not permitted"),
    ] {
        let line = attempts
            .iter()
            .find(|l| l.starts_with(&format!("REFUSED {what}:")))
            .unwrap_or_else(|| panic!("no refusal of {what}: {attempts:?}"));
        assert!(
            line.contains(why),
            "{what} refused for another reason: {line}"
        );
    }
    let (_, pod, _) = cluster.kubectl(&[
        "-n",
        NAMESPACE,
        "get",
        "pod",
        "hostile-1-build",
        "-o",
        "json",
    ]);
    let pod: Value = serde_json::from_str(&pod).unwrap_or_default();
    assert_eq!(
        pod["spec"]["hostUsers"], false,
        "the hostile build ran unprivileged"
    );
}
