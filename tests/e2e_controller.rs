//! End to end: the real `kiln controller` binary against `kiln-sandbox serve --kubelet` over TCP,
//! with a real `docker-registry`, `git daemon`, buildah and kubectl. Applying `examples/go-server/`
//! builds the seed's image; ImageStream `go-server:latest` records the registry's digest; a second
//! build started with `kiln start-build` prepends a second TagEvent (both builds keep their layers
//! in the BuildConfig's cache repository); the image's server answers.
//! A Dockerfile-only BuildConfig builds too, its image carrying OpenShift's build env and labels.
//!
//! `kiln-sandbox` is another package's binary: the test runs `cargo build -p kiln-sandbox` into the
//! directory holding the `kiln` binary under test (a no-op when it is up to date).

mod support;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::cluster::{Cluster, Options, Storage};
use support::seed::{
    assert_example_answer, patched_example, push_base_images, run_image, SeedSource,
};
use support::{git, kiln, run_bounded, Registry};

/// Upper bound for one build (clone, two-stage Go build, push).
const BUILD_LIMIT: Duration = Duration::from_secs(600);
const NAMESPACE: &str = "demo";

/// The cluster (`support::cluster`: the sandbox enforcing RBAC and Pod Security, namespace `demo`
/// at `baseline`, the controller on the chart's RBAC, the tenant on its own `edit` token) with a
/// registry holding the example's base images and a git server holding the example.
struct Seed {
    cluster: Cluster,
    source: SeedSource,
    storage: Storage,
}

impl Seed {
    fn start() -> Seed {
        let cluster = Cluster::start(
            NAMESPACE,
            Options {
                registry: true,
                registry_alias: true,
                pod_security: true,
                // Scheduled imports every 2 s, so a new upstream image is seen within the test.
                controller_args: vec!["--image-import-interval".into(), "2".into()],
                ..Options::default()
            },
        );
        let storage = Storage::new();
        push_base_images(cluster.registry.as_ref().expect("a registry"), &storage);
        let source = SeedSource::start(cluster.work.path());
        Seed {
            cluster,
            source,
            storage,
        }
    }

    fn registry(&self) -> &Registry {
        self.cluster.registry.as_ref().expect("a registry")
    }

    fn wait_build(&self, name: &str) -> Value {
        self.cluster.wait_build(name, BUILD_LIMIT)
    }
}

/// The TagEvents of ImageStream go-server's tag `latest`, newest first, once there are `count`
/// of them (the controller records the image before it marks the Build Complete; the wait only
/// guards against reordering, at most 30 s).
fn latest_events(seed: &Seed, count: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let stream = seed
            .cluster
            .get("imagestream", "go-server")
            .expect("ImageStream go-server exists");
        assert_eq!(
            stream["status"]["dockerImageRepository"],
            format!("{}/{NAMESPACE}/go-server", seed.registry().addr())
        );
        let events = stream["status"]["tags"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|t| t["tag"] == "latest")
            .and_then(|t| t["items"].as_array().cloned())
            .unwrap_or_default();
        if events.len() >= count || Instant::now() > deadline {
            return events;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn assert_complete(build: &Value) {
    assert_eq!(
        build["status"]["phase"], "Complete",
        "build status: {:#}",
        build["status"]
    );
}

#[test]
fn go_server_example_builds_through_the_controller_and_records_image_history() {
    let started = Instant::now();
    let seed = Seed::start();
    let seed = &seed;
    let cluster = &seed.cluster;

    let manifests = cluster.work.path().join("manifests");
    patched_example(&seed.source.url, &seed.registry().addr(), &manifests);
    // The platform team's part (the namespace, its `builder` ServiceAccount, the tenant) is the
    // cluster's; the example's own namespace manifest changes nothing there. The tenant, with its
    // own token, declares the ImageStream and the BuildConfig and starts builds.
    let namespace_manifest = manifests.join("00-namespace.yaml");
    cluster.kubectl_ok(&["apply", "-f", &namespace_manifest.display().to_string()]);
    let (may_create_roles, _, _) = cluster.kubectl(&[
        "--kubeconfig",
        &cluster.tenant_kubeconfig().display().to_string(),
        "auth",
        "can-i",
        "create",
        "roles",
    ]);
    assert!(!may_create_roles, "the tenant holds only edit");
    for name in ["imagestream.yaml", "buildconfig.yaml"] {
        let manifest = manifests.join(name);
        cluster.tenant_kubectl_ok(&["apply", "-f", &manifest.display().to_string()]);
    }

    // The ConfigChange trigger starts build 1.
    let first = seed.wait_build("go-server-1");
    assert_complete(&first);
    let registry = seed.registry();
    let repo = format!("{NAMESPACE}/go-server");
    let digest1 = registry
        .manifest_digest(&repo, "latest", None)
        .expect("the registry has demo/go-server:latest");
    assert_eq!(
        first["status"]["output"]["to"]["imageDigest"], digest1,
        "the Build records the pushed digest"
    );
    let events = latest_events(seed, 1);
    assert_eq!(events.len(), 1, "one TagEvent after one build: {events:#?}");
    assert_eq!(events[0]["image"], digest1);
    assert_eq!(
        events[0]["dockerImageReference"],
        format!("{}/{repo}@{digest1}", registry.addr())
    );

    // A new commit on main, then a second build, started through instantiate by
    // `kiln start-build`.
    let src = &seed.source.src;
    let server_go = src.join("examples/go-server/server.go");
    let mut text = std::fs::read_to_string(&server_go).unwrap();
    text.push_str("\n// Second version.\n");
    std::fs::write(&server_go, text).unwrap();
    git(src, &["commit", "-q", "-am", "Second version"]);
    git(src, &["push", "-q", "../go-server.git", "main"]);
    let commit2 = git(src, &["rev-parse", "HEAD"]);
    let mut start = kiln();
    start
        .args(["start-build", "go-server", "-n", NAMESPACE])
        .env("KUBECONFIG", cluster.tenant_kubeconfig());
    let out = run_bounded(start, Duration::from_secs(60));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "kiln start-build: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout.trim(), "build.build.kiln.dev/go-server-2 started");
    let second = seed.wait_build("go-server-2");
    assert_complete(&second);
    let digest2 = registry
        .manifest_digest(&repo, "latest", None)
        .expect("the registry has demo/go-server:latest");
    assert_ne!(digest1, digest2, "build 2 pushed a new manifest");
    // The builds kept their layers in the BuildConfig's cache repository, in its own namespace.
    let (code, tags) = support::http_get(
        registry.service.port,
        &format!("/v2/{NAMESPACE}/go-server-cache/tags/list"),
    )
    .expect("the registry answers");
    assert_eq!(code, 200, "{tags}");
    let tags: Value = serde_json::from_str(&tags).unwrap();
    assert!(
        tags["tags"].as_array().is_some_and(|t| !t.is_empty()),
        "the layer cache holds the builds' steps: {tags}"
    );
    let events = latest_events(seed, 2);
    let images: Vec<&str> = events.iter().filter_map(|e| e["image"].as_str()).collect();
    assert_eq!(
        images,
        [digest2.as_str(), digest1.as_str()],
        "build 2's TagEvent is prepended"
    );
    // start-build leaves lastVersion to the controller's repair (after its grace period).
    let deadline = Instant::now() + Duration::from_secs(60);
    while cluster.get("buildconfig", "go-server").unwrap()["status"]["lastVersion"] != 2 {
        assert!(Instant::now() < deadline, "lastVersion never reached 2");
        std::thread::sleep(Duration::from_millis(500));
    }

    // The image the ImageStream points at serves the example's page.
    let (body, commit) = run_image(
        &seed.storage,
        &format!("{}/{repo}@{digest2}", registry.addr()),
        &cluster.log("server.log"),
    );
    assert_eq!(commit, commit2, "build 2 built the tip of main");
    assert_example_answer(&body);

    // A Dockerfile-only source (what `oc new-build --dockerfile` makes) builds in the cluster, and
    // the image carries OpenShift's build env and labels beside kiln's. (They are set at the end of
    // the Dockerfile, as kiln's own: RUN steps do not see them, so the layer cache survives.)
    let dockerfile_only = serde_json::json!({
        "apiVersion": "build.kiln.dev/v1alpha1", "kind": "BuildConfig",
        "metadata": {"name": "inline", "namespace": NAMESPACE},
        "spec": {
            "source": {"type": "Dockerfile", "dockerfile": format!(
                "FROM {}/library/busybox:latest\nRUN echo inline > /built-by\n",
                registry.addr()
            )},
            "strategy": {"type": "Docker"},
            "output": {"to": {"kind": "ImageStreamTag", "name": "inline:latest"}},
            "triggers": [{"type": "ConfigChange"}]
        }
    });
    let dockerfile_only = serde_norway::to_string(&dockerfile_only).unwrap();
    let manifest = cluster.work.path().join("inline.yaml");
    std::fs::write(&manifest, dockerfile_only).unwrap();
    cluster.tenant_kubectl_ok(&["apply", "-f", &manifest.display().to_string()]);
    let inline = seed.wait_build("inline-1");
    assert_complete(&inline);
    let digest = registry
        .manifest_digest(&format!("{NAMESPACE}/inline"), "latest", None)
        .expect("the registry has demo/inline:latest");
    let storage = &seed.storage;
    let ctr = storage.buildah(&[
        "from",
        "--quiet",
        "--tls-verify=false",
        &format!("docker://{}/{NAMESPACE}/inline@{digest}", registry.addr()),
    ]);
    let label = |name: &str| {
        storage.buildah(&[
            "inspect",
            "--format",
            &format!("{{{{index .OCIv1.Config.Labels \"{name}\"}}}}"),
            &ctr,
        ])
    };
    assert_eq!(label("io.openshift.build.name"), "inline-1");
    assert_eq!(label("io.openshift.build.namespace"), NAMESPACE);
    assert_eq!(label("io.kiln.build.name"), "inline-1");
    let env = storage.buildah(&["inspect", "--format", "{{.OCIv1.Config.Env}}", &ctr]);
    assert!(env.contains("OPENSHIFT_BUILD_NAME=inline-1"), "{env}");
    assert!(
        env.contains(&format!("OPENSHIFT_BUILD_NAMESPACE={NAMESPACE}")),
        "{env}"
    );
    let mount = PathBuf::from(storage.buildah(&["mount", &ctr]));
    let built_by = std::fs::read_to_string(mount.join("built-by")).unwrap();
    assert_eq!(
        built_by.trim(),
        "inline",
        "the inline Dockerfile's RUN step ran"
    );
    storage.buildah(&["rm", &ctr]);

    new_build_shape_builds_once_per_base_digest(seed);
    eprintln!("e2e_controller: six builds in {:?}", started.elapsed());
    let refused = cluster.refusals();
    assert!(
        refused.is_empty(),
        "refused requests:\n{}",
        refused.join("\n")
    );
}

/// The test registry under a name other than the internal registry's (`localhost` for
/// `127.0.0.1`), so its images are external ones: an image under `<registry>/<namespace>/` of the
/// internal registry is that namespace's ImageStream, and pulling it is authorized as such.
fn upstream_host(registry: &Registry) -> String {
    format!("localhost:{}", registry.service.port)
}

/// What `oc new-build` makes — an output stream, a base stream importing an external image
/// (scheduled) and a BuildConfig with ConfigChange and ImageChange triggers — applied by the
/// tenant: one build on creation, from the imported digest, whose RUN step sees a Secret through
/// env `valueFrom`; a new upstream image is imported and builds exactly once more.
fn new_build_shape_builds_once_per_base_digest(seed: &Seed) {
    let cluster = &seed.cluster;
    let registry = seed.registry();
    let host = upstream_host(registry);
    let upstream = format!("{host}/library/busybox:latest");
    let manifests = serde_json::json!([
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "app-token", "namespace": NAMESPACE},
         "data": {"token": "dDBrZW4tZnJvbS1hLXNlY3JldA=="}},
        {"apiVersion": "image.kiln.dev/v1alpha1", "kind": "ImageStream",
         "metadata": {"name": "newapp", "namespace": NAMESPACE}},
        {"apiVersion": "image.kiln.dev/v1alpha1", "kind": "ImageStream",
         "metadata": {"name": "busybox", "namespace": NAMESPACE},
         "spec": {"tags": [{"name": "latest", "from": {"kind": "DockerImage", "name": upstream},
                            "importPolicy": {"insecure": true, "scheduled": true},
                            "referencePolicy": {"type": "Source"}}]}},
        {"apiVersion": "build.kiln.dev/v1alpha1", "kind": "BuildConfig",
         "metadata": {"name": "newapp", "namespace": NAMESPACE},
         "spec": {
            "source": {"type": "Dockerfile", "dockerfile":
                "FROM busybox\nRUN echo \"$TOKEN\" > /token-seen\n"},
            "strategy": {"type": "Docker", "dockerStrategy": {
                "from": {"kind": "ImageStreamTag", "name": "busybox:latest"},
                "env": [{"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "app-token", "key": "token"}}}]}},
            "output": {"to": {"kind": "ImageStreamTag", "name": "newapp:latest"}},
            "triggers": [{"type": "ConfigChange"}, {"type": "ImageChange", "imageChange": {}}]
         }}
    ]);
    let documents: Vec<String> = manifests
        .as_array()
        .unwrap()
        .iter()
        .map(|d| serde_norway::to_string(d).unwrap())
        .collect();
    let manifest = cluster.work.path().join("new-build.yaml");
    std::fs::write(&manifest, documents.join("---\n")).unwrap();
    cluster.tenant_kubectl_ok(&["apply", "-f", &manifest.display().to_string()]);

    // The digests the import recorded, newest first.
    let imported = || -> Vec<String> {
        let stream = cluster.get("imagestream", "busybox").unwrap_or_default();
        stream["status"]["tags"][0]["items"]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter_map(|e| e["image"].as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    let first = seed.wait_build("newapp-1");
    let base1 = imported()
        .first()
        .cloned()
        .expect("busybox:latest was imported");
    assert_complete(&first);
    let from = &first["spec"]["strategy"]["dockerStrategy"]["from"];
    assert_eq!(
        from["name"],
        format!("{host}/library/busybox@{base1}"),
        "built from the imported digest: {first:#}"
    );
    let text = first.to_string();
    assert!(!text.contains("t0ken-from-a-secret"), "{text}");
    let digest = registry
        .manifest_digest(&format!("{NAMESPACE}/newapp"), "latest", None)
        .expect("the registry has demo/newapp:latest");
    let storage = &seed.storage;
    let ctr = storage.buildah(&[
        "from",
        "--quiet",
        "--tls-verify=false",
        &format!("docker://{}/{NAMESPACE}/newapp@{digest}", registry.addr()),
    ]);
    let mount = PathBuf::from(storage.buildah(&["mount", &ctr]));
    let seen = std::fs::read_to_string(mount.join("token-seen")).unwrap();
    assert_eq!(
        seen.trim(),
        "t0ken-from-a-secret",
        "the RUN step saw the Secret"
    );
    storage.buildah(&["rm", &ctr]);
    // Several scheduled imports of the same digest: still one build.
    std::thread::sleep(Duration::from_secs(5));
    assert!(
        cluster.get("build", "newapp-2").is_none(),
        "one build on creation"
    );

    // A new upstream image: imported on schedule, built once.
    let ctr = storage.buildah(&[
        "from",
        "--quiet",
        "--tls-verify=false",
        &format!("docker://{upstream}"),
    ]);
    storage.buildah(&["config", "--label", "upstream=2", &ctr]);
    storage.buildah(&["commit", "--quiet", &ctr, "busybox-upstream-2"]);
    storage.buildah(&["rm", &ctr]);
    storage.buildah(&[
        "push",
        "--quiet",
        "--tls-verify=false",
        "busybox-upstream-2",
        &format!("docker://{upstream}"),
    ]);
    let second = seed.wait_build("newapp-2");
    let base2 = imported().first().cloned().unwrap();
    assert_ne!(base1, base2, "the new upstream image was imported");
    assert_complete(&second);
    assert_eq!(
        second["spec"]["strategy"]["dockerStrategy"]["from"]["name"],
        format!("{host}/library/busybox@{base2}")
    );
    std::thread::sleep(Duration::from_secs(5));
    assert!(
        cluster.get("build", "newapp-3").is_none(),
        "exactly one build per new base digest"
    );
    assert_eq!(imported(), [base2, base1], "both digests, newest first");
}
