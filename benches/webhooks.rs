//! Webhook benchmark, one run: (a) refused bad-signature requests per second over HTTP against
//! `/healthz` of the same server, same client and concurrency; (b) verify + parse of a 1 MiB
//! GitHub push, p50 and p99, against a plain `serde_json` parse of the same bytes. The server is
//! the real webhook router over TCP on 127.0.0.1, its BuildConfig cache fed by the in-process
//! sandbox. Prints `ROW|<name>|<measured>|<baseline>|<ratio>|<target>`.
//! `WEBHOOK_BENCH_SECONDS` (default 5) per HTTP measurement, `WEBHOOK_BENCH_CONCURRENCY`
//! (default 16) requests in flight.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, HeaderValue, Request, StatusCode};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kiln::api::BuildConfig;
use kiln::webhook::verify::sign;
use kiln::webhook::{Provider, Webhooks};
use kube::api::{Api, PostParams};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const SECRET: &[u8] = b"bench-secret";

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn row(name: &str, measured: String, baseline: String, ratio: f64, target: &str) {
    println!("ROW|{name}|{measured}|{baseline}|{ratio:.3}|{target}");
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn bench_config() -> Result<BuildConfig, BoxError> {
    let doc = kiln::yaml::read_documents(
        r#"
apiVersion: build.kiln.dev/v1alpha1
kind: BuildConfig
metadata: {name: app, namespace: default}
spec:
  source: {type: Git, git: {uri: "https://git.example.com/app.git", ref: main}}
  strategy: {type: Docker}
  triggers:
    - {type: GitHub, github: {secret: bench-secret}}
"#,
    )?
    .remove(0);
    Ok(serde_json::from_value(doc)?)
}

/// Requests per second of `make_request` answered with `status`, `concurrency` in flight.
async fn rate(
    client: &kube::Client,
    seconds: u64,
    concurrency: usize,
    status: StatusCode,
    make_request: impl Fn() -> Result<Request<kube::client::Body>, axum::http::Error>
        + Send
        + Sync
        + 'static,
) -> Result<f64, BoxError> {
    let make_request = Arc::new(make_request);
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (client, make_request, done) = (client.clone(), make_request.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                let response = client.send(make_request()?).await?;
                let got = response.status();
                response.into_body().collect_bytes().await?;
                if got != status {
                    return Err(format!("expected {status}, got {got}").into());
                }
                done.fetch_add(1, Ordering::Relaxed);
            }
            Ok::<(), BoxError>(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    Ok(done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64())
}

/// A GitHub push payload of at least `size` bytes (many commits, as a large push has).
fn big_push(size: usize) -> Vec<u8> {
    let commit = |i: usize| {
        serde_json::json!({
            "id": format!("{i:040x}"), "message": format!("change {i}: {}", "x".repeat(200)),
            "timestamp": "2026-11-29T12:00:00Z",
            "author": {"name": "Mona Lisa", "email": "mona@example.com", "username": "mona"},
            "committer": {"name": "GitHub", "email": "noreply@github.com", "username": "web-flow"},
            "added": [], "removed": [], "modified": ["main.go", "README.md"]
        })
    };
    let mut commits = Vec::new();
    let mut total = 0;
    while total < size {
        let c = commit(commits.len());
        total += c.to_string().len() + 1;
        commits.push(c);
    }
    serde_json::to_vec(&serde_json::json!({
        "ref": "refs/heads/main", "after": format!("{:040x}", commits.len() - 1), "deleted": false,
        "head_commit": commits.last().cloned(), "commits": commits,
        "repository": {"full_name": "octo-org/go-server", "default_branch": "main"}
    }))
    .unwrap_or_default()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), BoxError> {
    let seconds = env_or("WEBHOOK_BENCH_SECONDS", 5_u64);
    let concurrency = env_or("WEBHOOK_BENCH_CONCURRENCY", 16_usize);

    // The sandbox with kiln's CRDs and one BuildConfig with a GitHub trigger.
    let server = kiln_sandbox::ApiServer::new();
    let api_client = server.client();
    let crds_path = std::env::var("KILN_CRDS")
        .map(|dir| format!("{dir}/kiln.yaml"))
        .unwrap_or_else(|_| format!("{}/crds/kiln.yaml", env!("CARGO_MANIFEST_DIR")));
    for doc in kiln::yaml::read_documents(&std::fs::read_to_string(crds_path)?)? {
        let crd: CustomResourceDefinition = serde_json::from_value(doc)?;
        Api::<CustomResourceDefinition>::all(api_client.clone())
            .create(&PostParams::default(), &crd)
            .await?;
    }
    let bc = bench_config()?;
    Api::<BuildConfig>::namespaced(api_client.clone(), "default")
        .create(&PostParams::default(), &bc)
        .await?;
    let webhooks = Webhooks::start(api_client.clone());
    let started = Instant::now();
    while !webhooks.is_ready() {
        if started.elapsed() > Duration::from_secs(20) {
            return Err("the webhook cache did not sync".into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // (a) The router over TCP, with /healthz beside it as in `kiln webhooks`.
    let app = webhooks
        .router()
        .route("/healthz", axum::routing::get(|| async { "ok" }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    let client = kube::Client::try_from(kube::Config::new(format!("http://{addr}").parse()?))?;

    let body: Arc<Vec<u8>> = Arc::new(std::fs::read(format!(
        "{}/tests/fixtures/webhooks/github-push.json",
        env!("CARGO_MANIFEST_DIR")
    ))?);
    let bad = sign(b"not-the-secret", &body);
    let healthz = rate(&client, seconds, concurrency, StatusCode::OK, || {
        Request::get("/healthz").body(kube::client::Body::empty())
    })
    .await?;
    let refused = rate(
        &client,
        seconds,
        concurrency,
        StatusCode::UNAUTHORIZED,
        move || {
            Request::post("/webhooks/default/app/github")
                .header("content-type", "application/json")
                .header("x-github-event", "push")
                .header("x-github-delivery", "bench")
                .header("x-hub-signature-256", bad.as_str())
                .body(kube::client::Body::from(body.to_vec()))
        },
    )
    .await?;
    let refused_counted = webhooks
        .metrics()
        .count("github", "refused", "bad_signature");
    eprintln!(
        "webhooks bench: {refused_counted} bad-signature requests refused, {healthz:.0}/s /healthz"
    );
    row(
        &format!("webhooks: refused bad-signature requests/s over HTTP vs /healthz ({concurrency} in flight)"),
        format!("{refused:.0}/s"),
        format!("{healthz:.0}/s"),
        refused / healthz,
        ">= 5000/s",
    );

    // (b) Verify + parse a 1 MiB push, in-process, against parsing the same bytes as JSON.
    let big = big_push(1 << 20);
    let mut headers = HeaderMap::new();
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    headers.insert("x-github-event", HeaderValue::from_static("push"));
    headers.insert("x-github-delivery", HeaderValue::from_static("bench-1mib"));
    headers.insert(
        "x-hub-signature-256",
        HeaderValue::from_str(&sign(SECRET, &big))?,
    );
    let runs = env_or("WEBHOOK_BENCH_RUNS", 300_usize);
    let mut verify = Vec::with_capacity(runs);
    let mut parse = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        let builds = kiln::webhook::would_build(
            Provider::GitHub,
            None,
            &headers,
            &big,
            &bc,
            &[Some(SECRET)],
        );
        verify.push(t.elapsed());
        if !builds {
            return Err("the 1 MiB push was not accepted".into());
        }
        let t = Instant::now();
        let value: serde_json::Value = serde_json::from_slice(&big)?;
        parse.push(t.elapsed());
        drop(value);
    }
    verify.sort();
    parse.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    for (label, p, target) in [("p50", 0.5, "-"), ("p99", 0.99, "p99 <= 5 ms")] {
        let (v, b) = (percentile(&verify, p), percentile(&parse, p));
        row(
            &format!(
                "webhooks: verify + parse of a {} KiB push, {label}, vs serde_json::Value parse",
                big.len() >> 10
            ),
            format!("{:.2}ms", ms(v)),
            format!("{:.2}ms", ms(b)),
            ms(v) / ms(b),
            target,
        );
    }
    drop(webhooks);
    drop(server);
    Ok(())
}
