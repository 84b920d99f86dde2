//! The `minimax-connector` binary: loads the configuration, starts the service.

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use minimax_connector::config::{default_config_dir, Role, Settings};

// Intake allocates per request (the body's JSON tree, the event, the job payload) on
// several threads; mimalloc keeps that cheap where glibc's allocator was a fifth of
// the CPU time under load (docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser, Debug)]
#[command(version, about = "Books webshop sales into Minimax")]
struct Args {
    /// Extra configuration file, read after config/default.toml and config/local.toml.
    #[arg(long, env = "MMC_CONFIG")]
    config: Option<PathBuf>,
    /// Directory holding default.toml (default: ./config, or MMC_CONFIG_DIR).
    #[arg(long)]
    config_dir: Option<PathBuf>,
    /// Run intake, workers or both (overrides `role` in the configuration).
    #[arg(long, value_enum)]
    role: Option<Role>,
    /// Port to listen on (overrides server.port).
    #[arg(long)]
    port: Option<u16>,
    /// Validate the configuration and exit.
    #[arg(long)]
    check_config: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let dir = args.config_dir.unwrap_or_else(default_config_dir);
    let mut settings = Settings::load(&dir, args.config.as_deref())
        .with_context(|| format!("loading configuration from {}", dir.display()))?;
    if let Some(role) = args.role {
        settings.role = role;
    }
    if let Some(port) = args.port {
        settings.server.port = port;
    }
    if args.check_config {
        println!("configuration OK");
        return Ok(());
    }
    minimax_connector::telemetry::init(&settings.telemetry);
    let app = minimax_connector::startup::Application::build(settings).await?;
    app.run_until_stopped().await
}
