//! The token endpoint: authentication by TokenReview, decisions by [`super::scope`] and
//! SubjectAccessReview, answers in the protocol's JSON.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use base64::Engine;
use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec, UserInfo};
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use kube::api::{Api, PostParams};
use serde_json::json;

use super::jwt::{Claims, KeyError, Signer};
use super::scope::{self, Access, Check};

/// The path of the token endpoint (the registry's `auth.token.realm` is this URL).
pub(crate) const TOKEN_PATH: &str = "/registry/token";

/// How the token server is configured (`kiln controller --registry-token-*`).
#[derive(Clone, Debug)]
pub(crate) struct TokenServerConfig {
    /// The PKCS#8 PEM ECDSA P-256 signing key.
    pub(crate) key: PathBuf,
    /// The PEM certificate of that key (the registry's `auth.token.rootcertbundle`).
    pub(crate) certificate: PathBuf,
    /// The tokens' issuer (`auth.token.issuer`).
    pub(crate) issuer: String,
    /// The registry's service name (`auth.token.service`), the tokens' audience.
    pub(crate) service: String,
    /// The audience a ServiceAccount token must carry to be accepted as a password.
    pub(crate) audience: String,
    /// How long a registry token lives.
    pub(crate) lifetime: Duration,
}

/// Why the token server cannot start.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    /// A key or certificate file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The key or certificate is not usable.
    #[error("{0}")]
    Key(#[from] KeyError),
}

/// The token server: the signer, the API client for TokenReviews and SubjectAccessReviews, and
/// its configuration.
pub(crate) struct TokenServer {
    signer: Signer,
    client: kube::Client,
    config: TokenServerConfig,
}

/// The token server as the controller's settings hold it (equal when it is the same server).
#[derive(Clone, Debug)]
pub struct RegistryTokens(pub(crate) Arc<TokenServer>);

impl PartialEq for RegistryTokens {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl RegistryTokens {
    /// The route of the token endpoint.
    pub(crate) fn router(&self) -> Router {
        self.0.clone().router()
    }

    /// A pull token for `repository` (a path in the registry, without its host), signed for the
    /// controller itself.
    pub(crate) fn pull_token(&self, repository: &str) -> Option<String> {
        self.0.mint(
            CONTROLLER_SUBJECT,
            vec![Access {
                kind: "repository".into(),
                name: repository.to_string(),
                actions: vec!["pull".into()],
            }],
        )
    }
}

/// The subject of the tokens the controller signs for itself.
const CONTROLLER_SUBJECT: &str = "kiln-controller";

impl std::fmt::Debug for TokenServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenServer")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

fn read(path: &PathBuf) -> Result<String, Error> {
    std::fs::read_to_string(path).map_err(|source| Error::Read {
        path: path.display().to_string(),
        source,
    })
}

/// A refusal in the registry's error format.
fn refuse(status: StatusCode, code: &str, message: String) -> Response {
    let body = Json(json!({"errors": [{"code": code, "message": message}]}));
    if status == StatusCode::UNAUTHORIZED {
        let challenge = [(header::WWW_AUTHENTICATE, "Basic realm=\"kiln\"")];
        return (status, challenge, body).into_response();
    }
    (status, body).into_response()
}

/// The user name and password of a basic `Authorization` header.
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

impl TokenServer {
    /// Reads the key and certificate; `client` asks the API server.
    pub(crate) fn load(
        config: TokenServerConfig,
        client: kube::Client,
    ) -> Result<TokenServer, Error> {
        let key = read(&config.key)?;
        let certificate = read(&config.certificate)?;
        let signer = Signer::from_pem(
            &key,
            &config.key.display().to_string(),
            &certificate,
            &config.certificate.display().to_string(),
        )?;
        Ok(TokenServer {
            signer,
            client,
            config,
        })
    }

    /// The route of the token endpoint.
    pub(crate) fn router(self: Arc<Self>) -> Router {
        Router::new()
            .route(TOKEN_PATH, get(answer))
            .with_state(self)
    }

    /// A signed token granting `access` to `subject`, and its lifetime.
    pub(crate) fn mint(&self, subject: &str, access: Vec<Access>) -> Option<String> {
        let now = chrono::Utc::now().timestamp();
        let lifetime = i64::try_from(self.config.lifetime.as_secs()).unwrap_or(i64::MAX / 2);
        let claims = Claims {
            iss: self.config.issuer.clone(),
            sub: subject.to_string(),
            aud: self.config.service.clone(),
            exp: now.saturating_add(lifetime),
            nbf: now,
            iat: now,
            jti: self.signer.token_id(),
            access,
        };
        self.signer.sign(&claims).ok()
    }

    /// Who a ServiceAccount token is, if it is valid for kiln's audience.
    async fn review(&self, token: &str) -> Result<Option<UserInfo>, kube::Error> {
        let review = TokenReview {
            spec: TokenReviewSpec {
                token: Some(token.to_string()),
                audiences: Some(vec![self.config.audience.clone()]),
            },
            ..TokenReview::default()
        };
        let answer = Api::<TokenReview>::all(self.client.clone())
            .create(&PostParams::default(), &review)
            .await?;
        let status = answer.status.unwrap_or_default();
        let audience_ok = status
            .audiences
            .as_ref()
            .is_none_or(|a| a.contains(&self.config.audience));
        Ok((status.authenticated == Some(true) && audience_ok)
            .then_some(status.user)
            .flatten())
    }

    /// The checks RBAC allows `user`.
    async fn allowed(
        &self,
        user: &UserInfo,
        checks: BTreeSet<Check>,
    ) -> Result<BTreeSet<Check>, kube::Error> {
        let reviews = Api::<SubjectAccessReview>::all(self.client.clone());
        let mut allowed = BTreeSet::new();
        for check in checks {
            let review = SubjectAccessReview {
                spec: SubjectAccessReviewSpec {
                    user: user.username.clone(),
                    groups: user.groups.clone(),
                    uid: user.uid.clone(),
                    extra: user.extra.clone().map(|e| e.into_iter().collect()),
                    resource_attributes: Some(ResourceAttributes {
                        namespace: Some(check.namespace.clone()),
                        verb: Some(check.verb.into()),
                        group: Some(crate::api::IMAGE_GROUP.into()),
                        resource: Some("imagestreams".into()),
                        subresource: Some("layers".into()),
                        ..ResourceAttributes::default()
                    }),
                    ..SubjectAccessReviewSpec::default()
                },
                ..SubjectAccessReview::default()
            };
            let answer = reviews.create(&PostParams::default(), &review).await?;
            if answer.status.is_some_and(|s| s.allowed) {
                allowed.insert(check);
            }
        }
        Ok(allowed)
    }
}

/// The values of query parameter `name`, in order.
fn values<'a>(params: &'a [(String, String)], name: &'a str) -> impl Iterator<Item = &'a str> {
    params
        .iter()
        .filter(move |(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// `GET <realm>?service=…&scope=…`: a token for what the caller may do of what it asks.
async fn answer(
    State(server): State<Arc<TokenServer>>,
    headers: HeaderMap,
    Query(params): Query<Vec<(String, String)>>,
) -> Response {
    let param = |name: &'static str| values(&params, name);
    if let Some(service) = param("service").next() {
        if service != server.config.service {
            return refuse(
                StatusCode::BAD_REQUEST,
                "UNSUPPORTED",
                format!(
                    "service {service:?} is not served here (this token server is for {:?})",
                    server.config.service
                ),
            );
        }
    }
    let requested = match scope::parse_scopes(param("scope")) {
        Ok(s) => s,
        Err(e) => return refuse(StatusCode::BAD_REQUEST, "INVALID_SCOPE", e.to_string()),
    };
    let Some((_, password)) = basic_credentials(&headers) else {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "UNAUTHORIZED",
            "basic authentication with a Kubernetes ServiceAccount token as the password is required".into(),
        );
    };
    let user = match server.review(&password).await {
        Ok(Some(user)) => user,
        Ok(None) => {
            return refuse(
                StatusCode::UNAUTHORIZED,
                "UNAUTHORIZED",
                format!(
                    "the password is not a valid ServiceAccount token for the audience {:?}",
                    server.config.audience
                ),
            )
        }
        Err(e) => {
            tracing::warn!(error = %e, "TokenReview failed");
            return refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                "UNAVAILABLE",
                "cannot check the credentials with the API server".into(),
            );
        }
    };
    let username = user.username.clone().unwrap_or_default();
    let own = scope::service_account_namespace(&username);
    let checks = scope::checks(own, &requested);
    let allowed = match server.allowed(&user, checks).await {
        Ok(a) => a,
        Err(e) => {
            tracing::warn!(error = %e, "SubjectAccessReview failed");
            return refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                "UNAVAILABLE",
                "cannot check access with the API server".into(),
            );
        }
    };
    let granted = scope::grant(own, &requested, &allowed);
    let shown: Vec<String> = granted
        .iter()
        .map(|a| format!("{}:{}:{}", a.kind, a.name, a.actions.join(",")))
        .collect();
    let Some(token) = server.mint(&username, granted) else {
        return refuse(
            StatusCode::INTERNAL_SERVER_ERROR,
            "UNKNOWN",
            "signing the token failed".into(),
        );
    };
    tracing::info!(user = %username, granted = ?shown, "registry token issued");
    let issued_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let mut body = BTreeMap::new();
    body.insert("token", json!(token));
    body.insert("access_token", json!(token));
    body.insert("expires_in", json!(server.config.lifetime.as_secs()));
    body.insert("issued_at", json!(issued_at));
    (StatusCode::OK, Json(body)).into_response()
}
