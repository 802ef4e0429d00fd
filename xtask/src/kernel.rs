//! The pinned kernel: Debian's cloud kernel 6.12 from bookworm-backports, fetched by exact
//! version with `apt-get download`, checked against its SHA-256, and unpacked with
//! `dpkg-deb -x` into the build directory (nothing is installed). Its modules are `.ko.xz`;
//! they are decompressed here, at build time, so that the init loads plain `.ko` files with
//! `init_module(2)` and needs no decompressor.
//!
//! One module is rebuilt: Nitro announces its virtio-mmio devices (vsock, the NSM) on the
//! kernel command line (`virtio_mmio.device=…`; no PCI, no ACPI), and Debian builds
//! `virtio_mmio` without `CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES`. The same version's
//! `virtio_mmio.c` (from `linux-source-6.12`) is compiled with that option against the
//! kernel's own headers (`linux-headers-…`, `linux-kbuild-…`, all pinned like the kernel),
//! with the build directory mapped out of every path and the debug information stripped, so
//! the module is the same bytes wherever it is built.

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
/// the virtio-mmio transport (Nitro's devices are virtio-mmio; this one is rebuilt, see
/// above), the NSM driver
/// (`/dev/nsm`), then vsock and its virtio transport.
pub const MODULES: [&str; 5] = [
    "drivers/virtio/virtio_mmio.ko.xz",
    "drivers/misc/nsm.ko.xz",
    "net/vmw_vsock/vsock.ko.xz",
    "net/vmw_vsock/vmw_vsock_virtio_transport_common.ko.xz",
    "net/vmw_vsock/vmw_vsock_virtio_transport.ko.xz",
];

/// The packages the rebuilt `virtio_mmio` needs: (package, architecture, SHA-256 of the .deb).
pub const KMOD_PACKAGES: [(&str, &str, &str); 4] = [
    (
        "linux-headers-6.12.95+deb12-cloud-amd64",
        "amd64",
        "8e4ad8e4a06b2ed286ab086d4c450ec00694a7724a0f80cb5d7a8f3bd1038446",
    ),
    ("linux-headers-6.12.95+deb12-common", "all", "5f0ddff86b25a7c8ba07ee2e6f7f74b17d4c0a3f621b08b50fa91290e689fd72"),
    ("linux-kbuild-6.12.95+deb12", "amd64", "7770286db28850f6d589c89908823368cdd4aca3e489155fdcc371d95c103cbc"),
    ("linux-source-6.12", "all", "a7fe4673af74236c99dad9766eca714a198e50a07e5d659e63ec312ae6afccfe"),
];

/// The kernel image and the decompressed modules (file name, bytes) in load order.
pub struct Kernel {
    pub vmlinuz: PathBuf,
    pub modules: Vec<(String, Vec<u8>)>,
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Downloads `package=VERSION` into `cache` (once) and checks its SHA-256.
fn fetch_deb(cache: &Path, package: &str, arch: &str, sha256: &str) -> Result<PathBuf> {
    let deb = cache.join(format!("{package}_{}_{arch}.deb", VERSION.replace(':', "%3a")));
    let cached_ok = deb.exists() && sha256_hex(&std::fs::read(&deb)?) == sha256;
    if !cached_ok {
        let _ = std::fs::remove_file(&deb);
        eprintln!("xtask: apt-get download {package}={VERSION}");
        let st = Command::new("apt-get")
            .args(["download", "-q", &format!("{package}={VERSION}")])
            .current_dir(cache)
            .status()
            .context("running apt-get (Debian's package tool is needed to fetch the kernel)")?;
        if !st.success() || !deb.exists() {
            bail!(
                "cannot download {package}={VERSION}: is bookworm-backports in the apt sources \
                 (scripts/install-eif-deps.sh adds it) and `apt-get update` done?"
            );
        }
    }
    let got = sha256_hex(&std::fs::read(&deb)?);
    if got != sha256 {
        bail!("{} has SHA-256 {got}, expected {sha256}: refusing to build with it", deb.display());
    }
    Ok(deb)
}

/// The file, in a directory of unpacked packages, that records which `.deb`s (by SHA-256)
/// were unpacked into it; written only once the whole unpack has succeeded.
const UNPACKED_FROM: &str = ".bridle-unpacked-from";

/// What [`UNPACKED_FROM`] holds for these packages: one `SHA-256 package` line each, in the
/// order unpacked, then any `note`s (what else decides the directory's contents).
fn unpacked_from(debs: &[(&str, &str)], notes: &[String]) -> String {
    let mut s: String = debs.iter().map(|(package, sha256)| format!("{sha256} {package}\n")).collect();
    for n in notes {
        s.push_str(n);
        s.push('\n');
    }
    s
}

/// Makes `root` hold what `unpack_all` puts there from the packages `stamp` names (see
/// [`unpacked_from`]). A directory unpacked before is reused only when its record says it
/// came from exactly those `.deb`s — the ones just verified — and its unpack finished;
/// otherwise (another or an unverified package, an interrupted unpack, a cache from before
/// the record, a file put there) it is removed and unpacked again, the record written last.
/// Returns whether it unpacked.
fn ensure_unpacked(root: &Path, stamp: &str, unpack_all: impl FnOnce(&Path) -> Result<()>) -> Result<bool> {
    if std::fs::read_to_string(root.join(UNPACKED_FROM)).is_ok_and(|s| s == stamp) {
        return Ok(false);
    }
    match std::fs::remove_dir_all(root) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("removing {} to unpack it again", root.display())),
    }
    std::fs::create_dir_all(root)?;
    unpack_all(root)?;
    let tmp = root.join(format!("{UNPACKED_FROM}.tmp"));
    std::fs::write(&tmp, stamp)?;
    std::fs::rename(&tmp, root.join(UNPACKED_FROM))?;
    Ok(true)
}

fn unpack(deb: &Path, root: &Path) -> Result<()> {
    let st = Command::new("dpkg-deb").arg("-x").arg(deb).arg(root).status().context("running dpkg-deb")?;
    if !st.success() {
        bail!("dpkg-deb -x {} failed", deb.display());
    }
    Ok(())
}

fn run_ok(cmd: &mut Command) -> Result<()> {
    let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    if !out.status.success() {
        bail!("{cmd:?} failed:\n{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

/// Whether an inherited environment variable could change the module kbuild makes: make
/// takes every environment variable as a variable of its own, so the kernel's build
/// switches (`ARCH`, `CROSS_COMPILE`, `KBUILD_*`, `KCFLAGS`, `LLVM`, the tools) and what
/// changes a Rust or C build (see `image::inherited_build_setting`) are removed.
pub fn kbuild_setting(name: &str) -> bool {
    const EXACT: &[&str] = &[
        "ARCH",
        "SUBARCH",
        "CROSS_COMPILE",
        "KCFLAGS",
        "KCPPFLAGS",
        "KAFLAGS",
        "KRUSTFLAGS",
        "KLDFLAGS",
        "LLVM",
        "LLVM_IAS",
        "LD",
        "NM",
        "OBJCOPY",
        "OBJDUMP",
        "STRIP",
        "HOSTCC",
        "HOSTCXX",
        "HOSTLD",
        "HOSTAR",
        "O",
        "M",
        "V",
        "W",
        "C",
        "INSTALL_MOD_PATH",
        "INSTALL_MOD_STRIP",
        "MAKEFLAGS",
        "MFLAGS",
        "GNUMAKEFLAGS",
        "MAKEFILES",
        "DEBIAN_KERNEL_USE_CCACHE",
    ];
    const PREFIXES: &[&str] = &["KBUILD_", "CONFIG_", "HOSTCFLAGS", "HOSTLDFLAGS", "KCONFIG_"];
    EXACT.contains(&name) || PREFIXES.iter().any(|p| name.starts_with(p)) || crate::image::inherited_build_setting(name)
}

/// `virtio_mmio.ko` with `CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES`, built from the kernel's own
/// source and headers (see the module documentation).
fn build_virtio_mmio(cache: &Path) -> Result<Vec<u8>> {
    let root = cache.join("kmod-root");
    let headers = root.join(format!("usr/src/linux-headers-{RELEASE}"));
    // Every package is fetched and verified on every build (a cached .deb is checked
    // again); the unpacked tree is reused only if it came from exactly these.
    let mut debs = Vec::new();
    for (package, arch, sha) in KMOD_PACKAGES {
        debs.push((fetch_deb(cache, package, arch, sha)?, package, sha));
    }
    let listed: Vec<(&str, &str)> = debs.iter().map(|(_, package, sha)| (*package, *sha)).collect();
    // The headers' Makefile is rewritten to include this directory by its path.
    let stamp = unpacked_from(&listed, &[format!("root {}", root.display())]);
    ensure_unpacked(&root, &stamp, |root| {
        for (deb, _, _) in &debs {
            unpack(deb, root)?;
        }
        // Debian's headers include the common tree by its installed path; point it here.
        let mk = headers.join("Makefile");
        let text = std::fs::read_to_string(&mk)?;
        std::fs::write(&mk, text.replace("include /usr/src/", &format!("include {}/usr/src/", root.display())))?;
        run_ok(
            Command::new("tar")
                .arg("-xJf")
                .arg(root.join("usr/src/linux-source-6.12.tar.xz"))
                .arg("-C")
                .arg(root)
                .arg("linux-source-6.12/drivers/virtio/virtio_mmio.c"),
        )
    })?;
    let build = cache.join("kmod-build");
    let _ = std::fs::remove_dir_all(&build);
    std::fs::create_dir_all(&build)?;
    std::fs::copy(root.join("linux-source-6.12/drivers/virtio/virtio_mmio.c"), build.join("virtio_mmio.c"))?;
    std::fs::write(
        build.join("Kbuild"),
        "obj-m := virtio_mmio.o\nccflags-y := -DCONFIG_VIRTIO_MMIO_CMDLINE_DEVICES=1\n",
    )?;
    let map = format!("{}/=drivers/virtio/", build.display());
    let root_map = format!("{}/=/", root.display());
    eprintln!("xtask: building virtio_mmio.ko with CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES");
    let mut make = Command::new("make");
    for (name, _) in std::env::vars_os() {
        if name.to_str().is_none_or(kbuild_setting) {
            make.env_remove(&name);
        }
    }
    run_ok(
        make.arg("-s")
            .arg("-C")
            .arg(&headers)
            .arg(format!("M={}", build.display()))
            .arg("CONFIG_DEBUG_INFO_BTF_MODULES=")
            .arg(format!("KCFLAGS=-fmacro-prefix-map={map} -ffile-prefix-map={map} -ffile-prefix-map={root_map}"))
            .arg("modules"),
    )
    .context("building virtio_mmio.ko (needs make, gcc-12, libelf: scripts/install-eif-deps.sh)")?;
    let stripped = build.join("virtio_mmio.stripped.ko");
    // Debug information (and so the linker's build id, a hash that covers it) holds build
    // paths: both go.
    run_ok(
        Command::new("strip")
            .args(["--strip-debug", "--remove-section=.note.gnu.build-id", "-o"])
            .arg(&stripped)
            .arg(build.join("virtio_mmio.ko")),
    )?;
    Ok(std::fs::read(stripped)?)
}

/// Downloads (once; cached in `cache`) and unpacks the pinned kernel package.
pub fn fetch(cache: &Path) -> Result<Kernel> {
    std::fs::create_dir_all(cache)?;
    let deb = fetch_deb(cache, PACKAGE, "amd64", DEB_SHA256)?;
    let root = cache.join("kernel-root");
    let vmlinuz = root.join(format!("boot/vmlinuz-{RELEASE}"));
    // Reused only if unpacked, whole, from the .deb just verified (not merely because a
    // `vmlinuz` is there).
    ensure_unpacked(&root, &unpacked_from(&[(PACKAGE, DEB_SHA256)], &[]), |root| unpack(&deb, root))?;
    let mut modules = Vec::new();
    for m in MODULES {
        let name = Path::new(m).file_name().unwrap().to_string_lossy().trim_end_matches(".xz").to_string();
        if name == "virtio_mmio.ko" {
            modules.push((name, build_virtio_mmio(cache)?));
            continue;
        }
        let path = root.join(format!("lib/modules/{RELEASE}/kernel/{m}"));
        let xz = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        let mut ko = Vec::new();
        lzma_rs::xz_decompress(&mut &xz[..], &mut ko).map_err(|e| anyhow::anyhow!("{}: xz: {e:?}", path.display()))?;
        if !ko.starts_with(b"\x7fELF") {
            bail!("{}: not an ELF module after decompression", path.display());
        }
        modules.push((name, ko));
    }
    Ok(Kernel { vmlinuz, modules })
}

#[cfg(test)]
mod kbuild_tests {
    use super::kbuild_setting;

    #[test]
    fn kernel_build_switches_are_not_inherited() {
        for name in [
            "ARCH",
            "CROSS_COMPILE",
            "KBUILD_BUILD_USER",
            "KBUILD_EXTRA_SYMBOLS",
            "KCFLAGS",
            "LLVM",
            "CC",
            "MAKEFLAGS",
            "O",
        ] {
            assert!(kbuild_setting(name), "{name} must not reach make");
        }
        for name in ["PATH", "HOME", "TMPDIR", "SOURCE_DATE_EPOCH", "LANG"] {
            assert!(!kbuild_setting(name), "{name} is harmless or needed");
        }
    }
}

#[cfg(test)]
mod unpack_tests {
    use super::{ensure_unpacked, unpacked_from, UNPACKED_FROM};
    use std::path::Path;

    /// Stands in for `dpkg-deb -x` of a package whose content is `text`.
    fn unpack_as(text: &'static str) -> impl FnOnce(&Path) -> anyhow::Result<()> {
        move |root: &Path| {
            std::fs::create_dir_all(root.join("boot"))?;
            std::fs::write(root.join("boot/vmlinuz"), text)?;
            Ok(())
        }
    }

    fn vmlinuz(root: &Path) -> String {
        std::fs::read_to_string(root.join("boot/vmlinuz")).unwrap()
    }

    /// A review of 2026-12-05: the build reused an unpacked kernel whenever its `vmlinuz` (or
    /// the headers' `.config`) was there, whatever package it came from. It is reused now
    /// only when recorded as unpacked, whole, from the `.deb` just verified.
    #[test]
    fn an_unpacked_package_is_reused_only_if_it_came_from_the_verified_deb() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("kernel-root");
        let a = unpacked_from(&[("linux-image", "aa")], &[]);
        let b = unpacked_from(&[("linux-image", "bb")], &[]);

        // A tree unpacked before the record existed (or by anything else): unpacked again,
        // and what else was there goes.
        std::fs::create_dir_all(root.join("boot")).unwrap();
        std::fs::write(root.join("boot/vmlinuz"), "from some other package").unwrap();
        std::fs::write(root.join("stray"), "").unwrap();
        assert!(ensure_unpacked(&root, &a, unpack_as("A")).unwrap());
        assert_eq!(vmlinuz(&root), "A");
        assert!(!root.join("stray").exists());
        assert_eq!(std::fs::read_to_string(root.join(UNPACKED_FROM)).unwrap(), "aa linux-image\n");

        // The same verified package: reused, not unpacked.
        assert!(!ensure_unpacked(&root, &a, |_| panic!("unpacked again")).unwrap());
        assert_eq!(vmlinuz(&root), "A");

        // Another package (another pin): unpacked again.
        assert!(ensure_unpacked(&root, &b, unpack_as("B")).unwrap());
        assert_eq!(vmlinuz(&root), "B");

        // An unpack that failed half-way leaves no record: unpacked again next time.
        let failed = ensure_unpacked(&root, &a, |root| {
            std::fs::create_dir_all(root.join("boot"))?;
            std::fs::write(root.join("boot/vmlinuz"), "half")?;
            anyhow::bail!("dpkg-deb -x failed")
        });
        assert!(failed.is_err());
        assert!(!root.join(UNPACKED_FROM).exists());
        assert!(ensure_unpacked(&root, &a, unpack_as("A")).unwrap());
        assert_eq!(vmlinuz(&root), "A");

        // A record that names other packages, or more of them, or is gone: unpacked again.
        for other in [
            unpacked_from(&[("linux-image", "aa"), ("linux-headers", "cc")], &[]),
            unpacked_from(&[("linux-image", "aa")], &["root /elsewhere".into()]),
        ] {
            assert!(ensure_unpacked(&root, &other, unpack_as("C")).unwrap());
            assert_eq!(vmlinuz(&root), "C");
            assert!(ensure_unpacked(&root, &a, unpack_as("A")).unwrap());
        }
        std::fs::remove_file(root.join(UNPACKED_FROM)).unwrap();
        assert!(ensure_unpacked(&root, &a, unpack_as("A2")).unwrap());
        assert_eq!(vmlinuz(&root), "A2");
    }

    #[test]
    fn the_record_names_each_package_by_its_hash() {
        assert_eq!(unpacked_from(&[("p", "11"), ("q", "22")], &["root /x".into()]), "11 p\n22 q\nroot /x\n");
    }
}
