//! Connecting to the cluster as kubectl does (`--kubeconfig`, `--context`, `-n`, `KUBECONFIG`),
//! and turning client errors into one line that says what to do next.

use std::path::PathBuf;

use clap::Args;
use kube::config::{Config, KubeConfigOptions, Kubeconfig};

use super::kind::Kind;
use super::Error;

/// The flags every verb that talks to the cluster takes (kubectl's names).
#[derive(Clone, Debug, Default, Args)]
pub(crate) struct ClusterArgs {
    /// The kubeconfig file to use (default: `$KUBECONFIG`, then `~/.kube/config`, then the Pod's
    /// service account).
    #[arg(long, value_name = "FILE")]
    pub(crate) kubeconfig: Option<PathBuf>,
    /// The kubeconfig context to use (default: its current context).
    #[arg(long = "context", value_name = "NAME")]
    pub(crate) kube_context: Option<String>,
    /// The namespace (default: the context's namespace, else `default`).
    #[arg(short = 'n', long, value_name = "NAMESPACE", value_parser = object_name)]
    pub(crate) namespace: Option<String>,
}

/// Accepts an object name (DNS-1123 subdomain).
pub(crate) fn object_name(text: &str) -> Result<String, String> {
    crate::api::validate::object_name(text).map(|()| text.to_string())
}

/// A client, the namespace the verb works in, and the server's URL for messages.
#[derive(Clone)]
pub(crate) struct Cluster {
    /// The client.
    pub(crate) client: kube::Client,
    /// The namespace (flag, else the context's).
    pub(crate) namespace: String,
    /// The API server's URL.
    pub(crate) server: String,
}

impl ClusterArgs {
    /// Reads the kubeconfig (or the in-cluster config) and makes a client.
    pub(crate) async fn connect(&self) -> Result<Cluster, Error> {
        let options = KubeConfigOptions {
            context: self.kube_context.clone(),
            ..KubeConfigOptions::default()
        };
        let config = match &self.kubeconfig {
            Some(path) => {
                let file = Kubeconfig::read_from(path).map_err(|e| {
                    Error::Cluster(format!(
                        "cannot read kubeconfig {}: {}; check the --kubeconfig path",
                        path.display(),
                        chain(&e)
                    ))
                })?;
                Config::from_custom_kubeconfig(file, &options)
                    .await
                    .map_err(|e| bad_kubeconfig(&e))?
            }
            None if self.kube_context.is_some() => Config::from_kubeconfig(&options)
                .await
                .map_err(|e| bad_kubeconfig(&e))?,
            None => Config::infer().await.map_err(|e| {
                Error::Cluster(format!(
                    "no cluster configured ({}); set KUBECONFIG or pass --kubeconfig",
                    chain(&e)
                ))
            })?,
        };
        let namespace = self
            .namespace
            .clone()
            .unwrap_or_else(|| config.default_namespace.clone());
        let server = config.cluster_url.to_string();
        let client = kube::Client::try_from(config).map_err(|e| {
            Error::Cluster(format!("cannot make a client for {server}: {}", chain(&e)))
        })?;
        Ok(Cluster {
            client,
            namespace,
            server: server.trim_end_matches('/').to_string(),
        })
    }
}

fn bad_kubeconfig(e: &kube::config::KubeconfigError) -> Error {
    Error::Cluster(format!(
        "unusable kubeconfig: {}; check KUBECONFIG, --kubeconfig and --context (`kubectl config get-contexts` lists the contexts)",
        chain(e)
    ))
}

/// An error and its sources on one line.
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let next = s.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = s.source();
    }
    one_line(&text)
}

/// `text` with line breaks folded into spaces.
pub(crate) fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

impl Cluster {
    /// A client error as a one-line [`Error`] (`doing` says what was being done).
    pub(crate) fn error(&self, doing: &str, e: kube::Error) -> Error {
        match e {
            kube::Error::Api(status) => match status.code {
                401 => Error::Cluster(format!(
                    "{doing}: the cluster at {} did not accept the credentials (401); log in again or check the kubeconfig's user",
                    self.server
                )),
                403 => Error::Cluster(format!(
                    "{doing}: {}; ask the namespace's admin for the `edit` role",
                    one_line(&status.message)
                )),
                _ => Error::Cluster(format!("{doing}: {}", one_line(&status.message))),
            },
            kube::Error::HyperError(_) | kube::Error::Service(_) => Error::Cluster(format!(
                "cannot reach the cluster at {} ({}); check that it runs and that KUBECONFIG, --kubeconfig or --context point at it",
                self.server,
                chain(&e)
            )),
            other => Error::Cluster(format!("{doing}: {}", chain(&other))),
        }
    }

    /// The error for a `kind` object `name` the server answered 404 for: the CRDs are missing, or
    /// the object is.
    pub(crate) async fn not_found(&self, kind: Kind, name: &str) -> Error {
        if !self.crds_installed(kind).await {
            return Error::CrdsMissing;
        }
        Error::NotFound {
            kind: kind.kind_name(),
            name: name.to_string(),
            namespace: self.namespace.clone(),
            short: kind.short_name(),
        }
    }

    /// Whether the API server serves `kind` (its group's discovery lists it). An unanswered
    /// discovery counts as installed: the error the caller already has is then the better one.
    pub(crate) async fn crds_installed(&self, kind: Kind) -> bool {
        match self
            .client
            .list_api_group_resources(&format!("{}/{}", kind.group(), crate::api::VERSION))
            .await
        {
            Ok(list) => list.resources.iter().any(|r| r.name == kind.plural()),
            Err(kube::Error::Api(status)) => status.code != 404,
            Err(_) => true,
        }
    }

    /// Maps a read's error: 404 becomes [`Cluster::not_found`], anything else [`Cluster::error`].
    pub(crate) async fn read_error(&self, kind: Kind, name: &str, e: kube::Error) -> Error {
        match &e {
            kube::Error::Api(status) if status.code == 404 => self.not_found(kind, name).await,
            _ => self.error(&format!("reading {} {name}", kind.kind_name()), e),
        }
    }

    /// Maps a list's error: 404 means the CRDs are missing.
    pub(crate) async fn list_error(&self, kind: Kind, e: kube::Error) -> Error {
        match &e {
            kube::Error::Api(status) if status.code == 404 && !self.crds_installed(kind).await => {
                Error::CrdsMissing
            }
            _ => self.error(&format!("listing {}", kind.plural()), e),
        }
    }
}

/// Starts a single-threaded runtime for a verb and runs `work` on it.
pub(crate) fn block_on<T>(
    work: impl std::future::Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|source| Error::Io {
            context: "starting the runtime".into(),
            source,
        })?
        .block_on(work)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chains_are_one_line_without_repeats() {
        let inner = std::io::Error::other("connection refused\n(os error 111)");
        let outer = Error::Io {
            context: "connecting".into(),
            source: inner,
        };
        assert_eq!(
            chain(&outer),
            "connecting: connection refused (os error 111)"
        );
    }
}
