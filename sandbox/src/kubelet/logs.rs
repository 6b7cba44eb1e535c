//! Where container output goes: the [`LogSink`] the API server's log store implements.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// Identifies one container of one Pod.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ContainerKey {
    /// The Pod's namespace.
    pub namespace: String,
    /// The Pod's name.
    pub pod: String,
    /// The container's name (init or regular).
    pub container: String,
}

impl ContainerKey {
    /// Builds a key from its parts.
    pub fn new(namespace: &str, pod: &str, container: &str) -> Self {
        ContainerKey {
            namespace: namespace.to_string(),
            pod: pod.to_string(),
            container: container.to_string(),
        }
    }
}

/// Receives container output; `pods/log` serves what was appended.
pub trait LogSink: Send + Sync + 'static {
    /// A container (re)starts: forget any earlier output of that container.
    fn start(&self, key: &ContainerKey);
    /// Appends bytes written by the container to stdout or stderr.
    fn append(&self, key: &ContainerKey, bytes: &[u8]);
    /// The container exited: followers (`logs -f`) may end their stream.
    fn finish(&self, key: &ContainerKey);
    /// The Pod is gone: drop every container's log of it.
    fn remove_pod(&self, namespace: &str, pod: &str);
}

/// One container's captured log in a [`MemoryLogSink`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CapturedLog {
    /// Everything appended since the last start.
    pub bytes: Vec<u8>,
    /// Whether the container finished.
    pub finished: bool,
}

/// A simple in-memory sink, for tests and for running the kubelet without a log store.
#[derive(Debug, Clone, Default)]
pub struct MemoryLogSink {
    logs: Arc<Mutex<BTreeMap<ContainerKey, CapturedLog>>>,
}

impl MemoryLogSink {
    /// An empty sink.
    pub fn new() -> Self {
        Self::default()
    }

    /// The captured log of one container, if any.
    pub fn get(&self, key: &ContainerKey) -> Option<CapturedLog> {
        self.logs.lock().ok()?.get(key).cloned()
    }

    /// How many containers have a log.
    pub fn len(&self) -> usize {
        self.logs.lock().map(|l| l.len()).unwrap_or(0)
    }

    /// Whether no container has a log.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn with(&self, f: impl FnOnce(&mut BTreeMap<ContainerKey, CapturedLog>)) {
        if let Ok(mut logs) = self.logs.lock() {
            f(&mut logs);
        }
    }
}

impl LogSink for MemoryLogSink {
    fn start(&self, key: &ContainerKey) {
        self.with(|logs| {
            logs.insert(key.clone(), CapturedLog::default());
        });
    }

    fn append(&self, key: &ContainerKey, bytes: &[u8]) {
        self.with(|logs| {
            logs.entry(key.clone())
                .or_default()
                .bytes
                .extend_from_slice(bytes)
        });
    }

    fn finish(&self, key: &ContainerKey) {
        self.with(|logs| logs.entry(key.clone()).or_default().finished = true);
    }

    fn remove_pod(&self, namespace: &str, pod: &str) {
        self.with(|logs| logs.retain(|k, _| !(k.namespace == namespace && k.pod == pod)));
    }
}

/// Keeps the last bytes of a container's output, for `FallbackToLogsOnError`.
#[derive(Debug, Clone)]
pub struct TailBuffer {
    capacity: usize,
    bytes: Vec<u8>,
}

impl TailBuffer {
    /// A buffer keeping at most `capacity` bytes.
    pub fn new(capacity: usize) -> Self {
        TailBuffer {
            capacity,
            bytes: Vec::new(),
        }
    }

    /// Appends output, dropping the oldest bytes past the capacity.
    pub fn push(&mut self, data: &[u8]) {
        self.bytes.extend_from_slice(data);
        if self.bytes.len() > self.capacity {
            let excess = self.bytes.len() - self.capacity;
            self.bytes.drain(..excess);
        }
    }

    /// The kept bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }
}

/// The last `max_lines` lines of `log`, at most `max_bytes` bytes (what kubelet reads for
/// `FallbackToLogsOnError`: 80 lines, 2048 bytes).
pub fn tail(log: &[u8], max_lines: usize, max_bytes: usize) -> &[u8] {
    let body = log.strip_suffix(b"\n").unwrap_or(log);
    let mut start = 0;
    let mut seen = 0;
    for (i, b) in body.iter().enumerate().rev() {
        if *b == b'\n' {
            seen += 1;
            if seen == max_lines {
                start = i + 1;
                break;
            }
        }
    }
    let start = start.max(log.len().saturating_sub(max_bytes));
    &log[start..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tails() {
        let cases: [(&[u8], usize, usize, &[u8]); 7] = [
            (b"", 80, 2048, b""),
            (b"a\nb\nc\n", 80, 2048, b"a\nb\nc\n"),
            (b"a\nb\nc\n", 2, 2048, b"b\nc\n"),
            (b"a\nb\nc", 2, 2048, b"b\nc"),
            (b"a\nb\nc\n", 1, 2048, b"c\n"),
            (b"aaaa\nbbbb\n", 80, 3, b"bb\n"),
            (b"no newline", 1, 2048, b"no newline"),
        ];
        for (log, lines, bytes, want) in cases {
            assert_eq!(
                tail(log, lines, bytes),
                want,
                "{:?} {lines} {bytes}",
                String::from_utf8_lossy(log)
            );
        }
    }

    #[test]
    fn tail_buffer_keeps_last_bytes() {
        let mut buf = TailBuffer::new(4);
        buf.push(b"ab");
        assert_eq!(buf.bytes(), b"ab");
        buf.push(b"cdef");
        assert_eq!(buf.bytes(), b"cdef");
        buf.push(b"g");
        assert_eq!(buf.bytes(), b"defg");
    }

    #[test]
    fn memory_sink_restarts_and_removes() {
        let sink = MemoryLogSink::new();
        let a = ContainerKey::new("ns", "p", "a");
        let b = ContainerKey::new("ns", "q", "a");
        sink.start(&a);
        sink.append(&a, b"one");
        sink.append(&b, b"other");
        sink.finish(&a);
        assert_eq!(
            sink.get(&a),
            Some(CapturedLog {
                bytes: b"one".to_vec(),
                finished: true
            })
        );
        sink.start(&a);
        assert_eq!(sink.get(&a), Some(CapturedLog::default()));
        sink.remove_pod("ns", "p");
        assert_eq!(sink.get(&a), None);
        assert_eq!(sink.len(), 1);
    }
}
