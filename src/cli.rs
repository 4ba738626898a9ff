//! The command line: arguments → one library call per subcommand, and the only place that
//! prints errors for people (the whole cause chain on one line).
//!
//! It must not hold logic of its own beyond wiring.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::config::{Config, LogFormat, Overrides, Problems};

#[derive(Debug, Parser)]
#[command(
    name = "dockgate",
    version,
    about = "An authenticating mTLS reverse proxy for the Docker Engine API"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the proxy.
    Serve {
        #[arg(long, short)]
        config: PathBuf,
        /// Listen address, overriding `listen:` (e.g. 127.0.0.1:2376).
        #[arg(long)]
        listen: Option<SocketAddr>,
        /// Docker socket, overriding `upstream:` (e.g. unix:///var/run/docker.sock).
        #[arg(long)]
        upstream: Option<String>,
        /// Log as JSON lines instead of text.
        #[arg(long)]
        log_json: bool,
    },
    /// Validate everything `serve` would load; one line per problem, non-zero exit on any.
    Check {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Certificate tooling.
    Certs {
        #[command(subcommand)]
        command: CertsCommand,
    },
}

#[derive(Debug, Subcommand)]
enum CertsCommand {
    /// Regenerate the throwaway example PKI (CA, localhost server, admin/dev/monitor clients).
    Example {
        #[arg(long, default_value = "certs-example")]
        out: PathBuf,
    },
}

/// Runs the command line and returns the process exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve {
            config,
            listen,
            upstream,
            log_json,
        } => serve(
            config,
            Overrides {
                listen,
                upstream,
                log_format: log_json.then_some(LogFormat::Json),
            },
        ),
        Command::Check { config } => return check(config),
        Command::Certs {
            command: CertsCommand::Example { out },
        } => crate::certs::write_example(&out)
            .with_context(|| format!("writing the example PKI to {}", out.display())),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dockgate: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn serve(path: PathBuf, overrides: Overrides) -> anyhow::Result<()> {
    let config = Config::load(&path, &overrides)?;
    init_logging(config.log.format, &config.log.level);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    runtime.block_on(async move {
        let listen = config.listen;
        let state = crate::build_state(config)?;
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("binding {listen}"))?;
        tracing::info!(%listen, upstream = %state.upstream.socket().display(), "dockgate listening");
        crate::server::run(listener, state, shutdown_signal()).await;
        tracing::info!("dockgate stopped");
        Ok(())
    })
}

fn check(path: PathBuf) -> ExitCode {
    let config = match Config::load(&path, &Overrides::default()) {
        Ok(c) => c,
        Err(errors) => {
            println!("{errors}");
            return ExitCode::FAILURE;
        }
    };
    let mut problems = Problems::default();
    crate::tls::server_config(&config.tls, &mut problems);
    if let Some(audit) = &config.audit.path {
        let dir = audit.parent().filter(|p| !p.as_os_str().is_empty());
        if dir.is_some_and(|d| !d.is_dir()) {
            problems.push(
                "audit.path",
                format_args!("directory of {} does not exist", audit.display()),
            );
        }
    }
    if problems.0.is_empty() {
        println!("{}: ok", path.display());
        ExitCode::SUCCESS
    } else {
        for p in &problems.0 {
            println!("{}: {p}", path.display());
        }
        ExitCode::FAILURE
    }
}

fn init_logging(format: LogFormat, level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("DOCKGATE_LOG")
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(level))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Completes on SIGTERM or SIGINT.
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let term = signal(SignalKind::terminate());
    let int = signal(SignalKind::interrupt());
    match (term, int) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => {
            // Without signal handlers we can still stop on Ctrl-C.
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
