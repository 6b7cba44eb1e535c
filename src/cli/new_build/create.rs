//! `kiln new-build` against the cluster: applies the generated objects with server-side apply
//! (keeping webhook secrets already stored) and says what it made, with one actionable line per
//! API error.

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Patch, PatchParams};
use kube::Api;

use super::generate::{Request, Source, WebhookSecrets};
use super::{generate, usage, Error, NewBuildArgs};
use crate::api::{BuildConfig, ImageStream};

/// The field manager of the objects `kiln new-build` applies.
const FIELD_MANAGER: &str = "kiln";

/// Creates (or updates) the objects with server-side apply and says what it made.
pub(super) async fn create(
    args: &NewBuildArgs,
    req: &Request,
    repo_dockerfile: Option<String>,
    origin: &str,
    mut out: String,
) -> Result<String, crate::cli::Error> {
    let cluster = args.cluster.connect().await?;
    let client = cluster.client.clone();
    let namespace = cluster.namespace.clone();
    let secrets_api: Api<Secret> = Api::namespaced(client.clone(), &namespace);
    let name = generate::name(req).map_err(usage)?;
    let existing = existing_secrets(&secrets_api, &name, &namespace).await?;
    let generated = generate(req, repo_dockerfile.as_deref(), origin, existing.as_ref())?;
    if let Some(image) = &generated.base_image {
        out.push_str(&format!("    base image (last FROM): {image}\n"));
    }
    for note in &generated.notes {
        out.push_str(&format!("--> Note: {note}\n"));
    }
    out.push_str(&format!(
        "--> Creating resources with label {}={} ...\n",
        generate::BUILD_LABEL,
        generated.name
    ));
    let params = PatchParams::apply(FIELD_MANAGER);
    for secret in &generated.secrets {
        out.push_str(&apply(&secrets_api, secret, "secret", &params, &namespace).await?);
    }
    let streams: Api<ImageStream> = Api::namespaced(client.clone(), &namespace);
    for stream in generated.base.iter().chain(generated.output.iter()) {
        out.push_str(
            &apply(
                &streams,
                stream,
                "imagestream.image.kiln.dev",
                &params,
                &namespace,
            )
            .await?,
        );
    }
    let configs: Api<BuildConfig> = Api::namespaced(client.clone(), &namespace);
    let bc_line = apply(
        &configs,
        &generated.build_config,
        "buildconfig.build.kiln.dev",
        &params,
        &namespace,
    )
    .await?;
    let bc_existed = bc_line.ends_with(" configured\n");
    out.push_str(&bc_line);
    let bc = configs
        .get(&generated.name)
        .await
        .map_err(|e| Error::Apply(api_message(&e, "buildconfig", &generated.name, &namespace)))?;
    out.push_str("--> Success\n");
    if req.source == Source::Binary {
        out.push_str(&format!(
            "    Start a build with its source: kiln start-build {} -n {namespace} --from-dir DIR\n",
            generated.name
        ));
    } else if bc_existed {
        out.push_str(&format!(
            "    BuildConfig {:?} updated; start a build with: kiln start-build {} -n {namespace}\n",
            generated.name, generated.name
        ));
    } else {
        out.push_str(&format!(
            "    BuildConfig {:?} created; its ConfigChange trigger starts the first build.\n",
            generated.name
        ));
    }
    out.push_str(&crate::webhook::urls::describe(&bc, &args.webhook_url));
    out.push_str(&format!(
        "The webhook secrets (<secret> above) are key {} of Secrets {}, e.g.:\n    kubectl get secret {} -n {namespace} -o jsonpath='{{.data.{}}}' | base64 -d\n",
        crate::webhook::secrets::SECRET_KEY,
        generated
            .secrets
            .iter()
            .filter_map(|s| s.metadata.name.clone())
            .collect::<Vec<_>>()
            .join(" and "),
        generate::webhook_secret_name(&generated.name, "github"),
        crate::webhook::secrets::SECRET_KEY,
    ));
    Ok(out)
}

/// The webhook secrets already stored for BuildConfig `name`, when both Secrets exist (applying
/// again keeps them instead of changing every webhook's URL).
async fn existing_secrets(
    api: &Api<Secret>,
    name: &str,
    namespace: &str,
) -> Result<Option<WebhookSecrets>, crate::cli::Error> {
    let mut values = Vec::new();
    for provider in ["github", "generic"] {
        let secret_name = generate::webhook_secret_name(name, provider);
        let secret = api
            .get_opt(&secret_name)
            .await
            .map_err(|e| Error::Apply(api_message(&e, "secret", &secret_name, namespace)))?;
        let value = secret
            .and_then(|s| s.data)
            .and_then(|d| d.get(crate::webhook::secrets::SECRET_KEY).cloned())
            .and_then(|b| String::from_utf8(b.0).ok())
            .filter(|v| !v.is_empty());
        match value {
            Some(v) => values.push(v),
            None => return Ok(None),
        }
    }
    Ok(match values.as_slice() {
        [github, generic] => Some(WebhookSecrets {
            github: github.clone(),
            generic: generic.clone(),
        }),
        _ => None,
    })
}

/// Applies one object; returns `<kind>/<name> created|configured`.
async fn apply<K>(
    api: &Api<K>,
    object: &K,
    kind: &str,
    params: &PatchParams,
    namespace: &str,
) -> Result<String, crate::cli::Error>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    let name = object.meta().name.clone().unwrap_or_default();
    let existed = api
        .get_opt(&name)
        .await
        .map_err(|e| Error::Apply(api_message(&e, kind, &name, namespace)))?
        .is_some();
    api.patch(&name, params, &Patch::Apply(object))
        .await
        .map_err(|e| Error::Apply(api_message(&e, kind, &name, namespace)))?;
    Ok(format!(
        "    {kind}/{name} {}\n",
        if existed { "configured" } else { "created" }
    ))
}

/// One actionable line for an API error about `kind`/`name`.
fn api_message(err: &kube::Error, kind: &str, name: &str, namespace: &str) -> String {
    match err {
        kube::Error::Api(status) => {
            let message = &status.message;
            match status.code {
                404 if kind != "secret" => format!(
                    "{kind}/{name}: the API has no such resource ({message}); the kiln CRDs may not be installed: `kiln crd | kubectl apply -f -` (or install the Helm chart)"
                ),
                404 => format!("namespace {namespace:?} not found ({message}); create it or pass -n"),
                403 => format!(
                    "{kind}/{name}: forbidden ({message}); you need the edit role in namespace {namespace:?}"
                ),
                409 => format!(
                    "{kind}/{name} in namespace {namespace:?} is managed by someone else ({message}); delete it or choose another --name"
                ),
                422 => format!("{kind}/{name} was refused as invalid: {message}"),
                _ => format!("{kind}/{name}: {message}"),
            }
        }
        other => format!("cannot reach the cluster: {other}"),
    }
}
