//! `bridle-enclave`: serve the enclave socket.

use bridle_attestation::{MockNsm, NsmProvider, RealNsm};
use bridle_common::address::SocketAddress;
use bridle_enclave::attest::{commit_config, BootConfig, NsmAttestor, CONFIG_PCR};
use bridle_enclave::clock::{Clock, OffsetFileClock, SystemClock};
use bridle_enclave::server::{serve, ServerConfig};
use bridle_enclave::{Attestor, Config, Enclave};
use clap::Parser;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Parser, Debug)]
#[command(name = "bridle-enclave", version, about = "Bridle enclave: sign-if-allowed over one socket")]
struct Args {
    /// Unix socket path (development).
    #[arg(long, conflicts_with = "vsock", required_unless_present_any = ["vsock", "print_pcr16"])]
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
    /// Memory the sessions' state may take, MiB (a session, a stamp or a pending request
    /// that would go beyond it is refused `rate_limited`, never the enclave's end).
    #[arg(long, default_value_t = 1536)]
    memory_budget_mib: usize,
    /// Development mode: mock NSM, and development-only options below.
    #[arg(long)]
    dev: bool,
    /// Development only: a file holding a clock offset in seconds (tests move time).
    #[arg(long, requires = "dev")]
    dev_clock_offset_file: Option<PathBuf>,
    /// Development only: write the mock NSM's root certificate (PEM) to this file, for
    /// verifiers (`bridle verify attestation --root PATH`).
    #[arg(long, value_name = "PATH", requires = "dev")]
    dev_nsm_root_out: Option<PathBuf>,
    /// Print the configuration commitment and the PCR16 value an enclave started with the
    /// other options would have, then exit (for verifiers: `--pcr 16=<hex>`).
    #[arg(long)]
    print_pcr16: bool,
}

fn fail(msg: impl std::fmt::Display) -> ! {
    eprintln!("bridle-enclave: {msg}");
    std::process::exit(1)
}

/// Open the NSM (mock in `--dev`), commit the configuration into PCR16 and lock it.
/// Production never runs without attestation: no NSM, no enclave.
fn attestor(args: &Args, boot: &BootConfig) -> Box<dyn Attestor> {
    fn commit<N: NsmProvider + 'static>(nsm: N, boot: &BootConfig) -> Box<dyn Attestor> {
        match commit_config(&nsm, boot) {
            Ok(pcr16) => {
                tracing::info!(pcr16 = %hex::encode(pcr16), "configuration committed to PCR{CONFIG_PCR} and locked");
                Box::new(NsmAttestor::new(nsm))
            }
            Err(e) => fail(format!("refusing to start: {e}")),
        }
    }
    if args.dev {
        let nsm = MockNsm::new().unwrap_or_else(|e| fail(format!("cannot create the mock NSM: {e}")));
        if let Some(path) = &args.dev_nsm_root_out {
            if let Err(e) = std::fs::write(path, nsm.root_pem()) {
                fail(format!("cannot write the mock NSM root to {}: {e}", path.display()));
            }
            tracing::info!(path = %path.display(), "mock NSM root certificate written");
        }
        tracing::warn!("development mode: mock NSM; its documents verify only against its own root, never AWS's");
        commit(nsm, boot)
    } else {
        match RealNsm::open() {
            Ok(nsm) => commit(nsm, boot),
            Err(e) => fail(format!(
                "refusing to start without attestation: {e}. Production runs only inside a Nitro Enclave; \
                 use --dev for development (mock NSM)"
            )),
        }
    }
}

fn main() {
    let args = Args::parse();
    let boot = BootConfig::new(args.stamp_window, args.max_frame, args.dev);
    if args.print_pcr16 {
        print!("{}", boot.canonical());
        println!("commitment={}", hex::encode(boot.commitment()));
        println!("pcr16={}", hex::encode(boot.expected_pcr16()));
        return;
    }
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
    let attestor = attestor(&args, &boot);
    let config =
        Config { stamp_window: args.stamp_window, memory_budget: args.memory_budget_mib << 20, ..Config::default() };
    let enclave = Arc::new(Enclave::new(clock, Some(attestor), config));
    tracing::info!(identity = %enclave.identity_address(), "enclave identity generated");

    // An explicit, generous stack for every worker: request handling is bounded (no decoder
    // recurses with its input), and this is the margin on top (review finding 2).
    let rt = match tokio::runtime::Builder::new_multi_thread().thread_stack_size(REQUEST_STACK).enable_all().build() {
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

/// Stack size of the threads that serve requests.
const REQUEST_STACK: usize = 8 << 20;

fn unreachable_args() -> SocketAddress {
    eprintln!("bridle-enclave: give --unix PATH or --vsock CID:PORT");
    std::process::exit(2)
}
