//! `pods/<name>/log`: `container`, `follow`, `tailLines`, `timestamps`, `limitBytes`.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use tokio::sync::mpsc;

use super::super::error::{ApiError, ApiResult};
use super::super::logs::{initial_lines, render, LogOptions};
use super::super::resources::ResourceInfo;
use super::super::store::ObjectKey;
use super::super::Shared;
use super::route::ResourcePath;
use super::Query;

fn container_names(pod: &Value, list: &str) -> Vec<String> {
    pod.pointer(&format!("/spec/{list}"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|c| c.get("name").and_then(Value::as_str))
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}

/// Picks the container a log request is about (the only one, or the one named).
pub fn choose_container(pod_name: &str, pod: &Value, requested: Option<&str>) -> ApiResult<String> {
    let containers = container_names(pod, "containers");
    let init = container_names(pod, "initContainers");
    match requested.filter(|c| !c.is_empty()) {
        Some(name) if containers.iter().chain(&init).any(|c| c == name) => Ok(name.to_string()),
        Some(name) => Err(ApiError::BadRequest(format!("container {name} is not valid for pod {pod_name}"))),
        None if containers.len() == 1 => Ok(containers[0].clone()),
        None => Err(ApiError::BadRequest(format!(
            "a container name must be specified for pod {pod_name}, choose one of: [{}] or one of the init containers: [{}]",
            containers.join(" "),
            init.join(" ")
        ))),
    }
}

fn options(query: &Query) -> ApiResult<LogOptions> {
    Ok(LogOptions {
        follow: query.flag("follow"),
        tail_lines: query
            .number("tailLines")?
            .map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
        timestamps: query.flag("timestamps"),
        limit_bytes: query
            .number("limitBytes")?
            .map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
    })
}

fn truncate(mut text: String, limit: Option<usize>) -> String {
    if let Some(limit) = limit.filter(|l| *l < text.len()) {
        let mut end = limit;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

/// Serves a pod's container log, streaming when `follow=true`.
pub fn serve(
    shared: &Arc<Shared>,
    info: &ResourceInfo,
    path: &ResourcePath,
    query: &Query,
) -> ApiResult<Response> {
    let namespace = path.namespace.clone().unwrap_or_default();
    let name = path.name.clone().unwrap_or_default();
    let key = ObjectKey::new(&info.storage_id(), &namespace, &name);
    let pod = shared
        .store()
        .get(&key)
        .ok_or_else(|| ApiError::NotFound(info.subject(&name)))?;
    let container = choose_container(&name, &pod, query.get("container"))?;
    let options = options(query)?;
    let waiting = || {
        ApiError::BadRequest(format!(
            "container {container:?} in pod {name:?} is waiting to start: ContainerCreating"
        ))
    };
    let snapshot = shared
        .logs
        .read(&namespace, &name, &container)
        .ok_or_else(waiting)?;
    let first = render(
        initial_lines(&snapshot.lines, options.tail_lines),
        options.timestamps,
    );
    if !options.follow || snapshot.finished {
        let text = truncate(first, options.limit_bytes);
        return Ok((StatusCode::OK, [(header::CONTENT_TYPE, "text/plain")], text).into_response());
    }
    let mut changes = shared
        .logs
        .subscribe(&namespace, &name, &container)
        .ok_or_else(waiting)?;
    let (sender, receiver) = mpsc::channel::<Result<Bytes, Infallible>>(64);
    let shared = shared.clone();
    let mut sent_lines = snapshot.lines.len();
    let mut budget = options.limit_bytes;
    tokio::spawn(async move {
        let mut pending = first;
        loop {
            if !pending.is_empty() {
                let text = truncate(std::mem::take(&mut pending), budget);
                budget = budget.map(|b| b.saturating_sub(text.len()));
                if sender.send(Ok(Bytes::from(text))).await.is_err() || budget == Some(0) {
                    return;
                }
            }
            tokio::select! {
                changed = changes.changed() => if changed.is_err() { return },
                _ = tokio::time::sleep(Duration::from_secs(1)) => {
                    if shared.store().get(&key).is_none() { return; }
                    continue;
                }
                _ = sender.closed() => return,
            }
            let Some(snapshot) = shared.logs.read(&namespace, &name, &container) else {
                return;
            };
            let start = sent_lines.min(snapshot.lines.len());
            pending = render(&snapshot.lines[start..], options.timestamps);
            sent_lines = snapshot.lines.len();
            if snapshot.finished {
                let text = truncate(pending, budget);
                let _ = sender.send(Ok(Bytes::from(text))).await;
                return;
            }
        }
    });
    let body = Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(receiver));
    Ok((StatusCode::OK, [(header::CONTENT_TYPE, "text/plain")], body).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn container_choice_table() {
        let one = json!({"spec": {"containers": [{"name": "build"}], "initContainers": [{"name": "clone"}]}});
        let two = json!({"spec": {"containers": [{"name": "a"}, {"name": "b"}]}});
        assert_eq!(choose_container("p", &one, None).unwrap(), "build");
        assert_eq!(choose_container("p", &one, Some("clone")).unwrap(), "clone");
        assert!(choose_container("p", &one, Some("nope")).is_err());
        assert!(choose_container("p", &two, None).is_err());
        assert_eq!(choose_container("p", &two, Some("b")).unwrap(), "b");
    }

    #[test]
    fn truncation_respects_char_boundaries() {
        assert_eq!(truncate("héllo".into(), Some(2)), "h");
        assert_eq!(truncate("abc".into(), None), "abc");
        assert_eq!(truncate("abc".into(), Some(5)), "abc");
    }
}
