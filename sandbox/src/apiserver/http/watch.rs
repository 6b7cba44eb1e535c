//! WATCH: replay from a resourceVersion (or synthetic ADDED for RV 0/absent), then live events,
//! with bookmarks, timeouts, selectors (objects leaving a selection become DELETED) and 410 Gone.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{json, Value};
use tokio::sync::{broadcast, mpsc};

use super::super::error::{ApiError, ApiResult};
use super::super::resources::ResourceInfo;
use super::super::store::{EventType, StoredEvent};
use super::super::{meta, Shared};
use super::output::Output;
use super::read::{present, present_cow, Selectors};
use super::Query;
use std::borrow::Cow;

/// Upper bound for `timeoutSeconds` (one year).
const MAX_WATCH_SECONDS: u64 = 365 * 24 * 3600;

#[derive(Serialize)]
struct Line<'a> {
    #[serde(rename = "type")]
    event_type: &'a str,
    object: &'a Value,
}

fn encode(event_type: &str, object: &Value) -> Bytes {
    let mut bytes = serde_json::to_vec(&Line { event_type, object }).unwrap_or_default();
    bytes.push(b'\n');
    Bytes::from(bytes)
}

/// What one watcher filters on.
struct Filter {
    output: Output,
    info: ResourceInfo,
    storage_id: String,
    namespace: Option<String>,
    selectors: Selectors,
}

impl Filter {
    /// Encodes one event line in the requested representation.
    fn line(&self, event_type: &str, object: &Value) -> Bytes {
        match self.output {
            Output::Object => encode(event_type, object),
            other => encode(event_type, &other.one(&self.info, object.clone())),
        }
    }

    /// The event as this watcher sees it (None if it does not concern it).
    fn view<'a>(&self, event: &'a StoredEvent) -> Option<(EventType, Cow<'a, Value>)> {
        if event.key.resource != self.storage_id
            || self
                .namespace
                .as_ref()
                .is_some_and(|ns| *ns != event.key.namespace)
        {
            return None;
        }
        let now = self.selectors.matches(&event.object);
        let before = event
            .previous
            .as_ref()
            .is_some_and(|p| self.selectors.matches(p));
        match event.event_type {
            EventType::Added if now => {
                Some((EventType::Added, present_cow(&self.info, &event.object)))
            }
            EventType::Deleted if now || before => {
                Some((EventType::Deleted, present_cow(&self.info, &event.object)))
            }
            EventType::Modified => match (before, now) {
                (true, true) => Some((EventType::Modified, present_cow(&self.info, &event.object))),
                (false, true) => Some((EventType::Added, present_cow(&self.info, &event.object))),
                (true, false) => {
                    let mut last = event
                        .previous
                        .as_ref()
                        .map(|p| (**p).clone())
                        .unwrap_or_default();
                    meta::set_resource_version(&mut last, event.resource_version);
                    Some((EventType::Deleted, Cow::Owned(present(&self.info, &last))))
                }
                (false, false) => None,
            },
            _ => None,
        }
    }

    fn bookmark(&self, resource_version: u64, initial_end: bool) -> Bytes {
        let mut metadata = json!({"resourceVersion": resource_version.to_string()});
        if let (true, Some(map)) = (initial_end, metadata.as_object_mut()) {
            map.insert(
                "annotations".into(),
                json!({"k8s.io/initial-events-end": "true"}),
            );
        }
        encode(
            "BOOKMARK",
            &json!({"kind": self.info.kind, "apiVersion": self.info.api_version(), "metadata": metadata}),
        )
    }
}

/// Starts a watch stream.
pub fn serve(
    shared: &Arc<Shared>,
    info: &ResourceInfo,
    namespace: Option<&str>,
    query: &Query,
    output: Output,
) -> ApiResult<Response> {
    let selectors = Selectors::from_query(info, query)?;
    let bookmarks = query.flag("allowWatchBookmarks");
    let send_initial = query.flag("sendInitialEvents");
    let timeout = query
        .number("timeoutSeconds")?
        .map(|seconds| Duration::from_secs(seconds.min(MAX_WATCH_SECONDS)))
        .unwrap_or(shared.config.default_watch_timeout);
    let requested_rv = match query.get("resourceVersion").filter(|v| !v.is_empty()) {
        None => None,
        Some(v) => Some(v.parse::<u64>().map_err(|_| {
            ApiError::BadRequest(format!(
                "resourceVersion: Invalid value: {v:?}: must be an unsigned integer"
            ))
        })?),
    };
    let filter = Filter {
        output,
        info: info.clone(),
        storage_id: info.storage_id(),
        namespace: namespace.map(String::from),
        selectors,
    };
    let (sender, receiver) = mpsc::channel::<Result<Bytes, Infallible>>(1024);
    let (initial, start_rv, live) = {
        let store = shared.store();
        let start_rv = store.resource_version();
        let synthetic = send_initial || matches!(requested_rv, None | Some(0));
        if synthetic {
            let initial: Vec<Bytes> = store
                .range_labelled(
                    &filter.storage_id,
                    namespace,
                    None,
                    filter.selectors.labels.required_label(),
                )
                .filter(|(_, o)| filter.selectors.matches(o))
                .map(|(_, o)| filter.line("ADDED", &present_cow(info, o)))
                .collect();
            (initial, start_rv, store.subscribe())
        } else {
            let from = requested_rv.unwrap_or(0);
            match store.events_since(from) {
                Some(events) => {
                    let initial: Vec<Bytes> = events
                        .iter()
                        .filter_map(|e| filter.view(e))
                        .map(|(t, o)| encode(t.as_str(), &o))
                        .collect();
                    (initial, start_rv, store.subscribe())
                }
                None => {
                    let gone = ApiError::Expired(format!(
                        "too old resource version: {from} ({})",
                        store.compacted_through()
                    ));
                    let mut status = gone.to_status();
                    if let Some(map) = status.as_object_mut() {
                        map.insert("reason".into(), json!("Expired"));
                        map.insert("code".into(), json!(410));
                    }
                    let body = encode("ERROR", &status);
                    return Ok(stream_response(Body::from(body)));
                }
            }
        }
    };
    let epoch = shared.watch_epoch.subscribe();
    let bookmark_interval = shared.config.bookmark_interval;
    tokio::spawn(run(Stream {
        sender,
        filter,
        initial,
        start_rv,
        live,
        epoch,
        timeout,
        bookmarks,
        initial_end_bookmark: send_initial && bookmarks,
        bookmark_interval,
    }));
    let body = Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(receiver));
    Ok(stream_response(body))
}

fn stream_response(body: Body) -> Response {
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

struct Stream {
    sender: mpsc::Sender<Result<Bytes, Infallible>>,
    filter: Filter,
    initial: Vec<Bytes>,
    start_rv: u64,
    live: broadcast::Receiver<Arc<StoredEvent>>,
    epoch: tokio::sync::watch::Receiver<u64>,
    timeout: Duration,
    bookmarks: bool,
    initial_end_bookmark: bool,
    bookmark_interval: Duration,
}

async fn run(mut s: Stream) {
    let deadline = tokio::time::sleep(s.timeout);
    tokio::pin!(deadline);
    for bytes in std::mem::take(&mut s.initial) {
        if s.sender.send(Ok(bytes)).await.is_err() {
            return;
        }
    }
    if s.initial_end_bookmark
        && s.sender
            .send(Ok(s.filter.bookmark(s.start_rv, true)))
            .await
            .is_err()
    {
        return;
    }
    let mut last_rv = s.start_rv;
    let mut ticker = tokio::time::interval(s.bookmark_interval);
    ticker.tick().await;
    s.epoch.borrow_and_update();
    loop {
        let bytes = tokio::select! {
            _ = &mut deadline => return,
            _ = s.epoch.changed() => return,
            _ = s.sender.closed() => return,
            _ = ticker.tick(), if s.bookmarks => s.filter.bookmark(last_rv, false),
            received = s.live.recv() => match received {
                Ok(event) if event.resource_version <= last_rv => continue,
                Ok(event) => {
                    last_rv = event.resource_version;
                    match s.filter.view(&event) {
                        Some((event_type, object)) => s.filter.line(event_type.as_str(), &object),
                        None => continue,
                    }
                }
                // Lagging or closed: end the stream; the client re-watches from its last RV.
                Err(_) => return,
            },
        };
        if s.sender.send(Ok(bytes)).await.is_err() {
            return;
        }
    }
}
