//! The pinned kernel: Debian's cloud kernel 6.12 from bookworm-backports, fetched by exact
//! version with `apt-get download`, checked against its SHA-256, and unpacked with
//! `dpkg-deb -x` into the build directory (nothing is installed). Its modules are `.ko.xz`;
//! they are decompressed here, at build time, so that the init loads plain `.ko` files with
//! `init_module(2)` and needs no decompressor.

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The Debian binary package (signed cloud kernel for x86-64).
pub const PACKAGE: &str = "linux-image-6.12.95+deb12-cloud-amd64";
/// Its exact version in bookworm-backports.
pub const VERSION: &str = "6.12.95-1~bpo12+1";
/// SHA-256 of the `.deb` (as in the archive's signed `Packages` index).
pub const DEB_SHA256: &str = "69c92f43b23821de79576fa4d7c86e2924ae2c1b247a47cc5ed9339e220fbcb7";
/// `uname -r` of that kernel.
pub const RELEASE: &str = "6.12.95+deb12-cloud-amd64";

/// The modules the image loads, in load order (relative to `lib/modules/RELEASE/kernel`):
/// the virtio-mmio transport (Nitro's devices are virtio-mmio), the NSM driver
/// (`/dev/nsm`), then vsock and its virtio transport.
pub const MODULES: [&str; 5] = [
    "drivers/virtio/virtio_mmio.ko.xz",
    "drivers/misc/nsm.ko.xz",
    "net/vmw_vsock/vsock.ko.xz",
    "net/vmw_vsock/vmw_vsock_virtio_transport_common.ko.xz",
    "net/vmw_vsock/vmw_vsock_virtio_transport.ko.xz",
];

/// The kernel image and the decompressed modules (file name, bytes) in load order.
pub struct Kernel {
    pub vmlinuz: PathBuf,
    pub modules: Vec<(String, Vec<u8>)>,
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Downloads (once; cached in `cache`) and unpacks the pinned kernel package.
pub fn fetch(cache: &Path) -> Result<Kernel> {
    std::fs::create_dir_all(cache)?;
    let deb = cache.join(format!("{PACKAGE}_{}_amd64.deb", VERSION.replace(':', "%3a")));
    let cached_ok = deb.exists() && sha256_hex(&std::fs::read(&deb)?) == DEB_SHA256;
    if !cached_ok {
        let _ = std::fs::remove_file(&deb);
        eprintln!("xtask: apt-get download {PACKAGE}={VERSION}");
        let st = Command::new("apt-get")
            .args(["download", "-q", &format!("{PACKAGE}={VERSION}")])
            .current_dir(cache)
            .status()
            .context("running apt-get (Debian's package tool is needed to fetch the kernel)")?;
        if !st.success() || !deb.exists() {
            bail!(
                "cannot download {PACKAGE}={VERSION}: is bookworm-backports in the apt sources \
                 (scripts/install-eif-deps.sh adds it) and `apt-get update` done?"
            );
        }
    }
    let got = sha256_hex(&std::fs::read(&deb)?);
    if got != DEB_SHA256 {
        bail!("{} has SHA-256 {got}, expected {DEB_SHA256}: refusing to build with it", deb.display());
    }
    let root = cache.join("kernel-root");
    let vmlinuz = root.join(format!("boot/vmlinuz-{RELEASE}"));
    if !vmlinuz.exists() {
        let _ = std::fs::remove_dir_all(&root);
        let st = Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&root).status().context("running dpkg-deb")?;
        if !st.success() {
            bail!("dpkg-deb -x {} failed", deb.display());
        }
    }
    let mut modules = Vec::new();
    for m in MODULES {
        let path = root.join(format!("lib/modules/{RELEASE}/kernel/{m}"));
        let xz = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        let mut ko = Vec::new();
        lzma_rs::xz_decompress(&mut &xz[..], &mut ko).map_err(|e| anyhow::anyhow!("{}: xz: {e:?}", path.display()))?;
        if !ko.starts_with(b"\x7fELF") {
            bail!("{}: not an ELF module after decompression", path.display());
        }
        let name = Path::new(m).file_name().unwrap().to_string_lossy().trim_end_matches(".xz").to_string();
        modules.push((name, ko));
    }
    Ok(Kernel { vmlinuz, modules })
}
