//! Starting, watching and killing one container process on the host.

use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
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
use super::runc::process::RuncContainer;
use super::script::{command_line, ContainerDirs, SETUP_PATH};
use super::status::{signal_exit_code, FALLBACK_BYTES};
use super::stdin::ContainerStdin;

/// A stop request: kill the container, allowing this grace period before SIGKILL.
pub type StopSignal = watch::Receiver<Option<Duration>>;

/// Creates a container's directories and empty termination-message and started files.
pub fn prepare_dirs(dirs: &ContainerDirs) -> Result<()> {
    std::fs::create_dir_all(&dirs.ns_dir)
        .map_err(|e| Error::io(format!("creating {}", dirs.ns_dir.display()), e))?;
    for file in [&dirs.termination_file, &dirs.started_file] {
        std::fs::write(file, b"")
            .map_err(|e| Error::io(format!("creating {}", file.display()), e))?;
    }
    Ok(())
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
    /// Whether the command itself ran (false: the namespace setup failed or was stopped).
    pub started: bool,
    /// Whether the kernel's OOM killer ended it (runc runtime).
    pub oom_killed: bool,
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
    started_file: PathBuf,
    started: bool,
    killer: Killer,
    stdin: ContainerStdin,
}

/// How a container is stopped and cleaned up.
#[derive(Debug)]
pub enum Killer {
    /// A host process group: signals go to the group.
    Group,
    /// A runc container: `runc kill`, then `runc delete` and its root removed.
    Runc(RuncContainer),
}

/// Starts a container: `unshare` as a new process group, output piped to the log sink, stdin
/// wired as the container's spec says.
pub fn start(
    plan: &ContainerPlan,
    dirs: &ContainerDirs,
    hostname: &str,
    sink: Arc<dyn LogSink>,
    key: ContainerKey,
    stdin: ContainerStdin,
) -> Result<Running> {
    prepare_dirs(dirs)?;
    for m in &plan.mounts {
        if !m.source.exists() {
            // A missing subPath is created in its volume, as the kubelet does.
            std::fs::create_dir_all(&m.source)
                .map_err(|e| Error::io(format!("creating {}", m.source.display()), e))?;
        }
    }
    let argv = command_line(plan, dirs, hostname);
    let mut command = Command::new(&argv[0]);
    command.args(&argv[1..]).env_clear().env("PATH", SETUP_PATH);
    spawn(command, &plan.name, dirs, sink, key, Killer::Group, stdin)
}

/// Spawns a container's host command in its own process group, stdout and stderr piped to the
/// log sink, stdin wired by `stdin` (a pipe `pods/attach` writes to, or `/dev/null`); `killer`
/// says how it is stopped.
pub fn spawn(
    mut command: Command,
    name: &str,
    dirs: &ContainerDirs,
    sink: Arc<dyn LogSink>,
    key: ContainerKey,
    killer: Killer,
    stdin: ContainerStdin,
) -> Result<Running> {
    command
        .stdin(stdin.stdio())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    sink.start(&key);
    let mut child = command
        .spawn()
        .map_err(|e| Error::io(format!("starting container {name}"), e))?;
    let pgid = child.id().unwrap_or(0);
    stdin.offer(&mut child);
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
        started_file: dirs.started_file.clone(),
        started: false,
        killer,
        stdin,
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
    /// Waits until the namespace is set up and the container's command is being executed;
    /// returns when that was seen, or `None` if the setup failed or a stop was requested.
    pub async fn wait_started(&mut self, stop: &StopSignal) -> Option<Timestamp> {
        loop {
            let marker = std::fs::read(&self.started_file).unwrap_or_default();
            if !marker.is_empty() {
                self.started = true;
                return Some(Timestamp::now());
            }
            if stop.borrow().is_some() || !matches!(self.child.try_wait(), Ok(None)) {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Waits for the container to end, killing it if a stop is requested
    /// (SIGTERM to its process group, SIGKILL after the grace period).
    pub async fn wait(mut self, mut stop: StopSignal) -> Outcome {
        let status = loop {
            let requested = *stop.borrow_and_update();
            if let Some(grace) = requested {
                // Before the command runs there is nothing to shut down gracefully.
                let grace = if self.started { grace } else { Duration::ZERO };
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
        self.stdin.withdraw();
        for reader in self.readers.drain(..) {
            // Output of processes that outlive the container's init cannot keep us waiting.
            let _ = tokio::time::timeout(Duration::from_secs(2), reader).await;
        }
        self.sink.finish(&self.key);
        let mut oom_killed = false;
        if let Killer::Runc(container) = &self.killer {
            oom_killed = container.oom_killed();
            container.delete().await;
        }
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
            started: self.started,
            oom_killed,
        }
    }

    async fn kill(&mut self, grace: Duration) -> std::io::Result<std::process::ExitStatus> {
        if !grace.is_zero() {
            self.signal("TERM").await;
            if let Ok(status) = tokio::time::timeout(grace, self.child.wait()).await {
                return status;
            }
        }
        self.signal("KILL").await;
        if let Killer::Runc(_) = &self.killer {
            // runc exits once the container's init is gone; if it was never created, runc
            // itself is the only process.
            if let Ok(status) =
                tokio::time::timeout(Duration::from_secs(2), self.child.wait()).await
            {
                return status;
            }
            signal_group(self.pgid, "KILL").await;
        }
        self.child.wait().await
    }

    async fn signal(&self, signal: &str) {
        match &self.killer {
            Killer::Group => signal_group(self.pgid, signal).await,
            Killer::Runc(container) => container.kill(signal).await,
        }
    }
}
