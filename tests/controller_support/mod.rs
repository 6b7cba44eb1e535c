//! In-process harness for controller scenarios: the sandbox API server, kiln's CRDs, the real
//! controller, and a scripted kubelet the test drives Pod by Pod.
#![allow(dead_code, unreachable_pub)]

use std::future::Future;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kiln::api::{Build, BuildConfig, BuildPhase, ImageStream};
use kiln::controller::{PodSettings, SecurityProfile, Settings};
use kiln::instantiate::{instantiate, BuildRequest};
use kiln_sandbox::{ApiServer, ServerConfig};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::json;

/// The namespace every scenario uses.
pub const NS: &str = "default";
/// The registry the controller is configured with.
pub const REGISTRY: &str = "registry.test:5000";
/// How long any single wait may take.
pub const LIMIT: Duration = Duration::from_secs(20);

/// Waits until `check` returns Some, polling every 20 ms, failing after [`LIMIT`].
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(start.elapsed() < LIMIT, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A sandbox with kiln's CRDs and a running controller.
pub struct Harness {
    /// The in-process API server.
    pub server: ApiServer,
    /// A client of it.
    pub client: Client,
    controller: Option<kiln::controller::Running>,
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.kill_controller();
    }
}

/// The controller settings the scenarios use.
pub fn settings() -> Settings {
    Settings {
        registry: Some(REGISTRY.into()),
        pod: PodSettings {
            builder_image: "kiln-builder:test".into(),
            security: SecurityProfile::Privileged,
            privileged_namespaces: vec![],
            seccomp_profile: kiln::controller::DEFAULT_SECCOMP_PROFILE.into(),
            insecure_registries: vec![],
            binary_input_timeout: Duration::from_secs(600),
            clone_limits: kiln::api::contract::CloneLimits::DEFAULT,
            layer_cache_registry: None,
            storage: kiln::controller::StorageSettings::default(),
            registry_token: None,
        },
        tag_history_limit: 10,
        retry_after: Duration::from_millis(100),
        watch_failure_timeout: Duration::from_secs(300),
        pod_create_retry_window: Duration::from_secs(300),
        pod_pending_timeout: Duration::from_secs(300),
        import_interval: Duration::from_secs(900),
        // The scripted kubelet reports made-up digests of a registry that does not exist.
        confirm_digests: false,
        registry_tokens: None,
    }
}

/// Logs to the test output when `RUST_LOG` is set (e.g. `RUST_LOG=kiln=debug`).
pub fn init_logs() {
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
    }
}

/// Installs kiln's CRDs from `crds/` into a fresh sandbox.
pub async fn sandbox() -> (ApiServer, Client) {
    sandbox_with(ServerConfig::default()).await
}

/// Installs kiln's CRDs from `crds/` into a fresh sandbox configured with `config`.
pub async fn sandbox_with(config: ServerConfig) -> (ApiServer, Client) {
    sandbox_with_crds(config, |text| text.to_string()).await
}

/// Like [`sandbox_with`], with the committed CRDs as `edit` changes them (an older schema, say).
pub async fn sandbox_with_crds(
    config: ServerConfig,
    edit: impl Fn(&str) -> String,
) -> (ApiServer, Client) {
    let server = ApiServer::with_config(config);
    let client = server.client();
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let text = edit(
        &std::fs::read_to_string(format!("{}/crds/kiln.yaml", env!("CARGO_MANIFEST_DIR"))).unwrap(),
    );
    for doc in kiln::yaml::read_documents(&text).unwrap() {
        let crd: CustomResourceDefinition = serde_json::from_value(doc).unwrap();
        crds.create(&PostParams::default(), &crd).await.unwrap();
    }
    (server, client)
}

impl Harness {
    /// A sandbox with the CRDs and the controller running.
    pub async fn start() -> Self {
        Self::start_with(ServerConfig::default()).await
    }

    /// A sandbox configured with `config`, with the CRDs and the controller running.
    pub async fn start_with(config: ServerConfig) -> Self {
        Self::start_with_crds(config, |text| text.to_string()).await
    }

    /// Like [`Harness::start_with`], with the CRDs as `edit` changes them.
    pub async fn start_with_crds(config: ServerConfig, edit: impl Fn(&str) -> String) -> Self {
        init_logs();
        let (server, client) = sandbox_with_crds(config, edit).await;
        let mut harness = Harness {
            server,
            client,
            controller: None,
        };
        harness.start_controller().await;
        harness
    }

    /// Starts (or restarts) the controller with the scenario settings.
    pub async fn start_controller(&mut self) {
        self.start_controller_with(settings()).await;
    }

    /// Starts (or restarts) the controller with `settings`.
    pub async fn start_controller_with(&mut self, settings: Settings) {
        self.kill_controller();
        let running =
            kiln::controller::run(self.client.clone(), settings, std::future::pending()).await;
        self.controller = Some(running);
    }

    /// Restarts the controller with watches whose events each arrive `lag` late.
    pub async fn start_lagging_controller(&mut self, lag: Duration) {
        self.kill_controller();
        let client = self.server.client_with_watch_lag(lag);
        let running = kiln::controller::run(client, settings(), std::future::pending()).await;
        self.controller = Some(running);
    }

    /// The running controller.
    pub fn running(&self) -> &kiln::controller::Running {
        self.controller.as_ref().expect("the controller runs")
    }

    /// Kills the controller wherever it is, as a crash would: nothing is flushed.
    pub fn kill_controller(&mut self) {
        if let Some(running) = self.controller.take() {
            running.abort();
        }
    }

    /// Creates a BuildConfig from YAML.
    pub async fn create_bc(&self, yaml: &str) -> BuildConfig {
        let doc = kiln::yaml::read_documents(yaml).unwrap().remove(0);
        let bc: BuildConfig = serde_json::from_value(doc).unwrap();
        Api::<BuildConfig>::namespaced(self.client.clone(), NS)
            .create(&PostParams::default(), &bc)
            .await
            .unwrap()
    }

    /// Starts a build of `bc` the way `kiln start-build` does.
    pub async fn start_build(&self, bc: &str, request_id: &str) -> Build {
        let request = BuildRequest {
            request_id: request_id.into(),
            ..BuildRequest::default()
        };
        instantiate(&self.client, NS, bc, &request).await.unwrap()
    }

    /// Every Build, by name.
    pub async fn builds(&self) -> Vec<Build> {
        let mut builds = Api::<Build>::namespaced(self.client.clone(), NS)
            .list(&ListParams::default())
            .await
            .unwrap()
            .items;
        builds.sort_by_key(|b| kiln::api::build_number(b).unwrap_or_default());
        builds
    }

    /// One Build's phase.
    pub async fn phase(&self, build: &str) -> Option<BuildPhase> {
        let b = Api::<Build>::namespaced(self.client.clone(), NS)
            .get_opt(build)
            .await
            .unwrap()?;
        Some(b.status.map(|s| s.phase).unwrap_or_default())
    }

    /// Waits until `build` reaches `phase`.
    pub async fn wait_phase(&self, build: &str, phase: BuildPhase) -> Build {
        let api = Api::<Build>::namespaced(self.client.clone(), NS);
        eventually(&format!("{build} to be {phase:?}"), || async {
            let b = api.get_opt(build).await.unwrap()?;
            (b.status.as_ref().map(|s| s.phase).unwrap_or_default() == phase).then_some(b)
        })
        .await
    }

    /// Names of the build Pods that exist and are not finished.
    pub async fn active_pods(&self) -> Vec<String> {
        let pods = Api::<Pod>::namespaced(self.client.clone(), NS)
            .list(&ListParams::default())
            .await
            .unwrap()
            .items;
        let mut names: Vec<String> = pods
            .into_iter()
            .filter(|p| {
                !matches!(
                    p.status.as_ref().and_then(|s| s.phase.as_deref()),
                    Some("Succeeded" | "Failed")
                )
            })
            .map(|p| p.name_any())
            .collect();
        names.sort();
        names
    }

    /// Waits for the Pod of `build` to exist.
    pub async fn wait_pod(&self, build: &str) -> Pod {
        let api = Api::<Pod>::namespaced(self.client.clone(), NS);
        let name = format!("{build}-build");
        eventually(&format!("pod {name}"), || async {
            api.get_opt(&name).await.unwrap()
        })
        .await
    }

    /// Moves the Pod of `build` to Running, as a kubelet would.
    pub async fn run_pod(&self, build: &str) {
        self.patch_pod_status(build, json!({"phase": "Running", "startTime": "2024-01-01T00:00:00Z",
            "initContainerStatuses": [terminated("clone", 0, "")],
            "containerStatuses": [{"name": "build", "image": "kiln", "imageID": "", "ready": true, "restartCount": 0,
                                   "state": {"running": {"startedAt": "2024-01-01T00:00:01Z"}}}]}))
            .await;
    }

    /// Finishes the Pod of `build` successfully, reporting `digest` as the builder does.
    pub async fn succeed_pod(&self, build: &str, digest: &str) {
        let report = json!({"imageDigest": digest, "source": {"commit": commit_of(digest), "message": "Change"},
                            "stages": [{"name": "Build", "durationMilliseconds": 1}]})
        .to_string();
        self.patch_pod_status(
            build,
            json!({"phase": "Succeeded",
            "initContainerStatuses": [terminated("clone", 0, "")],
            "containerStatuses": [terminated("build", 0, &report)]}),
        )
        .await;
    }

    /// Fails the Pod of `build` with a builder report.
    pub async fn fail_pod(&self, build: &str) {
        let report = json!({"reason": "DockerBuildFailed", "message": "RUN false: exit status 1", "logTail": "STEP 2/2: RUN false\nerror"}).to_string();
        self.patch_pod_status(
            build,
            json!({"phase": "Failed",
            "initContainerStatuses": [terminated("clone", 0, "")],
            "containerStatuses": [terminated("build", 1, &report)]}),
        )
        .await;
    }

    async fn patch_pod_status(&self, build: &str, status: serde_json::Value) {
        let api = Api::<Pod>::namespaced(self.client.clone(), NS);
        api.patch_status(
            &format!("{build}-build"),
            &PatchParams::default(),
            &Patch::Merge(json!({"status": status})),
        )
        .await
        .unwrap();
    }

    /// Deletes the Pod of `build`.
    pub async fn delete_pod(&self, build: &str) {
        Api::<Pod>::namespaced(self.client.clone(), NS)
            .delete(&format!("{build}-build"), &DeleteParams::default())
            .await
            .unwrap();
    }

    /// Runs a build's Pod to success with `digest` and waits for Complete.
    pub async fn complete(&self, build: &str, digest: &str) -> Build {
        self.wait_pod(build).await;
        self.run_pod(build).await;
        self.succeed_pod(build, digest).await;
        self.wait_phase(build, BuildPhase::Complete).await
    }

    /// An ImageStream, if it exists.
    pub async fn image_stream(&self, name: &str) -> Option<ImageStream> {
        Api::<ImageStream>::namespaced(self.client.clone(), NS)
            .get_opt(name)
            .await
            .unwrap()
    }

    /// The images of `stream:tag`, newest first.
    pub async fn tag_images(&self, stream: &str, tag: &str) -> Vec<String> {
        let Some(is) = self.image_stream(stream).await else {
            return vec![];
        };
        is.status
            .unwrap_or_default()
            .tags
            .into_iter()
            .find(|t| t.tag == tag)
            .map(|t| t.items.into_iter().map(|i| i.image).collect())
            .unwrap_or_default()
    }
}

/// A terminated container status with a termination message.
pub fn terminated(name: &str, code: i32, message: &str) -> serde_json::Value {
    json!({"name": name, "image": "kiln", "imageID": "", "ready": false, "restartCount": 0,
           "state": {"terminated": {"exitCode": code, "reason": if code == 0 { "Completed" } else { "Error" }, "message": message}}})
}

/// The commit the scripted builder reports for an image digest.
pub fn commit_of(digest: &str) -> String {
    digest.trim_start_matches("sha256:")[..40].to_string()
}

/// A digest made from a small number, for readable tests.
pub fn digest(n: u32) -> String {
    format!("sha256:{n:064x}")
}

/// A BuildConfig named `name` with `policy`, pushing to `<name>:latest`, plus extra spec YAML.
pub fn bc_yaml(name: &str, policy: &str, extra: &str) -> String {
    format!(
        "apiVersion: build.kiln.dev/v1alpha1\nkind: BuildConfig\nmetadata:\n  name: {name}\n  namespace: {NS}\nspec:\n  runPolicy: {policy}\n  source:\n    git:\n      uri: https://git.example.com/{name}.git\n  strategy:\n    type: Docker\n  output:\n    to:\n      kind: ImageStreamTag\n      name: {name}:latest\n{extra}"
    )
}
