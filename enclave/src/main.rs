//! `bridle-enclave`: serve the enclave socket.

use bridle_common::address::SocketAddress;
use bridle_enclave::clock::{Clock, OffsetFileClock, SystemClock};
use bridle_enclave::server::{serve, ServerConfig};
use bridle_enclave::{Config, Enclave};
use clap::Parser;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Parser, Debug)]
#[command(name = "bridle-enclave", version, about = "Bridle enclave: sign-if-allowed over one socket")]
struct Args {
    /// Unix socket path (development).
    #[arg(long, conflicts_with = "vsock", required_unless_present = "vsock")]
    unix: Option<PathBuf>,
    /// vsock CID:PORT (Nitro).
    #[arg(long, value_name = "CID:PORT")]
    vsock: Option<String>,
    /// Largest accepted frame, bytes.
    #[arg(long, default_value_t = bridle_common::frame::DEFAULT_MAX_FRAME)]
    max_frame: usize,
    /// Agent stamp time window, seconds (±).
    #[arg(long, default_value_t = 60)]
    stamp_window: u64,
    /// Development mode: mock NSM, and development-only options below.
    #[arg(long)]
    dev: bool,
    /// Development only: a file holding a clock offset in seconds (tests move time).
    #[arg(long, requires = "dev")]
    dev_clock_offset_file: Option<PathBuf>,
}

fn main() {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("BRIDLE_LOG").unwrap_or_else(|_| "info".into()))
        .init();

    let addr = match (&args.unix, &args.vsock) {
        (Some(p), _) => SocketAddress::Unix(p.clone()),
        (None, Some(v)) => match format!("vsock:{v}").parse() {
            Ok(a) => a,
            Err(e) => {
                eprintln!("bridle-enclave: {e}");
                std::process::exit(2);
            }
        },
        (None, None) => unreachable_args(),
    };
    let clock: Box<dyn Clock> = match &args.dev_clock_offset_file {
        Some(p) => Box::new(OffsetFileClock(p.clone())),
        None => Box::new(SystemClock),
    };
    if !args.dev {
        tracing::warn!("no NSM provider configured: attestation is unavailable");
    }
    let config = Config { stamp_window: args.stamp_window, ..Config::default() };
    let enclave = Arc::new(Enclave::new(clock, None, config));
    tracing::info!(identity = %enclave.identity_address(), "enclave identity generated");

    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("bridle-enclave: cannot start runtime: {e}");
            std::process::exit(1);
        }
    };
    let cfg = ServerConfig { max_frame: args.max_frame, ..ServerConfig::default() };
    if let Err(e) = rt.block_on(serve(enclave, addr, cfg)) {
        eprintln!("bridle-enclave: {e}");
        std::process::exit(1);
    }
}

fn unreachable_args() -> SocketAddress {
    eprintln!("bridle-enclave: give --unix PATH or --vsock CID:PORT");
    std::process::exit(2)
}
