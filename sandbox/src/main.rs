//! The `kiln-sandbox` binary.
#![forbid(unsafe_code)]

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};
use kiln_sandbox::{serve, ApiServer, Authorization, ServerConfig};

mod kubelet_cli;

/// A stand-in for kube-apiserver and a kubelet, for kiln's tests and demo.
#[derive(Parser)]
#[command(name = "kiln-sandbox", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the fake API over HTTP on 127.0.0.1.
    Serve(ServeArgs),
}

#[derive(Args)]
struct ServeArgs {
    /// Address to listen on (port 0 picks a free port; the bound address is printed).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: String,
    /// Write a kubeconfig for this server to this file.
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// Create every object of the YAML files in this directory at startup (e.g. `crds/`).
    #[arg(long)]
    preload: Vec<PathBuf>,
    /// Reject Pods whose ServiceAccount does not exist (the apiserver's ServiceAccount admission).
    #[arg(long)]
    service_account_admission: bool,
    /// Evaluate CRD `x-kubernetes-validations` (CEL) rules.
    #[arg(long)]
    cel_rules: bool,
    /// How requests are authorized: `always-allow`, or `rbac` (bearer tokens from the
    /// TokenRequest API or the kubeconfig's admin token; RBAC from the stored roles).
    #[arg(long, value_enum, default_value = "always-allow")]
    authorization: AuthorizationArg,
    /// Enforce Pod Security admission from the `pod-security.kubernetes.io/enforce` label of
    /// each Pod's namespace.
    #[arg(long)]
    pod_security: bool,
    /// Serve HTTPS with the sandbox's fixed test certificate (implied by `--authorization rbac`:
    /// kubectl sends a kubeconfig's token only over TLS); the kubeconfig trusts its CA.
    #[arg(long)]
    tls: bool,
    #[command(flatten)]
    kubelet: kubelet_cli::KubeletArgs,
}

#[derive(Clone, Copy, ValueEnum)]
enum AuthorizationArg {
    AlwaysAllow,
    Rbac,
}

async fn serve_command(args: ServeArgs) -> Result<(), serve::ServeError> {
    let tls = args.tls || matches!(args.authorization, AuthorizationArg::Rbac);
    let server = ApiServer::with_config(ServerConfig {
        service_account_admission: args.service_account_admission,
        cel_rules: args.cel_rules,
        authorization: match args.authorization {
            AuthorizationArg::AlwaysAllow => Authorization::AlwaysAllow,
            AuthorizationArg::Rbac => Authorization::Rbac,
        },
        pod_security: args.pod_security,
        ..ServerConfig::default()
    });
    for dir in &args.preload {
        let count = serve::preload(&server, dir)?;
        tracing::info!(count, dir = %dir.display(), "preloaded manifests");
    }
    let listener = serve::bind(&args.listen).await?;
    let addr = listener
        .local_addr()
        .map_err(|source| serve::ServeError::Io {
            context: "reading the bound address".into(),
            source,
        })?;
    if let Some(path) = &args.kubeconfig {
        serve::write_kubeconfig_for(path, addr, tls)?;
    }
    let mut stdout = std::io::stdout();
    // The address line is the readiness signal for scripts and tests.
    let kubelet = kubelet_cli::start(&args.kubelet, &server)?;
    let scheme = if tls { "https" } else { "http" };
    let _ = writeln!(stdout, "listening on {scheme}://{addr}");
    let _ = stdout.flush();
    match kubelet {
        None => serve::run_with(server, listener, tls).await,
        Some(kubelet) => {
            // With a kubelet, SIGTERM/SIGINT stop it first: containers killed, Pod dirs removed.
            let result = tokio::select! {
                result = serve::run_with(server, listener, tls) => result,
                () = kubelet_cli::shutdown_signal() => Ok(()),
            };
            kubelet.stop().await;
            result
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve_command(args).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kiln-sandbox: {e}");
            ExitCode::FAILURE
        }
    }
}
