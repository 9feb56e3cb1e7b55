//! The `harness-guard` binary: parse flags, set up logging, run.
#![forbid(unsafe_code)]

use anyhow::Context;
use clap::Parser;
use harness_guard::config::{self, Cli, Command, LogFormat};
use harness_guard::{app, certs, commands, telemetry};

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    config::runtime(cli.worker_threads).context("cannot start the async runtime")?.block_on(run(cli))
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let log = telemetry::init_tracing(cli.log_format.map(|f| matches!(f, LogFormat::Json)));
    // One crypto provider for the whole process (rustls server, kube client).
    let _ = rustls::crypto::ring::default_provider().install_default();
    match cli.command {
        Command::Serve(args) => {
            let running = app::start(*args, app::shutdown_signal()).await?;
            eprintln!("{}", app::banner(&running));
            let workers = tokio::runtime::Handle::current().metrics().num_workers();
            tracing::info!(webhooks = %running.webhook_addr, health = %running.health_addr, worker_threads = workers, "serving");
            running.done.await.context("server task failed")?;
            telemetry::finish_logs(log);
        }
        Command::Certs(args) => {
            let validity = std::time::Duration::from_secs(args.days * 86_400);
            certs::generate(&args.dns, validity)?.write(&args.out)?;
            eprintln!("wrote ca.crt, ca.key, tls.crt, tls.key to {}", args.out.display());
        }
        Command::Check(args) => exit(commands::check::run(args).await, log),
        Command::Audit(args) => exit(commands::audit(args).await, log),
        Command::Selftest(args) => exit(commands::selftest::run(args).await, log),
        Command::Explain(args) => exit(commands::explain::run(args).await, log),
    }
    Ok(())
}

/// Exits with `code` once the log writer has flushed what it holds (or given up).
fn exit(code: i32, log: Option<telemetry::LogGuard>) -> ! {
    telemetry::finish_logs(log);
    std::process::exit(code)
}
