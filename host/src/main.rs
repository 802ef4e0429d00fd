//! `bridle-host`: the untrusted host proxy in front of a Bridle enclave.
//!
//! Settings come from flags, environment variables and a TOML config file
//! (`--config host.toml`), in that order of precedence, then built-in defaults; see
//! [`bridle_host::config`] and `examples/host.toml`.

use bridle_host::config::{Layer, LogFormat, Settings, Source};
use bridle_host::AppState;
use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser};
use std::path::PathBuf;

/// Relay agents' and owners' requests to a Bridle enclave; store what is relayed; serve
/// HTTP, Ethereum JSON-RPC and Prometheus metrics. Holds no secrets.
///
/// Every setting can also be given as an environment variable (shown below) or as a key of
/// the TOML file named by --config (the flag's name with `_` for `-`). Precedence: flag >
/// environment variable > config file > default.
#[derive(Debug, Parser)]
#[command(name = "bridle-host", version)]
struct Args {
    /// TOML configuration file (see examples/host.toml).
    #[arg(long, env = "BRIDLE_CONFIG")]
    config: Option<PathBuf>,
    /// Print the effective configuration, and where each value came from, as JSON; then exit.
    #[arg(long)]
    print_config: bool,
    /// Enclave socket: `unix:/path/to/socket`, `vsock:CID:PORT`, or `vsock-uds:PATH:PORT` (a
    /// VM's vsock port through a hybrid-vsock Unix socket, e.g. vhost-device-vsock's
    /// `--uds-path`). Required (here, in the environment or in the config file).
    #[arg(long, env = "BRIDLE_ENCLAVE")]
    enclave: Option<String>,
    /// HTTP listen address [default: 127.0.0.1:8547].
    #[arg(long, env = "BRIDLE_LISTEN")]
    listen: Option<String>,
    /// SQLite database path [default: bridle-host.sqlite]. The default storage: one file,
    /// one host.
    #[arg(long, env = "BRIDLE_DB")]
    db: Option<PathBuf>,
    /// Store in PostgreSQL instead of SQLite: `postgres://USER[:PASSWORD]@HOST[:PORT]/DB`
    /// (also `postgresql://`; `?host=/run/postgresql` for a Unix socket; no TLS: keep the
    /// server on a private network). `sqlite:PATH` names a SQLite file. Several hosts, each
    /// in front of its own enclave, may share one database: sessions, policies, events,
    /// sweeps and audit entries of all of them. The store is untrusted (the enclave checks
    /// everything); whoever can write the database can change what the hosts report, not
    /// what the enclaves sign. The password is never printed. Not with --db.
    #[arg(long, env = "BRIDLE_DATABASE_URL", hide_env_values = true, value_name = "URL")]
    database_url: Option<String>,
    /// This host's name in a shared database: it records which enclave identity the host
    /// fronts, so that an enclave restart marks lost only that enclave's sessions
    /// [default: HOSTNAME/ENCLAVE].
    #[arg(long, env = "BRIDLE_HOST_ID")]
    host_id: Option<String>,
    /// Log format [default: text].
    #[arg(long, env = "BRIDLE_LOG_FORMAT", value_enum)]
    log_format: Option<LogFormat>,
    /// Enclave connections in the pool [default: 8; a cluster host: at most 24].
    #[arg(long, env = "BRIDLE_POOL")]
    pool: Option<usize>,
    /// Enclave calls in flight on one connection, 1–64 [default: 4; a cluster host: 8].
    #[arg(long, env = "BRIDLE_PIPELINE")]
    pipeline: Option<usize>,
    /// Per enclave call timeout, seconds [default: 10].
    #[arg(long, env = "BRIDLE_CALL_TIMEOUT")]
    call_timeout: Option<u64>,
    /// Largest HTTP request body, bytes [default: 1048576].
    #[arg(long, env = "BRIDLE_BODY_LIMIT")]
    body_limit: Option<usize>,
    /// Largest enclave frame, bytes [default: 1048576].
    #[arg(long, env = "BRIDLE_MAX_FRAME")]
    max_frame: Option<usize>,
    /// Connections the public listener serves at once from one source address (IPv6: its
    /// /64); 0: no such bound [default: 64].
    #[arg(long, env = "BRIDLE_CONNECTIONS_PER_SOURCE")]
    connections_per_source: Option<usize>,
    /// Comma-separated addresses the per-source bound does not apply to: a proxy in front
    /// of the host [default: 127.0.0.1,::1].
    #[arg(long, env = "BRIDLE_CONNECTIONS_PER_SOURCE_EXEMPT")]
    connections_per_source_exempt: Option<String>,
    /// Seconds between background enclave status probes; 0 disables [default: 5].
    #[arg(long, env = "BRIDLE_PROBE_INTERVAL")]
    probe_interval: Option<u64>,
    /// Enclave cluster (README, "High availability"): listen here for the other nodes'
    /// hosts (e.g. 0.0.0.0:8550). The enclave must run with --cluster. Only sealed enclave
    /// traffic and forwarded calls arrive here: open it to the other hosts only.
    #[arg(long, env = "BRIDLE_CLUSTER_LISTEN", value_name = "ADDR")]
    cluster_listen: Option<String>,
    /// Cluster: the URL the other hosts reach this one at (e.g. http://10.0.1.5:8550);
    /// by default `http://` the address the cluster listener bound, when `--cluster-listen`
    /// is one IP address (not 0.0.0.0 or ::).
    #[arg(long, env = "BRIDLE_CLUSTER_ADVERTISE", value_name = "URL")]
    cluster_advertise: Option<String>,
    /// Cluster: other nodes' hosts to join through, comma-separated URLs.
    #[arg(long, env = "BRIDLE_CLUSTER_SEEDS", value_name = "URLS")]
    cluster_seeds: Option<String>,
    /// Cluster: found a new cluster with this node (the first node only, once).
    #[arg(long, env = "BRIDLE_CLUSTER_BOOTSTRAP")]
    cluster_bootstrap: bool,
    /// Cluster: the local IP address this host's connections to the other hosts come from
    /// [default: the system's choice].
    #[arg(long, env = "BRIDLE_CLUSTER_SOURCE_ADDRESS", value_name = "IP")]
    cluster_source_address: Option<String>,
    /// Sweeps that run by themselves: Ethereum JSON-RPC URLs (comma-separated, one per
    /// chain). The host then asks the enclave to revoke approvals past their lifetime (and
    /// every outstanding one of a revoked, suspended or ended session), with nonces and fees
    /// from the node — the enclave checks them against the policy's gas caps —, broadcasts
    /// the revocations, follows them to their receipts and bumps their fees when stuck.
    #[arg(long, env = "BRIDLE_SWEEP_RPC", value_name = "URLS")]
    sweep_rpc: Option<String>,
    /// Seconds between the sweeper's looks at every session [default: 30].
    #[arg(long, env = "BRIDLE_SWEEP_INTERVAL")]
    sweep_interval: Option<u64>,
    /// Seconds a broadcast revocation may stay unmined before it is re-signed at the same
    /// nonce with 12.5 % higher fees [default: 120].
    #[arg(long, env = "BRIDLE_SWEEP_BUMP_AFTER")]
    sweep_bump_after: Option<u64>,
    /// Days the host keeps its events (requests and refusals, for operators; the enclave's
    /// signed audit log is kept whole); 0 keeps them whatever their age [default: 90].
    #[arg(long, env = "BRIDLE_EVENTS_MAX_AGE_DAYS", value_name = "DAYS")]
    events_max_age_days: Option<u64>,
    /// The most events the host keeps, the newest; 0 keeps any number [default: 10000000].
    #[arg(long, env = "BRIDLE_EVENTS_MAX_ROWS", value_name = "N")]
    events_max_rows: Option<u64>,
    /// Days the host keeps a session after it ended (revoked, lost, or past its validity):
    /// then it deletes the session's row, policy records and signed revocations, once the
    /// enclave says it no longer holds the session (events and the audit log are kept by
    /// their own rules); 0 keeps sessions for good [default: 30].
    #[arg(long, env = "BRIDLE_SESSION_RETENTION_DAYS", value_name = "DAYS")]
    session_retention_days: Option<u64>,
    /// Days the host keeps its copy of the enclave's audit log, by when each entry was
    /// logged: the oldest entries of each chain are deleted (never the last one stored), and
    /// verifiers check the log from the first entry kept (`bridle verify audit --from-seq`);
    /// 0 keeps every entry for good [default: 0].
    #[arg(long, env = "BRIDLE_AUDIT_RETENTION_DAYS", value_name = "DAYS")]
    audit_retention_days: Option<u64>,
}

impl Args {
    fn layer(&self) -> Layer {
        Layer {
            enclave: self.enclave.clone(),
            listen: self.listen.clone(),
            db: self.db.clone(),
            database_url: self.database_url.clone(),
            host_id: self.host_id.clone(),
            log_format: self.log_format,
            pool: self.pool,
            pipeline: self.pipeline,
            call_timeout: self.call_timeout,
            body_limit: self.body_limit,
            max_frame: self.max_frame,
            probe_interval: self.probe_interval,
            connections_per_source: self.connections_per_source,
            connections_per_source_exempt: self.connections_per_source_exempt.clone(),
            cluster_listen: self.cluster_listen.clone(),
            cluster_advertise: self.cluster_advertise.clone(),
            cluster_seeds: self.cluster_seeds.clone(),
            cluster_bootstrap: self.cluster_bootstrap.then_some(true),
            cluster_source_address: self.cluster_source_address.clone(),
            sweep_rpc: self.sweep_rpc.clone(),
            sweep_interval: self.sweep_interval,
            sweep_bump_after: self.sweep_bump_after,
            events_max_age_days: self.events_max_age_days,
            events_max_rows: self.events_max_rows,
            session_retention_days: self.session_retention_days,
            audit_retention_days: self.audit_retention_days,
        }
    }
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

/// Flags, environment and file → the effective settings.
fn settings(args: &Args, matches: &ArgMatches) -> Result<Settings, String> {
    let file = match &args.config {
        Some(p) => Layer::load(p)?,
        None => Layer::default(),
    };
    let source = |name: &str| match matches.value_source(name) {
        Some(ValueSource::EnvVariable) => Source::Env,
        _ => Source::Flag,
    };
    Settings::resolve(&args.layer(), source, &file, args.config.clone())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let matches = Args::command().get_matches();
    let args = Args::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let settings = match settings(&args, &matches) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("bridle-host: {e}");
            std::process::exit(2);
        }
    };
    if args.print_config {
        println!("{}", serde_json::to_string_pretty(&settings.to_json())?);
        return Ok(());
    }
    init_logging(settings.log_format);

    // The cluster listener first: an advertised URL left to it is derived from the port it
    // bound, which the state's cluster link takes.
    let mut config = settings.host_config();
    let cluster = bridle_host::bind_cluster(&mut config).await?;
    let state = AppState::open(config)?;
    let listener = tokio::net::TcpListener::bind(&settings.listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", settings.listen))?;
    let addr = listener.local_addr()?;
    tracing::info!(
        listen = %addr,
        enclave = %settings.enclave,
        database = %settings.database,
        host_id = %settings.host_id,
        config = ?settings.config_file,
        "bridle-host starting"
    );
    // Handlers first, then announce readiness (tests and supervisors act on that line).
    let shutdown = bridle_host::shutdown_signal();
    // Every socket is bound before this line. The cluster listener's address comes first on
    // a line of its own (`--cluster-listen 127.0.0.1:0` picks a free port; tests use that).
    if let Some(l) = &cluster {
        println!("bridle-host cluster listener on {}", l.local_addr()?);
    }
    println!("bridle-host listening on http://{addr}");
    use std::io::Write as _;
    let _ = std::io::stdout().flush();
    bridle_host::run_on(state, listener, cluster, shutdown).await?;
    tracing::info!("bridle-host stopped");
    Ok(())
}
