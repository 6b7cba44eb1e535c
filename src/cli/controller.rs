//! `kiln controller`: runs the operator against the cluster in `KUBECONFIG` (or in-cluster).

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::Args;

use super::Error;
use crate::controller::build_config::history::DEFAULT_TAG_HISTORY_LIMIT;
use crate::controller::context::{
    DEFAULT_IMPORT_INTERVAL, DEFAULT_POD_CREATE_RETRY_WINDOW, DEFAULT_POD_PENDING_TIMEOUT,
    DEFAULT_WATCH_FAILURE_TIMEOUT,
};
use crate::controller::{
    PodSettings, SecurityProfile, Settings, StorageMode, StorageSettings, DEFAULT_SECCOMP_PROFILE,
};

/// Arguments of `kiln controller`; each also reads an environment variable.
#[derive(Debug, Args)]
pub(crate) struct ControllerArgs {
    /// Address of the HTTP server (/healthz, /readyz, /metrics and the webhooks).
    #[arg(long, env = "KILN_LISTEN", default_value = "0.0.0.0:8080")]
    pub(crate) listen: SocketAddr,
    /// The internal registry (`host[:port]`) ImageStreamTag outputs are pushed to.
    #[arg(long, env = "KILN_REGISTRY")]
    pub(crate) registry: Option<String>,
    /// The image build Pods run (it holds `kiln` and buildah).
    #[arg(
        long,
        env = "KILN_BUILDER_IMAGE",
        default_value = "ghcr.io/kiln-dev/kiln-builder:latest"
    )]
    pub(crate) builder_image: String,
    /// How build containers are isolated: `unprivileged` (Pod Security `baseline`; needs user
    /// namespaces and the `Localhost` seccomp profile on the nodes), `user-namespace` or
    /// `privileged` (both need Pod Security `privileged`).
    #[arg(
        long,
        env = "KILN_SECURITY_PROFILE",
        value_enum,
        default_value = "unprivileged"
    )]
    pub(crate) security_profile: SecurityProfile,
    /// Namespaces whose builds run `privileged` whatever `--security-profile` says (the cluster
    /// admin's list of trusted namespaces).
    #[arg(
        long = "privileged-namespaces",
        env = "KILN_PRIVILEGED_NAMESPACES",
        value_delimiter = ','
    )]
    pub(crate) privileged_namespaces: Vec<String>,
    /// The `Localhost` seccomp profile of the `unprivileged` profile, relative to the kubelet's
    /// seccomp root (the chart installs `kiln/builder.json` there).
    #[arg(long, env = "KILN_SECCOMP_PROFILE", default_value = DEFAULT_SECCOMP_PROFILE)]
    pub(crate) seccomp_profile: String,
    /// Registries reached without TLS verification (the internal registry is added automatically
    /// when `--insecure-registry-internal` is set).
    #[arg(
        long = "insecure-registry",
        env = "KILN_INSECURE_REGISTRIES",
        value_delimiter = ','
    )]
    pub(crate) insecure_registries: Vec<String>,
    /// Treat the internal registry as insecure (plain HTTP or self-signed).
    #[arg(long, env = "KILN_INSECURE_REGISTRY_INTERNAL")]
    pub(crate) insecure_registry_internal: bool,
    /// How many TagEvents each ImageStream tag keeps.
    #[arg(long, env = "KILN_TAG_HISTORY_LIMIT", default_value_t = DEFAULT_TAG_HISTORY_LIMIT)]
    pub(crate) tag_history_limit: usize,
    /// Seconds between re-imports of ImageStream tags with `importPolicy.scheduled` (OpenShift's
    /// default is 15 minutes).
    #[arg(long, env = "KILN_IMAGE_IMPORT_INTERVAL", default_value_t = DEFAULT_IMPORT_INTERVAL.as_secs(), value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) image_import_interval: u64,
    /// Confirm each build's reported digest in its output repository before recording it in an
    /// ImageStream (`false` trusts the build Pod's report).
    #[arg(long, env = "KILN_CONFIRM_DIGESTS", default_value_t = true, action = clap::ArgAction::Set)]
    pub(crate) confirm_digests: bool,
    /// Keep a layer cache per BuildConfig in the internal registry
    /// (`<registry>/<namespace>/<buildconfig>-cache`), so a build Pod with empty storage reuses
    /// the layers of earlier builds (`false`: every build starts cold).
    #[arg(long, env = "KILN_LAYER_CACHE", default_value_t = true, action = clap::ArgAction::Set)]
    pub(crate) layer_cache: bool,
    /// Where build Pods keep buildah's storage root: `ephemeral` (an emptyDir, every build starts
    /// empty) or `volume` (a ReadWriteOnce PersistentVolumeClaim per BuildConfig,
    /// `<buildconfig>-build-storage`, owned by it: a rebuild reuses its bases and layers; builds
    /// with `noCache` get fresh storage).
    #[arg(
        long,
        env = "KILN_BUILD_STORAGE",
        value_enum,
        default_value = "ephemeral"
    )]
    pub(crate) build_storage: StorageMode,
    /// The size each build storage claim requests.
    #[arg(long, env = "KILN_BUILD_STORAGE_SIZE", default_value = crate::controller::build::storage::DEFAULT_SIZE)]
    pub(crate) build_storage_size: String,
    /// The storage class of build storage claims (default: the cluster's default class).
    #[arg(long, env = "KILN_BUILD_STORAGE_CLASS")]
    pub(crate) build_storage_class: Option<String>,
    /// Seconds a watch may fail without a break before /healthz fails.
    #[arg(long, env = "KILN_WATCH_FAILURE_TIMEOUT", default_value_t = DEFAULT_WATCH_FAILURE_TIMEOUT.as_secs())]
    pub(crate) watch_failure_timeout: u64,
    /// Seconds a build whose Pod the API server refuses is retried before it ends `Error`.
    #[arg(long, env = "KILN_POD_CREATE_RETRY_WINDOW", default_value_t = DEFAULT_POD_CREATE_RETRY_WINDOW.as_secs())]
    pub(crate) pod_create_retry_window: u64,
    /// Seconds a build Pod may stay Pending before the Build, a `warn` line and an Event say why.
    #[arg(long, env = "KILN_POD_PENDING_TIMEOUT", default_value_t = DEFAULT_POD_PENDING_TIMEOUT.as_secs())]
    pub(crate) pod_pending_timeout: u64,
    /// Seconds a Binary build waits for its upload (`kiln start-build --from-dir` and friends)
    /// before it fails with FetchSourceFailed.
    #[arg(long, env = "KILN_BINARY_INPUT_TIMEOUT", default_value_t = crate::api::contract::DEFAULT_INPUT_TIMEOUT.as_secs(), value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) binary_input_timeout: u64,
    /// Compete with the other replicas for a Lease and reconcile only while holding it (the
    /// webhooks and /metrics are served either way). Default: on when the namespace is known
    /// (`--lease-namespace`, POD_NAMESPACE).
    #[arg(long, env = "KILN_LEADER_ELECTION", num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub(crate) leader_election: Option<bool>,
    /// The Lease's namespace (the controller's own; default: the client's namespace).
    #[arg(long, env = "POD_NAMESPACE")]
    pub(crate) lease_namespace: Option<String>,
    /// The Lease's name.
    #[arg(long, env = "KILN_LEASE_NAME", default_value = "kiln-controller", value_parser = super::cluster::object_name)]
    pub(crate) lease_name: String,
    /// Seconds a Lease not renewed stays held: how long the replicas wait for a leader that
    /// died without releasing it (its writes stop after two thirds of this).
    #[arg(long, env = "KILN_LEASE_DURATION", default_value_t = 15, value_parser = clap::value_parser!(u64).range(2..=3600))]
    pub(crate) lease_duration: u64,
    /// Log lines as human-readable text or as JSON objects (colour only on a terminal).
    #[arg(long, env = "KILN_LOG_FORMAT", value_enum, default_value = "text")]
    pub(crate) log_format: LogFormat,
    /// The registry token server.
    #[command(flatten)]
    pub(crate) registry_token: super::registry_token::RegistryTokenArgs,
    /// The git clone bounds every build Pod's clone step gets.
    #[command(flatten)]
    pub(crate) clone_limits: super::clone_limits::CloneLimitArgs,
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum LogFormat {
    /// One human-readable line per event.
    Text,
    /// One JSON object per event, with the span's fields.
    Json,
}

impl ControllerArgs {
    /// The controller settings these arguments describe.
    pub(crate) fn settings(&self) -> Settings {
        let mut insecure = self.insecure_registries.clone();
        if self.insecure_registry_internal {
            insecure.extend(self.registry.clone());
        }
        Settings {
            registry: self.registry.clone(),
            pod: PodSettings {
                builder_image: self.builder_image.clone(),
                security: self.security_profile,
                privileged_namespaces: self.privileged_namespaces.clone(),
                seccomp_profile: self.seccomp_profile.clone(),
                insecure_registries: insecure,
                binary_input_timeout: std::time::Duration::from_secs(self.binary_input_timeout),
                clone_limits: self.clone_limits.limits(),
                layer_cache_registry: self.registry.clone().filter(|_| self.layer_cache),
                storage: StorageSettings {
                    mode: self.build_storage,
                    size: self.build_storage_size.clone(),
                    storage_class: self.build_storage_class.clone().filter(|c| !c.is_empty()),
                },
                registry_token: self
                    .registry
                    .clone()
                    .zip(self.registry_token.audience())
                    .map(|(registry, audience)| crate::controller::RegistryToken {
                        registry,
                        audience,
                    }),
            },
            tag_history_limit: self.tag_history_limit.max(1),
            retry_after: std::time::Duration::from_secs(2),
            watch_failure_timeout: std::time::Duration::from_secs(self.watch_failure_timeout),
            pod_create_retry_window: std::time::Duration::from_secs(self.pod_create_retry_window),
            pod_pending_timeout: std::time::Duration::from_secs(self.pod_pending_timeout.max(1)),
            import_interval: std::time::Duration::from_secs(self.image_import_interval),
            confirm_digests: self.confirm_digests,
            registry_tokens: None,
        }
    }
}

impl ControllerArgs {
    /// The Lease to compete for, None without leader election. `client_namespace` is the
    /// client's own (kubeconfig context or in-cluster ServiceAccount), `pod_name` names this
    /// replica (the hostname when unset).
    pub(crate) fn lease(
        &self,
        client_namespace: &str,
        pod_name: Option<&str>,
    ) -> Option<crate::controller::LeaseConfig> {
        let namespace = self.lease_namespace.as_deref().filter(|n| !n.is_empty());
        if !self.leader_election.unwrap_or(namespace.is_some()) {
            return None;
        }
        Some(crate::controller::LeaseConfig {
            namespace: namespace.unwrap_or(client_namespace).to_string(),
            name: self.lease_name.clone(),
            identity: crate::controller::leader::identity(pod_name.unwrap_or("kiln-controller")),
            duration: std::time::Duration::from_secs(self.lease_duration),
        })
    }
}

/// This replica's name: POD_NAME, else the host name.
fn pod_name() -> Option<String> {
    std::env::var("POD_NAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|name| name.trim().to_string())
        .filter(|name| !name.is_empty())
}

/// The controller's HTTP routes: `/healthz`, `/readyz`, `/metrics` (the controller's families,
/// then the webhook receiver's) and the webhook endpoints, the receiver reading the controller's
/// own BuildConfig cache.
pub fn routes(
    running: &crate::controller::Running,
    webhooks: std::sync::Arc<crate::webhook::Webhooks>,
) -> axum::Router {
    let counters = webhooks.clone();
    crate::controller::server::router(
        running.context.clone(),
        Some(std::sync::Arc::new(move |out: &mut String| {
            counters.metrics().encode_families(out)
        })),
    )
    .merge(webhooks.router())
}

/// Runs the controller until SIGINT or SIGTERM.
pub(crate) fn run(args: &ControllerArgs) -> Result<ExitCode, Error> {
    let runtime = tokio::runtime::Runtime::new().map_err(|source| Error::Io {
        context: "starting the runtime".into(),
        source,
    })?;
    runtime.block_on(async {
        let client = kube::Client::try_default().await.map_err(Error::Kube)?;
        let shutdown = async {
            let mut term =
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(term) => term,
                    Err(_) => return std::future::pending().await,
                };
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        };
        let token_server = args.registry_token.server(client.clone())?;
        let mut settings = args.settings();
        settings.registry_tokens = token_server.clone().map(crate::controller::RegistryTokens);
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .map_err(|source| Error::Io {
                context: format!("listening on {}", args.listen),
                source,
            })?;
        if let Some(lease) = args.lease(client.default_namespace(), pod_name().as_deref()) {
            tracing::info!(listen = %args.listen, "kiln controller started (leader election)");
            super::replica::run(client, settings, lease, listener, shutdown).await;
            return Ok(ExitCode::SUCCESS);
        }
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let running = crate::controller::run(client.clone(), settings, {
            let mut rx = stop_rx.clone();
            async move {
                let _ = rx.changed().await;
            }
        })
        .await;
        tracing::info!(listen = %args.listen, "kiln controller started");
        let webhooks = std::sync::Arc::new(crate::webhook::Webhooks::on_store(
            client.clone(),
            running.build_configs(),
        ));
        let mut app = routes(&running, webhooks);
        if let Some(tokens) = token_server {
            app = app.merge(tokens.router());
        }
        let mut server_stop = stop_rx;
        let server = axum::serve(listener, app).with_graceful_shutdown(async move {
            let _ = server_stop.changed().await;
        });
        let server = tokio::spawn(async move { server.await });
        shutdown.await;
        tracing::info!("shutting down: letting the reconciles in flight finish");
        let _ = stop_tx.send(true);
        running.finished().await;
        let _ = server.await;
        Ok(ExitCode::SUCCESS)
    })
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::ControllerArgs;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: ControllerArgs,
    }

    #[test]
    fn the_layer_cache_follows_the_internal_registry_unless_switched_off() {
        for (argv, want) in [
            (vec!["--registry", "r:5000"], Some("r:5000")),
            (
                vec!["--registry", "r:5000", "--layer-cache=true"],
                Some("r:5000"),
            ),
            (vec!["--registry", "r:5000", "--layer-cache=false"], None),
            (vec![], None),
        ] {
            let cli =
                Cli::try_parse_from(std::iter::once("kiln").chain(argv.iter().copied())).unwrap();
            assert_eq!(
                cli.args.settings().pod.layer_cache_registry.as_deref(),
                want,
                "{argv:?}"
            );
        }
    }

    #[test]
    fn leader_election_is_on_when_the_namespace_is_known() {
        // (arguments, expected lease namespace, or None for no election)
        let cases: &[(&[&str], Option<&str>)] = &[
            (&[], None),
            (&["--lease-namespace", "kiln-system"], Some("kiln-system")),
            (&["--lease-namespace", ""], None),
            (&["--leader-election"], Some("client-ns")),
            (&["--leader-election=true"], Some("client-ns")),
            (
                &[
                    "--leader-election=false",
                    "--lease-namespace",
                    "kiln-system",
                ],
                None,
            ),
            (
                &["--leader-election", "--lease-namespace", "ops"],
                Some("ops"),
            ),
        ];
        for (args, want) in cases {
            let parsed = Cli::try_parse_from(std::iter::once("kiln").chain(args.iter().copied()))
                .unwrap_or_else(|e| panic!("{args:?}: {e}"));
            let lease = parsed.args.lease("client-ns", Some("kiln-7d9f"));
            assert_eq!(
                lease.as_ref().map(|l| l.namespace.as_str()),
                *want,
                "{args:?}"
            );
            if let Some(lease) = lease {
                assert_eq!(lease.name, "kiln-controller");
                assert_eq!(lease.duration, std::time::Duration::from_secs(15));
                assert!(
                    lease.identity.starts_with("kiln-7d9f_"),
                    "{}",
                    lease.identity
                );
            }
        }
        let custom = Cli::try_parse_from([
            "kiln",
            "--leader-election",
            "--lease-name",
            "kiln-a",
            "--lease-duration",
            "30",
        ])
        .unwrap();
        let lease = custom.args.lease("ns", None).unwrap();
        assert_eq!(
            (lease.name.as_str(), lease.duration.as_secs()),
            ("kiln-a", 30)
        );
        assert!(lease.identity.starts_with("kiln-controller_"));
        for bad in ["1", "0", "3601", "soon"] {
            assert!(
                Cli::try_parse_from(["kiln", "--lease-duration", bad]).is_err(),
                "{bad}"
            );
        }
    }
}
