//! The fake kube-apiserver: an axum `Router` over an in-memory store.

pub mod authz;
pub mod crd;
pub mod discovery;
pub mod error;
pub mod faults;
pub mod http;
pub mod logs;
pub mod meta;
pub mod names;
pub mod openapi;
pub mod ops;
pub mod patch;
pub mod requests;
pub mod resources;
pub mod schema;
pub mod selector;
pub mod ssa;
pub mod stdin;
pub mod store;

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use serde_json::Value;

pub use error::{ApiError, ApiResult};
pub use faults::{FaultAction, FaultRule, FaultRules};
pub use logs::LogStore;
pub use stdin::StdinHub;

/// Tunables of the server.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Largest accepted request body (the apiserver's limit is 3 MiB).
    pub max_body_bytes: usize,
    /// How often watches with `allowWatchBookmarks` get a BOOKMARK.
    pub bookmark_interval: Duration,
    /// Watch duration when the client gives no `timeoutSeconds`.
    pub default_watch_timeout: Duration,
    /// Events kept for watch replay before the oldest are compacted.
    pub event_capacity: usize,
    /// Reject Pods whose ServiceAccount does not exist, as the apiserver's ServiceAccount
    /// admission plugin does (off by default; every namespace gets a `default` ServiceAccount).
    pub service_account_admission: bool,
    /// Evaluate CRD `x-kubernetes-validations` (CEL) rules with the built-in interpreter
    /// (off by default).
    pub cel_rules: bool,
    /// Authentication and authorization (`AlwaysAllow` by default; `Rbac` enforces RBAC).
    pub authorization: authz::Authorization,
    /// Pod Security admission from namespace labels (off by default).
    pub pod_security: bool,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            max_body_bytes: 3 * 1024 * 1024,
            bookmark_interval: Duration::from_secs(2),
            default_watch_timeout: Duration::from_secs(1800),
            event_capacity: store::DEFAULT_EVENT_CAPACITY,
            service_account_admission: false,
            cel_rules: false,
            authorization: authz::Authorization::AlwaysAllow,
            pod_security: false,
        }
    }
}

/// State shared by every request.
pub struct Shared {
    store: Mutex<store::Store>,
    /// Container logs served by `pods/log`.
    pub logs: LogStore,
    /// Running containers' stdin, written by `pods/attach`.
    pub stdin: StdinHub,
    /// Active fault rules.
    pub faults: FaultRules,
    /// Bumped to end every open watch.
    pub watch_epoch: tokio::sync::watch::Sender<u64>,
    /// API requests counted per client, verb and resource.
    pub requests: requests::RequestCounts,
    /// ServiceAccount tokens issued through the TokenRequest API.
    pub tokens: authz::tokens::Tokens,
    /// Requests RBAC refused.
    pub refusals: authz::Refusals,
    /// Tunables.
    pub config: ServerConfig,
}

impl Shared {
    /// Locks the store (a poisoned lock is recovered: the store is never left half-written).
    pub fn store(&self) -> MutexGuard<'_, store::Store> {
        self.store.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A fake kube-apiserver. Cheap to clone; every clone serves the same data.
#[derive(Clone)]
pub struct ApiServer {
    shared: Arc<Shared>,
}

impl Default for ApiServer {
    fn default() -> Self {
        Self::new()
    }
}

impl ApiServer {
    /// A server with the default configuration and namespaces `default`, `kube-system`,
    /// `kube-public` and `kube-node-lease`.
    pub fn new() -> Self {
        Self::with_config(ServerConfig::default())
    }

    /// A server with the given configuration.
    pub fn with_config(config: ServerConfig) -> Self {
        let server = ApiServer {
            shared: Arc::new(Shared {
                store: Mutex::new({
                    let mut store = store::Store::new(config.event_capacity);
                    store.service_account_admission = config.service_account_admission;
                    store.pod_security = config.pod_security;
                    store
                }),
                logs: LogStore::new(),
                stdin: StdinHub::new(),
                faults: FaultRules::default(),
                watch_epoch: tokio::sync::watch::channel(0).0,
                requests: requests::RequestCounts::default(),
                tokens: authz::tokens::Tokens::default(),
                refusals: authz::Refusals::default(),
                config,
            }),
        };
        for namespace in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            // Creating the initial namespaces in an empty store cannot fail.
            let _ = server.create_object(
                "",
                "v1",
                "namespaces",
                "",
                serde_json::json!({"metadata": {"name": namespace}}),
            );
        }
        if server.shared.config.authorization == authz::Authorization::Rbac {
            let roles = authz::bootstrap::cluster_roles();
            let bindings = authz::bootstrap::cluster_role_bindings();
            for (plural, object) in roles
                .into_iter()
                .map(|r| ("clusterroles", r))
                .chain(bindings.into_iter().map(|b| ("clusterrolebindings", b)))
            {
                if let Err(e) =
                    server.create_object("rbac.authorization.k8s.io", "v1", plural, "", object)
                {
                    tracing::error!(error = %e, "creating the default RBAC policy");
                }
            }
        }
        server
    }

    /// The HTTP router, without credentials added to requests (use in-process with
    /// `kube::Client::new(router, "default")`, or serve it).
    pub fn router(&self) -> axum::Router {
        http::router(self.shared.clone())
    }

    /// The router for in-process clients: requests without an `Authorization` header carry the
    /// admin's token.
    fn admin_router(&self) -> axum::Router {
        let admin = axum::http::HeaderValue::from_static("Bearer sandbox");
        self.router().layer(axum::middleware::map_request(
            move |mut request: axum::extract::Request| {
                let admin = admin.clone();
                async move {
                    let headers = request.headers_mut();
                    if !headers.contains_key(axum::http::header::AUTHORIZATION) {
                        headers.insert(axum::http::header::AUTHORIZATION, admin);
                    }
                    request
                }
            },
        ))
    }

    /// A kube client talking to this server in-process, as the admin.
    pub fn client(&self) -> kube::Client {
        kube::Client::new(self.admin_router(), "default")
    }

    /// A kube client talking to this server in-process with a bearer token (e.g. from
    /// [`ApiServer::create_token`]).
    pub fn client_with_token(&self, token: &str) -> kube::Client {
        let value = axum::http::HeaderValue::from_str(&format!("Bearer {token}"))
            .unwrap_or_else(|_| axum::http::HeaderValue::from_static("Bearer invalid"));
        let router = self.router().layer(axum::middleware::map_request(
            move |mut request: axum::extract::Request| {
                let value = value.clone();
                async move {
                    request
                        .headers_mut()
                        .insert(axum::http::header::AUTHORIZATION, value);
                    request
                }
            },
        ));
        kube::Client::new(router, "default")
    }

    /// Issues a token for ServiceAccount `namespace/name` (what the TokenRequest API answers).
    pub fn create_token(&self, namespace: &str, name: &str) -> ApiResult<String> {
        let store = self.shared.store();
        let answer = self
            .shared
            .tokens
            .request(&store, namespace, name, &serde_json::json!({}))?;
        Ok(answer
            .pointer("/status/token")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string())
    }

    /// A kube client talking to this server in-process whose watch events each arrive `lag`
    /// late: a lagging informer, so a reconciler sees its own writes only after other events.
    pub fn client_with_watch_lag(&self, lag: Duration) -> kube::Client {
        use futures::StreamExt;
        let router = self.admin_router().layer(axum::middleware::from_fn(
            move |request: axum::extract::Request, next: axum::middleware::Next| async move {
                let watching = request
                    .uri()
                    .query()
                    .is_some_and(|q| q.split('&').any(|p| p == "watch=true" || p == "watch=1"));
                let response = next.run(request).await;
                if !watching {
                    return response;
                }
                response.map(|body| {
                    axum::body::Body::from_stream(body.into_data_stream().then(
                        move |chunk| async move {
                            tokio::time::sleep(lag).await;
                            chunk
                        },
                    ))
                })
            },
        ));
        kube::Client::new(router, "default")
    }

    /// A kube client talking to this server in-process whose requests carry
    /// `User-Agent: <agent>` (so [`ApiServer::request_counts`] tells its requests apart).
    pub fn client_as(&self, agent: &str) -> kube::Client {
        let value = axum::http::HeaderValue::from_str(agent)
            .unwrap_or_else(|_| axum::http::HeaderValue::from_static("invalid"));
        let router = self.admin_router().layer(axum::middleware::map_request(
            move |mut request: axum::extract::Request| {
                let value = value.clone();
                async move {
                    request
                        .headers_mut()
                        .insert(axum::http::header::USER_AGENT, value);
                    request
                }
            },
        ));
        kube::Client::new(router, "default")
    }

    /// API requests served so far, per client (`User-Agent` product), verb and resource.
    pub fn request_counts(&self) -> Vec<requests::RequestCount> {
        self.shared.requests.snapshot()
    }

    /// Every request RBAC refused so far, in order.
    pub fn refusals(&self) -> Vec<authz::Refusal> {
        self.shared.refusals.snapshot()
    }

    /// The log store `pods/log` reads from (the kubelet writes into it).
    pub fn logs(&self) -> LogStore {
        self.shared.logs.clone()
    }

    /// Where the kubelet offers running containers' stdin to `pods/attach`.
    pub fn stdin(&self) -> StdinHub {
        self.shared.stdin.clone()
    }

    /// Fault injection controls.
    pub fn faults(&self) -> Faults {
        Faults {
            shared: self.shared.clone(),
        }
    }

    /// The current (latest) resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.shared.store().resource_version()
    }

    /// Number of stored objects.
    pub fn object_count(&self) -> usize {
        self.shared.store().len()
    }

    /// Creates an object directly (no HTTP), e.g. to preload CRDs; returns the stored object.
    pub fn create_object(
        &self,
        group: &str,
        version: &str,
        plural: &str,
        namespace: &str,
        object: Value,
    ) -> ApiResult<Value> {
        let mut store = self.shared.store();
        let info = store
            .registry
            .get(group, version, plural)
            .cloned()
            .ok_or(ApiError::UnknownPath)?;
        let ctx = ops::WriteContext {
            info,
            namespace: namespace.to_string(),
            manager: None,
            dry_run: false,
            validation: ops::FieldValidation::Ignore,
            apply_config: None,
            cel_rules: self.shared.config.cel_rules,
        };
        let created = ops::create(&mut store, &ctx, object, "Update")?.object;
        if ctx.info.group == "rbac.authorization.k8s.io" && ctx.info.plural == "clusterroles" {
            authz::aggregate::reconcile(&mut store)?;
        }
        Ok(created)
    }

    /// Changes a stored object in place with no admission, schema or CEL check — what an older
    /// schema, a skipped bound or a direct etcd write leaves behind — and records a MODIFIED
    /// event (poison-object tests); returns the stored object.
    pub fn edit_unchecked(
        &self,
        group: &str,
        plural: &str,
        namespace: &str,
        name: &str,
        edit: impl FnOnce(&mut Value),
    ) -> ApiResult<Value> {
        let mut store = self.shared.store();
        let key = store::ObjectKey::new(&format!("{group}/{plural}"), namespace, name);
        let mut object = store
            .get(&key)
            .map(|o| o.as_ref().clone())
            .ok_or(ApiError::UnknownPath)?;
        edit(&mut object);
        Ok(store.put(key, object).as_ref().clone())
    }
}

/// Handle to inject faults into a running server.
#[derive(Clone)]
pub struct Faults {
    shared: Arc<Shared>,
}

impl Faults {
    /// Fails (or delays) the next `count` requests matching `verb` and `resource` (None = any).
    pub fn inject(
        &self,
        verb: Option<&str>,
        resource: Option<&str>,
        action: FaultAction,
        count: u32,
    ) {
        self.shared.faults.add(FaultRule {
            verb: verb.map(String::from),
            resource: resource.map(String::from),
            action,
            count,
        });
    }

    /// Removes all pending fault rules.
    pub fn clear(&self) {
        self.shared.faults.clear();
    }

    /// Ends every open watch stream (clients re-watch from their last resourceVersion).
    pub fn drop_watches(&self) {
        self.shared.watch_epoch.send_modify(|epoch| *epoch += 1);
    }

    /// Forgets the event history: watches from any older resourceVersion get 410 Gone.
    pub fn compact(&self) {
        self.shared.store().compact();
    }
}

impl ApiServer {
    /// The plural resource name serving `kind` in a group/version.
    pub fn plural_of(&self, group: &str, version: &str, kind: &str) -> Option<String> {
        let store = self.shared.store();
        store
            .registry
            .resources_of(group, version)
            .into_iter()
            .find(|r| r.kind == kind)
            .map(|r| r.plural.clone())
    }
}
