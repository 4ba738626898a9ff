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
    /// Policy tooling.
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
    },
}

#[derive(Debug, Subcommand)]
enum PolicyCommand {
    /// Print the decision, the rule trace and the mutations for one request, without a daemon.
    Explain(ExplainArgs),
}

#[derive(Debug, clap::Args)]
struct ExplainArgs {
    #[arg(long, short)]
    config: PathBuf,
    /// The caller's client certificate (PEM).
    #[arg(long, conflicts_with_all = ["identity", "role"])]
    cert: Option<PathBuf>,
    /// The caller's certificate CN (other names empty).
    #[arg(long, conflicts_with = "role")]
    identity: Option<String>,
    /// Skip identity mapping and use this role.
    #[arg(long)]
    role: Option<String>,
    #[arg(long)]
    method: String,
    /// The request path with its query, e.g. /v1.41/containers/create?name=x
    #[arg(long)]
    path: String,
    /// A file holding the request body.
    #[arg(long)]
    body: Option<PathBuf>,
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
        Command::Policy {
            command: PolicyCommand::Explain(args),
        } => return explain(args),
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
    // This runtime binds and handles signals; the worker threads server::run starts accept
    // and serve the connections (this runtime does only when none of them could).
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    runtime.block_on(async move {
        let listen = config.listen;
        let state = crate::build_state(config)?;
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("binding {listen}"))?;
        tracing::info!(%listen, upstream = %state.upstream.socket.display(), "dockgate listening");
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

fn explain(args: ExplainArgs) -> ExitCode {
    match explain_inner(&args) {
        Ok((text, allowed)) => {
            print!("{text}");
            if allowed {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(3)
            }
        }
        Err(e) => {
            eprintln!("dockgate: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Returns the explanation text and whether the request would be forwarded.
fn explain_inner(args: &ExplainArgs) -> anyhow::Result<(String, bool)> {
    use crate::identity::{self, Identity};
    use crate::policy::query::Query;
    use crate::policy::{inspect, Decision, RequestView};
    use std::fmt::Write as _;

    let config = Config::load(&args.config, &Overrides::default())?;
    let policy = &config.policy;
    let mut out = String::new();
    let role_name = match (&args.cert, &args.identity, &args.role) {
        (_, _, Some(role)) => Some(role.clone()),
        (Some(cert), _, _) => {
            use rustls_pki_types::pem::PemObject;
            let chain = rustls_pki_types::CertificateDer::pem_file_iter(cert)
                .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                .with_context(|| format!("reading certificate {}", cert.display()))?;
            let Some(der) = chain.first() else {
                anyhow::bail!("{} holds no certificate", cert.display());
            };
            let mut id = Identity::from_der(der)?;
            // The bundle the chain verifies to, now, as the handshake would find it.
            let mut problems = crate::config::Problems::default();
            let Some(cas) = crate::tls::client_cas(&config.tls, &mut problems) else {
                return Err(crate::config::ConfigErrors {
                    source: config.source.clone(),
                    problems: problems.0,
                }
                .into());
            };
            let verified = cas.verify(&chain).map(|i| config.tls.bundle_name(i));
            id.client_ca = verified.iter().flatten().cloned().collect();
            writeln!(
                out,
                "identity: cn={:?} o={:?} ou={:?} san_uri={:?} sha256={}",
                id.cn, id.o, id.ou, id.san_uri, id.fingerprint
            )?;
            match verified {
                Ok(bundle) => writeln!(out, "client_ca: {}", bundle.unwrap_or_default())?,
                Err(why) => {
                    writeln!(
                        out,
                        "client_ca: none\ndecision: DENY (rule tls): the chain does not verify to any tls.client_ca bundle now ({why}); the handshake would refuse it"
                    )?;
                    return Ok((out, false));
                }
            }
            identity::resolve_role(&config.identities, &id, policy)
        }
        (None, Some(cn), _) => {
            let id = Identity {
                cn: Some(cn.clone()),
                ..Identity::default()
            };
            identity::resolve_role(&config.identities, &id, policy)
        }
        (None, None, None) => anyhow::bail!("give one of --cert, --identity or --role"),
    };
    let Some(role) = role_name.as_deref().and_then(|r| policy.role(r)) else {
        writeln!(
            out,
            "role: none\ndecision: DENY 403 (rule identity-role): the identity maps to no role"
        )?;
        return Ok((out, false));
    };
    writeln!(out, "role: {}", role.name)?;
    let (path, raw_query) = match args.path.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (args.path.as_str(), None),
    };
    let endpoint = match crate::route::classify(&args.method, path) {
        Ok(e) => e,
        Err(e) => {
            writeln!(out, "decision: DENY (path): {e}")?;
            return Ok((out, false));
        }
    };
    writeln!(
        out,
        "route: {} (group {})",
        endpoint.route, endpoint.route.group
    )?;
    let query = match Query::parse(raw_query) {
        Ok(q) => q,
        Err(e) => {
            writeln!(out, "decision: REFUSE 400: {e}")?;
            return Ok((out, false));
        }
    };
    let body = match &args.body {
        Some(p) => std::fs::read(p).with_context(|| format!("reading body {}", p.display()))?,
        None => Vec::new(),
    };
    let json = if policy.reads_body(role, &endpoint) {
        match inspect::parse_optional(&body) {
            Ok(j) => j,
            Err(e) => {
                writeln!(out, "decision: REFUSE 400: request body refused: {e}")?;
                return Ok((out, false));
            }
        }
    } else {
        None
    };
    let view = RequestView {
        endpoint: &endpoint,
        query: &query,
        body: json,
    };
    for line in policy.trace(role, &view) {
        writeln!(out, "  {line}")?;
    }
    match policy.decide(role, view) {
        Err(e) => {
            writeln!(out, "decision: REFUSE 400: {e}")?;
            Ok((out, false))
        }
        Ok(Decision::Deny(d)) => {
            writeln!(out, "decision: DENY 403: dockgate: {d}")?;
            Ok((out, false))
        }
        Ok(Decision::Allow(p)) => {
            writeln!(out, "decision: ALLOW ({})", p.grant)?;
            for w in &p.warnings {
                writeln!(out, "  warning: {w}")?;
            }
            for m in &p.mutations {
                writeln!(out, "  mutation: {m}")?;
            }
            if let Some(body) = p.rewritten {
                writeln!(
                    out,
                    "forwarded body: {}",
                    String::from_utf8_lossy(&body.to_vec())
                )?;
            }
            Ok((out, true))
        }
    }
}

fn init_logging(format: LogFormat, level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("DOCKGATE_LOG")
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(level))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"))
        // Audit records that go to the log (no audit.path, or the file failing) are not
        // diagnostics: a quieter log level must not drop them.
        .add_directive(
            "dockgate::audit=info"
                .parse()
                .expect("a static directive parses"),
        );
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
