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
    /// Reach --registry over plain HTTP / without TLS verification.
    #[arg(long)]
    pub(crate) insecure_registry: bool,
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
    /// Also write the builder's JSON report to this file.
    #[arg(long)]
    pub(crate) report: Option<PathBuf>,
}

fn parse_pair(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("expected KEY=VALUE, got {s:?}"))
}

/// Runs `kiln build`.
pub(crate) fn run(args: &LocalBuildArgs) -> Result<ExitCode, Error> {
    let opts = LocalOptions {
        file: args.file.clone(),
        context: args.context.clone(),
        archive: args.from_archive.clone(),
        registry: args.registry.clone(),
        insecure_registries: args
            .registry
            .iter()
            .filter(|_| args.insecure_registry)
            .cloned()
            .collect(),
        push_secret: args.push_secret.clone(),
        pull_secret: args.pull_secret.clone(),
        build_args: args.build_args.clone(),
        oci_dir: args.oci_dir.clone(),
        root: args.root.clone(),
        runroot: args.runroot.clone(),
        driver: args.storage_driver.clone(),
        source_secret: args.source_secret.clone(),
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
