//! Container logs: the kubelet appends, `pods/log` reads and follows.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::watch;

/// Identifies one container's log: namespace, pod, container.
pub type LogKey = (String, String, String);

/// One line with the time it was appended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// RFC 3339 (nanoseconds) timestamp.
    pub timestamp: String,
    /// The line, including its trailing newline if it had one.
    pub text: String,
}

#[derive(Debug)]
struct LogBuffer {
    lines: Vec<LogLine>,
    partial: String,
    finished: bool,
    changed: watch::Sender<u64>,
}

impl LogBuffer {
    fn new() -> Self {
        LogBuffer {
            lines: Vec::new(),
            partial: String::new(),
            finished: false,
            changed: watch::channel(0).0,
        }
    }

    fn notify(&self) {
        self.changed.send_modify(|n| *n += 1);
    }
}

/// In-memory container logs shared by the kubelet (writer) and the API server (reader).
#[derive(Debug, Clone, Default)]
pub struct LogStore {
    buffers: Arc<Mutex<HashMap<LogKey, LogBuffer>>>,
}

/// A read of one container's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSnapshot {
    /// Complete lines so far (plus a final partial line once finished).
    pub lines: Vec<LogLine>,
    /// Whether the container has finished writing.
    pub finished: bool,
}

fn key(namespace: &str, pod: &str, container: &str) -> LogKey {
    (
        namespace.to_string(),
        pod.to_string(),
        container.to_string(),
    )
}

fn timestamp() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

impl LogStore {
    /// An empty log store.
    pub fn new() -> Self {
        Self::default()
    }

    fn with<R>(&self, f: impl FnOnce(&mut HashMap<LogKey, LogBuffer>) -> R) -> R {
        let mut buffers = self.buffers.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut buffers)
    }

    /// Starts (or restarts) a container's log: it exists from now on, empty and not finished.
    pub fn start(&self, namespace: &str, pod: &str, container: &str) {
        self.with(|b| {
            let buffer = b
                .entry(key(namespace, pod, container))
                .or_insert_with(LogBuffer::new);
            buffer.lines.clear();
            buffer.partial.clear();
            buffer.finished = false;
            buffer.notify();
        });
    }

    /// Appends output (split into lines; a trailing partial line is held until completed).
    pub fn append(&self, namespace: &str, pod: &str, container: &str, bytes: &[u8]) {
        let text = String::from_utf8_lossy(bytes);
        self.with(|b| {
            let buffer = b
                .entry(key(namespace, pod, container))
                .or_insert_with(LogBuffer::new);
            buffer.partial.push_str(&text);
            while let Some(end) = buffer.partial.find('\n') {
                let line: String = buffer.partial.drain(..=end).collect();
                buffer.lines.push(LogLine {
                    timestamp: timestamp(),
                    text: line,
                });
            }
            buffer.notify();
        });
    }

    /// Marks a container's log finished (followers stop after the last line).
    pub fn finish(&self, namespace: &str, pod: &str, container: &str) {
        self.with(|b| {
            let buffer = b
                .entry(key(namespace, pod, container))
                .or_insert_with(LogBuffer::new);
            if !buffer.partial.is_empty() {
                let line = std::mem::take(&mut buffer.partial);
                buffer.lines.push(LogLine {
                    timestamp: timestamp(),
                    text: line,
                });
            }
            buffer.finished = true;
            buffer.notify();
        });
    }

    /// Forgets every container log of a pod (call when the pod is removed).
    pub fn remove_pod(&self, namespace: &str, pod: &str) {
        self.with(|b| {
            b.retain(|(ns, p, _), buffer| {
                let keep = !(ns == namespace && p == pod);
                if !keep {
                    buffer.finished = true;
                    buffer.notify();
                }
                keep
            })
        });
    }

    /// Reads a container's log, or None if it never started.
    pub fn read(&self, namespace: &str, pod: &str, container: &str) -> Option<LogSnapshot> {
        self.with(|b| {
            b.get(&key(namespace, pod, container))
                .map(|buffer| LogSnapshot {
                    lines: buffer.lines.clone(),
                    finished: buffer.finished,
                })
        })
    }

    /// A receiver notified whenever the container's log changes (None if it never started).
    pub fn subscribe(
        &self,
        namespace: &str,
        pod: &str,
        container: &str,
    ) -> Option<watch::Receiver<u64>> {
        self.with(|b| {
            b.get(&key(namespace, pod, container))
                .map(|buffer| buffer.changed.subscribe())
        })
    }
}

/// Options of a `pods/log` request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogOptions {
    /// Keep streaming until the container finishes.
    pub follow: bool,
    /// Only the last N lines.
    pub tail_lines: Option<usize>,
    /// Prefix each line with its RFC 3339 timestamp.
    pub timestamps: bool,
    /// Stop after this many bytes.
    pub limit_bytes: Option<usize>,
}

/// Renders lines as the kubelet does (optionally timestamped).
pub fn render(lines: &[LogLine], timestamps: bool) -> String {
    lines
        .iter()
        .map(|l| {
            if timestamps {
                format!("{} {}", l.timestamp, l.text)
            } else {
                l.text.clone()
            }
        })
        .collect()
}

/// The lines to send first: all, or the last `tail_lines`.
pub fn initial_lines(lines: &[LogLine], tail_lines: Option<usize>) -> &[LogLine] {
    match tail_lines {
        Some(n) if n < lines.len() => &lines[lines.len() - n..],
        _ => lines,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_split_and_finished() {
        let logs = LogStore::new();
        assert!(logs.read("ns", "p", "c").is_none());
        logs.start("ns", "p", "c");
        logs.append("ns", "p", "c", b"one\ntw");
        logs.append("ns", "p", "c", b"o\nthree");
        let snapshot = logs.read("ns", "p", "c").unwrap();
        assert_eq!(render(&snapshot.lines, false), "one\ntwo\n");
        assert!(!snapshot.finished);
        logs.finish("ns", "p", "c");
        let snapshot = logs.read("ns", "p", "c").unwrap();
        assert_eq!(render(&snapshot.lines, false), "one\ntwo\nthree");
        assert!(snapshot.finished);
        logs.remove_pod("ns", "p");
        assert!(logs.read("ns", "p", "c").is_none());
    }

    #[test]
    fn tail_and_timestamps() {
        let lines: Vec<LogLine> = ["a\n", "b\n", "c\n"]
            .iter()
            .map(|t| LogLine {
                timestamp: "T".into(),
                text: t.to_string(),
            })
            .collect();
        let cases = [
            (None, "a\nb\nc\n"),
            (Some(2), "b\nc\n"),
            (Some(0), ""),
            (Some(9), "a\nb\nc\n"),
        ];
        for (tail, expected) in cases {
            assert_eq!(render(initial_lines(&lines, tail), false), expected);
        }
        assert_eq!(render(initial_lines(&lines, Some(1)), true), "T c\n");
    }

    #[tokio::test]
    async fn subscribers_are_notified() {
        let logs = LogStore::new();
        logs.start("ns", "p", "c");
        let mut changes = logs.subscribe("ns", "p", "c").unwrap();
        changes.borrow_and_update();
        logs.append("ns", "p", "c", b"x\n");
        tokio::time::timeout(std::time::Duration::from_secs(1), changes.changed())
            .await
            .unwrap()
            .unwrap();
    }
}
