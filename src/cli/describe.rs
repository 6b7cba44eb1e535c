//! `kiln describe bc/NAME | build/NAME | is/NAME`: one object in detail (the text is
//! [`super::render::describe`]'s).

use std::process::ExitCode;

use clap::Args;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ListParams};

use super::cluster::{block_on, Cluster, ClusterArgs};
use super::get::fetch;
use super::kind::{parse_targets, Kind};
use super::render::describe;
use super::Error;
use crate::api::{Build, BuildConfig, ImageStream};
use crate::naming;

/// `kiln describe --help` examples.
pub(crate) const EXAMPLES: &str = "Examples:
  # A BuildConfig: source, triggers with their webhook URLs, recent builds
  kiln describe bc/app

  # A build: phase, reason, timing, commit, stages
  kiln describe build/app-3 -n demo

  # An ImageStream's tags and their history
  kiln describe is/app";

/// Arguments of `kiln describe`.
#[derive(Debug, Args)]
pub(crate) struct DescribeArgs {
    /// `TYPE/NAME…` or `TYPE [NAME…]` (every object of the type when no name is given).
    #[arg(required = true, value_name = "TYPE[/NAME]")]
    pub(crate) targets: Vec<String>,
    /// The base URL webhooks are served at (scheme and host), for the trigger URLs.
    #[arg(long, env = "KILN_WEBHOOK_URL", default_value = crate::webhook::urls::PLACEHOLDER_BASE)]
    pub(crate) webhook_url: String,
    /// The cluster to talk to.
    #[command(flatten)]
    pub(crate) cluster: ClusterArgs,
}

/// The Builds of BuildConfig `name`.
pub(crate) async fn builds_of(cluster: &Cluster, name: &str) -> Result<Vec<Build>, Error> {
    let api: Api<Build> = Api::namespaced(cluster.client.clone(), &cluster.namespace);
    let selector = format!(
        "{}={}",
        naming::BUILD_CONFIG_LABEL,
        naming::label_value(name)
    );
    let list = match api.list(&ListParams::default().labels(&selector)).await {
        Ok(list) => list,
        Err(e) => return Err(cluster.list_error(Kind::Build, e).await),
    };
    Ok(list
        .items
        .into_iter()
        .filter(|b| crate::api::config_of(b).is_some_and(|(_, c)| c == name))
        .collect())
}

/// Runs `kiln describe`.
pub(crate) fn run(args: &DescribeArgs) -> Result<ExitCode, Error> {
    let (kind, names) = parse_targets(&args.targets)?;
    let text = block_on(async {
        let cluster = args.cluster.connect().await?;
        let now = Timestamp::now();
        let texts: Vec<String> = match kind {
            Kind::BuildConfig => {
                let items: Vec<BuildConfig> = fetch(&cluster, kind, &names).await?;
                let mut texts = Vec::new();
                for bc in &items {
                    let name = bc.metadata.name.clone().unwrap_or_default();
                    let builds = builds_of(&cluster, &name).await?;
                    texts.push(describe::build_config(bc, &builds, &args.webhook_url, now));
                }
                texts
            }
            Kind::Build => {
                let items: Vec<Build> = fetch(&cluster, kind, &names).await?;
                items.iter().map(|b| describe::build(b, now)).collect()
            }
            Kind::ImageStream => {
                let items: Vec<ImageStream> = fetch(&cluster, kind, &names).await?;
                items
                    .iter()
                    .map(|is| describe::image_stream(is, now))
                    .collect()
            }
        };
        if texts.is_empty() {
            eprintln!(
                "No {} found in namespace {}.",
                kind.plural(),
                cluster.namespace
            );
        }
        Ok(texts.join("\n\n"))
    })?;
    super::write_stdout(&text)?;
    Ok(ExitCode::SUCCESS)
}
