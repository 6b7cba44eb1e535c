//! Sandbox API server benchmarks: writes/s in-process and over TCP, watch fan-out with 10,000
//! objects, and resident memory. Prints `ROW|<name>|<measured>|<baseline>|<ratio>|<target>`.

use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kiln_sandbox::ApiServer;
use kube::api::{Api, ObjectMeta, PostParams};
use kube::runtime::watcher::{self, watcher, Event};
use kube::Client;

const CONCURRENCY: usize = 16;

fn config_map(name: String) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name),
            labels: Some([("bench".into(), "yes".into())].into()),
            ..Default::default()
        },
        data: Some([("key".to_string(), "value".to_string())].into()),
        ..Default::default()
    }
}

async fn namespace(client: &Client, name: &str) {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let ns = Namespace {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        ..Default::default()
    };
    namespaces
        .create(&PostParams::default(), &ns)
        .await
        .expect("namespace");
}

/// Creates `count` config maps with `in_flight` concurrent requests; returns writes/s.
async fn writes_per_second(client: &Client, ns: &str, count: usize, in_flight: usize) -> f64 {
    namespace(client, ns).await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    let start = Instant::now();
    futures::stream::iter(0..count)
        .map(|i| {
            let api = api.clone();
            async move {
                api.create(&PostParams::default(), &config_map(format!("cm-{i}")))
                    .await
                    .map(|_| ())
            }
        })
        .buffer_unordered(in_flight)
        .try_collect::<Vec<()>>()
        .await
        .expect("writes");
    count as f64 / start.elapsed().as_secs_f64()
}

fn rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

/// Creates `objects` config maps while `watchers` watchers run; returns seconds until every
/// watcher has seen every object.
async fn fan_out_seconds(client: &Client, ns: &str, objects: usize, watchers: usize) -> f64 {
    namespace(client, ns).await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel::<()>(watchers.max(1));
    let (done_tx, mut done_rx) = tokio::sync::mpsc::channel::<()>(watchers.max(1));
    let mut tasks = Vec::new();
    for _ in 0..watchers {
        let api = api.clone();
        let (ready_tx, done_tx) = (ready_tx.clone(), done_tx.clone());
        tasks.push(tokio::spawn(async move {
            let mut seen = 0usize;
            let mut stream = watcher(api, watcher::Config::default()).boxed();
            while let Some(event) = stream.next().await {
                match event {
                    Ok(Event::InitDone) => {
                        let _ = ready_tx.send(()).await;
                    }
                    Ok(Event::Apply(_)) => {
                        seen += 1;
                        if seen == objects {
                            let _ = done_tx.send(()).await;
                            return;
                        }
                    }
                    _ => {}
                }
            }
        }));
    }
    for _ in 0..watchers {
        ready_rx.recv().await.expect("watcher ready");
    }
    let start = Instant::now();
    futures::stream::iter(0..objects)
        .map(|i| {
            let api = api.clone();
            async move {
                api.create(&PostParams::default(), &config_map(format!("fan-{i}")))
                    .await
                    .map(|_| ())
            }
        })
        .buffer_unordered(CONCURRENCY)
        .try_collect::<Vec<()>>()
        .await
        .expect("writes");
    for _ in 0..watchers {
        tokio::time::timeout(Duration::from_secs(300), done_rx.recv())
            .await
            .expect("fan-out finished in time");
    }
    let elapsed = start.elapsed().as_secs_f64();
    for task in tasks {
        task.abort();
    }
    elapsed
}

fn row(name: &str, measured: String, baseline: String, ratio: f64, target: &str) {
    println!("ROW|{name}|{measured}|{baseline}|{ratio:.3}|{target}");
}

#[tokio::main]
async fn main() {
    let writes: usize = std::env::var("SANDBOX_BENCH_WRITES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5000);
    let objects: usize = std::env::var("SANDBOX_BENCH_OBJECTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let watchers = 10;

    let empty_rss = rss_mb();
    let server = ApiServer::new();
    let in_process = server.client();
    for in_flight in [1, CONCURRENCY] {
        let rate = writes_per_second(
            &in_process,
            &format!("bench-in-process-{in_flight}"),
            writes,
            in_flight,
        )
        .await;
        let name = format!("sandbox writes in-process (creates/s, {in_flight} in flight)");
        row(
            &name,
            format!("{rate:.0}/s"),
            "2000/s".into(),
            rate / 2000.0,
            ">= 2000/s",
        );
    }

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let tcp_server = server.clone();
    tokio::spawn(async move { axum::serve(listener, tcp_server.router()).await });
    let config = kube::Config::new(format!("http://{addr}").parse().expect("url"));
    let tcp = Client::try_from(config).expect("tcp client");
    for in_flight in [1, CONCURRENCY] {
        let rate =
            writes_per_second(&tcp, &format!("bench-tcp-{in_flight}"), writes, in_flight).await;
        let name = format!("sandbox writes over TCP (creates/s, {in_flight} in flight)");
        row(
            &name,
            format!("{rate:.0}/s"),
            "500/s".into(),
            rate / 500.0,
            ">= 500/s",
        );
    }

    let fresh = ApiServer::new();
    let client = fresh.client();
    let alone = fan_out_seconds(&client, "bench-alone", objects, 0).await;
    let fanned = fan_out_seconds(&client, "bench-fan-out", objects, watchers).await;
    row(
        &format!("sandbox watch fan-out ({watchers} watchers x {objects} objects; vs no watchers)"),
        format!("{fanned:.2}s"),
        format!("{alone:.2}s"),
        fanned / alone,
        &format!("<= {watchers}x"),
    );
    let loaded_rss = rss_mb();
    row(
        &format!(
            "sandbox memory (RSS, {} objects incl. history; vs empty)",
            fresh.object_count() + server.object_count()
        ),
        format!("{loaded_rss:.0}MB"),
        format!("{empty_rss:.0}MB"),
        loaded_rss / empty_rss.max(1.0),
        "<= 512MB",
    );
}
