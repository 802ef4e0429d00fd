//! Bridle's build and boot tasks (`cargo run --bin xtask -- <task>`; the Makefile's
//! `enclave-image`, `enclave-describe` and `vm-e2e` targets call these).
//!
//! - `enclave-image`: the reproducible EIF and its PCRs (`target/eif/bridle.eif`,
//!   `target/eif/pcrs.json`) without docker or nitro-cli;
//! - `describe-eif FILE`: PCR0/1/2 (PCR8) of an EIF, as `nitro-cli describe-eif` prints;
//! - `vm-e2e`: boot the image's kernel and ramdisks in QEMU and sign through the real host
//!   over real vsock.

mod cpio;
mod image;
/// The image's kernel command line and the init's check of it: the init's own source file,
/// so that the command line built into the EIF is the one `bridle-init` requires.
#[path = "../../init/src/image_cmdline.rs"]
mod image_cmdline;
mod kernel;
mod vm;

use anyhow::{bail, Result};
use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser)]
#[command(name = "xtask", about = "Bridle build and boot tasks")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Build target/eif/bridle.eif and target/eif/pcrs.json reproducibly.
    EnclaveImage {
        /// Output directory.
        #[arg(long, default_value = "target/eif")]
        out: PathBuf,
        /// The enclave's arguments in the image, replacing the default
        /// `--vsock 4294967295:5000` (repeat: `--enclave-arg=--vsock --enclave-arg=…`).
        #[arg(long = "enclave-arg", allow_hyphen_values = true)]
        enclave_args: Vec<String>,
        /// Sign the EIF (PCR8): the signing certificate (PEM)…
        #[arg(long, requires = "sign_key")]
        sign_cert: Option<PathBuf>,
        /// … and its private key (PEM).
        #[arg(long, requires = "sign_cert")]
        sign_key: Option<PathBuf>,
    },
    /// Print an EIF's measurements (PCR0, PCR1, PCR2; PCR8 when signed) as JSON.
    DescribeEif { eif: PathBuf },
    /// Boot the image in QEMU (TCG, virtio-vsock through vhost-device-vsock) and run the
    /// signing walkthrough through bridle-host's vsock-uds connector.
    VmE2e {
        /// The image whose kernel, ramdisks and arguments are booted.
        #[arg(long, default_value = "target/eif/bridle.eif")]
        eif: PathBuf,
        /// Working directory (console log, sockets, keys).
        #[arg(long, default_value = "target/vm-e2e")]
        work: PathBuf,
        /// Seconds to wait for the enclave to listen after QEMU starts.
        #[arg(long, default_value_t = 240)]
        boot_timeout: u64,
    },
}

fn workspace_root() -> PathBuf {
    // xtask/ is a direct child of the workspace root.
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().map(PathBuf::from).unwrap_or_else(|| PathBuf::from("."))
}

fn main() {
    if let Err(e) = real_main() {
        eprintln!("xtask: error: {e:#}");
        std::process::exit(1);
    }
}

fn real_main() -> Result<()> {
    let root = workspace_root();
    let abs = |p: PathBuf| if p.is_absolute() { p } else { root.join(p) };
    match Cli::parse().cmd {
        Cmd::EnclaveImage { out, enclave_args, sign_cert, sign_key } => {
            let t0 = std::time::Instant::now();
            let enclave_args = if enclave_args.is_empty() {
                image::DEFAULT_ENCLAVE_ARGS.iter().map(|s| s.to_string()).collect()
            } else {
                enclave_args
            };
            let out = abs(out);
            let opts = image::Options { root, out: out.clone(), enclave_args, sign: sign_cert.zip(sign_key) };
            let pcrs = image::build(&opts)?;
            println!("enclave image: {}", out.join("bridle.eif").display());
            println!("measurements:  {} ({:.0} s)", out.join("pcrs.json").display(), t0.elapsed().as_secs_f64());
            let mut numbered: Vec<(u16, &String)> =
                pcrs.iter().filter_map(|(k, v)| Some((k.strip_prefix("PCR")?.parse().ok()?, v))).collect();
            numbered.sort();
            for (i, v) in numbered {
                println!("  --pcr {i}={v}");
            }
            println!("verifiers: bridle verify attestation|session --pcrs {}", out.join("pcrs.json").display());
        }
        Cmd::DescribeEif { eif } => {
            let pcrs = image::describe(&abs(eif))?;
            println!("{}", serde_json::to_string_pretty(&serde_json::json!({ "Measurements": pcrs }))?);
        }
        Cmd::VmE2e { eif, work, boot_timeout } => {
            let eif = abs(eif);
            if !eif.exists() {
                bail!("{} does not exist: run `make enclave-image` first", eif.display());
            }
            vm::run(&vm::Options { root: root.clone(), eif, work: abs(work), boot_timeout })?;
        }
    }
    Ok(())
}
