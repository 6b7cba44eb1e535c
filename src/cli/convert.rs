//! `kiln convert`: reads OpenShift manifests and prints kiln manifests.

use std::io::Read;
use std::process::ExitCode;

use clap::Args;

use super::Error;
use crate::convert::{self, convert_documents};

/// Arguments of `kiln convert`.
#[derive(Debug, Args)]
pub struct ConvertArgs {
    /// The file to read (YAML or JSON; one document, a stream, or a List); `-` reads stdin.
    #[arg(short = 'f', long = "filename", default_value = "-")]
    pub file: String,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value = "yaml")]
    pub output: OutputFormat,
}

/// The format `kiln convert` writes.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum OutputFormat {
    /// A YAML stream.
    Yaml,
    /// A JSON `List`.
    Json,
}

/// Runs `kiln convert`; problems go to stderr with a non-zero exit and nothing on stdout.
pub fn run(args: &ConvertArgs) -> Result<ExitCode, Error> {
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
    let converted = convert_documents(docs).map_err(convert::Error::Unconvertible)?;
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
