//! A container's security context as the kubelet and containerd read it (pure): the effective
//! settings (container over Pod), capabilities, the process user and the `runAsNonRoot` check.

use k8s_openapi::api::core::v1::{
    Capabilities, Container, Pod, PodSecurityContext, SeccompProfile, SecurityContext,
};

/// containerd's default capability set (the bounding, effective and permitted sets of an
/// unprivileged container).
pub const DEFAULT_CAPS: [&str; 14] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// Every capability the kernel defines (numbers 0 to 40), in number order.
pub const ALL_CAPS: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// The settings that decide how a container runs, container values over the Pod's.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Effective {
    /// `privileged`.
    pub privileged: bool,
    /// `allowPrivilegeEscalation: false` → `noNewPrivileges`.
    pub no_new_privileges: bool,
    /// `readOnlyRootFilesystem`.
    pub read_only_root: bool,
    /// `runAsUser`.
    pub run_as_user: Option<i64>,
    /// `runAsGroup`.
    pub run_as_group: Option<i64>,
    /// `runAsNonRoot`.
    pub run_as_non_root: bool,
    /// Pod `supplementalGroups` and `fsGroup`.
    pub supplemental_groups: Vec<i64>,
    /// `capabilities.add` / `drop`.
    pub capabilities: Option<Capabilities>,
    /// `seccompProfile`.
    pub seccomp: Option<SeccompProfile>,
    /// `procMount: Unmasked`.
    pub unmasked_proc: bool,
    /// `hostUsers: false`: a user namespace.
    pub user_namespace: bool,
}

/// Reads the effective security settings of `container` in `pod`.
pub fn effective(pod: &Pod, container: &Container) -> Effective {
    let spec = pod.spec.as_ref();
    let default_pod = PodSecurityContext::default();
    let psc = spec
        .and_then(|s| s.security_context.as_ref())
        .unwrap_or(&default_pod);
    let default_container = SecurityContext::default();
    let sc = container
        .security_context
        .as_ref()
        .unwrap_or(&default_container);
    let mut groups: Vec<i64> = psc.supplemental_groups.clone().unwrap_or_default();
    groups.extend(psc.fs_group);
    Effective {
        privileged: sc.privileged == Some(true),
        no_new_privileges: sc.allow_privilege_escalation == Some(false),
        read_only_root: sc.read_only_root_filesystem == Some(true),
        run_as_user: sc.run_as_user.or(psc.run_as_user),
        run_as_group: sc.run_as_group.or(psc.run_as_group),
        run_as_non_root: sc.run_as_non_root.or(psc.run_as_non_root) == Some(true),
        supplemental_groups: groups,
        capabilities: sc.capabilities.clone(),
        seccomp: sc.seccomp_profile.clone().or(psc.seccomp_profile.clone()),
        unmasked_proc: sc.proc_mount.as_deref() == Some("Unmasked"),
        user_namespace: spec.and_then(|s| s.host_users) == Some(false),
    }
}

fn cap_name(name: &str) -> String {
    let upper = name.to_ascii_uppercase();
    if upper.starts_with("CAP_") {
        upper
    } else {
        format!("CAP_{upper}")
    }
}

/// The capability names of a `/proc/<pid>/status` mask (`CapBnd`).
pub fn caps_from_mask(mask: u64) -> Vec<String> {
    ALL_CAPS
        .iter()
        .enumerate()
        .filter(|(bit, _)| mask & (1u64 << bit) != 0)
        .map(|(_, name)| name.to_string())
        .collect()
}

/// The `CapBnd` mask of a `/proc/<pid>/status` text.
pub fn bounding_mask(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("CapBnd:"))?;
    u64::from_str_radix(line.trim_start_matches("CapBnd:").trim(), 16).ok()
}

/// The capability set as containerd computes it: when privileged (or for `add: [ALL]`) the
/// runtime's own capabilities `current`, else the default set, with `ALL` in `add`/`drop`
/// applied first and then the single names.
pub fn capabilities(
    privileged: bool,
    requested: Option<&Capabilities>,
    current: &[String],
) -> Vec<String> {
    let all = || current.to_vec();
    if privileged {
        return all();
    }
    let mut caps: Vec<String> = DEFAULT_CAPS.iter().map(|c| c.to_string()).collect();
    let add = requested.and_then(|c| c.add.clone()).unwrap_or_default();
    let drop = requested.and_then(|c| c.drop.clone()).unwrap_or_default();
    let is_all = |c: &String| c.eq_ignore_ascii_case("ALL");
    if add.iter().any(is_all) {
        caps = all();
    }
    if drop.iter().any(is_all) {
        caps.clear();
    }
    for c in add.iter().filter(|c| !is_all(c)) {
        let name = cap_name(c);
        if !caps.contains(&name) {
            caps.push(name);
        }
    }
    for c in drop.iter().filter(|c| !is_all(c)) {
        let name = cap_name(c);
        caps.retain(|x| *x != name);
    }
    caps
}

/// The process identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// User id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
    /// Supplementary groups.
    pub additional_gids: Vec<u32>,
}

/// A line of `/etc/passwd`: (name, uid, gid).
fn passwd_entries(passwd: &str) -> impl Iterator<Item = (&str, u32, u32)> {
    passwd.lines().filter_map(|line| {
        let mut f = line.split(':');
        let name = f.next()?;
        let _password = f.next()?;
        let uid = f.next()?.parse().ok()?;
        let gid = f.next()?.parse().ok()?;
        Some((name, uid, gid))
    })
}

/// A line of `/etc/group`: (name, gid, members).
fn group_entries(group: &str) -> impl Iterator<Item = (&str, u32, Vec<&str>)> {
    group.lines().filter_map(|line| {
        let mut f = line.split(':');
        let name = f.next()?;
        let _password = f.next()?;
        let gid = f.next()?.parse().ok()?;
        let members = f
            .next()
            .unwrap_or("")
            .split(',')
            .filter(|m| !m.is_empty())
            .collect();
        Some((name, gid, members))
    })
}

fn id(value: i64, what: &str) -> Result<u32, String> {
    u32::try_from(value).map_err(|_| format!("{what} {value} is out of range"))
}

/// The process user: `runAsUser`/`runAsGroup` over the image's `User` (`name`, `uid`,
/// `uid:gid`, `name:group`), names and the primary group looked up in the image's
/// `/etc/passwd` and `/etc/group`, supplementary groups from `/etc/group` membership plus the
/// Pod's `supplementalGroups` and `fsGroup`.
pub fn resolve_user(
    settings: &Effective,
    image_user: &str,
    passwd: &str,
    group: &str,
) -> Result<User, String> {
    let (user_part, group_part) = match image_user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (image_user, None),
    };
    let (uid, name) = match settings.run_as_user {
        Some(uid) => {
            let uid = id(uid, "runAsUser")?;
            let name = passwd_entries(passwd).find(|e| e.1 == uid).map(|e| e.0);
            (uid, name)
        }
        None if user_part.is_empty() => (0, passwd_entries(passwd).find(|e| e.1 == 0).map(|e| e.0)),
        None => {
            match user_part.parse::<u32>() {
                Ok(uid) => (
                    uid,
                    passwd_entries(passwd).find(|e| e.1 == uid).map(|e| e.0),
                ),
                Err(_) => {
                    let entry = passwd_entries(passwd)
                    .find(|e| e.0 == user_part)
                    .ok_or_else(|| format!("unable to find user {user_part}: no matching entries in passwd file"))?;
                    (entry.1, Some(entry.0))
                }
            }
        }
    };
    let primary = name
        .and_then(|n| passwd_entries(passwd).find(|e| e.0 == n))
        .map_or(0, |e| e.2);
    let gid = match (
        settings.run_as_group,
        group_part.filter(|_| settings.run_as_user.is_none()),
    ) {
        (Some(gid), _) => id(gid, "runAsGroup")?,
        (None, Some(g)) if !g.is_empty() => match g.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => group_entries(group)
                .find(|e| e.0 == g)
                .map(|e| e.1)
                .ok_or_else(|| {
                    format!("unable to find group {g}: no matching entries in group file")
                })?,
        },
        _ => primary,
    };
    let mut additional: Vec<u32> = Vec::new();
    if let Some(n) = name {
        additional.extend(
            group_entries(group)
                .filter(|e| e.2.contains(&n))
                .map(|e| e.1),
        );
    }
    for g in &settings.supplemental_groups {
        additional.push(id(*g, "supplemental group")?);
    }
    additional.retain(|g| *g != gid);
    additional.sort_unstable();
    additional.dedup();
    Ok(User {
        uid,
        gid,
        additional_gids: additional,
    })
}

/// The kubelet's `runAsNonRoot` check, with its messages (the container is then
/// `CreateContainerConfigError`). `pod` is `name_namespace(uid)`.
pub fn verify_non_root(
    settings: &Effective,
    image_user: &str,
    pod: &str,
    container: &str,
) -> Result<(), String> {
    if !settings.run_as_non_root {
        return Ok(());
    }
    if let Some(uid) = settings.run_as_user {
        if uid == 0 {
            return Err(format!(
                "container's runAsUser breaks non-root policy (pod: {pod:?}, container: {container})"
            ));
        }
        return Ok(());
    }
    let user = image_user.split(':').next().unwrap_or("");
    match user.parse::<i64>() {
        Ok(0) => Err(format!(
            "container has runAsNonRoot and image will run as root (pod: {pod:?}, container: {container})"
        )),
        Ok(_) => Ok(()),
        Err(_) if user.is_empty() => Err(format!(
            "container has runAsNonRoot and image will run as root (pod: {pod:?}, container: {container})"
        )),
        Err(_) => Err(format!(
            "container has runAsNonRoot and image has non-numeric user ({user}), cannot verify user is non-root (pod: {pod:?}, container: {container})"
        )),
    }
}

#[cfg(test)]
#[path = "security_tests.rs"]
mod tests;
