//! The optional in-cluster registry (`registry.deploy`): CNCF distribution on a
//! PersistentVolumeClaim, the controller's `--registry` wired to its Service, and its
//! `auth.token` configured from the same values as kiln's token server.

use super::*;

/// The in-cluster registry with kiln as its token server, the token settings not the defaults.
const WITH_TOKENS: &[&str] = &[
    "--set",
    "registry.deploy.enabled=true,registry.tokenSecret=kiln-registry-token",
    "--set",
    "registry.tokenService=registry.kiln-system,registry.tokenIssuer=kiln-system",
    "--set",
    "service.port=9090",
];

/// The registry's config.yml from its ConfigMap.
pub(super) fn registry_config(docs: &[Value], name: &str) -> Value {
    let config_map = find(docs, "ConfigMap", name);
    let text = str_at(config_map, "/data/config.yml");
    kiln::yaml::read_documents(text)
        .expect("config.yml is YAML")
        .remove(0)
}

fn container(deployment: &Value) -> &Value {
    &deployment["spec"]["template"]["spec"]["containers"][0]
}

/// The volume of `deployment`'s Pod mounted at the directory holding `file`, and the file's name.
fn volume_of_file<'a>(deployment: &'a Value, file: &'a str) -> (&'a Value, &'a str) {
    let (dir, name) = file.rsplit_once('/').expect("an absolute path");
    let mount = container(deployment)["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["mountPath"] == dir)
        .unwrap_or_else(|| panic!("nothing is mounted at {dir}"));
    let volume = deployment["spec"]["template"]["spec"]["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == mount["name"])
        .expect("the mount's volume");
    (volume, name)
}

#[test]
fn the_in_cluster_registry_is_the_controllers_registry_and_trusts_kilns_tokens() {
    let docs = render("kiln", "kiln-system", WITH_TOKENS);
    let controller = find(&docs, "Deployment", "kiln");
    let registry = find(&docs, "Deployment", "kiln-registry");

    // --registry is the Service's host:port, over plain HTTP (no deploy.tlsSecret).
    let service = find(&docs, "Service", "kiln-registry");
    let port = &service["spec"]["ports"][0];
    let host = format!(
        "{}.{}.svc:{}",
        name_of(service),
        str_at(service, "/metadata/namespace"),
        port["port"]
    );
    assert_eq!(env_value(controller, "KILN_REGISTRY"), Some(host));
    assert_eq!(
        env_value(controller, "KILN_INSECURE_REGISTRY_INTERNAL").as_deref(),
        Some("true")
    );
    // The Service selects the registry's Pod, not the controller's, and reaches its port.
    let selector = &service["spec"]["selector"];
    assert_eq!(*selector, registry["spec"]["selector"]["matchLabels"]);
    let labels = &registry["spec"]["template"]["metadata"]["labels"];
    for (key, value) in selector.as_object().unwrap() {
        assert_eq!(&labels[key], value);
    }
    assert_ne!(
        *selector,
        find(&docs, "Service", "kiln")["spec"]["selector"]
    );
    let container_port = container(registry)["ports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == port["targetPort"])
        .expect("the Service's targetPort is a named container port");
    let config = registry_config(&docs, "kiln-registry");
    assert_eq!(
        str_at(&config, "/http/addr"),
        format!(":{}", container_port["containerPort"])
    );

    // The config file the registry reads is the ConfigMap's.
    let args = container(registry)["args"].as_array().unwrap();
    let (volume, file) = volume_of_file(registry, args[0].as_str().unwrap());
    assert_eq!(volume["configMap"]["name"], "kiln-registry");
    assert_eq!(file, "config.yml");

    // Images live on the PersistentVolumeClaim.
    let claim = find(&docs, "PersistentVolumeClaim", "kiln-registry");
    assert_eq!(claim["spec"]["resources"]["requests"]["storage"], "20Gi");
    assert_eq!(
        claim["spec"]["accessModes"],
        serde_json::json!(["ReadWriteOnce"])
    );
    assert!(claim["spec"].get("storageClassName").is_none());
    let root = str_at(&config, "/storage/filesystem/rootdirectory");
    let file_in_root = format!("{root}/x");
    let (volume, _) = volume_of_file(registry, &file_in_root);
    assert_eq!(volume["persistentVolumeClaim"]["claimName"], name_of(claim));
    assert_eq!(registry["spec"]["strategy"]["type"], "Recreate");
    assert_eq!(registry["spec"]["replicas"], 1);

    // auth.token: kiln's endpoint on the controller's Service, its service and issuer, and the
    // certificate of the Secret whose key the controller signs with (the key not mounted).
    let token = &config["auth"]["token"];
    let controller_service = find(&docs, "Service", "kiln");
    assert_eq!(
        token["realm"],
        format!(
            "http://kiln.kiln-system.svc:{}/registry/token",
            controller_service["spec"]["ports"][0]["port"]
        )
    );
    assert_eq!(
        token["service"].as_str(),
        env_value(controller, "KILN_REGISTRY_TOKEN_SERVICE").as_deref()
    );
    assert_eq!(token["service"], "registry.kiln-system");
    assert_eq!(
        token["issuer"].as_str(),
        env_value(controller, "KILN_REGISTRY_TOKEN_ISSUER").as_deref()
    );
    assert_eq!(token["issuer"], "kiln-system");
    let (volume, file) = volume_of_file(registry, str_at(token, "/rootcertbundle"));
    let certificate = env_value(controller, "KILN_REGISTRY_TOKEN_CERTIFICATE").unwrap();
    let (controller_volume, controller_file) = volume_of_file(controller, &certificate);
    assert_eq!(
        volume["secret"]["secretName"],
        controller_volume["secret"]["secretName"]
    );
    assert_eq!(volume["secret"]["secretName"], "kiln-registry-token");
    assert_eq!(
        volume["secret"]["items"],
        serde_json::json!([{"key": controller_file, "path": file}]),
        "only the certificate reaches the registry"
    );

    // Hardened, pinned, bounded.
    let pod = &registry["spec"]["template"]["spec"];
    assert_eq!(pod["automountServiceAccountToken"], false);
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
    let security = &container(registry)["securityContext"];
    assert_eq!(security["allowPrivilegeEscalation"], false);
    assert_eq!(security["readOnlyRootFilesystem"], true);
    assert_eq!(security["privileged"], false);
    assert_eq!(security["capabilities"]["drop"], serde_json::json!(["ALL"]));
    assert!(container(registry)["resources"]["limits"]["memory"].is_string());
    let image = str_at(container(registry), "/image");
    let (repository, digest) = image.split_once("@sha256:").expect("pinned by digest");
    assert_eq!(repository, "docker.io/library/registry");
    assert!(digest.len() == 64 && digest.bytes().all(|b| b.is_ascii_hexdigit()));
    for probe in ["readinessProbe", "livenessProbe"] {
        assert_eq!(container(registry)[probe]["httpGet"]["path"], "/");
        assert_eq!(container(registry)[probe]["httpGet"]["scheme"], "HTTP");
    }
}

/// Which values decide `--registry`, `--insecure-registry-internal`, the registry's TLS and its
/// authentication.
#[test]
fn registry_values_decide_the_controllers_flags_and_the_registry_config() {
    struct Case {
        args: &'static [&'static str],
        registry: Option<&'static str>,
        insecure: &'static str,
        tls: bool,
        realm: Option<&'static str>,
    }
    let cases = [
        // Off by default: no registry objects, no --registry.
        Case {
            args: &[],
            registry: None,
            insecure: "false",
            tls: false,
            realm: None,
        },
        // On without tokens: anonymous, plain HTTP.
        Case {
            args: &["--set", "registry.deploy.enabled=true"],
            registry: Some("kiln-registry.kiln-system.svc:5000"),
            insecure: "true",
            tls: false,
            realm: None,
        },
        // Its own TLS certificate: verified, on the port asked for.
        Case {
            args: &[
                "--set",
                "registry.deploy.enabled=true,registry.deploy.tlsSecret=registry-tls,registry.deploy.port=443",
            ],
            registry: Some("kiln-registry.kiln-system.svc:443"),
            insecure: "false",
            tls: true,
            realm: None,
        },
        // registry.insecure still says so with TLS (a certificate the builder cannot verify).
        Case {
            args: &[
                "--set",
                "registry.deploy.enabled=true,registry.deploy.tlsSecret=registry-tls,registry.insecure=true",
            ],
            registry: Some("kiln-registry.kiln-system.svc:5000"),
            insecure: "true",
            tls: true,
            realm: None,
        },
        // A name the nodes resolve, and a realm reachable from outside the cluster.
        Case {
            args: &[
                "--set",
                "registry.deploy.enabled=true,registry.host=registry.example.org:5000",
                "--set",
                "registry.tokenSecret=tokens,registry.deploy.tokenRealm=https://builds.example.org/registry/token",
            ],
            registry: Some("registry.example.org:5000"),
            insecure: "true",
            tls: false,
            realm: Some("https://builds.example.org/registry/token"),
        },
        Case {
            args: &["--set", "registry.deploy.enabled=true,registry.tokenSecret=tokens"],
            registry: Some("kiln-registry.kiln-system.svc:5000"),
            insecure: "true",
            tls: false,
            realm: Some("http://kiln.kiln-system.svc:8080/registry/token"),
        },
    ];
    for case in cases {
        let docs = render("kiln", "kiln-system", case.args);
        let controller = find(&docs, "Deployment", "kiln");
        let what = format!("{:?}", case.args);
        assert_eq!(
            env_value(controller, "KILN_REGISTRY").as_deref(),
            case.registry,
            "{what}"
        );
        assert_eq!(
            env_value(controller, "KILN_INSECURE_REGISTRY_INTERNAL").as_deref(),
            Some(case.insecure),
            "{what}"
        );
        let registry_objects: Vec<_> = docs
            .iter()
            .filter(|d| str_at(d, "/metadata/labels/app.kubernetes.io~1component") == "registry")
            .map(|d| format!("{} {}", kind_of(d), name_of(d)))
            .collect();
        if case.registry.is_none() {
            assert!(registry_objects.is_empty(), "{what}: {registry_objects:?}");
            continue;
        }
        assert_eq!(
            registry_objects,
            [
                "ConfigMap kiln-registry",
                "PersistentVolumeClaim kiln-registry",
                "Service kiln-registry",
                "Deployment kiln-registry"
            ],
            "{what}"
        );
        let config = registry_config(&docs, "kiln-registry");
        let registry = find(&docs, "Deployment", "kiln-registry");
        assert_eq!(config.pointer("/http/tls").is_some(), case.tls, "{what}");
        if case.tls {
            for file in ["certificate", "key"] {
                let path = str_at(&config, &format!("/http/tls/{file}"));
                let (volume, _) = volume_of_file(registry, path);
                assert_eq!(volume["secret"]["secretName"], "registry-tls", "{what}");
            }
        }
        assert_eq!(
            container(registry)["readinessProbe"]["httpGet"]["scheme"],
            if case.tls { "HTTPS" } else { "HTTP" },
            "{what}"
        );
        assert_eq!(
            config.pointer("/auth/token/realm").and_then(Value::as_str),
            case.realm,
            "{what}"
        );
        // A changed config.yml changes the Pod template, so the registry restarts with it.
        let checksum = str_at(
            registry,
            "/spec/template/metadata/annotations/checksum~1config",
        );
        let mut changed = case.args.to_vec();
        changed.extend(["--set", "registry.tokenIssuer=another"]);
        let other = render("kiln", "kiln-system", &changed);
        let other_checksum = str_at(
            find(&other, "Deployment", "kiln-registry"),
            "/spec/template/metadata/annotations/checksum~1config",
        )
        .to_string();
        assert_eq!(
            checksum != other_checksum,
            case.realm.is_some(),
            "{what}: only a config with auth.token names the issuer"
        );
    }
}

#[test]
fn full_values_reach_the_in_cluster_registry() {
    let values = kiln::yaml::read_documents(&std::fs::read_to_string(full_values()).unwrap())
        .unwrap()
        .remove(0);
    let d = &values["registry"]["deploy"];
    let docs = render_full("ci", "kiln-system");
    let name = "ci-kiln-ci-registry";
    let registry = find(&docs, "Deployment", name);
    let pod = &registry["spec"]["template"]["spec"];
    let c = container(registry);
    assert_eq!(
        c["image"],
        format!(
            "{}@{}",
            str_at(d, "/image/repository"),
            str_at(d, "/image/digest")
        )
    );
    assert_eq!(c["imagePullPolicy"], d["image"]["pullPolicy"]);
    assert_eq!(pod["imagePullSecrets"], values["imagePullSecrets"]);
    assert_eq!(c["resources"], d["resources"]);
    assert_eq!(c["securityContext"], d["securityContext"]);
    assert_eq!(pod["securityContext"], d["podSecurityContext"]);
    assert_eq!(pod["nodeSelector"], d["nodeSelector"]);
    assert_eq!(pod["tolerations"], d["tolerations"]);
    assert_eq!(pod["affinity"], d["affinity"]);
    assert_eq!(c["ports"][0]["containerPort"], d["port"]);
    assert_eq!(
        find(&docs, "Service", name)["spec"]["ports"][0]["port"],
        d["port"]
    );
    let claim = find(&docs, "PersistentVolumeClaim", name);
    assert_eq!(
        claim["spec"]["resources"]["requests"]["storage"],
        d["persistence"]["size"]
    );
    assert_eq!(
        claim["spec"]["storageClassName"],
        d["persistence"]["storageClassName"]
    );
    assert_eq!(
        claim["spec"]["accessModes"][0],
        d["persistence"]["accessMode"]
    );
    let config = registry_config(&docs, name);
    assert_eq!(config["auth"]["token"]["realm"], d["tokenRealm"]);
    assert_eq!(
        config["auth"]["token"]["service"],
        values["registry"]["tokenService"]
    );
    assert_eq!(
        config["auth"]["token"]["issuer"],
        values["registry"]["tokenIssuer"]
    );
    let (volume, _) = volume_of_file(registry, str_at(&config, "/http/tls/key"));
    assert_eq!(volume["secret"]["secretName"], d["tlsSecret"]);
    // registry.host names the registry to the controller (a name the nodes resolve).
    let controller = find(&docs, "Deployment", "ci-kiln-ci");
    assert_eq!(
        env_value(controller, "KILN_REGISTRY").as_deref(),
        values["registry"]["host"].as_str()
    );
}
