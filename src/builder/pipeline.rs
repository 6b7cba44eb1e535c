//! The build step (the Pod's main container): prepare the Dockerfile, pull, build, run the
//! post-commit hook, push and confirm the digest. The fetch step lives in [`super::fetch`].

use std::path::{Path, PathBuf};

use super::buildah::{self, BudOptions, Buildah};
pub(crate) use super::fetch::{fetch, Binary, FetchOptions};
use super::layer_cache::{self, Decision};
use super::report::{Failure, StageClock};
use super::{auth, context_dir, dockerfile, plan, registry};
use crate::api::build::StageName;
use crate::api::contract::{BuildReport, SourceInfo};
use crate::api::{Build, StatusReason};

/// Where the built image goes.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Output {
    /// Push to this registry reference.
    Registry(String),
    /// Write an OCI layout directory (no registry at all), tagged `tag`.
    OciLayout {
        /// The layout directory.
        dir: PathBuf,
        /// The tag inside the layout.
        tag: String,
    },
}

/// Options of the build step.
#[derive(Clone, Debug)]
pub(crate) struct BuildOptions {
    /// Scratch space for the prepared Dockerfile and digest file (outside the context).
    pub(crate) work_dir: PathBuf,
    /// The source root (checkout or unpacked archive).
    pub(crate) source_dir: PathBuf,
    /// buildah and its storage.
    pub(crate) buildah: Buildah,
    /// A docker config (file or secret directory) for pulls.
    pub(crate) pull_secret: Option<PathBuf>,
    /// A docker config (file or secret directory) for the push.
    pub(crate) push_secret: Option<PathBuf>,
    /// Registries reached without TLS verification.
    pub(crate) insecure_registries: Vec<String>,
    /// Where the image goes; None: the Build's output reference.
    pub(crate) output: Option<Output>,
    /// Where build volumes are mounted, one directory per volume name.
    pub(crate) volumes_dir: PathBuf,
    /// The layer-cache repository (the controller's choice in a Pod); None: no cache.
    pub(crate) layer_cache: Option<String>,
    /// A registry (`host[:port]`) and the file holding the ServiceAccount token that is its
    /// password (kiln's registry token server); pull and push secrets override it.
    pub(crate) registry_token: Option<(String, PathBuf)>,
}

/// Prepares the Dockerfile, pulls, builds, runs the post-commit hook and pushes.
pub(crate) fn build(build: &Build, source: Option<SourceInfo>, opts: &BuildOptions) -> BuildReport {
    let mut clock = StageClock::default();
    let mut report = BuildReport {
        source: source.clone(),
        ..Default::default()
    };
    if let Err(f) = build_inner(build, source.as_ref(), opts, &mut clock, &mut report) {
        println!("==> Build failed: {}: {}", f.reason, f.message);
        report.fail(&f);
    }
    report.stages = clock.into_stages();
    // The report becomes the Build's status: no Secret value the Pod resolved goes with it.
    let secrets = secret_values(build, &|i| {
        std::env::var(crate::api::contract::value_from_env(i)).ok()
    });
    for text in [&mut report.message, &mut report.log_tail]
        .into_iter()
        .flatten()
    {
        *text = redact(text, &secrets);
    }
    report
}

/// The values the Pod resolved for strategy env entries taken from a Secret.
fn secret_values(build: &Build, value_from: &dyn Fn(usize) -> Option<String>) -> Vec<String> {
    let docker = build.spec.common.strategy.docker_strategy.as_ref();
    docker
        .map(|d| d.env.as_slice())
        .unwrap_or_default()
        .iter()
        .enumerate()
        .filter(|(_, v)| {
            v.value.is_none()
                && v.value_from
                    .as_ref()
                    .is_some_and(|f| f.secret_key_ref.is_some())
        })
        .filter_map(|(i, _)| value_from(i))
        .filter(|v| !v.is_empty())
        .collect()
}

/// `text` with every occurrence of each secret replaced by `***`.
fn redact(text: &str, secrets: &[String]) -> String {
    secrets
        .iter()
        .fold(text.to_string(), |t, s| t.replace(s.as_str(), "***"))
}

fn build_inner(
    build: &Build,
    source: Option<&SourceInfo>,
    opts: &BuildOptions,
    clock: &mut StageClock,
    report: &mut BuildReport,
) -> Result<(), Failure> {
    let plan = plan::plan_with(build, source, &|i| {
        std::env::var(crate::api::contract::value_from_env(i)).ok()
    })?;
    let at = source
        .and_then(|s| s.revision.commit.clone())
        .unwrap_or_else(|| "the source".into());
    let context = context_dir::resolve(&opts.source_dir, plan.context_dir.as_deref(), &at)
        .map_err(|e| Failure::new(StatusReason::InvalidContextDirectory, e.to_string()))?;
    let manage = |m: String| Failure::new(StatusReason::ManageDockerfileFailed, m);
    let original = match &plan.inline_dockerfile {
        Some(text) => text.clone(),
        None => context_dir::read_file_inside(&opts.source_dir, &context, &plan.dockerfile_path)
            .map_err(|e| {
                manage(format!(
                    "dockerfilePath {e}; check dockerStrategy.dockerfilePath and source.contextDir"
                ))
            })?,
    };
    let prepared = dockerfile::prepare(&original, &plan.edits)
        .map_err(|e| manage(format!("{e}; fix the Dockerfile")))?;
    std::fs::create_dir_all(&opts.work_dir)
        .map_err(|e| manage(format!("creating {}: {e}", opts.work_dir.display())))?;
    let dockerfile_path = opts.work_dir.join("Dockerfile.kiln");
    std::fs::write(&dockerfile_path, &prepared)
        .map_err(|e| manage(format!("writing the prepared Dockerfile: {e}")))?;

    let output = match (&opts.output, &plan.output) {
        (Some(o), _) => o.clone(),
        (None, Some(r)) => Output::Registry(r.clone()),
        (None, None) => {
            return Err(Failure::new(
                StatusReason::InvalidOutputReference,
                "the build has no output image: set spec.output.to (or status.outputDockerImageReference)",
            ))
        }
    };
    let tag = match &output {
        Output::Registry(r) => r.clone(),
        Output::OciLayout { tag, .. } => format!(
            "localhost/kiln/{}:{tag}",
            if plan.name.is_empty() {
                "build"
            } else {
                &plan.name
            }
        ),
    };
    report.output_reference = Some(match &output {
        Output::Registry(r) => r.clone(),
        Output::OciLayout { dir, tag } => format!("oci:{}:{tag}", dir.display()),
    });
    let secrets_dir = tempfile::tempdir()
        .map_err(|e| Failure::new(StatusReason::GenericBuildFailed, format!("temp dir: {e}")))?;
    let (authfile, _) = write_authfile(opts, secrets_dir.path())?;
    let insecure = |image: &str| {
        opts.insecure_registries
            .iter()
            .any(|r| *r == auth::registry_of(image))
    };

    clock.start(StageName::PullImages);
    let images =
        dockerfile::base_images(&prepared, &plan.build_args).map_err(|e| manage(e.to_string()))?;
    let present = if plan.force_pull {
        Vec::new()
    } else {
        opts.buildah.present_images()
    };
    for image in &images {
        if buildah::image_listed(&present, image) {
            println!("==> PullImages: {image} is present");
            continue;
        }
        println!("==> PullImages: pulling {image}");
        let mut args: Vec<String> = vec!["pull".into(), "--quiet".into()];
        if insecure(image) {
            args.push("--tls-verify=false".into());
        }
        if let Some(a) = &authfile {
            args.extend(["--authfile".into(), a.display().to_string()]);
        }
        args.push(image.clone());
        opts.buildah.run(&args).map_err(|e| {
            Failure::new(
                StatusReason::PullBuilderImageFailed,
                format!(
                    "cannot pull {image}: {e}{}",
                    hint(&e.to_string(), image, "pull")
                ),
            )
            .with_log(e.tail())
        })?;
    }

    clock.start(StageName::Build);
    println!(
        "==> Build: buildah bud ({} storage) {}",
        opts.buildah.driver,
        context.display()
    );
    let cache = match layer_cache::decide(opts.layer_cache.as_deref(), plan.no_cache, plan.layers) {
        Decision::Off => None,
        Decision::Bypassed(why) => {
            println!("==> Build: layer cache not used: {why}");
            None
        }
        Decision::Use(repo) => match layer_cache::probe(&repo, layer_cache::PROBE_TIMEOUT) {
            Ok(()) => {
                println!("==> Build: layer cache {repo}");
                Some(repo)
            }
            Err(e) => {
                println!("==> Build: layer cache {repo} is unreachable ({e}); building without it");
                None
            }
        },
    };
    let mut bud = BudOptions {
        context: context.clone(),
        dockerfile: dockerfile_path,
        tag: tag.clone(),
        layers: plan.layers,
        no_cache: plan.no_cache,
        build_args: plan.build_args.clone(),
        target: plan.target.clone(),
        volumes: plan::volume_mounts(&plan, &opts.volumes_dir),
        authfile: authfile.clone(),
        insecure: images.iter().chain(cache.iter()).any(|i| insecure(i)),
        cache_repository: cache,
    };
    let mut built = opts.buildah.run(&buildah::bud_args(&bud));
    if let (Err(e), Some(repo)) = (&built, &bud.cache_repository) {
        if layer_cache::is_cache_failure(&e.to_string()) {
            // The layers built so far are in local storage: the second run reuses them.
            println!("==> Build: the layer cache {repo} failed ({e}); building again without it");
            bud.cache_repository = None;
            built = opts.buildah.run(&buildah::bud_args(&bud));
        }
    }
    built.map_err(|e| {
        Failure::new(
            StatusReason::DockerBuildFailed,
            format!("{e}; see the build log"),
        )
        .with_log(e.tail())
    })?;

    if let Some(argv) = &plan.post_commit {
        clock.start(StageName::PostCommit);
        println!("==> PostCommit: {}", argv.join(" "));
        run_post_commit(&opts.buildah, &tag, argv)?;
    }

    clock.start(StageName::PushImage);
    let digestfile = opts.work_dir.join("digest");
    let _ = std::fs::remove_file(&digestfile);
    let push_failed = |m: String| Failure::new(StatusReason::PushImageToRegistryFailed, m);
    match &output {
        Output::Registry(reference) => {
            // A projected registry token may have been refreshed during a long build.
            let (authfile, configs) = write_authfile(opts, secrets_dir.path())?;
            println!("==> PushImage: pushing {reference}");
            let dest = format!("docker://{reference}");
            let args = buildah::push_args(
                &tag,
                &dest,
                &digestfile,
                authfile.as_deref(),
                insecure(reference),
            );
            opts.buildah.run(&args).map_err(|e| {
                push_failed(format!(
                    "cannot push {reference}: {e}{}",
                    hint(&e.to_string(), reference, "push")
                ))
                .with_log(e.tail())
            })?;
            let pushed = read_digest(&digestfile).map_err(push_failed)?;
            let creds = auth::credentials_for(&configs, &auth::registry_of(reference));
            let confirmed = registry::manifest_digest(reference, insecure(reference), creds)
                .map_err(|e| {
                    push_failed(format!("{e}{}", hint(&e.to_string(), reference, "push")))
                })?;
            if confirmed != pushed {
                return Err(push_failed(format!(
                    "the registry serves {confirmed} for {reference}, but buildah pushed {pushed}"
                )));
            }
            println!("    pushed {reference} ({pushed}), confirmed by the registry");
            report.image_digest = Some(pushed);
        }
        Output::OciLayout {
            dir,
            tag: layout_tag,
        } => {
            println!("==> PushImage: writing the OCI layout {}", dir.display());
            let dest = format!("oci:{}:{layout_tag}", dir.display());
            let args = buildah::push_args(&tag, &dest, &digestfile, None, false);
            opts.buildah.run(&args).map_err(|e| {
                push_failed(format!(
                    "cannot write the OCI layout {}: {e}",
                    dir.display()
                ))
                .with_log(e.tail())
            })?;
            report.image_digest = Some(read_digest(&digestfile).map_err(push_failed)?);
        }
    }
    Ok(())
}

fn read_digest(path: &Path) -> Result<String, String> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("buildah wrote no digest file: {e}"))?;
    registry::parse_digest(&text)
        .ok_or_else(|| format!("buildah wrote an invalid digest {:?}", text.trim()))
}

/// Merges the pull and push docker configs into one authfile in `dir`; returns it and the merged config.
fn write_authfile(
    opts: &BuildOptions,
    dir: &Path,
) -> Result<(Option<PathBuf>, serde_json::Value), Failure> {
    let mut configs = Vec::new();
    if let Some((registry, file)) = &opts.registry_token {
        // Missing only outside a build Pod (the kubelet writes it before the container starts).
        if let Ok(token) = std::fs::read_to_string(file) {
            configs.push(auth::basic_config(
                registry,
                crate::api::contract::REGISTRY_TOKEN_USER,
                token.trim(),
            ));
        }
    }
    for (path, reason) in [
        (&opts.pull_secret, StatusReason::PullBuilderImageFailed),
        (&opts.push_secret, StatusReason::PushImageToRegistryFailed),
    ] {
        if let Some(p) = path {
            match auth::load(p) {
                Ok(Some(c)) => configs.push(c),
                Ok(None) => {}
                Err(e) => return Err(Failure::new(reason, e.to_string())),
            }
        }
    }
    let merged = auth::merge(&configs);
    if configs.is_empty() {
        return Ok((None, merged));
    }
    let file = dir.join("auth.json");
    std::fs::write(&file, merged.to_string()).map_err(|e| {
        Failure::new(
            StatusReason::GenericBuildFailed,
            format!("writing the registry auth file: {e}"),
        )
    })?;
    Ok((Some(file), merged))
}

/// Runs the hook in a throwaway container of the built image, so nothing it does lands in a layer.
fn run_post_commit(b: &Buildah, image: &str, argv: &[String]) -> Result<(), Failure> {
    let failed = |m: String, tail: Option<String>| {
        Failure::new(StatusReason::PostCommitHookFailed, m).with_log(tail)
    };
    let ctr = b
        .output(&[
            "from".into(),
            "--pull=false".into(),
            "--quiet".into(),
            image.into(),
        ])
        .map_err(|e| {
            failed(
                format!("cannot start the post-commit container: {e}"),
                e.tail(),
            )
        })?;
    let mut args: Vec<String> = vec![
        "run".into(),
        "--isolation".into(),
        "chroot".into(),
        ctr.clone(),
        "--".into(),
    ];
    args.extend(argv.iter().cloned());
    let result = b.run(&args);
    let _ = b.output(&["rm".into(), ctr]);
    result
        .map(|_| ())
        .map_err(|e| failed(format!("the post-commit hook failed: {e}"), e.tail()))
}

/// A hint for common registry failures.
pub(crate) fn hint(error: &str, reference: &str, action: &str) -> String {
    let e = error.to_ascii_lowercase();
    let host = auth::registry_of(reference);
    let unreachable = [
        "connection refused",
        "no such host",
        "i/o timeout",
        "network is unreachable",
    ];
    let refused = [
        "unauthorized",
        "authentication required",
        "denied",
        "invalid username/password",
    ];
    if unreachable.iter().any(|p| e.contains(p)) {
        format!(" (the registry {host} is unreachable: is it up, and is the address right?)")
    } else if refused.iter().any(|p| e.contains(p)) {
        let secret = if action == "push" {
            "output.pushSecret"
        } else {
            "dockerStrategy.pullSecret"
        };
        format!(" (the registry {host} refused the credentials: check {secret})")
    } else if e.contains("http response to https client") || e.contains("certificate") {
        format!(" (TLS problem with {host}: mark it insecure only if it serves plain HTTP)")
    } else {
        String::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_values_are_redacted_from_the_report() {
        let build: Build = serde_json::from_value(serde_json::json!({
            "apiVersion": "build.kiln.dev/v1alpha1", "kind": "Build", "metadata": {"name": "a"},
            "spec": {"strategy": {"type": "Docker", "dockerStrategy": {"env": [
                {"name": "A", "value": "plain-value"},
                {"name": "B", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
                {"name": "C", "valueFrom": {"configMapKeyRef": {"name": "c", "key": "k"}}},
                {"name": "D", "valueFrom": {"secretKeyRef": {"name": "s", "key": "empty"}}}
            ]}}}
        }))
        .unwrap();
        let resolved = |i: usize| match i {
            1 => Some("t0p-secret".to_string()),
            2 => Some("config-value".to_string()),
            3 => Some(String::new()),
            _ => None,
        };
        let secrets = secret_values(&build, &resolved);
        assert_eq!(secrets, ["t0p-secret"]);
        assert_eq!(
            redact(
                "STEP 2/3: ENV B=t0p-secret C=config-value\nt0p-secret",
                &secrets
            ),
            "STEP 2/3: ENV B=*** C=config-value\n***"
        );
    }

    #[test]
    fn hints_table() {
        for (err, action, want) in [
            (
                "unauthorized: authentication required",
                "push",
                "output.pushSecret",
            ),
            (
                "denied: requested access",
                "pull",
                "dockerStrategy.pullSecret",
            ),
            (
                "dial tcp 127.0.0.1:1: connect: connection refused",
                "push",
                "unreachable",
            ),
            (
                "http: server gave HTTP response to HTTPS client",
                "push",
                "TLS",
            ),
            ("something else", "push", ""),
            (
                "dial tcp 127.0.0.1:40195: connect: connection refused",
                "push",
                "unreachable",
            ),
        ] {
            let h = hint(err, "127.0.0.1:1/a/b:c", action);
            assert!(h.contains(want), "{err}: {h}");
        }
    }
}
