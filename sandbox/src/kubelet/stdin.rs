//! A container's standard input, as every runtime of this kubelet wires it: `/dev/null` unless
//! the spec says `stdin: true`; then a pipe whose write end waits in the [`StdinHub`] for
//! `pods/attach` while the container runs (so the container's reads block until someone
//! attaches, as under a real runtime), closed after the first session with `stdinOnce`, and
//! withdrawn when the container ends.
//!
//! A runtime calls [`ContainerStdin::stdio`] for the process it spawns, [`ContainerStdin::offer`]
//! with the spawned child, and [`ContainerStdin::withdraw`] once the container ended.

use std::process::Stdio;

use k8s_openapi::api::core::v1::Container;

use super::logs::ContainerKey;
use crate::apiserver::StdinHub;

/// How one container's stdin is wired.
#[derive(Clone)]
pub struct ContainerStdin {
    hub: StdinHub,
    key: ContainerKey,
    open: bool,
    once: bool,
}

impl ContainerStdin {
    /// The wiring `container`'s spec asks for, offered through `hub` under `key`.
    pub fn new(container: &Container, hub: &StdinHub, key: &ContainerKey) -> Self {
        ContainerStdin {
            hub: hub.clone(),
            key: key.clone(),
            open: container.stdin.unwrap_or(false),
            once: container.stdin_once.unwrap_or(false),
        }
    }

    /// What the container process gets as its stdin: a pipe, or `/dev/null`.
    pub fn stdio(&self) -> Stdio {
        if self.open {
            Stdio::piped()
        } else {
            Stdio::null()
        }
    }

    /// Offers the spawned process's stdin pipe (if it has one) to `pods/attach`.
    pub fn offer(&self, child: &mut tokio::process::Child) {
        if let Some(pipe) = child.stdin.take().filter(|_| self.open) {
            let k = &self.key;
            self.hub.offer(
                &k.namespace,
                &k.pod,
                &k.container,
                Box::new(pipe),
                self.once,
            );
        }
    }

    /// The container ended: its stdin is closed and no longer attachable.
    pub fn withdraw(&self) {
        if self.open {
            let k = &self.key;
            self.hub.withdraw(&k.namespace, &k.pod, &k.container);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    fn container(stdin: bool, once: bool) -> Container {
        Container {
            name: "c".into(),
            stdin: Some(stdin),
            stdin_once: Some(once),
            ..Container::default()
        }
    }

    #[tokio::test]
    async fn a_stdin_container_reads_what_an_attach_writes_then_eof() {
        let hub = StdinHub::new();
        let key = ContainerKey::new("ns", "p", "c");
        let wiring = ContainerStdin::new(&container(true, true), &hub, &key);
        let mut child = tokio::process::Command::new("cat")
            .stdin(wiring.stdio())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        wiring.offer(&mut child);
        let mut session = hub.attach("ns", "p", "c").unwrap();
        session.writer().unwrap().write_all(b"hello").await.unwrap();
        drop(session);
        let out = child.wait_with_output().await.unwrap();
        assert_eq!(out.stdout, b"hello");
        wiring.withdraw();
        assert!(!hub.is_open("ns", "p", "c"));
    }

    #[tokio::test]
    async fn without_stdin_the_container_reads_dev_null_and_nothing_is_offered() {
        let hub = StdinHub::new();
        let key = ContainerKey::new("ns", "p", "c");
        let wiring = ContainerStdin::new(&container(false, false), &hub, &key);
        let mut child = tokio::process::Command::new("cat")
            .stdin(wiring.stdio())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        wiring.offer(&mut child);
        assert!(!hub.is_open("ns", "p", "c"));
        let out = child.wait_with_output().await.unwrap();
        assert!(out.stdout.is_empty() && out.status.success());
    }
}
