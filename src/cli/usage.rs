//! Command-line mistakes as one line (clap's own report is several), and the examples shown by
//! `--help` of the verbs that have no module of their own here.

use std::process::ExitCode;

/// `kiln crd --help` examples.
pub(crate) const CRD_EXAMPLES: &str = "Examples:
  # Install the CRDs
  kiln crd | kubectl apply -f -";

/// `kiln convert --help` examples.
pub(crate) const CONVERT_EXAMPLES: &str = "Examples:
  # Convert exported OpenShift objects
  oc get bc,is -o yaml | kiln convert -f - > kiln.yaml

  # Process a Template with parameters first, as `oc process` does
  kiln convert -f template.yaml -p NAME=web -o json";

/// `kiln build --help` examples.
pub(crate) const BUILD_EXAMPLES: &str = "Examples:
  # Build a BuildConfig on this machine into an OCI layout
  kiln build -f buildconfig.yaml

  # Push to a plain-HTTP registry
  kiln build -f buildconfig.yaml --registry localhost:5000 --insecure-registry localhost:5000";

/// `kiln controller --help` examples.
pub(crate) const CONTROLLER_EXAMPLES: &str = "Examples:
  # Run the operator against the current kubeconfig context
  kiln controller --registry registry.example.com --builder-image ghcr.io/example/kiln:1";

/// `kiln builder --help` examples.
pub(crate) const BUILDER_EXAMPLES: &str = "Examples:
  # What the build Pod runs (the controller sets BUILD and the mounts)
  kiln builder clone
  kiln builder build";

/// `kiln webhooks --help` examples.
pub(crate) const WEBHOOKS_EXAMPLES: &str = "Examples:
  # Serve only the webhook endpoints
  kiln webhooks --listen 0.0.0.0:8080";

/// Reports a command-line error from clap and returns the exit code: help and version go to
/// stdout with 0; a mistake becomes one line on stderr with 2.
pub fn report(err: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    match err.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = err.print();
            ExitCode::SUCCESS
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = err.print();
            ExitCode::from(2)
        }
        _ => {
            eprintln!("{}", one_line(&err.render().to_string()));
            ExitCode::from(2)
        }
    }
}

/// clap's report in one line: its first line, a suggestion it made, and where the help is.
pub(crate) fn one_line(rendered: &str) -> String {
    let mut lines = rendered.lines().map(str::trim).filter(|l| !l.is_empty());
    let first = lines.next().unwrap_or("error: invalid command line");
    let mut text = if first.starts_with("error:") {
        first.to_string()
    } else {
        format!("error: {first}")
    };
    let rest: Vec<&str> = lines.collect();
    if text.ends_with(':') {
        // "the following required arguments were not provided:" lists them on the next lines.
        let listed: Vec<&str> = rest
            .iter()
            .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("tip:"))
            .copied()
            .collect();
        text.push(' ');
        text.push_str(&listed.join(", "));
    }
    if let Some(tip) = rest.iter().find_map(|l| l.strip_prefix("tip: ")) {
        text.push_str(&format!(" ({tip})"));
    }
    let verb = rest
        .iter()
        .find_map(|l| l.strip_prefix("Usage: "))
        .map(|usage| {
            usage
                .split_whitespace()
                .take_while(|w| !w.starts_with(['[', '<', '-']))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "kiln".into());
    text.push_str(&format!("; see `{verb} --help`"));
    text
}

/// Makes a panic print one line (no backtrace) before the process exits with 101.
pub fn quiet_panics() {
    std::panic::set_hook(Box::new(|info| {
        let what = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown".into());
        let place = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        eprintln!(
            "error: internal error{place}: {}; please report it",
            super::cluster::one_line(&what)
        );
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clap_reports_become_one_line() {
        let rendered = "error: unexpected argument '--folow' found\n\n  tip: a similar argument exists: '--follow'\n\nUsage: kiln start-build --follow <BUILD_CONFIG>\n\nFor more information, try '--help'.\n";
        assert_eq!(
            one_line(rendered),
            "error: unexpected argument '--folow' found (a similar argument exists: '--follow'); see `kiln start-build --help`"
        );
        assert_eq!(
            one_line("error: unrecognized subcommand 'frob'\n\nUsage: kiln <COMMAND>\n"),
            "error: unrecognized subcommand 'frob'; see `kiln --help`"
        );
        assert_eq!(one_line("oops"), "error: oops; see `kiln --help`");
    }

    #[test]
    fn real_clap_errors_are_one_line_with_exit_code_2() {
        use clap::Parser;
        for argv in [
            vec!["kiln", "start-build"],
            vec!["kiln", "start-build", "app", "--folow"],
            vec!["kiln", "logs", "bc/app", "--version", "x"],
            vec!["kiln", "frob"],
            vec!["kiln", "completion", "tcsh"],
            vec!["kiln", "get", "bc", "-o", "yaml", "--bogus"],
        ] {
            let err = super::super::Cli::try_parse_from(&argv).unwrap_err();
            let line = one_line(&err.render().to_string());
            assert!(!line.contains('\n'), "{argv:?}: {line}");
            assert!(line.starts_with("error: "), "{argv:?}: {line}");
            assert!(line.contains("--help`"), "{argv:?}: {line}");
            assert_eq!(err.exit_code(), 2, "{argv:?}");
        }
    }
}
