//! `meta.k8s.io/v1` Table output (what `kubectl get` asks for): CRD `additionalPrinterColumns`,
//! and kubectl-like columns for a few built-in kinds.

use serde_json::{json, Value};

use super::super::resources::ResourceInfo;

/// How much of each object a row carries (`includeObject`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IncludeObject {
    /// No object.
    None,
    /// `PartialObjectMetadata` (the default).
    Metadata,
    /// The whole object.
    Object,
}

impl IncludeObject {
    /// Parses the `includeObject` parameter.
    pub fn parse(value: Option<&str>) -> IncludeObject {
        match value {
            Some("None") => IncludeObject::None,
            Some("Object") => IncludeObject::Object,
            _ => IncludeObject::Metadata,
        }
    }
}

/// `duration.HumanDuration` of the apiserver, for `date` columns.
pub fn human_duration(seconds: i64) -> String {
    if seconds < -1 {
        return "<invalid>".into();
    }
    let seconds = seconds.max(0);
    if seconds < 120 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        let s = seconds % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    }
    if minutes < 180 {
        return format!("{minutes}m");
    }
    let hours = minutes / 60;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        let (d, h) = (hours / 24, hours % 24);
        return if h == 0 {
            format!("{d}d")
        } else {
            format!("{d}d{h}h")
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    let years = hours / 24 / 365;
    if hours < 24 * 365 * 8 {
        let d = (hours / 24) % 365;
        return if d == 0 {
            format!("{years}y")
        } else {
            format!("{years}y{d}d")
        };
    }
    format!("{years}y")
}

fn age(timestamp: Option<&str>) -> Value {
    let Some(parsed) = timestamp.and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok()) else {
        return Value::String("<unknown>".into());
    };
    let seconds = (chrono::Utc::now() - parsed.with_timezone(&chrono::Utc)).num_seconds();
    Value::String(human_duration(seconds))
}

/// Evaluates the simple JSONPath used by printer columns (`.a.b[0].c`, `[*]`).
pub fn json_path(object: &Value, path: &str) -> Vec<Value> {
    let mut current = vec![object.clone()];
    for token in path
        .trim_start_matches('.')
        .split('.')
        .filter(|t| !t.is_empty())
    {
        let (field, indexes) = match token.find('[') {
            Some(i) => (&token[..i], &token[i..]),
            None => (token, ""),
        };
        let mut next: Vec<Value> = current
            .iter()
            .filter_map(|v| v.get(field).cloned())
            .collect();
        for index in indexes.split('[').filter(|s| !s.is_empty()) {
            let index = index.trim_end_matches(']');
            next = next
                .iter()
                .filter_map(Value::as_array)
                .flat_map(|items| match index {
                    "*" => items.clone(),
                    n => n
                        .parse::<usize>()
                        .ok()
                        .and_then(|i| items.get(i).cloned())
                        .into_iter()
                        .collect(),
                })
                .collect();
        }
        current = next;
    }
    current
}

fn column(name: &str, kind: &str, format: &str, priority: i64) -> Value {
    json!({"name": name, "type": kind, "format": format, "description": "", "priority": priority})
}

fn is_event(info: &ResourceInfo) -> bool {
    !info.custom
        && info.plural == "events"
        && (info.group.is_empty() || info.group == "events.k8s.io")
}

fn event_columns() -> Vec<Value> {
    vec![
        column("Last Seen", "string", "", 0),
        column("Type", "string", "", 0),
        column("Reason", "string", "", 0),
        column("Object", "string", "", 0),
        column("Message", "string", "", 0),
        column("Name", "string", "name", 1),
    ]
}

/// Cells of an Event (core/v1 or events.k8s.io/v1), as kubectl's event printer shows them.
fn event_cells(event: &Value) -> Vec<Value> {
    let text = |pointers: &[&str]| {
        pointers
            .iter()
            .find_map(|p| event.pointer(p).and_then(Value::as_str))
            .unwrap_or_default()
            .to_string()
    };
    let seen = text(&[
        "/lastTimestamp",
        "/series/lastObservedTime",
        "/eventTime",
        "/deprecatedLastTimestamp",
        "/metadata/creationTimestamp",
    ]);
    let kind = text(&["/involvedObject/kind", "/regarding/kind"]).to_lowercase();
    let object = text(&["/involvedObject/name", "/regarding/name"]);
    vec![
        age(Some(&seen)),
        json!(text(&["/type"])),
        json!(text(&["/reason"])),
        json!(format!("{kind}/{object}")),
        json!(text(&["/message", "/note"])),
        event
            .pointer("/metadata/name")
            .cloned()
            .unwrap_or(Value::Null),
    ]
}

fn columns(info: &ResourceInfo) -> Vec<Value> {
    if is_event(info) {
        return event_columns();
    }
    let mut out = vec![column("Name", "string", "name", 0)];
    if info.custom {
        if info.printer_columns.is_empty() {
            out.push(column("Age", "date", "", 0));
        }
        for c in &info.printer_columns {
            let text = |k: &str| {
                c.get(k)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string()
            };
            let priority = c.get("priority").and_then(Value::as_i64).unwrap_or(0);
            out.push(column(
                &text("name"),
                &text("type"),
                &text("format"),
                priority,
            ));
        }
        return out;
    }
    let extra: &[(&str, &str)] = match (info.group.as_str(), info.plural.as_str()) {
        ("", "pods") => &[
            ("Ready", "string"),
            ("Status", "string"),
            ("Restarts", "string"),
        ],
        ("", "namespaces") => &[("Status", "string")],
        ("", "configmaps") => &[("Data", "integer")],
        ("", "secrets") => &[("Type", "string"), ("Data", "integer")],
        _ => &[],
    };
    out.extend(extra.iter().map(|(n, k)| column(n, k, "", 0)));
    out.push(column("Age", "date", "", 0));
    out
}

fn pod_status(pod: &Value) -> String {
    if pod
        .pointer("/metadata/deletionTimestamp")
        .is_some_and(|v| !v.is_null())
    {
        return "Terminating".into();
    }
    let statuses = pod
        .pointer("/status/containerStatuses")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for status in &statuses {
        if let Some(reason) = status
            .pointer("/state/waiting/reason")
            .and_then(Value::as_str)
        {
            return reason.to_string();
        }
        if let Some(terminated) = status.pointer("/state/terminated") {
            if let Some(reason) = terminated.get("reason").and_then(Value::as_str) {
                return reason.to_string();
            }
            let code = terminated
                .get("exitCode")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            return format!("ExitCode:{code}");
        }
    }
    pod.pointer("/status/reason")
        .or_else(|| pod.pointer("/status/phase"))
        .and_then(Value::as_str)
        .unwrap_or("Unknown")
        .to_string()
}

fn cells(info: &ResourceInfo, object: &Value) -> Vec<Value> {
    if is_event(info) {
        return event_cells(object);
    }
    let name = object
        .pointer("/metadata/name")
        .cloned()
        .unwrap_or(Value::Null);
    let created = object
        .pointer("/metadata/creationTimestamp")
        .and_then(Value::as_str);
    let mut out = vec![name];
    if info.custom {
        if info.printer_columns.is_empty() {
            out.push(age(created));
        }
        for c in &info.printer_columns {
            let path = c
                .get("jsonPath")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let values = json_path(object, path);
            let cell = match (c.get("type").and_then(Value::as_str), values.as_slice()) {
                (_, []) => Value::Null,
                (Some("date"), [v, ..]) => age(v.as_str()),
                (_, [v]) => v.clone(),
                (_, many) => Value::String(
                    many.iter()
                        .map(|v| {
                            v.as_str()
                                .map(String::from)
                                .unwrap_or_else(|| v.to_string())
                        })
                        .collect::<Vec<_>>()
                        .join(","),
                ),
            };
            out.push(cell);
        }
        return out;
    }
    let count = |p: &str| {
        object
            .pointer(p)
            .and_then(Value::as_object)
            .map(|m| m.len())
            .unwrap_or(0)
    };
    match (info.group.as_str(), info.plural.as_str()) {
        ("", "pods") => {
            let total = object
                .pointer("/spec/containers")
                .and_then(Value::as_array)
                .map(Vec::len)
                .unwrap_or(0);
            let statuses = object
                .pointer("/status/containerStatuses")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let ready = statuses
                .iter()
                .filter(|s| s.get("ready").and_then(Value::as_bool) == Some(true))
                .count();
            let restarts: i64 = statuses
                .iter()
                .filter_map(|s| s.get("restartCount").and_then(Value::as_i64))
                .sum();
            out.push(json!(format!("{ready}/{total}")));
            out.push(json!(pod_status(object)));
            out.push(json!(restarts.to_string()));
        }
        ("", "namespaces") => out.push(
            object
                .pointer("/status/phase")
                .cloned()
                .unwrap_or(Value::Null),
        ),
        ("", "configmaps") => out.push(json!(count("/data") + count("/binaryData"))),
        ("", "secrets") => {
            out.push(object.get("type").cloned().unwrap_or(Value::Null));
            out.push(json!(count("/data")));
        }
        _ => {}
    }
    out.push(age(created));
    out
}

fn row(info: &ResourceInfo, object: &Value, include: IncludeObject) -> Value {
    let mut row = json!({"cells": cells(info, object)});
    let embedded = match include {
        IncludeObject::None => None,
        IncludeObject::Object => Some(object.clone()),
        IncludeObject::Metadata => Some(json!({
            "kind": "PartialObjectMetadata",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": object.get("metadata").cloned().unwrap_or(Value::Null),
        })),
    };
    if let (Some(embedded), Some(map)) = (embedded, row.as_object_mut()) {
        map.insert("object".into(), embedded);
    }
    row
}

/// A Table of objects with the given list metadata.
pub fn table(
    info: &ResourceInfo,
    objects: &[Value],
    metadata: Value,
    include: IncludeObject,
) -> Value {
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata,
        "columnDefinitions": columns(info),
        "rows": objects.iter().map(|o| row(info, o, include)).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
#[path = "table_tests.rs"]
mod tests;
