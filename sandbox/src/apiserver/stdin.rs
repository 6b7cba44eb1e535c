//! Containers' standard input for `pods/attach`: the kubelet offers the write end of each
//! `stdin: true` container's pipe here while the container runs, and an attach session takes it.
//!
//! As with a container runtime: the pipe stays open while nobody is attached (the container's
//! reads block), one session at a time writes to it, and with `stdinOnce` the end of the first
//! session closes it (the container reads end-of-file). When the container ends its stdin is
//! withdrawn; a session still writing then sees a broken pipe.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::io::AsyncWrite;

/// The write end of a container's stdin pipe.
pub type StdinWriter = Box<dyn AsyncWrite + Send + Unpin>;

type Key = (String, String, String);

struct Slot {
    /// None while a session holds it, or after a `stdinOnce` session closed it.
    writer: Option<StdinWriter>,
    once: bool,
    closed: bool,
    /// Tells a container's restart (a new pipe under the same name) from the one a session took.
    generation: u64,
}

/// Why a container's stdin cannot be attached to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AttachError {
    /// The container is not running (not started yet, or ended), or has no stdin.
    #[error("container {0:?} is not running or was not started with stdin")]
    NotRunning(String),
    /// Another session is writing to the container's stdin.
    #[error("another session is attached to the stdin of container {0:?}")]
    InUse(String),
    /// The container has `stdinOnce` and its first session ended: its stdin is closed.
    #[error("the stdin of container {0:?} was closed when its first attach ended (stdinOnce)")]
    Closed(String),
}

/// Where running containers' stdin pipes wait for `pods/attach`. Cheap to clone.
#[derive(Clone, Default)]
pub struct StdinHub {
    slots: Arc<Mutex<HashMap<Key, Slot>>>,
    generations: Arc<std::sync::atomic::AtomicU64>,
}

fn key(namespace: &str, pod: &str, container: &str) -> Key {
    (namespace.into(), pod.into(), container.into())
}

impl StdinHub {
    /// An empty hub.
    pub fn new() -> Self {
        Self::default()
    }

    fn slots(&self) -> MutexGuard<'_, HashMap<Key, Slot>> {
        self.slots.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Offers a started container's stdin (`once`: the container has `stdinOnce`).
    pub fn offer(
        &self,
        namespace: &str,
        pod: &str,
        container: &str,
        writer: StdinWriter,
        once: bool,
    ) {
        let generation = self
            .generations
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.slots().insert(
            key(namespace, pod, container),
            Slot {
                writer: Some(writer),
                once,
                closed: false,
                generation,
            },
        );
    }

    /// Withdraws an ended container's stdin, closing the pipe.
    pub fn withdraw(&self, namespace: &str, pod: &str, container: &str) {
        self.slots().remove(&key(namespace, pod, container));
    }

    /// Whether the container's stdin is offered and open (a session may hold it).
    pub fn is_open(&self, namespace: &str, pod: &str, container: &str) -> bool {
        self.slots()
            .get(&key(namespace, pod, container))
            .is_some_and(|s| !s.closed)
    }

    /// Takes a container's stdin for one attach session.
    pub fn attach(
        &self,
        namespace: &str,
        pod: &str,
        container: &str,
    ) -> Result<StdinSession, AttachError> {
        let k = key(namespace, pod, container);
        let mut slots = self.slots();
        let Some(slot) = slots.get_mut(&k) else {
            return Err(AttachError::NotRunning(container.into()));
        };
        if slot.closed {
            return Err(AttachError::Closed(container.into()));
        }
        let Some(writer) = slot.writer.take() else {
            return Err(AttachError::InUse(container.into()));
        };
        if slot.once {
            // Whatever happens to the session now, the stream ends with it.
            slot.closed = true;
        }
        Ok(StdinSession {
            hub: self.clone(),
            key: k,
            generation: slot.generation,
            once: slot.once,
            writer: Some(writer),
        })
    }
}

/// One attach session's hold on a container's stdin. Dropping it ends the session: with
/// `stdinOnce` the pipe is closed, otherwise it goes back to the hub for the next session.
pub struct StdinSession {
    hub: StdinHub,
    key: Key,
    generation: u64,
    once: bool,
    writer: Option<StdinWriter>,
}

impl StdinSession {
    /// The pipe to write the client's stdin into.
    pub fn writer(&mut self) -> Option<&mut StdinWriter> {
        self.writer.as_mut()
    }

    /// Whether the container this session writes to has ended (its stdin was withdrawn).
    pub fn container_ended(&self) -> bool {
        self.hub
            .slots()
            .get(&self.key)
            .is_none_or(|s| s.generation != self.generation)
    }

    /// Ends the session's stdin: closes the pipe now, whatever `stdinOnce` says (the client
    /// signalled end-of-file).
    pub fn close(&mut self) {
        self.writer = None;
        let mut slots = self.hub.slots();
        if let Some(slot) = slots.get_mut(&self.key) {
            if slot.generation == self.generation {
                slot.closed = true;
            }
        }
    }
}

impl Drop for StdinSession {
    fn drop(&mut self) {
        let Some(writer) = self.writer.take() else {
            return;
        };
        if self.once {
            return; // dropped: the container reads end-of-file
        }
        let mut slots = self.hub.slots();
        if let Some(slot) = slots.get_mut(&self.key) {
            if slot.generation == self.generation && !slot.closed {
                slot.writer = Some(writer);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn pipe() -> (StdinWriter, tokio::io::DuplexStream) {
        let (a, b) = tokio::io::duplex(64);
        (Box::new(a), b)
    }

    #[tokio::test]
    async fn stdin_once_closes_after_the_first_session() {
        let hub = StdinHub::new();
        assert_eq!(
            hub.attach("ns", "p", "c").err(),
            Some(AttachError::NotRunning("c".into()))
        );
        let (writer, mut reader) = pipe();
        hub.offer("ns", "p", "c", writer, true);
        let mut session = hub.attach("ns", "p", "c").unwrap();
        assert_eq!(
            hub.attach("ns", "p", "c").err(),
            Some(AttachError::Closed("c".into()))
        );
        session.writer().unwrap().write_all(b"data").await.unwrap();
        drop(session);
        let mut got = Vec::new();
        reader.read_to_end(&mut got).await.unwrap();
        assert_eq!(
            got, b"data",
            "the container reads the data, then end-of-file"
        );
    }

    #[tokio::test]
    async fn without_stdin_once_sessions_take_turns_on_one_pipe() {
        let hub = StdinHub::new();
        let (writer, mut reader) = pipe();
        hub.offer("ns", "p", "c", writer, false);
        let mut first = hub.attach("ns", "p", "c").unwrap();
        assert_eq!(
            hub.attach("ns", "p", "c").err(),
            Some(AttachError::InUse("c".into()))
        );
        first.writer().unwrap().write_all(b"a").await.unwrap();
        drop(first);
        let mut second = hub.attach("ns", "p", "c").unwrap();
        second.writer().unwrap().write_all(b"b").await.unwrap();
        second.close();
        drop(second);
        assert!(!hub.is_open("ns", "p", "c"));
        let mut got = Vec::new();
        reader.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"ab");
    }

    #[tokio::test]
    async fn a_restarted_container_keeps_its_new_pipe() {
        let hub = StdinHub::new();
        let (old, _old_reader) = pipe();
        hub.offer("ns", "p", "c", old, false);
        let session = hub.attach("ns", "p", "c").unwrap();
        hub.withdraw("ns", "p", "c");
        let (new, mut new_reader) = pipe();
        hub.offer("ns", "p", "c", new, false);
        drop(session);
        // The old session's writer did not replace the new container's.
        let mut next = hub.attach("ns", "p", "c").unwrap();
        next.writer().unwrap().write_all(b"x").await.unwrap();
        let mut byte = [0u8; 1];
        new_reader.read_exact(&mut byte).await.unwrap();
        assert_eq!(&byte, b"x");
    }
}
