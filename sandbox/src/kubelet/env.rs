//! Container environment: `env`, `envFrom`, `valueFrom` and `$(VAR)` expansion (pure).

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{Container, EnvVar, Pod, Volume};

use super::error::{Error, Result};

/// Key → value data of one Secret or ConfigMap (ConfigMap `binaryData` included).
pub type ObjectData = BTreeMap<String, Vec<u8>>;

/// The Secrets and ConfigMaps of the Pod's namespace that exist, by name, and the
/// ServiceAccount tokens requested for its projected volumes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Objects {
    /// Existing Secrets.
    pub secrets: BTreeMap<String, ObjectData>,
    /// Existing ConfigMaps.
    pub config_maps: BTreeMap<String, ObjectData>,
    /// Tokens of `serviceAccountToken` projections, by (volume name, path).
    pub tokens: BTreeMap<(String, String), String>,
    /// The volume directories of the bound PersistentVolumeClaims, by claim name.
    pub claims: BTreeMap<String, std::path::PathBuf>,
}

/// Names of the Secrets and ConfigMaps a Pod refers to (env, envFrom, volumes).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct References {
    /// Secret names.
    pub secrets: BTreeSet<String>,
    /// ConfigMap names.
    pub config_maps: BTreeSet<String>,
}

/// Collects every Secret and ConfigMap a Pod refers to.
pub fn references(pod: &Pod) -> References {
    let mut refs = References::default();
    let Some(spec) = &pod.spec else {
        return refs;
    };
    let containers = spec
        .init_containers
        .iter()
        .flatten()
        .chain(&spec.containers);
    for c in containers {
        for from in c.env_from.iter().flatten() {
            if let Some(s) = &from.secret_ref {
                refs.secrets.insert(s.name.clone());
            }
            if let Some(m) = &from.config_map_ref {
                refs.config_maps.insert(m.name.clone());
            }
        }
        for var in c.env.iter().flatten() {
            let Some(from) = &var.value_from else {
                continue;
            };
            if let Some(s) = &from.secret_key_ref {
                refs.secrets.insert(s.name.clone());
            }
            if let Some(m) = &from.config_map_key_ref {
                refs.config_maps.insert(m.name.clone());
            }
        }
    }
    for v in spec.volumes.iter().flatten() {
        volume_references(v, &mut refs);
    }
    refs
}

fn volume_references(v: &Volume, refs: &mut References) {
    if let Some(name) = v.secret.as_ref().and_then(|s| s.secret_name.clone()) {
        refs.secrets.insert(name);
    }
    if let Some(m) = &v.config_map {
        refs.config_maps.insert(m.name.clone());
    }
    for source in v.projected.iter().flat_map(|p| p.sources.iter().flatten()) {
        if let Some(s) = &source.secret {
            refs.secrets.insert(s.name.clone());
        }
        if let Some(m) = &source.config_map {
            refs.config_maps.insert(m.name.clone());
        }
    }
}

/// Looks up one key of a Secret or ConfigMap, with the kubelet's error messages.
pub fn lookup_key(
    data: &BTreeMap<String, ObjectData>,
    kind: &str,
    namespace: &str,
    name: &str,
    key: &str,
    optional: bool,
) -> Result<Option<Vec<u8>>> {
    match data.get(name) {
        None if optional => Ok(None),
        None => Err(Error::Config(format!(
            "{} \"{name}\" not found",
            kind.to_ascii_lowercase()
        ))),
        Some(values) => match values.get(key) {
            Some(v) => Ok(Some(v.clone())),
            None if optional => Ok(None),
            None => Err(Error::Config(format!(
                "couldn't find key {key} in {kind} {namespace}/{name}"
            ))),
        },
    }
}

/// The value of a downward-API `fieldRef` path for this Pod.
pub fn field_value(pod: &Pod, path: &str) -> Result<String> {
    let meta = &pod.metadata;
    let spec = pod.spec.as_ref();
    let from_map = |map: &Option<BTreeMap<String, String>>, key: &str| {
        map.as_ref()
            .and_then(|m| m.get(key).cloned())
            .unwrap_or_default()
    };
    if let Some(key) = bracketed(path, "metadata.labels") {
        return Ok(from_map(&meta.labels, key));
    }
    if let Some(key) = bracketed(path, "metadata.annotations") {
        return Ok(from_map(&meta.annotations, key));
    }
    let value = match path {
        "metadata.name" => meta.name.clone().unwrap_or_default(),
        "metadata.namespace" => meta.namespace.clone().unwrap_or_default(),
        "metadata.uid" => meta.uid.clone().unwrap_or_default(),
        "metadata.labels" => format_map(meta.labels.as_ref()),
        "metadata.annotations" => format_map(meta.annotations.as_ref()),
        "spec.nodeName" => spec.and_then(|s| s.node_name.clone()).unwrap_or_default(),
        "spec.serviceAccountName" => spec
            .and_then(|s| s.service_account_name.clone())
            .unwrap_or_default(),
        "status.hostIP" | "status.podIP" => "127.0.0.1".to_string(),
        other => {
            return Err(Error::Unsupported(format!(
                "fieldRef {other:?} is not supported"
            )))
        }
    };
    Ok(value)
}

/// `metadata.labels['key']` → `key`.
fn bracketed<'a>(path: &'a str, prefix: &str) -> Option<&'a str> {
    let rest = path
        .strip_prefix(prefix)?
        .strip_prefix('[')?
        .strip_suffix(']')?;
    let rest = rest
        .strip_prefix('\'')
        .and_then(|r| r.strip_suffix('\''))
        .or_else(|| rest.strip_prefix('"').and_then(|r| r.strip_suffix('"')))?;
    Some(rest)
}

/// Downward-API rendering of a map: `key="value"` lines, sorted.
pub fn format_map(map: Option<&BTreeMap<String, String>>) -> String {
    map.into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={v:?}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Sets `name` in an ordered environment, replacing an earlier value in place.
fn set(env: &mut Vec<(String, String)>, name: &str, value: String) {
    match env.iter_mut().find(|(n, _)| n == name) {
        Some(slot) => slot.1 = value,
        None => env.push((name.to_string(), value)),
    }
}

/// Resolves a container's environment in kubelet order: `envFrom`, then `env` (later wins),
/// with `$(VAR)` in values expanded against what was defined before.
pub fn resolve_env(
    pod: &Pod,
    container: &Container,
    objects: &Objects,
) -> Result<Vec<(String, String)>> {
    let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
    let mut env: Vec<(String, String)> = Vec::new();
    for from in container.env_from.iter().flatten() {
        let prefix = from.prefix.as_deref().unwrap_or("");
        let (kind, name, optional, table) = match (&from.secret_ref, &from.config_map_ref) {
            (Some(s), _) => ("Secret", &s.name, s.optional, &objects.secrets),
            (None, Some(m)) => ("ConfigMap", &m.name, m.optional, &objects.config_maps),
            (None, None) => continue,
        };
        match table.get(name) {
            Some(values) => {
                for (k, v) in values {
                    set(
                        &mut env,
                        &format!("{prefix}{k}"),
                        String::from_utf8_lossy(v).into_owned(),
                    );
                }
            }
            None if optional.unwrap_or(false) => {}
            None => {
                return Err(Error::Config(format!(
                    "{} \"{name}\" not found",
                    kind.to_ascii_lowercase()
                )))
            }
        }
    }
    for var in container.env.iter().flatten() {
        if let Some(value) = env_var_value(pod, namespace, var, objects, &env)? {
            set(&mut env, &var.name, value);
        }
    }
    Ok(env)
}

/// The value of one `env` entry; `None` when an optional reference is missing.
fn env_var_value(
    pod: &Pod,
    namespace: &str,
    var: &EnvVar,
    objects: &Objects,
    defined: &[(String, String)],
) -> Result<Option<String>> {
    let Some(from) = &var.value_from else {
        return Ok(Some(expand(var.value.as_deref().unwrap_or(""), defined)));
    };
    let bytes = if let Some(s) = &from.secret_key_ref {
        let optional = s.optional.unwrap_or(false);
        lookup_key(
            &objects.secrets,
            "Secret",
            namespace,
            &s.name,
            &s.key,
            optional,
        )?
    } else if let Some(m) = &from.config_map_key_ref {
        let optional = m.optional.unwrap_or(false);
        let table = &objects.config_maps;
        lookup_key(table, "ConfigMap", namespace, &m.name, &m.key, optional)?
    } else if let Some(f) = &from.field_ref {
        Some(field_value(pod, &f.field_path)?.into_bytes())
    } else {
        return Err(Error::Unsupported(format!(
            "env {}: only secretKeyRef, configMapKeyRef and fieldRef are supported",
            var.name
        )));
    };
    Ok(bytes.map(|b| String::from_utf8_lossy(&b).into_owned()))
}

/// Kubernetes `$(VAR)` expansion: known variables are replaced, `$$` becomes `$`,
/// anything else is left as written.
pub fn expand(text: &str, env: &[(String, String)]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(inner) = after.strip_prefix('(') {
            match inner.find(')') {
                Some(end) => {
                    let name = &inner[..end];
                    match env.iter().rev().find(|(n, _)| n == name) {
                        Some((_, v)) => out.push_str(v),
                        None => {
                            out.push_str("$(");
                            out.push_str(name);
                            out.push(')');
                        }
                    }
                    rest = &inner[end + 1..];
                }
                None => {
                    out.push_str("$(");
                    rest = inner;
                }
            }
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
#[path = "env_tests.rs"]
mod tests;
