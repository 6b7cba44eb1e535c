//! The processes under test: `kiln-sandbox serve --kubelet --instant` and `kiln controller`,
//! plus tiny HTTP/1.1 GETs and `/proc` readings.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

/// Boxed error of the bench driver.
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The instant kubelet's termination message: a builder report with a digest unique per Pod.
pub(crate) const INSTANT_MESSAGE: &str = r#"{"imageDigest":"{{uid-digest}}"}"#;

/// Starts the sandbox API server with its kubelet in instant mode; returns it and its address.
pub(crate) async fn start_sandbox(
    bin: &Path,
    crds: &Path,
    kubeconfig: &Path,
    log: &Path,
) -> Result<(Child, String), BoxError> {
    let mut child = Command::new(bin)
        .args(["serve", "--listen", "127.0.0.1:0", "--kubeconfig"])
        .arg(kubeconfig)
        .arg("--preload")
        .arg(crds)
        .args(["--kubelet", "--instant", INSTANT_MESSAGE])
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log)?)
        .kill_on_drop(true)
        .spawn()?;
    let stdout = child.stdout.take().ok_or("no sandbox stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let first = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await??
        .ok_or("the sandbox exited before listening")?;
    let addr = first
        .strip_prefix("listening on http://")
        .ok_or_else(|| format!("unexpected first line: {first}"))?
        .to_string();
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok((child, addr))
}

/// Starts `kiln controller` against the kubeconfig, serving its HTTP endpoints on `listen`.
pub(crate) fn start_controller(
    bin: &Path,
    kubeconfig: &Path,
    listen: &str,
    log: &Path,
) -> Result<Child, BoxError> {
    let mut command = Command::new(bin);
    command
        .args(["controller", "--listen", listen])
        .args(["--registry", "registry.bench.invalid:5000"]);
    // The instant kubelet reports made-up digests and no registry serves them: asking it to
    // confirm each would measure connect timeouts, not the controller. (A kiln from before
    // digest confirmation has no such flag, and refuses flags it does not know.)
    if has_flag(bin, "--confirm-digests") {
        command.args(["--confirm-digests", "false"]);
    }
    Ok(command
        .env("KUBECONFIG", kubeconfig)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log)?)
        .kill_on_drop(true)
        .spawn()?)
}

/// Whether `kiln controller --help` of `bin` lists `flag`.
fn has_flag(bin: &Path, flag: &str) -> bool {
    std::process::Command::new(bin)
        .args(["controller", "--help"])
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).contains(flag))
}

/// A free port on 127.0.0.1 (bound and released).
pub(crate) fn free_port() -> Result<u16, BoxError> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// `GET http://<addr><path>` → (status code, body).
pub(crate) async fn http(method: &str, addr: &str, path: &str) -> Result<(u16, String), BoxError> {
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: kiln-bench-driver\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await?;
    let text = String::from_utf8_lossy(&response).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_string()
    };
    Ok((code, body))
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if size == 0 || rest.len() < size {
            break;
        }
        out.push_str(&rest[..size]);
        body = rest[size..].trim_start_matches("\r\n");
    }
    out
}

/// Waits until `GET <path>` answers 200.
pub(crate) async fn wait_ok(addr: &str, path: &str, limit: Duration) -> Result<(), BoxError> {
    let start = Instant::now();
    loop {
        if let Ok((200, _)) = http("GET", addr, path).await {
            return Ok(());
        }
        if start.elapsed() > limit {
            return Err(format!("http://{addr}{path} not ready after {limit:?}").into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A `/proc/<pid>/status` field in MiB (`VmRSS`, `VmHWM`).
pub(crate) fn proc_mib(pid: u32, field: &str) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
}

/// CPU seconds (user + system) a process has used, from `/proc/<pid>/stat`.
pub(crate) fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}
