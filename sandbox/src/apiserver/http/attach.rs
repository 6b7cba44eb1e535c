//! `pods/<name>/attach` over WebSocket, with the `v5.channel.k8s.io` and `v4.channel.k8s.io`
//! subprotocols kube-rs and kubectl speak: every binary message starts with its channel (0
//! stdin, 1 stdout, 2 stderr, 3 status, 4 resize; v5 adds 255, "close channel N"), and the
//! server ends a session with a `Status` on channel 3.
//!
//! What is served: a running container's stdin (query `stdin=true`, the container started with
//! `stdin: true`), fed to the pipe the kubelet offered in the [`super::super::StdinHub`]; end of
//! input is v5's close of channel 0, or (v4) the client closing the WebSocket. With `stdinOnce`
//! the container then reads end-of-file, as under a real runtime. Not served: stdout and stderr
//! (read them with `pods/log`), terminals, and SPDY (a `POST` without a WebSocket upgrade).

use std::sync::Arc;
use std::time::Duration;

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::{SinkExt, StreamExt};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::io::AsyncWriteExt;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use super::super::error::{ApiError, ApiResult};
use super::super::resources::ResourceInfo;
use super::super::stdin::StdinSession;
use super::super::store::ObjectKey;
use super::super::Shared;
use super::pod_log::choose_container;
use super::route::ResourcePath;
use super::Query;

/// The subprotocols served, preferred first.
const PROTOCOLS: [&str; 2] = ["v5.channel.k8s.io", "v4.channel.k8s.io"];
const STDIN: u8 = 0;
const STATUS: u8 = 3;
const CLOSE: u8 = 255;

/// Whether a request asks to switch to WebSocket.
pub fn is_websocket(headers: &HeaderMap) -> bool {
    let has = |name: header::HeaderName, token: &str| {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    };
    has(header::UPGRADE, "websocket") && has(header::CONNECTION, "upgrade")
}

/// The subprotocol to answer with: the first of the client's list that is served.
pub fn choose_protocol(offered: Option<&str>) -> Option<&'static str> {
    offered?
        .split(',')
        .map(str::trim)
        .find_map(|p| PROTOCOLS.into_iter().find(|s| *s == p))
}

/// The request for one attach session.
pub struct AttachRequest<'a> {
    /// The request's headers.
    pub headers: &'a HeaderMap,
    /// The connection's pending upgrade (absent in-process).
    pub upgrade: Option<OnUpgrade>,
}

/// Serves an attach request: checks it, answers `101 Switching Protocols` and runs the session.
pub fn serve(
    shared: &Arc<Shared>,
    info: &ResourceInfo,
    path: &ResourcePath,
    query: &Query,
    request: AttachRequest<'_>,
) -> ApiResult<Response> {
    let namespace = path.namespace.clone().unwrap_or_default();
    let name = path.name.clone().unwrap_or_default();
    let key = ObjectKey::new(&info.storage_id(), &namespace, &name);
    let pod = shared
        .store()
        .get(&key)
        .ok_or_else(|| ApiError::NotFound(info.subject(&name)))?;
    let container = choose_container(&name, &pod, query.get("container"))?;
    let (stdin, stdout, stderr) = (
        query.flag("stdin"),
        query.flag("stdout"),
        query.flag("stderr"),
    );
    if !(stdin || stdout || stderr) {
        return Err(ApiError::BadRequest(
            "you must specify at least 1 of stdin, stdout, stderr".into(),
        ));
    }
    if stdout || stderr || query.flag("tty") {
        return Err(ApiError::BadRequest(
            "the sandbox attaches to stdin only (stdout and stderr: pods/log; no tty)".into(),
        ));
    }
    if !is_websocket(request.headers) {
        return Err(ApiError::BadRequest(
            "Upgrade request required (the sandbox serves attach over WebSocket only)".into(),
        ));
    }
    let accept = request
        .headers
        .get(header::SEC_WEBSOCKET_KEY)
        .map(|k| derive_accept_key(k.as_bytes()))
        .ok_or_else(|| ApiError::BadRequest("missing Sec-WebSocket-Key".into()))?;
    let offered = request
        .headers
        .get(header::SEC_WEBSOCKET_PROTOCOL)
        .and_then(|v| v.to_str().ok());
    let protocol = choose_protocol(offered).ok_or_else(|| {
        ApiError::BadRequest(format!(
            "no supported subprotocol in {offered:?}; the sandbox speaks {}",
            PROTOCOLS.join(", ")
        ))
    })?;
    let upgrade = request.upgrade.ok_or_else(|| {
        ApiError::BadRequest("this connection cannot be upgraded (attach needs HTTP/1.1)".into())
    })?;
    // Taken before answering, so a container that is not running is an HTTP error.
    let session = shared
        .stdin
        .attach(&namespace, &name, &container)
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let closes = protocol == PROTOCOLS[0];
    tokio::spawn(async move {
        match upgrade.await {
            Ok(upgraded) => {
                let ws =
                    WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None)
                        .await;
                run(ws, session, closes).await;
            }
            Err(e) => tracing::debug!(error = %e, "attach: upgrade failed"),
        }
    });
    let mut response = StatusCode::SWITCHING_PROTOCOLS.into_response();
    let headers = response.headers_mut();
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    headers.insert(
        header::SEC_WEBSOCKET_PROTOCOL,
        HeaderValue::from_static(protocol),
    );
    if let Ok(value) = HeaderValue::from_str(&accept) {
        headers.insert(header::SEC_WEBSOCKET_ACCEPT, value);
    }
    Ok(response)
}

/// A `Status` message on channel 3.
fn status(failure: Option<String>) -> Message {
    let body = match failure {
        None => json!({"metadata": {}, "status": "Success"}),
        Some(message) => json!({
            "metadata": {}, "status": "Failure", "message": message,
            "reason": "InternalError", "code": 500,
        }),
    };
    let mut bytes = vec![STATUS];
    bytes.extend(serde_json::to_vec(&body).unwrap_or_default());
    Message::binary(bytes)
}

/// Copies the client's stdin into the container until end of input, then reports the outcome.
async fn run<S>(mut ws: WebSocketStream<S>, mut session: StdinSession, closes: bool)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut alive = tokio::time::interval(Duration::from_secs(1));
    let outcome: Result<(), String> = loop {
        let message = tokio::select! {
            message = ws.next() => message,
            _ = alive.tick() => {
                if session.container_ended() {
                    break Err("the container ended while attached".into());
                }
                continue;
            }
        };
        match message {
            Some(Ok(Message::Binary(data))) => match data.first() {
                Some(&STDIN) if data.len() > 1 => {
                    let Some(writer) = session.writer() else {
                        continue; // input after end of input is dropped
                    };
                    if let Err(e) = writer.write_all(&data[1..]).await {
                        break Err(format!("writing to the container's stdin: {e}"));
                    }
                }
                Some(&CLOSE) if closes && data.get(1) == Some(&STDIN) => {
                    session.close();
                    break Ok(());
                }
                _ => {}
            },
            // v4 clients close the connection to end their input.
            Some(Ok(Message::Close(_))) | None => {
                session.close();
                return;
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => {
                tracing::debug!(error = %e, "attach: connection failed");
                return; // the session drops: with stdinOnce the container reads end-of-file
            }
        }
    };
    let _ = ws.send(status(outcome.err())).await;
    let _ = ws.close(None).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_choice_table() {
        for (offered, chosen) in [
            (
                Some("v5.channel.k8s.io, v4.channel.k8s.io"),
                Some("v5.channel.k8s.io"),
            ),
            (Some("v4.channel.k8s.io"), Some("v4.channel.k8s.io")),
            (
                Some("channel.k8s.io,v4.channel.k8s.io"),
                Some("v4.channel.k8s.io"),
            ),
            (Some("base64.channel.k8s.io"), None),
            (None, None),
        ] {
            assert_eq!(choose_protocol(offered), chosen, "{offered:?}");
        }
    }

    #[test]
    fn websocket_upgrade_detection() {
        let mut headers = HeaderMap::new();
        assert!(!is_websocket(&headers));
        headers.insert(header::UPGRADE, HeaderValue::from_static("WebSocket"));
        headers.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, Upgrade"),
        );
        assert!(is_websocket(&headers));
        headers.insert(header::UPGRADE, HeaderValue::from_static("SPDY/3.1"));
        assert!(!is_websocket(&headers));
    }
}
