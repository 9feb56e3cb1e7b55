//! The `harness-guard` binary: parse flags, set up logging, run.
#![forbid(unsafe_code)]

use anyhow::Context;
use clap::Parser;
use harness_guard::config::{Cli, Command, LogFormat};
use harness_guard::{app, certs, commands, telemetry};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    telemetry::init_tracing(cli.log_format.map(|f| matches!(f, LogFormat::Json)));
    // One crypto provider for the whole process (rustls server, kube client).
    let _ = rustls::crypto::ring::default_provider().install_default();
    match cli.command {
        Command::Serve(args) => {
            let running = app::start(*args, app::shutdown_signal()).await?;
            eprintln!("{}", app::banner(&running));
            running.done.await.context("server task failed")?;
        }
        Command::Certs(args) => {
            let validity = std::time::Duration::from_secs(args.days * 86_400);
            certs::generate(&args.dns, validity)?.write(&args.out)?;
            eprintln!("wrote ca.crt, ca.key, tls.crt, tls.key to {}", args.out.display());
        }
        Command::Check(args) => std::process::exit(commands::check::run(args).await),
        Command::Audit(args) => std::process::exit(commands::audit(args).await),
    }
    Ok(())
}
