//! `bridle-enclave`: serve the enclave socket.

use bridle_attestation::{ImageMeasurement, MockCa, MockNsm, NsmProvider, RealNsm, TrustedRoot};
use bridle_common::address::SocketAddress;
use bridle_enclave::attest::{commit_config, BootConfig, ClusterBoot, NsmAttestor, CONFIG_PCR};
use bridle_enclave::clock::{
    nsm_time_ms, Clock, NsmCorrected, OffsetFileClock, SkewedClock, SystemClock, SAMPLE_EVERY,
};
use bridle_enclave::cluster::{launch, NodeConfig, MAX_MESSAGE};
use bridle_enclave::memory;
use bridle_enclave::server::{serve, ServerConfig, Service};
use bridle_enclave::{Attestor, Config, Enclave};
use clap::Parser;
use std::path::PathBuf;
use std::sync::Arc;

/// mimalloc in its secure mode (guard pages around its metadata, encoded free lists,
/// randomized allocation), in every build: the image's static musl binary would otherwise
/// use musl's allocator, which cost the deployed enclave about 20 % of its signing rate
/// against the glibc build the benchmarks ran (BENCHMARKS.md, "The allocator the image
/// runs"). This is Rust's allocator only: AWS-LC's C code allocates through libc's `malloc`.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser, Debug)]
#[command(name = "bridle-enclave", version, about = "Bridle enclave: sign-if-allowed over one socket")]
struct Args {
    /// Unix socket path (development).
    #[arg(long, conflicts_with = "vsock", required_unless_present_any = ["vsock", "print_pcr16"])]
    unix: Option<PathBuf>,
    /// vsock CID:PORT (Nitro).
    #[arg(long, value_name = "CID:PORT")]
    vsock: Option<String>,
    /// Largest accepted frame, bytes (at most the default, 1 MiB).
    #[arg(long, default_value_t = bridle_common::frame::DEFAULT_MAX_FRAME)]
    max_frame: usize,
    /// Agent stamp time window, seconds (±).
    #[arg(long, default_value_t = 60)]
    stamp_window: u64,
    /// Memory the sessions' state may take, MiB (a session, a stamp or a pending request
    /// that would go beyond it is refused `rate_limited`, never the enclave's end). It must
    /// fit, with the runtime, the connections and the audit log, in the memory available at
    /// start, or the enclave does not start [default: nine tenths of what is left of that
    /// memory; 1536 on a cluster node, whose budget is committed to PCR16].
    #[arg(long, value_name = "MIB")]
    memory_budget_mib: Option<usize>,
    /// Development mode: mock NSM, and development-only options below.
    #[arg(long)]
    dev: bool,
    /// Development only: a file holding a clock offset in seconds (tests move time).
    #[arg(long, requires = "dev")]
    dev_clock_offset_file: Option<PathBuf>,
    /// Development only: the system clock reads this many seconds off (a drifting
    /// hypervisor clock), for tests of its correction by the NSM's.
    #[arg(long, value_name = "SECS", requires = "dev", allow_hyphen_values = true)]
    dev_system_clock_skew: Option<i64>,
    /// Development only: write the mock NSM's root certificate (PEM) to this file, for
    /// verifiers (`bridle verify attestation --root PATH`).
    #[arg(long, value_name = "PATH", requires = "dev")]
    dev_nsm_root_out: Option<PathBuf>,
    /// Print the configuration commitment and the PCR16 value an enclave started with the
    /// other options would have, then exit (for verifiers: `--pcr 16=<hex>`).
    #[arg(long)]
    print_pcr16: bool,
    /// Run as a node of the enclave cluster NAME (README, "High availability"): sessions are
    /// replicated to the cluster's other nodes through the hosts, in attested channels. The
    /// name is part of the configuration committed to PCR16.
    #[arg(long, value_name = "NAME")]
    cluster: Option<String>,
    /// Cluster only: PCR8 (hex) of the release signer whose images may join this cluster
    /// beside this very image (rolling upgrades). Committed to PCR16.
    #[arg(long, value_name = "HEX", requires = "cluster")]
    release_pcr8: Option<String>,
    /// Cluster only: take a snapshot of the state every N log entries, then drop older
    /// entries (a node that falls further behind, or joins, receives the snapshot).
    #[arg(long, value_name = "N", default_value_t = 10_000, requires = "cluster")]
    cluster_snapshot_logs: u64,
    /// Cluster only: take a snapshot, too, once the log entries since the last one hold
    /// more than this many bytes (at least 1 MiB) [default: 64 MiB].
    #[arg(long, value_name = "BYTES", requires = "cluster")]
    cluster_snapshot_bytes: Option<usize>,
    /// Development only: the mock certificate authority shared by the nodes of a
    /// development cluster (created if absent), so that they verify each other.
    #[arg(long, value_name = "PATH", requires = "dev")]
    dev_mock_ca: Option<PathBuf>,
    /// Development only: the mock image's PCR0 (hex), to play another image.
    #[arg(long, value_name = "HEX", requires = "dev")]
    dev_pcr0: Option<String>,
    /// Development only: the mock image's PCR8 (hex): the release signer it is signed by.
    #[arg(long, value_name = "HEX", requires = "dev")]
    dev_pcr8: Option<String>,
    /// Development only: the decision rules version this cluster node says it runs, to play
    /// a release of other rules in a rolling upgrade (its rules are this build's).
    #[arg(long, value_name = "N", requires = "dev", requires = "cluster")]
    dev_rules_version: Option<u32>,
}

fn pcr_hex(what: &str, s: &str) -> Vec<u8> {
    match hex::decode(s.trim_start_matches("0x")) {
        Ok(v) if v.len() == bridle_attestation::PCR_LEN => v,
        _ => fail(format!("{what} must be {} bytes of hex", bridle_attestation::PCR_LEN)),
    }
}

fn cluster_boot(args: &Args) -> Option<ClusterBoot> {
    let id = args.cluster.clone()?;
    if id.is_empty() || id.len() > 64 || !id.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)) {
        fail("--cluster NAME: 1 to 64 letters, digits, '.', '_' or '-'");
    }
    Some(ClusterBoot {
        id,
        memory_budget_mib: args.memory_budget_mib.unwrap_or(memory::CLUSTER_DEFAULT_BUDGET_MIB),
        release_pcr8: args.release_pcr8.as_deref().map(|h| {
            let v = pcr_hex("--release-pcr8", h);
            // All zeros is the PCR8 of every unsigned image: no release signer.
            if v.iter().all(|b| *b == 0) {
                fail("--release-pcr8 is all zeros, the PCR8 of every unsigned image: it names no release signer");
            }
            v
        }),
    })
}

/// Correct the clock by the NSM's now, then every [`SAMPLE_EVERY`] for the enclave's life
/// (`clock::NsmCorrected`). A sample that fails keeps the last correction, and says so.
fn keep_correcting(clock: &Arc<NsmCorrected>, nsm: &Arc<dyn NsmProvider>, dev: bool) {
    // A few tries: a sample whose NSM call was slow is not used.
    let mut first = clock.sample(|| nsm_time_ms(nsm.as_ref()));
    for _ in 0..4 {
        if first.is_ok() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(250));
        first = clock.sample(|| nsm_time_ms(nsm.as_ref()));
    }
    match first {
        Ok(off) => tracing::info!(offset_ms = off, "clock corrected by the NSM's: {off} ms from the system clock"),
        // An NSM that cannot date a document at start could not attest anything either; and
        // an uncorrected clock could carry a cluster's time with it (a review of 2026-12-06).
        Err(e) if !dev => fail(format!("cannot read the NSM's clock to correct the enclave's: {e}")),
        Err(e) => tracing::warn!("cannot read the mock NSM's clock ({e}); no correction"),
    }
    let (clock, nsm) = (clock.clone(), nsm.clone());
    std::thread::spawn(move || loop {
        std::thread::sleep(SAMPLE_EVERY);
        let before = clock.offset_ms();
        match clock.sample(|| nsm_time_ms(nsm.as_ref())) {
            Ok(off) if off.abs_diff(before) >= 1_000 => {
                tracing::info!(offset_ms = off, "clock corrected by the NSM's: {off} ms from the system clock")
            }
            Ok(_) => {}
            Err(e) => tracing::warn!("cannot read the NSM's clock ({e}); the correction stays {before} ms"),
        }
    });
}

/// The NSM: the hardware module, or in `--dev` the mock (of a shared CA in a cluster).
fn open_nsm(args: &Args) -> (Arc<dyn NsmProvider>, TrustedRoot) {
    if !args.dev {
        return match RealNsm::open() {
            Ok(nsm) => (Arc::new(nsm), TrustedRoot::AwsNitroRootG1),
            Err(e) => fail(format!(
                "refusing to start without attestation: {e}. Production runs only inside a Nitro Enclave; \
                 use --dev for development (mock NSM)"
            )),
        };
    }
    let mut image = ImageMeasurement::mock_default();
    if let Some(h) = &args.dev_pcr0 {
        image.pcr0.copy_from_slice(&pcr_hex("--dev-pcr0", h));
    }
    if let Some(h) = &args.dev_pcr8 {
        let mut p = [0u8; bridle_attestation::PCR_LEN];
        p.copy_from_slice(&pcr_hex("--dev-pcr8", h));
        image = image.with_pcr8(p);
    }
    let (nsm, root) = match &args.dev_mock_ca {
        Some(path) => {
            let ca = MockCa::load_or_create(path).unwrap_or_else(|e| fail(format!("mock CA {}: {e}", path.display())));
            let nsm = MockNsm::with_ca(&ca, image).unwrap_or_else(|e| fail(format!("cannot create the mock NSM: {e}")));
            (nsm, TrustedRoot::Der(ca.root_der().to_vec()))
        }
        None => {
            let nsm = MockNsm::with_image(image).unwrap_or_else(|e| fail(format!("cannot create the mock NSM: {e}")));
            let root = TrustedRoot::Der(nsm.root_der().to_vec());
            (nsm, root)
        }
    };
    if let Some(path) = &args.dev_nsm_root_out {
        if let Err(e) = std::fs::write(path, nsm.root_pem()) {
            fail(format!("cannot write the mock NSM root to {}: {e}", path.display()));
        }
        tracing::info!(path = %path.display(), "mock NSM root certificate written");
    }
    tracing::warn!("development mode: mock NSM; its documents verify only against its own root, never AWS's");
    (Arc::new(nsm), root)
}

fn fail(msg: impl std::fmt::Display) -> ! {
    eprintln!("bridle-enclave: {msg}");
    std::process::exit(1)
}

/// Commit the configuration into PCR16 and lock it. Production never runs without
/// attestation: no NSM, no enclave.
fn commit(nsm: &Arc<dyn NsmProvider>, boot: &BootConfig) {
    match commit_config(nsm.as_ref(), boot) {
        Ok(pcr16) => {
            tracing::info!(pcr16 = %hex::encode(pcr16), "configuration committed to PCR{CONFIG_PCR} and locked");
        }
        Err(e) => fail(format!("refusing to start: {e}")),
    }
}

fn main() {
    let args = Args::parse();
    if args.max_frame > bridle_common::frame::DEFAULT_MAX_FRAME {
        // The memory budget keeps room for one held request of a frame (`HEADROOM`), and
        // the memory plan counts answers from the frame: sized for at most this.
        fail(format!(
            "refusing to start: --max-frame {} is above the most the memory budget is sized for, {} bytes",
            args.max_frame,
            bridle_common::frame::DEFAULT_MAX_FRAME
        ));
    }
    let mut boot = BootConfig::new(args.stamp_window, args.max_frame, args.dev);
    if let Some(c) = cluster_boot(&args) {
        boot = boot.with_cluster(c);
    }
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
    let mut config = Config { stamp_window: args.stamp_window, ..Config::default() };
    let server = server_config(&args);
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    config.memory_budget = memory_plan(&args, &config, &server, workers).budget;
    let (nsm, root) = open_nsm(&args);
    commit(&nsm, &boot);
    let system: Box<dyn Clock> = match args.dev_system_clock_skew {
        Some(skew) => Box::new(SkewedClock(skew)),
        None => Box::new(SystemClock),
    };
    let corrected = Arc::new(NsmCorrected::new(system));
    keep_correcting(&corrected, &nsm, args.dev);
    let clock: Box<dyn Clock> = match &args.dev_clock_offset_file {
        Some(p) => Box::new(OffsetFileClock(p.clone(), Box::new(corrected))),
        None => Box::new(corrected),
    };

    // An explicit, generous stack for every worker: request handling is bounded (no decoder
    // recurses with its input), and this is the margin on top (review finding 2).
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .thread_stack_size(REQUEST_STACK)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("bridle-enclave: cannot start runtime: {e}");
            std::process::exit(1);
        }
    };
    let result = rt.block_on(async move {
        let (service, cfg) = if boot.cluster.is_some() {
            let node = launch(NodeConfig {
                nsm,
                boot,
                root,
                config,
                clock,
                snapshot_logs: args.cluster_snapshot_logs,
                snapshot_bytes: args.cluster_snapshot_bytes.unwrap_or(bridle_enclave::cluster::DEFAULT_SNAPSHOT_BYTES),
                rules: args.dev_rules_version.unwrap_or(bridle_enclave::cluster::rules::RULES_VERSION),
            })
            .await
            .unwrap_or_else(|e| fail(e));
            (Service::Cluster(node), server)
        } else {
            let attestor: Box<dyn Attestor> = Box::new(NsmAttestor::new(nsm));
            let enclave = Arc::new(Enclave::new(clock, Some(attestor), config));
            tracing::info!(identity = %enclave.identity_address(), "enclave identity generated");
            (Service::Single(enclave), server)
        };
        serve(service, addr, cfg).await
    });
    if let Err(e) = result {
        eprintln!("bridle-enclave: {e}");
        std::process::exit(1);
    }
}

fn server_config(args: &Args) -> ServerConfig {
    if args.cluster.is_none() {
        return ServerConfig { max_frame: args.max_frame, ..ServerConfig::default() };
    }
    // Cluster messages (batches of log entries, snapshot chunks) are larger than requests;
    // fewer connections keep what unauthenticated frames can hold bounded.
    ServerConfig {
        max_frame: args.max_frame.max(MAX_MESSAGE as usize + (1 << 20)),
        max_connections: bridle_common::cluster::NODE_MAX_CONNECTIONS,
        ..ServerConfig::default()
    }
}

/// Divide the memory available at start (see [`memory`]); refuse to start when the
/// sessions' budget does not fit beside the rest.
/// The memory plan; `workers` is how many threads the runtime gets (each may hold one
/// request being decoded).
fn memory_plan(args: &Args, config: &Config, server: &ServerConfig, workers: usize) -> memory::Plan {
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_else(|e| {
        fail(format!("refusing to start: cannot read /proc/meminfo to size the memory budget: {e}"))
    });
    let available = memory::mem_available(&meminfo)
        .unwrap_or_else(|| fail("refusing to start: /proc/meminfo has no MemAvailable line to size the memory budget"));
    let cluster = args.cluster.as_ref().map(|_| memory::ClusterInputs {
        // As `launch` takes it: at least 1 MiB.
        snapshot_bytes: args
            .cluster_snapshot_bytes
            .unwrap_or(bridle_enclave::cluster::DEFAULT_SNAPSHOT_BYTES)
            .max(1 << 20),
        max_message: MAX_MESSAGE as usize,
    });
    let inputs = memory::Inputs {
        available,
        budget_mib: args.memory_budget_mib,
        max_connections: server.max_connections,
        // A node's calls are at most a call frame; larger frames are its peers' messages.
        call_frame: if cluster.is_some() { bridle_common::cluster::MAX_CALL_FRAME } else { server.max_frame },
        audit_capacity: config.audit.capacity,
        workers,
        cluster,
    };
    match memory::plan(&inputs) {
        Ok(plan) => {
            tracing::info!("memory: {plan}");
            plan
        }
        Err(e) => fail(format!("refusing to start: {e}")),
    }
}

/// Stack size of the threads that serve requests.
const REQUEST_STACK: usize = 8 << 20;

fn unreachable_args() -> SocketAddress {
    eprintln!("bridle-enclave: give --unix PATH or --vsock CID:PORT");
    std::process::exit(2)
}
