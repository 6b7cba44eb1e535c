//! Serving the API over TCP and writing a kubeconfig for kubectl and kiln.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde_json::Value;
use tokio::net::TcpListener;

use crate::apiserver::{ApiError, ApiServer};

/// Errors of the `serve` command.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// Binding, reading or writing failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A manifest could not be parsed.
    #[error("{path}: {message}")]
    Manifest {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The server rejected a preloaded manifest.
    #[error("{path}: {source}")]
    Rejected {
        /// The file.
        path: PathBuf,
        /// The API error.
        source: Box<ApiError>,
    },
}

/// Binds the listen address (port 0 picks a free port).
pub async fn bind(listen: &str) -> Result<TcpListener, ServeError> {
    TcpListener::bind(listen)
        .await
        .map_err(|source| ServeError::Io {
            context: format!("binding {listen}"),
            source,
        })
}

/// A kubeconfig pointing at `http://<addr>` with context `sandbox`, namespace `default` and the
/// admin's token.
pub fn kubeconfig(addr: SocketAddr) -> String {
    kubeconfig_for(addr, false)
}

/// [`kubeconfig`], or with `tls` one pointing at `https://<addr>` that trusts the sandbox's
/// test CA.
pub fn kubeconfig_for(addr: SocketAddr, tls: bool) -> String {
    let cluster = if tls {
        use base64::Engine;
        let ca = base64::engine::general_purpose::STANDARD.encode(crate::tls::CA_PEM);
        format!("server: https://{addr}\n    certificate-authority-data: {ca}")
    } else {
        format!("server: http://{addr}")
    };
    format!(
        "apiVersion: v1
kind: Config
clusters:
- name: sandbox
  cluster:
    {cluster}
users:
- name: sandbox
  user:
    token: sandbox
contexts:
- name: sandbox
  context:
    cluster: sandbox
    user: sandbox
    namespace: default
current-context: sandbox
"
    )
}

/// Writes the kubeconfig file (plain HTTP).
pub fn write_kubeconfig(path: &Path, addr: SocketAddr) -> Result<(), ServeError> {
    write_kubeconfig_for(path, addr, false)
}

/// Writes the kubeconfig file, for HTTPS with `tls`.
pub fn write_kubeconfig_for(path: &Path, addr: SocketAddr, tls: bool) -> Result<(), ServeError> {
    std::fs::write(path, kubeconfig_for(addr, tls)).map_err(|source| ServeError::Io {
        context: format!("writing {}", path.display()),
        source,
    })
}

/// Creates every object of the YAML files in `dir` (multi-document; CRDs first).
pub fn preload(server: &ApiServer, dir: &Path) -> Result<usize, ServeError> {
    let io = |source, context: String| ServeError::Io { context, source };
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| io(e, format!("reading {}", dir.display())))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension()
                .is_some_and(|x| x == "yaml" || x == "yml" || x == "json")
        })
        .collect();
    files.sort();
    let mut documents = Vec::new();
    for path in files {
        let text = std::fs::read_to_string(&path)
            .map_err(|e| io(e, format!("reading {}", path.display())))?;
        for document in serde_norway::Deserializer::from_str(&text) {
            let value: Value =
                serde::Deserialize::deserialize(document).map_err(|e| ServeError::Manifest {
                    path: path.clone(),
                    message: e.to_string(),
                })?;
            if !value.is_null() {
                documents.push((path.clone(), value));
            }
        }
    }
    documents.sort_by_key(|(_, v)| {
        v.get("kind").and_then(Value::as_str) != Some("CustomResourceDefinition")
    });
    let count = documents.len();
    for (path, document) in documents {
        create_document(server, &document).map_err(|source| ServeError::Rejected {
            path,
            source: Box::new(source),
        })?;
    }
    Ok(count)
}

fn create_document(server: &ApiServer, document: &Value) -> Result<(), ApiError> {
    let api_version = document
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let kind = document
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    let plural = server
        .plural_of(group, version, kind)
        .ok_or(ApiError::UnknownPath)?;
    let namespace = document
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or("default");
    server
        .create_object(group, version, &plural, namespace, document.clone())
        .map(|_| ())
}

/// Serves the router on the listener over plain HTTP until the process ends.
pub async fn run(server: ApiServer, listener: TcpListener) -> Result<(), ServeError> {
    run_with(server, listener, false).await
}

/// Serves the router on the listener (over TLS with `tls`) until the process ends.
pub async fn run_with(
    server: ApiServer,
    listener: TcpListener,
    tls: bool,
) -> Result<(), ServeError> {
    let io = |source| ServeError::Io {
        context: "serving".into(),
        source,
    };
    if !tls {
        return axum::serve(listener, server.router()).await.map_err(io);
    }
    let acceptor = crate::tls::acceptor().map_err(|e| ServeError::Io {
        context: "loading the TLS certificate".into(),
        source: std::io::Error::other(e),
    })?;
    axum::serve(
        crate::tls::TlsListener::new(listener, acceptor),
        server.router(),
    )
    .await
    .map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubeconfig_names_the_server() {
        let addr: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let text = kubeconfig(addr);
        let parsed: Value = serde_norway::from_str(&text).unwrap();
        assert_eq!(
            parsed["clusters"][0]["cluster"]["server"],
            "http://127.0.0.1:8080"
        );
        assert_eq!(parsed["current-context"], "sandbox");
        let parsed: Value = serde_norway::from_str(&kubeconfig_for(addr, true)).unwrap();
        let cluster = &parsed["clusters"][0]["cluster"];
        assert_eq!(cluster["server"], "https://127.0.0.1:8080");
        assert!(cluster["certificate-authority-data"].is_string());
    }

    #[test]
    fn preload_creates_crds_then_objects() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("a.yaml"),
            "apiVersion: example.dev/v1\nkind: Widget\nmetadata:\n  name: w\n---\napiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: widgets.example.dev\nspec:\n  group: example.dev\n  scope: Namespaced\n  names: {plural: widgets, kind: Widget}\n  versions: [{name: v1, served: true, storage: true}]\n",
        )
        .unwrap();
        let server = ApiServer::new();
        assert_eq!(preload(&server, dir.path()).unwrap(), 2);
        assert_eq!(
            server.plural_of("example.dev", "v1", "Widget").as_deref(),
            Some("widgets")
        );
    }
}
