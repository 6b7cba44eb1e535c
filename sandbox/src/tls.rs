//! HTTPS for `kiln-sandbox serve --tls` (implied by `--authorization rbac`: kubectl and client-go
//! send a kubeconfig's credentials only over TLS, so tokens never reach a plain-HTTP server).
//!
//! The certificate is a fixed test certificate for `127.0.0.1` and `localhost`, signed by a
//! fixed test CA whose certificate the written kubeconfig carries; both are checked in under
//! `src/tls/` (the CA's key was discarded). It protects nothing: the sandbox only ever listens on
//! the loopback interface for tests and the demo. A fixed certificate keeps the sandbox free of a
//! certificate-generating dependency and of a build step.

use std::sync::Arc;

use base64::Engine;
use tokio::net::TcpListener;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::rustls::{self, ServerConfig};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

/// The CA certificate (PEM) the server certificate is signed by.
pub const CA_PEM: &str = include_str!("tls/ca.crt");
const SERVER_PEM: &str = include_str!("tls/server.crt");
const KEY_PEM: &str = include_str!("tls/server.key");

/// The DER bytes of the first PEM block.
fn der(pem: &str) -> Vec<u8> {
    let body: String = pem
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .unwrap_or_default()
}

/// A TLS acceptor serving the sandbox's certificate.
pub fn acceptor() -> Result<TlsAcceptor, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(der(SERVER_PEM))],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(der(KEY_PEM))),
        )?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// A TCP listener whose connections are TLS (for `axum::serve`); failed handshakes are dropped.
pub struct TlsListener {
    tcp: TcpListener,
    acceptor: TlsAcceptor,
}

impl TlsListener {
    /// Wraps a bound listener.
    pub fn new(tcp: TcpListener, acceptor: TlsAcceptor) -> Self {
        TlsListener { tcp, acceptor }
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<tokio::net::TcpStream>;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let (stream, addr) = match self.tcp.accept().await {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::debug!(error = %e, "accepting a connection");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            };
            let handshake = tokio::time::timeout(
                std::time::Duration::from_secs(10),
                self.acceptor.accept(stream),
            );
            match handshake.await {
                Ok(Ok(tls)) => return (tls, addr),
                Ok(Err(e)) => tracing::debug!(error = %e, %addr, "TLS handshake failed"),
                Err(_) => tracing::debug!(%addr, "TLS handshake timed out"),
            }
        }
    }

    fn local_addr(&self) -> tokio::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_embedded_certificate_loads() {
        assert!(super::acceptor().is_ok());
        assert!(super::der(super::CA_PEM).len() > 500);
    }
}
