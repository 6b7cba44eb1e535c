//! `kiln convert`: reads OpenShift manifests and prints kiln manifests.

use std::io::Read;
use std::process::ExitCode;

use clap::Args;

use super::Error;
use crate::convert;

/// Arguments of `kiln convert`.
#[derive(Debug, Args)]
pub(crate) struct ConvertArgs {
    /// The file to read (YAML or JSON; one document, a stream, or a List); `-` reads stdin.
    #[arg(short = 'f', long = "filename", default_value = "-")]
    pub(crate) file: String,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value = "yaml")]
    pub(crate) output: OutputFormat,
    /// A Template parameter, `NAME=VALUE` (repeatable; wins over --param-file), as `oc process -p`.
    #[arg(short = 'p', long = "param", value_parser = parse_param)]
    pub(crate) params: Vec<(String, String)>,
    /// A file of `NAME=VALUE` lines with Template parameters (repeatable), as `oc process --param-file`.
    #[arg(long = "param-file")]
    pub(crate) param_files: Vec<String>,
    /// Treat warnings (fields kiln keeps but does not act on) as errors: nothing is written.
    #[arg(long)]
    pub(crate) strict: bool,
}

fn parse_param(text: &str) -> Result<(String, String), String> {
    crate::template::parse_param(text).ok_or_else(|| format!("expected NAME=VALUE, got {text:?}"))
}

/// The format `kiln convert` writes.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub(crate) enum OutputFormat {
    /// A YAML stream.
    Yaml,
    /// A JSON `List`.
    Json,
}

/// Runs `kiln convert`; problems go to stderr with a non-zero exit and nothing on stdout.
pub(crate) fn run(args: &ConvertArgs) -> Result<ExitCode, Error> {
    let text = if args.file == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|source| Error::Io {
                context: "reading standard input".into(),
                source,
            })?;
        text
    } else {
        std::fs::read_to_string(&args.file).map_err(|source| Error::Io {
            context: format!("reading {}", args.file),
            source,
        })?
    };
    let docs = crate::yaml::read_documents(&text).map_err(|error| convert::Error::Read {
        source_name: args.file.clone(),
        error,
    })?;
    let mut options = convert::Options::default();
    for file in &args.param_files {
        let text = std::fs::read_to_string(file).map_err(|source| Error::Io {
            context: format!("reading {file}"),
            source,
        })?;
        let params = crate::template::parse_param_file(&text).map_err(|e| Error::Io {
            context: format!("reading {file}"),
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
        })?;
        options.params.extend(params);
    }
    options.params.extend(args.params.iter().cloned());
    let conversion = convert::convert(docs, &options, &mut crate::template::os_random)
        .map_err(convert::Error::Unconvertible)?;
    if args.strict && !conversion.warnings.is_empty() {
        return Err(convert::Error::Unconvertible(conversion.warnings).into());
    }
    for warning in &conversion.warnings {
        eprintln!("warning: {warning}");
    }
    let converted = conversion.documents;
    let rendered = match args.output {
        OutputFormat::Yaml => {
            crate::yaml::write_documents(&converted).map_err(convert::Error::Write)?
        }
        OutputFormat::Json => {
            let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": converted});
            format!("{list:#}\n")
        }
    };
    super::write_stdout(&rendered)?;
    Ok(ExitCode::SUCCESS)
}
