//! Starting, watching and killing one container process on the host.

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::{Child, Command};
use tokio::sync::watch;

use super::error::{Error, Result};
use super::logs::{ContainerKey, LogSink, TailBuffer};
use super::plan::ContainerPlan;
use super::script::{command_line, SETUP_PATH};
use super::status::{signal_exit_code, FALLBACK_BYTES};

/// A stop request: kill the container, allowing this grace period before SIGKILL.
pub type StopSignal = watch::Receiver<Option<Duration>>;

/// Host directories of one container.
#[derive(Debug, Clone)]
pub struct ContainerDirs {
    /// Mount point of the container's private tmpfs (only mounted inside its namespace).
    pub ns_dir: PathBuf,
    /// Host file bound at the container's `terminationMessagePath`.
    pub termination_file: PathBuf,
}

impl ContainerDirs {
    /// The directories of container `name` under a Pod directory.
    pub fn new(pod_dir: &Path, kind: &str, name: &str) -> Self {
        let base = pod_dir.join("containers").join(format!("{kind}-{name}"));
        ContainerDirs {
            ns_dir: base.join("ns"),
            termination_file: base.join("termination-log"),
        }
    }

    /// Creates the directories and an empty termination-message file.
    pub fn prepare(&self) -> Result<()> {
        std::fs::create_dir_all(&self.ns_dir)
            .map_err(|e| Error::io(format!("creating {}", self.ns_dir.display()), e))?;
        std::fs::write(&self.termination_file, b"").map_err(|e| {
            let path = self.termination_file.display();
            Error::io(format!("creating {path}"), e)
        })
    }
}

/// How a container run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Exit code (128 + signal when killed).
    pub exit_code: i32,
    /// The killing signal, if any.
    pub signal: Option<i32>,
    /// When the process ended.
    pub finished_at: Timestamp,
    /// The termination-message file's content.
    pub termination_file: Vec<u8>,
    /// The last bytes of output.
    pub log_tail: Vec<u8>,
}

/// A started container.
pub struct Running {
    child: Child,
    pgid: u32,
    readers: Vec<tokio::task::JoinHandle<()>>,
    tail: Arc<Mutex<TailBuffer>>,
    sink: Arc<dyn LogSink>,
    key: ContainerKey,
    termination_file: PathBuf,
    /// When the process was started.
    pub started_at: Timestamp,
}

/// Starts a container: `unshare` as a new process group, output piped to the log sink.
pub fn start(
    plan: &ContainerPlan,
    dirs: &ContainerDirs,
    hostname: &str,
    sink: Arc<dyn LogSink>,
    key: ContainerKey,
) -> Result<Running> {
    dirs.prepare()?;
    for m in &plan.mounts {
        if !m.source.exists() {
            // A missing subPath is created in its volume, as the kubelet does.
            std::fs::create_dir_all(&m.source)
                .map_err(|e| Error::io(format!("creating {}", m.source.display()), e))?;
        }
    }
    let argv = command_line(plan, &dirs.ns_dir, &dirs.termination_file, hostname);
    let mut command = Command::new(&argv[0]);
    command
        .args(&argv[1..])
        .env_clear()
        .env("PATH", SETUP_PATH)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    sink.start(&key);
    let mut child = command
        .spawn()
        .map_err(|e| Error::io(format!("starting container {}", plan.name), e))?;
    let started_at = Timestamp::now();
    let pgid = child.id().unwrap_or(0);
    let tail = Arc::new(Mutex::new(TailBuffer::new(FALLBACK_BYTES * 2)));
    let mut readers = Vec::new();
    if let Some(out) = child.stdout.take() {
        readers.push(pump(out, sink.clone(), key.clone(), tail.clone()));
    }
    if let Some(err) = child.stderr.take() {
        readers.push(pump(err, sink.clone(), key.clone(), tail.clone()));
    }
    Ok(Running {
        child,
        pgid,
        readers,
        tail,
        sink,
        key,
        termination_file: dirs.termination_file.clone(),
        started_at,
    })
}

fn pump(
    mut pipe: impl AsyncRead + Unpin + Send + 'static,
    sink: Arc<dyn LogSink>,
    key: ContainerKey,
    tail: Arc<Mutex<TailBuffer>>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            match pipe.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    sink.append(&key, &buf[..n]);
                    tail.lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push(&buf[..n]);
                }
            }
        }
    })
}

/// Sends a signal to a whole process group through `kill(1)`.
pub async fn signal_group(pgid: u32, signal: &str) {
    if pgid == 0 {
        return;
    }
    let status = Command::new("kill")
        .args(["-s", signal, "--", &format!("-{pgid}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await;
    if let Err(e) = status {
        tracing::warn!(pgid, signal, error = %e, "kill failed");
    }
}

impl Running {
    /// Waits for the container to end, killing it if a stop is requested
    /// (SIGTERM to its process group, SIGKILL after the grace period).
    pub async fn wait(mut self, mut stop: StopSignal) -> Outcome {
        let status = loop {
            let requested = *stop.borrow_and_update();
            if let Some(grace) = requested {
                break self.kill(grace).await;
            }
            tokio::select! {
                status = self.child.wait() => break status,
                changed = stop.changed() => {
                    if changed.is_err() {
                        // The owner is gone: stop promptly.
                        break self.kill(Duration::ZERO).await;
                    }
                }
            }
        };
        for reader in self.readers.drain(..) {
            // Output of processes that outlive the container's init cannot keep us waiting.
            let _ = tokio::time::timeout(Duration::from_secs(2), reader).await;
        }
        self.sink.finish(&self.key);
        let (exit_code, signal) = match &status {
            Ok(s) => match (s.code(), s.signal()) {
                (Some(code), _) => (code, None),
                (None, Some(sig)) => (signal_exit_code(sig), Some(sig)),
                (None, None) => (-1, None),
            },
            Err(_) => (-1, None),
        };
        let termination_file = std::fs::read(&self.termination_file).unwrap_or_default();
        let log_tail = self
            .tail
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .bytes()
            .to_vec();
        Outcome {
            exit_code,
            signal,
            finished_at: Timestamp::now(),
            termination_file,
            log_tail,
        }
    }

    async fn kill(&mut self, grace: Duration) -> std::io::Result<std::process::ExitStatus> {
        if !grace.is_zero() {
            signal_group(self.pgid, "TERM").await;
            if let Ok(status) = tokio::time::timeout(grace, self.child.wait()).await {
                return status;
            }
        }
        signal_group(self.pgid, "KILL").await;
        self.child.wait().await
    }
}
