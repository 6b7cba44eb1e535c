//! The in-cluster registry's rendered config.yml served by the real `docker-registry` (CNCF
//! distribution), with `kiln controller` started with the token settings the chart passes it:
//! the registry asks for kiln's tokens at the rendered realm and accepts the ones kiln signs for
//! a namespace's own repositories, not for another's.

use base64::Engine;
use support::cluster::{Cluster, Options, CONTROLLER_NAMESPACE};

use super::registry::registry_config;
use super::*;

/// One GET on 127.0.0.1, with an `Authorization` header when given: (status, head, body).
fn get(port: u16, path: &str, authorization: Option<&str>) -> (u16, String, String) {
    let headers: Vec<String> = authorization
        .map(|a| format!("Authorization: {a}"))
        .into_iter()
        .collect();
    crate::support::http_request(port, path, &headers)
}

/// The `key="value"` parameters of a `WWW-Authenticate: Bearer …` header in `head`.
fn bearer_challenge(head: &str) -> BTreeMap<String, String> {
    let line = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("www-authenticate")
                .then(|| value.trim())
        })
        .unwrap_or_else(|| panic!("no WWW-Authenticate in\n{head}"));
    let params = line
        .strip_prefix("Bearer ")
        .unwrap_or_else(|| panic!("not a Bearer challenge: {line}"));
    params
        .split(',')
        .filter_map(|p| {
            let (key, value) = p.split_once('=')?;
            Some((
                key.trim().to_string(),
                value.trim().trim_matches('"').to_string(),
            ))
        })
        .collect()
}

#[test]
fn docker_registry_serves_the_rendered_config_and_accepts_the_tokens_kiln_signs_with_its_settings()
{
    let cluster = Cluster::start(
        "team-a",
        Options {
            no_controller: true,
            ..Options::default()
        },
    );
    let work = cluster.work.path();
    let docs = render(
        "kiln",
        CONTROLLER_NAMESPACE,
        &[
            "--set",
            "registry.deploy.enabled=true,registry.tokenSecret=kiln-registry-token",
            "--set",
            "registry.tokenService=registry.kiln-system,registry.tokenIssuer=kiln-system",
        ],
    );

    // The token Secret's key and certificate, made with openssl as the install guide makes them.
    let (key, certificate) = cluster.token_key();

    // The rendered config.yml; only where it stores, listens and finds the mounted certificate
    // change.
    let rendered = registry_config(&docs, "kiln-registry");
    let port = support::free_port();
    let mut config = rendered.clone();
    config["storage"]["filesystem"]["rootdirectory"] =
        Value::from(work.join("registry").display().to_string());
    config["http"]["addr"] = Value::from(format!("127.0.0.1:{port}"));
    config["auth"]["token"]["rootcertbundle"] = Value::from(certificate.display().to_string());
    let config_file = work.join("config.yml");
    std::fs::write(
        &config_file,
        kiln::yaml::write_documents(&[config]).unwrap(),
    )
    .unwrap();
    require_on_path("docker-registry");
    let mut serve = Command::new("docker-registry");
    serve.arg("serve").arg(&config_file);
    let registry =
        support::Service::spawn_logged(serve, port, "docker-registry", &work.join("registry.log"));

    // The controller with the token flags the chart sets (the mounted files are here instead).
    let controller_env = env_of(find(&docs, "Deployment", "kiln"));
    let mut flags = Vec::new();
    for (name, entry) in &controller_env {
        let Some(setting) = name.strip_prefix("KILN_REGISTRY_TOKEN_") else {
            continue;
        };
        let value = match setting {
            "KEY" => key.display().to_string(),
            "CERTIFICATE" => certificate.display().to_string(),
            _ => str_at(entry, "/value").to_string(),
        };
        flags.push(format!(
            "--registry-token-{}={value}",
            setting.to_lowercase().replace('_', "-")
        ));
    }
    assert_eq!(flags.len(), 5, "{flags:?}");
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let controller = cluster.start_replica("kiln-0", &flags);

    // `/` answers whatever the authentication (the probes' path); `/v2/` names kiln's realm.
    assert_eq!(get(registry.port, "/", None).0, 200);
    let (status, head, _) = get(registry.port, "/v2/", None);
    assert_eq!(status, 401, "{head}");
    let challenge = bearer_challenge(&head);
    let realm = str_at(&rendered, "/auth/token/realm");
    assert_eq!(realm, "http://kiln.kiln-system.svc:8080/registry/token");
    assert_eq!(challenge["realm"], realm);
    assert_eq!(challenge["service"], "registry.kiln-system");

    // Ask the realm (the controller's Service there, its port here) as team-a's builder, with a
    // ServiceAccount token for the service's audience as the password.
    let path = realm
        .strip_prefix("http://kiln.kiln-system.svc:8080")
        .unwrap();
    let sa_token = cluster.kubectl_ok(&[
        "create",
        "token",
        "builder",
        "-n",
        "team-a",
        "--audience",
        &challenge["service"],
    ]);
    let basic =
        base64::engine::general_purpose::STANDARD.encode(format!("builder:{}", sa_token.trim()));
    let token_for = |repository: &str| {
        let query = format!(
            "{path}?service={}&scope=repository:{repository}:pull,push",
            challenge["service"]
        );
        let (status, _, body) = get(controller.port, &query, Some(&format!("Basic {basic}")));
        assert_eq!(status, 200, "{body}");
        let answer: Value = serde_json::from_str(&body).unwrap();
        answer["token"].as_str().expect("a token").to_string()
    };

    // Its own repository: the registry takes kiln's token (no such repository yet, so 404).
    let own = token_for("team-a/app");
    let (status, head, body) = get(registry.port, "/v2/team-a/app/tags/list", None);
    assert_eq!(status, 401, "{head}");
    let (status, _, body_with) = get(
        registry.port,
        "/v2/team-a/app/tags/list",
        Some(&format!("Bearer {own}")),
    );
    assert_eq!(status, 404, "{body_with} (without a token: {body})");
    assert!(body_with.contains("NAME_UNKNOWN"), "{body_with}");
    // Another namespace's: kiln grants nothing, and the registry refuses.
    let other = token_for("team-b/app");
    let (status, _, body) = get(
        registry.port,
        "/v2/team-b/app/tags/list",
        Some(&format!("Bearer {other}")),
    );
    assert_eq!(status, 401, "{body}");
    drop(controller);
    drop(registry);
}
