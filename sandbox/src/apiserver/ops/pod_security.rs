//! Pod Security admission (`ServerConfig::pod_security`): a Pod is checked against the Pod
//! Security Standards level of its namespace's `pod-security.kubernetes.io/enforce` label
//! (`privileged` when unlabelled, as upstream without an admission configuration; an invalid
//! value enforces `restricted`). The checks and their messages are upstream's
//! (k8s.io/pod-security-admission, the latest version) for the fields build Pods can touch:
//!
//! - baseline: host namespaces, hostPorts, privileged, procMount, sysctls, non-default
//!   capabilities, hostPath volumes, seccomp profile type;
//! - restricted, in addition: allowPrivilegeEscalation, capabilities (drop ALL, add only
//!   NET_BIND_SERVICE), volume types, runAsNonRoot, runAsUser=0, seccomp profile required.
//!
//! Not checked: AppArmor, SELinux options, Windows host process, probes' and lifecycle hooks'
//! host fields; the user-namespace relaxation of `runAsNonRoot`/`procMount` (`hostUsers: false`)
//! that newer Kubernetes versions apply. Only creates are checked (upstream also checks updates
//! that change the Pod spec, which the sandbox does not restrict anyway).

use serde_json::Value;

/// The label naming the enforced level.
pub const ENFORCE_LABEL: &str = "pod-security.kubernetes.io/enforce";
/// The label naming the enforced version (`latest` when absent).
pub const ENFORCE_VERSION_LABEL: &str = "pod-security.kubernetes.io/enforce-version";

/// A Pod Security Standards level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Everything allowed.
    Privileged,
    /// Known privilege escalations prevented.
    Baseline,
    /// Hardening best practices.
    Restricted,
}

impl Level {
    /// The level a namespace's labels enforce.
    pub fn of_namespace(namespace: &Value) -> Level {
        match namespace
            .pointer("/metadata/labels")
            .and_then(|l| l.get(ENFORCE_LABEL))
            .and_then(Value::as_str)
        {
            None | Some("privileged") => Level::Privileged,
            Some("baseline") => Level::Baseline,
            _ => Level::Restricted,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Level::Privileged => "privileged",
            Level::Baseline => "baseline",
            Level::Restricted => "restricted",
        }
    }
}

/// One failed check: upstream's reason and detail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// e.g. `privileged`.
    pub reason: &'static str,
    /// e.g. `container "build" must not set securityContext.privileged=true`.
    pub detail: String,
}

fn join_quote(items: &[String]) -> String {
    if items.is_empty() {
        return String::new();
    }
    format!("\"{}\"", items.join("\", \""))
}

fn pluralize<'a>(singular: &'a str, plural: &'a str, count: usize) -> &'a str {
    if count == 1 {
        singular
    } else {
        plural
    }
}

fn sorted_unique(mut items: Vec<String>) -> Vec<String> {
    items.sort();
    items.dedup();
    items
}

/// Init containers, containers and ephemeral containers, in upstream's visiting order.
fn containers(pod: &Value) -> Vec<&Value> {
    ["initContainers", "containers", "ephemeralContainers"]
        .iter()
        .filter_map(|f| pod.pointer(&format!("/spec/{f}")).and_then(Value::as_array))
        .flatten()
        .collect()
}

fn name_of(container: &Value) -> String {
    container
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn security(container: &Value, field: &str) -> Option<Value> {
    container
        .get("securityContext")
        .and_then(|s| s.get(field))
        .filter(|v| !v.is_null())
        .cloned()
}

fn pod_security(pod: &Value, field: &str) -> Option<Value> {
    pod.pointer("/spec/securityContext")
        .and_then(|s| s.get(field))
        .filter(|v| !v.is_null())
        .cloned()
}

fn containers_where(pod: &Value, mut bad: impl FnMut(&Value) -> bool) -> Vec<String> {
    containers(pod)
        .into_iter()
        .filter(|c| bad(c))
        .map(name_of)
        .collect()
}

fn violation(reason: &'static str, detail: String) -> Option<Violation> {
    Some(Violation { reason, detail })
}

fn host_namespaces(pod: &Value) -> Option<Violation> {
    let set: Vec<String> = ["hostIPC", "hostNetwork", "hostPID"]
        .iter()
        .filter(|f| pod.pointer(&format!("/spec/{f}")) == Some(&Value::Bool(true)))
        .map(|f| f.to_string())
        .collect();
    (!set.is_empty()).then(|| Violation {
        reason: "host namespaces",
        detail: set.join(", "),
    })
}

fn host_ports(pod: &Value) -> Option<Violation> {
    let mut ports = Vec::new();
    let bad = containers_where(pod, |c| {
        let used: Vec<i64> = c
            .get("ports")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|p| p.get("hostPort").and_then(Value::as_i64))
            .filter(|p| *p != 0)
            .collect();
        ports.extend(used.iter().map(i64::to_string));
        !used.is_empty()
    });
    if bad.is_empty() {
        return None;
    }
    let ports = sorted_unique(ports);
    violation(
        "hostPort",
        format!(
            "{} {} {} {} {}",
            pluralize("container", "containers", bad.len()),
            join_quote(&bad),
            pluralize("uses", "use", bad.len()),
            pluralize("hostPort", "hostPorts", ports.len()),
            ports.join(", ")
        ),
    )
}

fn privileged(pod: &Value) -> Option<Violation> {
    let bad = containers_where(pod, |c| {
        security(c, "privileged") == Some(Value::Bool(true))
    });
    (!bad.is_empty()).then(|| Violation {
        reason: "privileged",
        detail: format!(
            "{} {} must not set securityContext.privileged=true",
            pluralize("container", "containers", bad.len()),
            join_quote(&bad)
        ),
    })
}

fn proc_mount(pod: &Value) -> Option<Violation> {
    let mut types = Vec::new();
    let bad = containers_where(pod, |c| match security(c, "procMount") {
        Some(Value::String(t)) if t != "Default" => {
            types.push(t);
            true
        }
        _ => false,
    });
    (!bad.is_empty()).then(|| Violation {
        reason: "procMount",
        detail: format!(
            "{} {} must not set securityContext.procMount to {}",
            pluralize("container", "containers", bad.len()),
            join_quote(&bad),
            join_quote(&sorted_unique(types))
        ),
    })
}

const SAFE_SYSCTLS: &[&str] = &[
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.ping_group_range",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_rmem",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.tcp_wmem",
];

fn sysctls(pod: &Value) -> Option<Violation> {
    let forbidden: Vec<String> = pod_security(pod, "sysctls")
        .and_then(|s| s.as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|s| s.get("name").and_then(Value::as_str))
        .filter(|n| !SAFE_SYSCTLS.contains(n))
        .map(String::from)
        .collect();
    (!forbidden.is_empty()).then(|| Violation {
        reason: "forbidden sysctls",
        detail: forbidden.join(", "),
    })
}

const DEFAULT_CAPABILITIES: &[&str] = &[
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
];

fn capabilities(container: &Value, list: &str) -> Option<Vec<String>> {
    let caps = security(container, "capabilities")?;
    Some(
        caps.get(list)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(String::from)
            .collect(),
    )
}

fn capabilities_baseline(pod: &Value) -> Option<Violation> {
    let mut added = Vec::new();
    let bad = containers_where(pod, |c| {
        let extra: Vec<String> = capabilities(c, "add")
            .unwrap_or_default()
            .into_iter()
            .filter(|cap| !DEFAULT_CAPABILITIES.contains(&cap.as_str()))
            .collect();
        let bad = !extra.is_empty();
        added.extend(extra);
        bad
    });
    (!bad.is_empty()).then(|| Violation {
        reason: "non-default capabilities",
        detail: format!(
            "{} {} must not include {} in securityContext.capabilities.add",
            pluralize("container", "containers", bad.len()),
            join_quote(&bad),
            join_quote(&sorted_unique(added))
        ),
    })
}

fn volumes(pod: &Value) -> Vec<&Value> {
    pod.pointer("/spec/volumes")
        .and_then(Value::as_array)
        .map(|v| v.iter().collect())
        .unwrap_or_default()
}

fn host_path_volumes(pod: &Value) -> Option<Violation> {
    let bad: Vec<String> = volumes(pod)
        .into_iter()
        .filter(|v| v.get("hostPath").is_some_and(|h| !h.is_null()))
        .map(name_of)
        .collect();
    (!bad.is_empty()).then(|| Violation {
        reason: "hostPath volumes",
        detail: format!(
            "{} {}",
            pluralize("volume", "volumes", bad.len()),
            join_quote(&bad)
        ),
    })
}

fn valid_seccomp(profile: &Value) -> bool {
    matches!(
        profile.get("type").and_then(Value::as_str),
        Some("RuntimeDefault" | "Localhost")
    )
}

fn seccomp_type(profile: &Value) -> String {
    profile
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// The seccomp checks of both levels: explicit bad values, and (restricted) a profile required.
fn seccomp(pod: &Value, required: bool) -> Option<Violation> {
    let mut setters = Vec::new();
    let mut values = Vec::new();
    let mut pod_set = false;
    if let Some(profile) = pod_security(pod, "seccompProfile") {
        if valid_seccomp(&profile) {
            pod_set = true;
        } else {
            setters.push("pod".to_string());
            values.push(seccomp_type(&profile));
        }
    }
    let mut explicit = Vec::new();
    let mut implicit = Vec::new();
    for c in containers(pod) {
        match security(c, "seccompProfile") {
            Some(profile) if !valid_seccomp(&profile) => {
                explicit.push(name_of(c));
                values.push(seccomp_type(&profile));
            }
            Some(_) => {}
            None if !pod_set => implicit.push(name_of(c)),
            None => {}
        }
    }
    if !explicit.is_empty() {
        setters.push(format!(
            "{} {}",
            pluralize("container", "containers", explicit.len()),
            join_quote(&explicit)
        ));
    }
    if !setters.is_empty() {
        return violation(
            "seccompProfile",
            format!(
                "{} must not set securityContext.seccompProfile.type to {}",
                setters.join(" and "),
                join_quote(&sorted_unique(values))
            ),
        );
    }
    if required && !implicit.is_empty() {
        return violation(
            "seccompProfile",
            format!(
                "pod or {} {} must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\"",
                pluralize("container", "containers", implicit.len()),
                join_quote(&implicit)
            ),
        );
    }
    None
}

fn allow_privilege_escalation(pod: &Value) -> Option<Violation> {
    let bad = containers_where(pod, |c| {
        security(c, "allowPrivilegeEscalation") != Some(Value::Bool(false))
    });
    (!bad.is_empty()).then(|| Violation {
        reason: "allowPrivilegeEscalation != false",
        detail: format!(
            "{} {} must set securityContext.allowPrivilegeEscalation=false",
            pluralize("container", "containers", bad.len()),
            join_quote(&bad)
        ),
    })
}

fn capabilities_restricted(pod: &Value) -> Option<Violation> {
    let mut missing_drop = Vec::new();
    let mut adding = Vec::new();
    let mut forbidden = Vec::new();
    for c in containers(pod) {
        if security(c, "capabilities").is_none() {
            missing_drop.push(name_of(c));
            continue;
        }
        if !capabilities(c, "drop")
            .unwrap_or_default()
            .iter()
            .any(|d| d == "ALL")
        {
            missing_drop.push(name_of(c));
        }
        let extra: Vec<String> = capabilities(c, "add")
            .unwrap_or_default()
            .into_iter()
            .filter(|a| a != "NET_BIND_SERVICE")
            .collect();
        if !extra.is_empty() {
            adding.push(name_of(c));
            forbidden.extend(extra);
        }
    }
    let mut details = Vec::new();
    if !missing_drop.is_empty() {
        details.push(format!(
            "{} {} must set securityContext.capabilities.drop=[\"ALL\"]",
            pluralize("container", "containers", missing_drop.len()),
            join_quote(&missing_drop)
        ));
    }
    if !adding.is_empty() {
        details.push(format!(
            "{} {} must not include {} in securityContext.capabilities.add",
            pluralize("container", "containers", adding.len()),
            join_quote(&adding),
            join_quote(&sorted_unique(forbidden))
        ));
    }
    (!details.is_empty()).then(|| Violation {
        reason: "unrestricted capabilities",
        detail: details.join("; "),
    })
}

const ALLOWED_VOLUME_SOURCES: &[&str] = &[
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
];

fn restricted_volumes(pod: &Value) -> Option<Violation> {
    let mut bad = Vec::new();
    let mut types = Vec::new();
    for volume in volumes(pod) {
        let sources: Vec<&String> = volume
            .as_object()
            .map(|m| {
                m.iter()
                    .filter(|(k, v)| *k != "name" && !v.is_null())
                    .map(|(k, _)| k)
                    .collect()
            })
            .unwrap_or_default();
        if sources
            .iter()
            .any(|s| ALLOWED_VOLUME_SOURCES.contains(&s.as_str()))
        {
            continue;
        }
        bad.push(name_of(volume));
        types.push(
            sources
                .first()
                .map(|s| s.to_string())
                .unwrap_or_else(|| "unknown".into()),
        );
    }
    if bad.is_empty() {
        return None;
    }
    let types = sorted_unique(types);
    violation(
        "restricted volume types",
        format!(
            "{} {} {} {} {}",
            pluralize("volume", "volumes", bad.len()),
            join_quote(&bad),
            pluralize("uses", "use", bad.len()),
            pluralize(
                "restricted volume type",
                "restricted volume types",
                types.len()
            ),
            join_quote(&types)
        ),
    )
}

fn run_as_non_root(pod: &Value) -> Option<Violation> {
    let mut setters = Vec::new();
    let mut pod_non_root = false;
    match pod_security(pod, "runAsNonRoot") {
        Some(Value::Bool(false)) => setters.push("pod".to_string()),
        Some(Value::Bool(true)) => pod_non_root = true,
        _ => {}
    }
    let mut explicit = Vec::new();
    let mut implicit = Vec::new();
    for c in containers(pod) {
        match security(c, "runAsNonRoot") {
            Some(Value::Bool(false)) => explicit.push(name_of(c)),
            Some(_) => {}
            None if !pod_non_root => implicit.push(name_of(c)),
            None => {}
        }
    }
    if !explicit.is_empty() {
        setters.push(format!(
            "{} {}",
            pluralize("container", "containers", explicit.len()),
            join_quote(&explicit)
        ));
    }
    if !setters.is_empty() {
        return violation(
            "runAsNonRoot != true",
            format!(
                "{} must not set securityContext.runAsNonRoot=false",
                setters.join(" and ")
            ),
        );
    }
    if !implicit.is_empty() {
        return violation(
            "runAsNonRoot != true",
            format!(
                "pod or {} {} must set securityContext.runAsNonRoot=true",
                pluralize("container", "containers", implicit.len()),
                join_quote(&implicit)
            ),
        );
    }
    None
}

fn run_as_user(pod: &Value) -> Option<Violation> {
    let mut setters = Vec::new();
    if pod_security(pod, "runAsUser").and_then(|v| v.as_i64()) == Some(0) {
        setters.push("pod".to_string());
    }
    let bad = containers_where(pod, |c| {
        security(c, "runAsUser").and_then(|v| v.as_i64()) == Some(0)
    });
    if !bad.is_empty() {
        setters.push(format!(
            "{} {}",
            pluralize("container", "containers", bad.len()),
            join_quote(&bad)
        ));
    }
    (!setters.is_empty()).then(|| Violation {
        reason: "runAsUser=0",
        detail: format!("{} must not set runAsUser=0", setters.join(" and ")),
    })
}

/// Every violation of `level` by `pod`, in upstream's order (the baseline checks every level
/// shares, then the level's own).
pub fn evaluate(level: Level, pod: &Value) -> Vec<Violation> {
    type Check = fn(&Value) -> Option<Violation>;
    let shared: [Check; 5] = [host_namespaces, host_ports, privileged, proc_mount, sysctls];
    let baseline_only: [Check; 3] = [capabilities_baseline, host_path_volumes, |p| {
        seccomp(p, false)
    }];
    let restricted: [Check; 6] = [
        allow_privilege_escalation,
        capabilities_restricted,
        restricted_volumes,
        run_as_non_root,
        run_as_user,
        |p| seccomp(p, true),
    ];
    let own: &[Check] = match level {
        Level::Privileged => return Vec::new(),
        Level::Baseline => &baseline_only,
        Level::Restricted => &restricted,
    };
    shared
        .iter()
        .chain(own)
        .filter_map(|check| check(pod))
        .collect()
}

/// Upstream's denial text: `violates PodSecurity "baseline:latest": privileged (...), ...`, or
/// `None` when the Pod is admitted.
pub fn denial(namespace: &Value, pod: &Value) -> Option<String> {
    let level = Level::of_namespace(namespace);
    let violations = evaluate(level, pod);
    if violations.is_empty() {
        return None;
    }
    let version = namespace
        .pointer("/metadata/labels")
        .and_then(|l| l.get(ENFORCE_VERSION_LABEL))
        .and_then(Value::as_str)
        .filter(|v| {
            v.strip_prefix("v1.")
                .is_some_and(|minor| !minor.is_empty() && minor.bytes().all(|b| b.is_ascii_digit()))
        })
        .unwrap_or("latest");
    let parts: Vec<String> = violations
        .iter()
        .map(|v| {
            if v.detail.is_empty() {
                v.reason.to_string()
            } else {
                format!("{} ({})", v.reason, v.detail)
            }
        })
        .collect();
    Some(format!(
        "violates PodSecurity \"{}:{version}\": {}",
        level.name(),
        parts.join(", ")
    ))
}

#[cfg(test)]
#[path = "pod_security_tests.rs"]
mod tests;
