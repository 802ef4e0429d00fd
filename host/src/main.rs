//! `bridle-host`: the untrusted host proxy in front of a Bridle enclave.

use bridle_common::address::SocketAddress;
use bridle_host::{AppState, HostConfig};
use clap::{Parser, ValueEnum};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

/// Relay agents' and owners' requests to a Bridle enclave; store what is relayed; serve
/// HTTP, Ethereum JSON-RPC and Prometheus metrics. Holds no secrets.
#[derive(Debug, Parser)]
#[command(name = "bridle-host", version)]
struct Args {
    /// Enclave socket: `unix:/path/to/socket` or `vsock:CID:PORT`.
    #[arg(long, env = "BRIDLE_ENCLAVE")]
    enclave: SocketAddress,
    /// HTTP listen address.
    #[arg(long, env = "BRIDLE_LISTEN", default_value = bridle_host::DEFAULT_LISTEN)]
    listen: String,
    /// SQLite database path.
    #[arg(long, env = "BRIDLE_DB", default_value = bridle_host::DEFAULT_DB)]
    db: PathBuf,
    /// Log format.
    #[arg(long, env = "BRIDLE_LOG_FORMAT", value_enum, default_value = "text")]
    log_format: LogFormat,
    /// Enclave connections in the pool (concurrent enclave calls).
    #[arg(long, env = "BRIDLE_POOL", default_value_t = bridle_host::enclave_client::DEFAULT_POOL_SIZE)]
    pool: usize,
    /// Per enclave call timeout, seconds.
    #[arg(long, env = "BRIDLE_CALL_TIMEOUT", default_value_t = 10)]
    call_timeout: u64,
    /// Largest HTTP request body, bytes.
    #[arg(long, env = "BRIDLE_BODY_LIMIT", default_value_t = bridle_host::DEFAULT_BODY_LIMIT)]
    body_limit: usize,
    /// Largest enclave frame, bytes.
    #[arg(long, env = "BRIDLE_MAX_FRAME", default_value_t = bridle_common::frame::DEFAULT_MAX_FRAME)]
    max_frame: usize,
    /// Seconds between background enclave status probes (0 disables).
    #[arg(long, env = "BRIDLE_PROBE_INTERVAL", default_value_t = 5)]
    probe_interval: u64,
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    use std::io::IsTerminal as _;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    init_logging(args.log_format);

    let mut config = HostConfig::new(args.enclave.clone());
    config.db_path = args.db.clone();
    config.pool_size = args.pool.max(1);
    config.call_timeout = Duration::from_secs(args.call_timeout.max(1));
    config.body_limit = args.body_limit;
    config.max_frame = args.max_frame;
    config.probe_interval = (args.probe_interval > 0).then(|| Duration::from_secs(args.probe_interval));

    let state = AppState::open(config)?;
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", args.listen))?;
    let addr = listener.local_addr()?;
    tracing::info!(listen = %addr, enclave = %args.enclave, db = %args.db.display(), "bridle-host starting");
    println!("bridle-host listening on http://{addr}");
    use std::io::Write as _;
    let _ = std::io::stdout().flush();
    bridle_host::run(state, listener, bridle_host::shutdown_signal()).await?;
    tracing::info!("bridle-host stopped");
    Ok(())
}
