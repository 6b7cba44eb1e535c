//! `kiln build -f BUILDCONFIG.yaml`: run a BuildConfig's build on this machine and print the Build
//! status and ImageStream TagEvent as YAML.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use serde_json::json;

use super::Error;
use crate::local::{self, LocalOptions};

/// Arguments of `kiln build`.
#[derive(Debug, Args)]
pub(crate) struct LocalBuildArgs {
    /// The BuildConfig manifest (YAML or JSON).
    #[arg(short = 'f', long = "filename")]
    pub(crate) file: PathBuf,
    /// Build this local directory instead of the BuildConfig's source.
    #[arg(long)]
    pub(crate) context: Option<PathBuf>,
    /// Build from this archive (tar, tar.gz, zip) instead of the BuildConfig's source.
    #[arg(long, conflicts_with = "context")]
    pub(crate) from_archive: Option<PathBuf>,
    /// Push ImageStreamTag outputs to <registry>/<namespace>/<stream>:<tag>; without it an OCI layout is written.
    #[arg(long)]
    pub(crate) registry: Option<String>,
    /// Reach this registry host (`host[:port]`) over plain HTTP / without TLS verification
    /// (repeatable; it applies to pulls and to any push, a DockerImage output included). Without
    /// a value it means the `--registry` host.
    #[arg(long = "insecure-registry", value_name = "HOST", num_args = 0..=1, default_missing_value = "")]
    pub(crate) insecure_registries: Vec<String>,
    /// A docker config JSON with the push credentials.
    #[arg(long)]
    pub(crate) push_secret: Option<PathBuf>,
    /// A docker config JSON with the pull credentials.
    #[arg(long)]
    pub(crate) pull_secret: Option<PathBuf>,
    /// A source secret directory (username/password, ssh-privatekey, known_hosts).
    #[arg(long)]
    pub(crate) source_secret: Option<PathBuf>,
    /// Add or override a build arg, KEY=VALUE (repeatable).
    #[arg(long = "build-arg", value_parser = parse_pair)]
    pub(crate) build_args: Vec<(String, String)>,
    /// The OCI layout directory written when there is no registry (default ./<build>-oci).
    #[arg(long)]
    pub(crate) oci_dir: Option<PathBuf>,
    /// buildah's storage root.
    #[arg(long)]
    pub(crate) root: Option<PathBuf>,
    /// buildah's run root.
    #[arg(long)]
    pub(crate) runroot: Option<PathBuf>,
    /// The storage driver (default: overlay, falling back to vfs).
    #[arg(long)]
    pub(crate) storage_driver: Option<String>,
    /// Read and write the layer cache a build Pod of this BuildConfig would use,
    /// `<registry>/<namespace>/<buildconfig>-cache` (needs --registry; skipped with noCache).
    #[arg(long, requires = "registry")]
    pub(crate) layer_cache: bool,
    /// Also write the builder's JSON report to this file.
    #[arg(long)]
    pub(crate) report: Option<PathBuf>,
    /// The git clone bounds.
    #[command(flatten)]
    pub(crate) clone_limits: super::clone_limits::CloneLimitArgs,
}

fn parse_pair(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("expected KEY=VALUE, got {s:?}"))
}

/// The hosts `--insecure-registry` names; an empty value stands for the `--registry` host.
fn insecure_hosts(given: &[String], registry: Option<&str>) -> Vec<String> {
    let mut hosts: Vec<String> = given
        .iter()
        .filter_map(|h| {
            if h.is_empty() {
                registry.map(String::from)
            } else {
                Some(h.clone())
            }
        })
        .collect();
    hosts.sort();
    hosts.dedup();
    hosts
}

/// Runs `kiln build`.
pub(crate) fn run(args: &LocalBuildArgs) -> Result<ExitCode, Error> {
    let opts = LocalOptions {
        file: args.file.clone(),
        context: args.context.clone(),
        archive: args.from_archive.clone(),
        registry: args.registry.clone(),
        insecure_registries: insecure_hosts(&args.insecure_registries, args.registry.as_deref()),
        push_secret: args.push_secret.clone(),
        pull_secret: args.pull_secret.clone(),
        build_args: args.build_args.clone(),
        oci_dir: args.oci_dir.clone(),
        root: args.root.clone(),
        runroot: args.runroot.clone(),
        driver: args.storage_driver.clone(),
        source_secret: args.source_secret.clone(),
        layer_cache: args.layer_cache,
        clone_limits: args.clone_limits.limits(),
    };
    let result = local::run(&opts)?;
    if let Some(path) = &args.report {
        let json = serde_json::to_string_pretty(&result.report).unwrap_or_default();
        std::fs::write(path, json).map_err(|source| Error::Io {
            context: format!("writing {}", path.display()),
            source,
        })?;
    }
    let mut docs = vec![json!({
        "apiVersion": format!("{}/{}", crate::api::BUILD_GROUP, crate::api::VERSION),
        "kind": "Build",
        "metadata": {"name": result.build.metadata.name, "namespace": result.build.metadata.namespace},
        "status": result.build.status,
    })];
    if let Some(event) = &result.tag_event {
        docs.push(json!({"kind": "TagEvent", "tagEvent": event}));
    }
    print!(
        "{}",
        crate::yaml::write_documents(&docs).map_err(|e| Error::Io {
            context: "writing YAML".into(),
            source: std::io::Error::other(e.to_string())
        })?
    );
    Ok(if result.report.is_failure() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: LocalBuildArgs,
    }

    fn hosts(argv: &[&str]) -> Vec<String> {
        let cli = Cli::parse_from(["x", "-f", "bc.yaml"].iter().chain(argv));
        insecure_hosts(&cli.args.insecure_registries, cli.args.registry.as_deref())
    }

    #[test]
    fn insecure_registry_names_hosts_and_alone_means_the_registry() {
        assert_eq!(hosts(&[]), Vec::<String>::new());
        assert_eq!(
            hosts(&["--registry", "r:5000", "--insecure-registry"]),
            ["r:5000"]
        );
        assert_eq!(
            hosts(&[
                "--insecure-registry",
                "a:5000",
                "--insecure-registry",
                "b.example:80",
                "--insecure-registry",
                "a:5000"
            ]),
            ["a:5000", "b.example:80"]
        );
        assert_eq!(
            hosts(&[
                "--insecure-registry",
                "--registry",
                "r:1",
                "--insecure-registry",
                "o:2"
            ]),
            ["o:2", "r:1"]
        );
        // Without --registry a bare flag names nothing.
        assert_eq!(hosts(&["--insecure-registry"]), Vec::<String>::new());
    }
}
