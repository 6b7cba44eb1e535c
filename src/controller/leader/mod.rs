//! Leader election on a `coordination.k8s.io/v1` Lease, and the fence that stops a replica's
//! writes the moment its leadership can no longer be vouched for.
//!
//! kiln's own elector rather than a crate: kube 5 has no leader election, and
//! `kube-lease-manager` (the maintained crate that supports kube 5) takes the Lease with
//! server-side apply and renews and releases it with strategic-merge patches that carry no
//! resourceVersion, so mutual exclusion rests on field-ownership conflicts and a holder whose
//! lease was taken while its renewal was in flight can still overwrite it. This elector is
//! client-go's algorithm and nothing more: read the Lease, decide ([`decide`]), and write it back
//! with a `replace` carrying the resourceVersion it read, so two replicas racing for the Lease
//! collide on a 409 as every other kiln status write does. Expiry is judged on the reader's own
//! monotonic clock (a record unchanged for the Lease's duration), never on remote timestamps.
//!
//! The fence: every request the controllers send goes through a client ([`fenced`]) that refuses
//! writes unless this replica renewed the Lease less than the renew deadline (two thirds of the
//! lease duration) ago, measured from when that renewal was sent. Another replica can take the
//! Lease only a full lease duration after it last saw it renewed, so a replica's writes stop a
//! third of the duration before anyone else may start, even when its elector is stalled, and
//! without waiting for its reconcilers to notice.

pub(crate) mod decide;

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::http::{Method, Request};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, PostParams};
use kube::client::Body;
use prometheus_client::metrics::gauge::Gauge;
use tokio::sync::watch;

use decide::{observe, Observation, Step};

/// The Lease replicas compete for, and this replica's part in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseConfig {
    /// The Lease's namespace (the controller's own).
    pub namespace: String,
    /// The Lease's name.
    pub name: String,
    /// This replica's identity, written as `holderIdentity` (unique per process).
    pub identity: String,
    /// How long a Lease not renewed stays held.
    pub duration: Duration,
}

impl LeaseConfig {
    /// How long after sending a renewal this replica may still write: two thirds of the lease
    /// duration (client-go's 10 s of 15 s).
    pub fn renew_deadline(&self) -> Duration {
        self.duration * 2 / 3
    }

    /// How often the Lease is read and renewed: a fifteenth of the duration, between 200 ms and
    /// 1 s, so a follower takes over at most about two periods after the lease expires.
    pub fn retry_period(&self) -> Duration {
        (self.duration / 15).clamp(Duration::from_millis(200), Duration::from_secs(1))
    }

    /// How long one read-and-write of the Lease may take before it counts as failed.
    fn attempt_timeout(&self) -> Duration {
        self.retry_period().max(self.duration / 6)
    }
}

/// A process-unique identity: `base` (the Pod's name) and eight random hex digits, so a
/// restarted container never mistakes its predecessor's Lease for its own.
pub(crate) fn identity(base: &str) -> String {
    let mut bytes = [0u8; 4];
    // Without randomness the process id still tells two processes of one Pod apart.
    let suffix = match getrandom::fill(&mut bytes) {
        Ok(()) => bytes.iter().map(|b| format!("{b:02x}")).collect::<String>(),
        Err(_) => format!("{:08x}", std::process::id()),
    };
    format!("{base}_{suffix}")
}

/// Until when this replica may write (None: not leading).
#[derive(Debug, Default)]
pub(crate) struct Fence {
    until: Mutex<Option<Instant>>,
}

impl Fence {
    fn set(&self, until: Option<Instant>) {
        *self.until.lock().unwrap_or_else(PoisonError::into_inner) = until;
    }

    /// Whether a write may be sent at `now`.
    pub(crate) fn is_open(&self, now: Instant) -> bool {
        self.until
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some_and(|until| now < until)
    }
}

/// A write refused because this replica does not hold the Lease.
#[derive(Debug, thiserror::Error)]
#[error("not the leader: {method} {path} not sent")]
pub(crate) struct NotLeading {
    method: Method,
    path: String,
}

/// Whether a request changes state (everything but reads and watches).
fn writes(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// `client` with every write refused while `fence` is closed (reads and watches pass).
pub(crate) fn fenced(client: kube::Client, fence: Arc<Fence>) -> kube::Client {
    let namespace = client.default_namespace().to_string();
    let service = tower::service_fn(move |request: Request<Body>| {
        let client = client.clone();
        let fence = fence.clone();
        async move {
            if writes(request.method()) && !fence.is_open(Instant::now()) {
                let refused = NotLeading {
                    method: request.method().clone(),
                    path: request.uri().path().to_string(),
                };
                return Err(kube::Error::Service(Box::new(refused)));
            }
            client.send(request).await
        }
    });
    kube::Client::new(service, namespace)
}

/// The running elector: whether this replica leads, and the fence its writes go through.
pub(crate) struct Elector {
    config: LeaseConfig,
    client: kube::Client,
    fence: Arc<Fence>,
    leading: watch::Receiver<bool>,
    gauge: Gauge,
    stop: watch::Sender<bool>,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Elector {
    /// Starts competing for the Lease.
    pub(crate) fn start(client: kube::Client, config: LeaseConfig) -> Self {
        let fence = Arc::new(Fence::default());
        let (leading_tx, leading) = watch::channel(false);
        let (stop, stop_rx) = watch::channel(false);
        let gauge = Gauge::default();
        let campaign = Campaign {
            api: Api::namespaced(client.clone(), &config.namespace),
            config: config.clone(),
            fence: fence.clone(),
            leading: leading_tx,
            gauge: gauge.clone(),
            observation: None,
        };
        let task = tokio::spawn(campaign.run(stop_rx));
        Elector {
            config,
            client,
            fence,
            leading,
            gauge,
            stop,
            task: Mutex::new(Some(task)),
        }
    }

    /// The fence the controllers' client goes through.
    pub(crate) fn fence(&self) -> Arc<Fence> {
        self.fence.clone()
    }

    /// Whether this replica leads, updated as it changes.
    pub(crate) fn leading(&self) -> watch::Receiver<bool> {
        self.leading.clone()
    }

    /// Whether the election task still runs.
    pub(crate) fn is_running(&self) -> bool {
        self.task
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .is_some_and(|task| !task.is_finished())
    }

    /// `kiln_leader`: 1 while this replica leads, in the OpenMetrics text format.
    pub(crate) fn encode_metrics(&self, out: &mut String) {
        let mut registry = prometheus_client::registry::Registry::default();
        registry.register(
            "kiln_leader",
            "Whether this replica holds the controller's Lease (1) or follows (0)",
            self.gauge.clone(),
        );
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode_registry(out, &registry);
    }

    /// Stops competing and, when this replica holds the Lease, gives it up at once (the fence
    /// closes first), so the next leader need not wait for it to expire.
    pub(crate) async fn release(&self) {
        let _ = self.stop.send(true);
        let task = self
            .task
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(task) = task {
            let _ = task.await;
        }
        self.fence.set(None);
        self.gauge.set(0);
        let api: Api<Lease> = Api::namespaced(self.client.clone(), &self.config.namespace);
        let timeout = self.config.attempt_timeout();
        let attempt = async {
            let Some(mut lease) = api.get_opt(&self.config.name).await? else {
                return Ok::<bool, kube::Error>(false);
            };
            let spec = lease.spec.clone().unwrap_or_default();
            if !decide::held_by(&spec, &self.config.identity) {
                return Ok(false);
            }
            lease.spec = Some(decide::released(&spec, Timestamp::now()));
            api.replace(&self.config.name, &PostParams::default(), &lease)
                .await?;
            Ok(true)
        };
        match tokio::time::timeout(timeout, attempt).await {
            Ok(Ok(true)) => tracing::info!(lease = %self.config.name, "released the lease"),
            Ok(Ok(false)) => {}
            Ok(Err(err)) => {
                tracing::warn!(lease = %self.config.name, %err, "could not release the lease; it expires by itself")
            }
            Err(_) => {
                tracing::warn!(lease = %self.config.name, "releasing the lease timed out; it expires by itself")
            }
        }
    }
}

/// The election loop's state.
struct Campaign {
    api: Api<Lease>,
    config: LeaseConfig,
    fence: Arc<Fence>,
    leading: watch::Sender<bool>,
    gauge: Gauge,
    observation: Option<Observation>,
}

impl Campaign {
    async fn run(mut self, mut stop: watch::Receiver<bool>) {
        tracing::info!(lease = %self.config.name, namespace = %self.config.namespace, identity = %self.config.identity, "competing for the lease");
        loop {
            let sent = Instant::now();
            let outcome =
                tokio::time::timeout(self.config.attempt_timeout(), self.attempt(sent)).await;
            match outcome {
                Ok(Ok(true)) => self.lead(sent),
                Ok(Ok(false)) => self.follow("another replica holds the lease"),
                Ok(Err(err)) => self.failed(&err.to_string()),
                Err(_) => self.failed("reading or renewing the lease timed out"),
            }
            tokio::select! {
                _ = tokio::time::sleep(self.config.retry_period()) => {}
                _ = stop.changed() => return,
            }
        }
    }

    /// One read and, when due, one write; true when this replica holds the Lease afterwards.
    async fn attempt(&mut self, now: Instant) -> Result<bool, kube::Error> {
        let me = self.config.identity.as_str();
        let lease = self.api.get_opt(&self.config.name).await?;
        if let Some(spec) = lease.as_ref().map(|l| l.spec.clone().unwrap_or_default()) {
            let before = self
                .observation
                .as_ref()
                .and_then(|o| o.holder().map(String::from));
            let observation = observe(self.observation.take(), &spec, now);
            if observation.holder() != before.as_deref() && observation.holder() != Some(me) {
                tracing::info!(lease = %self.config.name, holder = observation.holder().unwrap_or("<none>"), "the lease changed hands");
            }
            self.observation = Some(observation);
        }
        let step = decide::decide(
            lease.as_ref().and(self.observation.as_ref()),
            me,
            self.config.duration,
            now,
        );
        let written = match (&step, lease) {
            (Step::Follow, _) => return Ok(false),
            (Step::Create, _) | (_, None) => Lease {
                metadata: ObjectMeta {
                    name: Some(self.config.name.clone()),
                    namespace: Some(self.config.namespace.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(decide::created(me, self.config.duration, Timestamp::now())),
            },
            (_, Some(mut lease)) => {
                let spec = lease.spec.clone().unwrap_or_default();
                lease.spec = Some(decide::after(
                    &step,
                    &spec,
                    me,
                    self.config.duration,
                    Timestamp::now(),
                ));
                lease
            }
        };
        let result = if step == Step::Create {
            self.api.create(&PostParams::default(), &written).await
        } else {
            // The resourceVersion read above rides along: a replica that wrote in between wins.
            self.api
                .replace(&self.config.name, &PostParams::default(), &written)
                .await
        };
        match result {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(status)) if status.code == 409 => {
                tracing::debug!(lease = %self.config.name, ?step, "another replica wrote the lease first");
                Ok(false)
            }
            Err(err) => Err(err),
        }
    }

    fn lead(&mut self, sent: Instant) {
        self.fence.set(Some(sent + self.config.renew_deadline()));
        if !*self.leading.borrow() {
            tracing::info!(lease = %self.config.name, identity = %self.config.identity, "became the leader");
            self.gauge.set(1);
            let _ = self.leading.send(true);
        }
    }

    fn follow(&mut self, why: &str) {
        if *self.leading.borrow() {
            self.lose(why);
        }
    }

    fn failed(&mut self, why: &str) {
        let leading = *self.leading.borrow();
        if leading && !self.fence.is_open(Instant::now()) {
            self.lose(&format!(
                "the lease was not renewed within the renew deadline: {why}"
            ));
        } else if leading {
            tracing::warn!(lease = %self.config.name, error = why, "renewing the lease failed; retrying");
        } else {
            tracing::debug!(lease = %self.config.name, error = why, "reading the lease failed");
        }
    }

    fn lose(&mut self, why: &str) {
        self.fence.set(None);
        self.gauge.set(0);
        tracing::warn!(lease = %self.config.name, reason = why, "lost the lease; stopping the controllers");
        let _ = self.leading.send(false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_follow_the_duration() {
        let config = |secs| LeaseConfig {
            namespace: "ns".into(),
            name: "kiln".into(),
            identity: "a".into(),
            duration: Duration::from_secs(secs),
        };
        // (duration, renew deadline, retry period)
        let cases = [
            (15, Duration::from_secs(10), Duration::from_secs(1)),
            (60, Duration::from_secs(40), Duration::from_secs(1)),
            (6, Duration::from_secs(4), Duration::from_millis(400)),
            (3, Duration::from_secs(2), Duration::from_millis(200)),
        ];
        for (duration, deadline, retry) in cases {
            let c = config(duration);
            assert_eq!(c.renew_deadline(), deadline, "{duration}");
            assert_eq!(c.retry_period(), retry, "{duration}");
            assert!(c.attempt_timeout() < c.renew_deadline(), "{duration}");
        }
    }

    /// Against the in-process API server: the elector takes the Lease and the fenced client
    /// writes; once another replica holds the Lease, the elector reports the loss and the same
    /// client refuses writes without sending them (reads still pass); a release then leaves the
    /// other replica's Lease alone.
    #[tokio::test]
    async fn a_replica_whose_lease_is_taken_stops_writing() {
        use k8s_openapi::api::core::v1::ConfigMap;

        let server = kiln_sandbox::ApiServer::new();
        let client = server.client();
        let elector = Elector::start(
            client.clone(),
            LeaseConfig {
                namespace: "default".into(),
                name: "kiln".into(),
                identity: "a_1".into(),
                duration: Duration::from_secs(3),
            },
        );
        let mut leading = elector.leading();
        let led = tokio::time::timeout(Duration::from_secs(10), leading.wait_for(|l| *l))
            .await
            .map(|r| r.is_ok());
        assert!(matches!(led, Ok(true)), "a never led");
        let fenced = fenced(client.clone(), elector.fence());
        let config_map = |name: &str| ConfigMap {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..ObjectMeta::default()
            },
            ..ConfigMap::default()
        };
        let maps: Api<ConfigMap> = Api::namespaced(fenced, "default");
        maps.create(&PostParams::default(), &config_map("one"))
            .await
            .expect("the leader writes");

        // Another replica takes the Lease (from the version it read, as an elector would).
        let leases: Api<Lease> = Api::namespaced(client.clone(), "default");
        let mut lease = leases.get("kiln").await.unwrap();
        if let Some(spec) = lease.spec.as_mut() {
            spec.holder_identity = Some("b_2".into());
        }
        leases
            .replace("kiln", &PostParams::default(), &lease)
            .await
            .unwrap();
        let lost = tokio::time::timeout(Duration::from_secs(10), leading.wait_for(|l| !*l))
            .await
            .map(|r| r.is_ok());
        assert!(matches!(lost, Ok(true)), "a never noticed");
        match maps
            .create(&PostParams::default(), &config_map("two"))
            .await
        {
            Err(kube::Error::Service(err)) => {
                assert!(err.to_string().contains("not the leader"), "{err}")
            }
            other => panic!("a write after the loss: {other:?}"),
        }
        assert!(maps.get_opt("one").await.unwrap().is_some(), "reads pass");
        let direct: Api<ConfigMap> = Api::namespaced(client, "default");
        assert!(direct.get_opt("two").await.unwrap().is_none(), "never sent");

        elector.release().await;
        let held = leases.get("kiln").await.unwrap();
        assert_eq!(
            held.spec.and_then(|s| s.holder_identity).as_deref(),
            Some("b_2"),
            "a release gives up only this replica's own Lease"
        );
    }

    #[test]
    fn identities_are_unique_per_process_start() {
        let a = identity("kiln-7d9f");
        let b = identity("kiln-7d9f");
        assert!(
            a.starts_with("kiln-7d9f_") && a.len() == "kiln-7d9f_".len() + 8,
            "{a}"
        );
        assert_ne!(a, b);
    }

    #[test]
    fn the_fence_opens_until_its_deadline() {
        let fence = Fence::default();
        let now = Instant::now();
        assert!(!fence.is_open(now), "closed until the lease is held");
        fence.set(Some(now + Duration::from_secs(1)));
        assert!(fence.is_open(now));
        assert!(!fence.is_open(now + Duration::from_secs(1)));
        fence.set(None);
        assert!(!fence.is_open(now));
        for (method, write) in [
            (Method::GET, false),
            (Method::HEAD, false),
            (Method::POST, true),
            (Method::PUT, true),
            (Method::PATCH, true),
            (Method::DELETE, true),
        ] {
            assert_eq!(writes(&method), write, "{method}");
        }
    }
}
