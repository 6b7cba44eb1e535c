//! The kubelet's runc runtime with the real runc, a real `docker-registry` on 127.0.0.1 and
//! images built locally with buildah (`scripts/make-base-images.sh --busybox`): runtime fidelity
//! checked from inside containers (`fidelity`) — capabilities, the user namespace's id map, a
//! read-only root, seccomp refusing `unshare` under `RuntimeDefault`, the termination message;
//! images (`images`) — entrypoint, env, user and working directory, `runAsNonRoot`, pull errors
//! and pull secrets, volumes, one unpacked image shared by Pods whose writes stay apart; and
//! life cycle (`lifecycle`) — deletion leaving no container or mount behind, `kiln-sandbox serve
//! --runtime runc` driven by kubectl. Runs as root (runc, mounts).

#[path = "../kubelet_support/mod.rs"]
mod kubelet_support;
mod support;

mod claims;
mod fidelity;
mod images;
mod lifecycle;
