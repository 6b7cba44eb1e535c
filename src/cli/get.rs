//! `kiln get bc|build|is [NAME…]`: tables with oc's columns, or the objects as YAML, JSON or
//! `kind/name` lines.

use std::process::ExitCode;

use clap::{Args, ValueEnum};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ListParams};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::cluster::{block_on, Cluster, ClusterArgs};
use super::kind::{parse_targets, Kind};
use super::render::tables;
use super::Error;
use crate::api::{Build, BuildConfig, ImageStream};

/// `kiln get --help` examples.
pub(crate) const EXAMPLES: &str = "Examples:
  # BuildConfigs of the current namespace
  kiln get bc

  # Builds in namespace demo, and two of them as YAML
  kiln get builds -n demo
  kiln get build/app-1 build/app-2 -o yaml

  # ImageStreams with their tags
  kiln get is";

/// How `kiln get` prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum Output {
    /// A table (default).
    Table,
    /// `kind/name` lines.
    Name,
    /// YAML (a List when more than one object).
    Yaml,
    /// JSON (a List when more than one object).
    Json,
}

/// Arguments of `kiln get`.
#[derive(Debug, Args)]
pub(crate) struct GetArgs {
    /// `TYPE [NAME…]` or `TYPE/NAME…`; TYPE is bc, build or is (or their long names).
    #[arg(required = true, value_name = "TYPE[/NAME]")]
    pub(crate) targets: Vec<String>,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value = "table")]
    pub(crate) output: Output,
    /// The cluster to talk to.
    #[command(flatten)]
    pub(crate) cluster: ClusterArgs,
}

/// Reads the named objects, or lists them all when no name is given.
pub(crate) async fn fetch<K>(
    cluster: &Cluster,
    kind: Kind,
    names: &[String],
) -> Result<Vec<K>, Error>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug,
{
    let api: Api<K> = Api::namespaced(cluster.client.clone(), &cluster.namespace);
    if names.is_empty() {
        return match api.list(&ListParams::default()).await {
            Ok(list) => Ok(list.items),
            Err(e) => Err(cluster.list_error(kind, e).await),
        };
    }
    let mut out = Vec::new();
    for name in names {
        match api.get(name).await {
            Ok(object) => out.push(object),
            Err(e) => return Err(cluster.read_error(kind, name, e).await),
        }
    }
    Ok(out)
}

fn documents<K: Serialize + kube::Resource<DynamicType = ()>>(
    items: &[K],
    output: Output,
) -> Result<String, Error> {
    let values: Vec<serde_json::Value> = items
        .iter()
        .map(|i| {
            let mut v = serde_json::to_value(i).unwrap_or_default();
            v["apiVersion"] = K::api_version(&()).to_string().into();
            v["kind"] = K::kind(&()).to_string().into();
            v
        })
        .collect();
    let single = values.len() == 1;
    let value = if single {
        values.into_iter().next().unwrap_or_default()
    } else {
        serde_json::json!({"apiVersion": "v1", "kind": "List", "items": values})
    };
    match output {
        Output::Json => Ok(format!(
            "{}\n",
            serde_json::to_string_pretty(&value).unwrap_or_default()
        )),
        _ => serde_norway::to_string(&value).map_err(|e| Error::Io {
            context: "writing YAML".into(),
            source: std::io::Error::other(e.to_string()),
        }),
    }
}

/// What `kiln get` prints for `items` of `kind`.
fn print<K>(
    kind: Kind,
    items: &[K],
    output: Output,
    table: impl Fn(&[K]) -> String,
) -> Result<String, Error>
where
    K: Serialize + kube::Resource<DynamicType = ()>,
{
    match output {
        Output::Table => Ok(table(items)),
        Output::Name => Ok(items
            .iter()
            .map(|i| {
                format!(
                    "{}.{}/{}\n",
                    kind.kind_name().to_ascii_lowercase(),
                    kind.group(),
                    i.meta().name.as_deref().unwrap_or_default()
                )
            })
            .collect()),
        Output::Yaml | Output::Json => documents(items, output),
    }
}

/// Runs `kiln get`.
pub(crate) fn run(args: &GetArgs) -> Result<ExitCode, Error> {
    let (kind, names) = parse_targets(&args.targets)?;
    let text = block_on(async {
        let cluster = args.cluster.connect().await?;
        let now = Timestamp::now();
        let text = match kind {
            Kind::BuildConfig => {
                let mut items: Vec<BuildConfig> = fetch(&cluster, kind, &names).await?;
                if names.is_empty() {
                    items.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
                }
                print(kind, &items, args.output, tables::build_configs)?
            }
            Kind::Build => {
                let mut items: Vec<Build> = fetch(&cluster, kind, &names).await?;
                if names.is_empty() {
                    tables::sort_builds(&mut items);
                }
                print(kind, &items, args.output, |i| tables::builds(i, now))?
            }
            Kind::ImageStream => {
                let mut items: Vec<ImageStream> = fetch(&cluster, kind, &names).await?;
                if names.is_empty() {
                    items.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
                }
                print(kind, &items, args.output, |i| tables::image_streams(i, now))?
            }
        };
        if text.lines().count() <= 1 && args.output == Output::Table && names.is_empty() {
            eprintln!(
                "No {} found in namespace {}.",
                kind.plural(),
                cluster.namespace
            );
            return Ok(String::new());
        }
        Ok(text)
    })?;
    super::write_stdout(&text)?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::super::render::tables::tests::{assert_golden, fixtures, now};
    use super::*;

    #[test]
    fn name_yaml_and_json_outputs_match_their_golden_files() {
        let f = fixtures();
        let configs = |o| print(Kind::BuildConfig, &f.configs, o, tables::build_configs).unwrap();
        let builds = |items: &[Build], o| {
            print(Kind::Build, items, o, |i| tables::builds(i, now())).unwrap()
        };
        let streams = |o| {
            print(Kind::ImageStream, &f.streams, o, |i| {
                tables::image_streams(i, now())
            })
            .unwrap()
        };
        assert_golden(&configs(Output::Name), "get-bc-o-name.txt");
        assert_golden(&builds(&f.builds, Output::Name), "get-builds-o-name.txt");
        assert_golden(&streams(Output::Name), "get-is-o-name.txt");
        // Several objects are a List; one is the object itself.
        assert_golden(&configs(Output::Yaml), "get-bc-o-yaml.yaml");
        assert_golden(
            &builds(&f.builds[..1], Output::Yaml),
            "get-build-o-yaml.yaml",
        );
        assert_golden(&streams(Output::Json), "get-is-o-json.json");
        assert_golden(
            &builds(&f.builds[..1], Output::Json),
            "get-build-o-json.json",
        );
    }

    #[test]
    fn yaml_and_json_outputs_read_back_as_the_objects() {
        let f = fixtures();
        for output in [Output::Yaml, Output::Json] {
            let text = print(Kind::Build, &f.builds, output, |_| String::new()).unwrap();
            assert!(text.contains("kind: List") || text.contains("\"kind\": \"List\""));
            // read_documents unfolds the List into its items.
            let items: Vec<Build> = crate::yaml::read_documents(&text)
                .unwrap()
                .into_iter()
                .map(|i| serde_json::from_value(i).unwrap())
                .collect();
            assert_eq!(items, f.builds, "{output:?}");
            let text = print(Kind::ImageStream, &f.streams[..1], output, |_| {
                String::new()
            })
            .unwrap();
            let one: ImageStream =
                serde_json::from_value(crate::yaml::read_documents(&text).unwrap()[0].clone())
                    .unwrap();
            assert_eq!(one, f.streams[0], "{output:?}");
        }
    }
}
