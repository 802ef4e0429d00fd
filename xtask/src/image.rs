//! `xtask enclave-image`: the reproducible enclave image.
//!
//! 1. `bridle-enclave` and `bridle-init`, static (x86_64-unknown-linux-musl), built with the
//!    locked dependencies, in their own target directory, with paths remapped, no build id,
//!    no debug info, `SOURCE_DATE_EPOCH` set;
//! 2. the pinned kernel ([`crate::kernel`]);
//! 3. two deterministic cpio ramdisks ([`crate::cpio`]): the boot ramdisk (`/init`, the
//!    modules, `/dev/console`; measured in PCR1 with the kernel and command line) and the
//!    application ramdisk (`/bridle/enclave` and its arguments; PCR2);
//! 4. the EIF, assembled and measured by `aws-nitro-enclaves-image-format` (the library
//!    behind `nitro-cli build-enclave`), then read back and measured again;
//! 5. `pcrs.json`: PCR0, PCR1, PCR2 (PCR8 when signed) and PCR16, the configuration
//!    commitment of the image's enclave arguments (`bridle-enclave --print-pcr16`).

use anyhow::{bail, Context, Result};
use aws_nitro_enclaves_image_format::defs::{EifBuildInfo, EifIdentityInfo};
use aws_nitro_enclaves_image_format::utils::eif_reader::EifReader;
use aws_nitro_enclaves_image_format::utils::{get_pcrs, EifBuilder, SignEnclaveInfo};
use sha2::Digest as _;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::cpio::{Archive, Kind};
use crate::kernel;

pub const TARGET: &str = "x86_64-unknown-linux-musl";
/// The toolchain the published PCRs were built with; another gives other PCRs.
pub const RUST_VERSION: &str = "1.95.0";
/// The kernel command line of the image: the init's own constant (`init/src/image_cmdline.rs`,
/// compiled into both), which `bridle-init` requires `/proc/cmdline` to begin with. Its bytes
/// are measured in PCR0/PCR1 only concatenated with the kernel's and the boot ramdisk's (the
/// PCRs do not fix where it starts and ends); the init's check fixes that.
pub use crate::image_cmdline::CMDLINE;
/// The enclave's arguments in the image (one per line in /bridle/enclave.args): vsock,
/// any CID (VMADDR_CID_ANY), port 5000 — what `bridle-host --enclave vsock:CID:5000` reaches.
pub const DEFAULT_ENCLAVE_ARGS: [&str; 2] = ["--vsock", "4294967295:5000"];

pub struct Options {
    pub root: PathBuf,
    pub out: PathBuf,
    pub enclave_args: Vec<String>,
    pub sign: Option<(PathBuf, PathBuf)>,
}

fn run(cmd: &mut Command) -> Result<String> {
    let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    if !out.status.success() {
        bail!("{cmd:?} failed: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `SOURCE_DATE_EPOCH`, or the commit time of HEAD, or 0.
pub fn source_date_epoch(root: &Path) -> u64 {
    epoch_and_source(root).0
}

/// [`source_date_epoch`] and where it came from (recorded in pcrs.json: a rebuild from the
/// same commit with another `SOURCE_DATE_EPOCH` gives other PCR1 and PCR2).
fn epoch_and_source(root: &Path) -> (u64, &'static str) {
    if let Some(v) = std::env::var("SOURCE_DATE_EPOCH").ok().and_then(|v| v.parse().ok()) {
        return (v, "SOURCE_DATE_EPOCH");
    }
    match run(Command::new("git").args(["log", "-1", "--format=%ct"]).current_dir(root))
        .ok()
        .and_then(|s| s.trim().parse().ok())
    {
        Some(t) => (t, "commit time"),
        None => (0, "none (0)"),
    }
}

/// The overrides of this build's checks that were in effect (recorded in pcrs.json: PCRs
/// built under one may not match a verifier's rebuild).
fn overrides_in_effect() -> Vec<String> {
    ["EIF_ALLOW_OTHER_RUST", "EIF_ALLOW_CARGO_CONFIG"]
        .into_iter()
        .filter(|v| std::env::var_os(v).is_some_and(|x| !x.is_empty()))
        .map(String::from)
        .collect()
}

fn source_commit(root: &Path) -> String {
    let commit = run(Command::new("git").args(["rev-parse", "HEAD"]).current_dir(root)).map(|s| s.trim().to_string());
    let dirty = run(Command::new("git").args(["status", "--porcelain", "--untracked-files=no"]).current_dir(root))
        .map(|s| !s.trim().is_empty())
        .unwrap_or(true);
    match commit {
        Ok(c) if dirty => format!("{c}-dirty"),
        Ok(c) => c,
        Err(_) => "unknown".into(),
    }
}

/// The C compiler behind musl-gcc (AWS-LC's and mimalloc's C and assembly): pinned by
/// `REALGCC` below, and recorded in pcrs.json with the version of the musl headers it
/// compiles against. (mimalloc embeds `__DATE__`: gcc takes it from `SOURCE_DATE_EPOCH`.)
const REAL_GCC: &str = "x86_64-linux-gnu-gcc-12";

/// Whether an inherited environment variable could change what the static build produces:
/// compilers, their flags and wrappers, cargo's build and profile settings, AWS-LC's build
/// switches and a system crypto library it would take instead of the pinned source. Such
/// variables are removed from the build's environment; what it needs is set explicitly.
pub fn inherited_build_setting(name: &str) -> bool {
    const EXACT: &[&str] = &[
        "CC",
        "CXX",
        "AR",
        "RANLIB",
        "CPATH",
        "LIBRARY_PATH",
        "C_INCLUDE_PATH",
        "CPLUS_INCLUDE_PATH",
        "REALGCC",
        // cc-rs takes the archiver's prefix from it when cross-compiling (a review of
        // 2026-12-05); clang-sys and bindgen read the other two.
        "CROSS_COMPILE",
        "LIBCLANG_PATH",
        "LLVM_CONFIG_PATH",
    ];
    const PREFIXES: &[&str] = &[
        "CC_",
        "CXX_",
        "AR_",
        "CFLAGS",
        "CXXFLAGS",
        "CPPFLAGS",
        "LDFLAGS",
        "ASMFLAGS",
        "TARGET_",
        "HOST_",
        "CRATE_CC_",
        "AWS_LC_",
        "OPENSSL_",
        "PKG_CONFIG",
        "BINDGEN_",
        "CMAKE",
        "RUSTFLAGS",
        "RUSTC",
        "RUSTDOCFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_BUILD_",
        "CARGO_PROFILE_",
        "CARGO_TARGET_",
        "CARGO_INCREMENTAL",
        "CCACHE",
        "SCCACHE",
        "GCC_",
        "COMPILER_PATH",
        "LD_",
    ];
    EXACT.contains(&name) || PREFIXES.iter().any(|p| name.starts_with(p))
}

/// The C toolchain as pcrs.json records it: the compiler (also the linker driver), the
/// linker's package (binutils) and musl's.
fn c_toolchain() -> String {
    let gcc = run(Command::new(REAL_GCC).arg("-dumpfullversion")).map(|s| s.trim().to_string());
    let package = |name: &str| {
        run(Command::new("dpkg-query").args(["-W", "-f", "${Version}", name])).map(|s| s.trim().to_string())
    };
    format!(
        "{REAL_GCC} {}, binutils {}, musl-dev {}",
        gcc.unwrap_or_else(|_| "unknown".into()),
        package("binutils").unwrap_or_else(|_| "unknown".into()),
        package("musl-dev").unwrap_or_else(|_| "unknown".into())
    )
}

/// Cargo configuration files the build would read besides the clone's own: in `CARGO_HOME`
/// and in every directory above the clone (as cargo walks them: the physical path). Any of
/// them can change the binaries (a linker, a flag, a patched dependency), and none is part
/// of the source a verifier rebuilds. (In the clone's own `.cargo`, `build_binaries` refuses
/// untracked configuration files.)
pub fn foreign_cargo_configs(root: &Path, cargo_home: &Path) -> Vec<PathBuf> {
    let root = root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
    let mut dirs: Vec<PathBuf> = root.ancestors().skip(1).map(|d| d.join(".cargo")).collect();
    dirs.push(cargo_home.canonicalize().unwrap_or_else(|_| cargo_home.to_path_buf()));
    let mut found = Vec::new();
    for dir in dirs {
        for name in ["config", "config.toml"] {
            let path = dir.join(name);
            if path.is_file() && !found.contains(&path) {
                found.push(path);
            }
        }
    }
    found
}

/// Builds the two static binaries reproducibly; returns their paths.
fn build_binaries(root: &Path, epoch: u64) -> Result<(PathBuf, PathBuf, String)> {
    let rustc = run(Command::new("rustc").arg("--version").current_dir(root))?.trim().to_string();
    if !rustc.starts_with(&format!("rustc {RUST_VERSION} ")) && std::env::var_os("EIF_ALLOW_OTHER_RUST").is_none() {
        bail!(
            "the image is built with Rust {RUST_VERSION} (another compiler gives other PCRs), found {rustc:?}. \
             Install it (rustup toolchain install {RUST_VERSION} --target {TARGET}) and run with \
             RUSTUP_TOOLCHAIN={RUST_VERSION}, or set EIF_ALLOW_OTHER_RUST=1 for a build whose PCRs won't match"
        );
    }
    let target_dir = root.join("target/eif-build");
    let home = std::env::var("CARGO_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cargo"));
    let mut foreign = foreign_cargo_configs(root, &home);
    // In the clone's own `.cargo`, only what the commit holds: cargo prefers an untracked
    // `config` to the tracked `config.toml`, and the dirty check does not see untracked files.
    let untracked = run(Command::new("git")
        .args(["ls-files", "-z", "--others", "--", ".cargo/config", ".cargo/config.toml"])
        .current_dir(root))
    .context("listing untracked files in the clone's .cargo (the image is built from a git checkout)")?;
    foreign.extend(untracked.split('\0').filter(|l| !l.is_empty()).map(|l| root.join(l)));
    if !foreign.is_empty() && std::env::var("EIF_ALLOW_CARGO_CONFIG").as_deref() != Ok("1") {
        bail!(
            "cargo would read configuration from outside the source ({}): it can change the image, and a \
             verifier's rebuild would not have it. Move it away, or set EIF_ALLOW_CARGO_CONFIG=1 for a build whose \
             PCRs may not match",
            foreign.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
        );
    }
    for path in &foreign {
        eprintln!("xtask: WARNING: EIF_ALLOW_CARGO_CONFIG=1: cargo also reads {}", path.display());
    }
    let rustflags = [
        "-C target-feature=+crt-static".to_string(),
        "-C link-arg=-Wl,--build-id=none".to_string(),
        format!("--remap-path-prefix={}=/bridle", root.display()),
        format!("--remap-path-prefix={}=/cargo", home.display()),
    ]
    .join(" ");
    let cflags = format!("-ffile-prefix-map={}=/bridle -ffile-prefix-map={}=/cargo", root.display(), home.display());
    eprintln!("xtask: building bridle-enclave and bridle-init ({TARGET}, {rustc})");
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    for (name, _) in std::env::vars_os() {
        if name.to_str().is_none_or(inherited_build_setting) {
            cmd.env_remove(&name);
        }
    }
    let st = cmd
        .args(["build", "--release", "--locked", "--target", TARGET, "-p", "bridle-enclave", "-p", "bridle-init"])
        .current_dir(root)
        .env("CARGO_TARGET_DIR", &target_dir)
        .env("RUSTFLAGS", rustflags)
        .env("SOURCE_DATE_EPOCH", epoch.to_string())
        .env("CARGO_PROFILE_RELEASE_DEBUG", "0")
        .env("CARGO_PROFILE_RELEASE_STRIP", "symbols")
        .env("CARGO_PROFILE_RELEASE_INCREMENTAL", "false")
        .env("CC_x86_64_unknown_linux_musl", "musl-gcc")
        .env("REALGCC", REAL_GCC)
        // The linker driver, named rather than whatever `cc` is on this machine.
        .env("CARGO_TARGET_X86_64_UNKNOWN_LINUX_MUSL_LINKER", REAL_GCC)
        // C sources (AWS-LC) name their files (`__FILE__`) in error strings: map the
        // clone's and CARGO_HOME's paths (AWS-LC's sources) away.
        .env("CFLAGS_x86_64_unknown_linux_musl", cflags)
        // AWS-LC from the source Cargo.lock pins, built by its cc builder (never a system
        // install it detects, nor a CMake fallback).
        .env("AWS_LC_SYS_USE_SYSTEM", "0")
        .env("AWS_LC_SYS_CMAKE_BUILDER", "0")
        .status()
        .context("running cargo")?;
    if !st.success() {
        bail!("building the static binaries failed (is the {TARGET} target installed and musl-gcc present? scripts/install-eif-deps.sh)");
    }
    let dir = target_dir.join(TARGET).join("release");
    Ok((dir.join("bridle-enclave"), dir.join("bridle-init"), rustc))
}

/// The boot ramdisk: /init, the console node, the mount points, the modules and their order.
pub fn boot_ramdisk(init: Vec<u8>, modules: &[(String, Vec<u8>)], mtime: u32) -> Result<Vec<u8>> {
    let mut a = Archive::new();
    let e = |r: Result<(), String>| r.map_err(anyhow::Error::msg);
    e(a.add("init", Kind::File(init), 0o755))?;
    e(a.add("dev/console", Kind::CharDev(5, 1), 0o600))?;
    for d in ["proc", "sys", "tmp"] {
        e(a.add(d, Kind::Dir, 0o755))?;
    }
    let mut order = String::from("# load order (bridle-init)\n");
    for (name, ko) in modules {
        e(a.add(&format!("lib/modules/{name}"), Kind::File(ko.clone()), 0o644))?;
        order.push_str(name);
        order.push('\n');
    }
    e(a.add("lib/modules/order", Kind::File(order.into_bytes()), 0o644))?;
    Ok(a.to_bytes(mtime))
}

/// The application ramdisk: the enclave and its arguments.
pub fn app_ramdisk(enclave: Vec<u8>, args: &[String], mtime: u32) -> Result<Vec<u8>> {
    let mut a = Archive::new();
    let e = |r: Result<(), String>| r.map_err(anyhow::Error::msg);
    e(a.add("bridle/enclave", Kind::File(enclave), 0o755))?;
    let text: String = args.iter().map(|a| format!("{a}\n")).collect();
    e(a.add("bridle/enclave.args", Kind::File(text.into_bytes()), 0o644))?;
    Ok(a.to_bytes(mtime))
}

/// RFC 3339 UTC for unix seconds (civil-from-days).
fn rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", rem / 3600, (rem % 3600) / 60, rem % 60)
}

/// Measures an EIF file as `nitro-cli describe-eif` does: PCR0, PCR1, PCR2 (PCR8 if signed).
pub fn describe(eif: &Path) -> Result<BTreeMap<String, String>> {
    let mut r = EifReader::from_eif(eif.display().to_string()).map_err(anyhow::Error::msg)?;
    if r.eif_crc != r.header.eif_crc32 {
        bail!("{}: CRC mismatch (corrupt EIF)", eif.display());
    }
    let signed = r.signature_section.is_some();
    let pcrs = get_pcrs(
        &mut r.image_hasher,
        &mut r.bootstrap_hasher,
        &mut r.app_hasher,
        &mut r.cert_hasher,
        <sha2_09::Sha384 as sha2_09::Digest>::new(),
        signed,
    )
    .map_err(anyhow::Error::msg)?;
    Ok(pcrs)
}

/// What the init's command-line check relies on, in the EIF as written: its command line is
/// [`CMDLINE`] (which the init accepts), and the boot ramdisk, whose first bytes follow the
/// command line in the measured stream, does not begin with a byte the init accepts after
/// it (a space or a newline): otherwise the host could move them onto the command line
/// with the PCRs unchanged and the init none the wiser. (A cpio archive begins `070701`.)
pub fn check_sections(eif: &Path) -> Result<()> {
    let (_, cmdline, ramdisks) = crate::vm::eif_sections(eif)?;
    if cmdline != CMDLINE {
        bail!("{}: its command line is {cmdline:?}, not the init's {CMDLINE:?}", eif.display());
    }
    crate::image_cmdline::check_image_cmdline(&cmdline).map_err(anyhow::Error::msg)?;
    match ramdisks.first().and_then(|r| r.first()) {
        Some(b' ' | b'\n' | b'\t' | 0) | None => {
            bail!("{}: the boot ramdisk is empty or begins with a separator", eif.display())
        }
        Some(_) => Ok(()),
    }
}

pub fn build(o: &Options) -> Result<BTreeMap<String, String>> {
    let epoch = source_date_epoch(&o.root);
    let mtime = u32::try_from(epoch).unwrap_or(u32::MAX);
    let (enclave_bin, init_bin, rustc) = build_binaries(&o.root, epoch)?;
    let enclave = std::fs::read(&enclave_bin).with_context(|| format!("reading {}", enclave_bin.display()))?;
    let init = std::fs::read(&init_bin).with_context(|| format!("reading {}", init_bin.display()))?;
    let k = kernel::fetch(&o.root.join("target/eif-cache"))?;

    std::fs::create_dir_all(&o.out)?;
    let boot = o.out.join("boot.cpio");
    let app = o.out.join("app.cpio");
    std::fs::write(&boot, boot_ramdisk(init, &k.modules, mtime)?)?;
    std::fs::write(&app, app_ramdisk(enclave, &o.enclave_args, mtime)?)?;

    let info = EifIdentityInfo {
        img_name: "bridle-enclave".into(),
        img_version: env!("CARGO_PKG_VERSION").into(),
        build_info: EifBuildInfo {
            build_time: rfc3339(epoch),
            build_tool: "bridle xtask enclave-image".into(),
            build_tool_version: env!("CARGO_PKG_VERSION").into(),
            img_os: "linux".into(),
            img_kernel: kernel::RELEASE.into(),
        },
        docker_info: serde_json::json!({}),
        custom_info: serde_json::json!({
            "source_commit": source_commit(&o.root),
            "kernel_package": format!("{}={}", kernel::PACKAGE, kernel::VERSION),
            "kernel_deb_sha256": kernel::DEB_SHA256,
        }),
    };
    let sign = match &o.sign {
        Some((cert, key)) => Some(
            SignEnclaveInfo::new(&cert.display().to_string(), &key.display().to_string())
                .map_err(anyhow::Error::msg)?,
        ),
        None => None,
    };
    let eif_path = o.out.join("bridle.eif");
    let mut builder =
        EifBuilder::new(&k.vmlinuz, CMDLINE.to_string(), sign, <sha2_09::Sha384 as sha2_09::Digest>::new(), 0, info);
    builder.add_ramdisk(&boot);
    builder.add_ramdisk(&app);
    let mut file = std::fs::File::create(&eif_path)?;
    let built = builder.write_to(&mut file);
    drop(file);
    // Read back and measure again, as a verifier with `nitro-cli describe-eif` would.
    let described = describe(&eif_path)?;
    if described != built {
        bail!("the EIF measures {described:?} read back, but {built:?} when built");
    }
    check_sections(&eif_path)?;

    // PCR16: the configuration commitment of the image's enclave arguments.
    let mut pcr16_cmd = Command::new(&enclave_bin);
    pcr16_cmd.arg("--print-pcr16").args(&o.enclave_args);
    let printed = run(&mut pcr16_cmd)?;
    let pcr16 = printed
        .lines()
        .find_map(|l| l.strip_prefix("pcr16="))
        .context("bridle-enclave --print-pcr16 printed no pcr16=")?
        .to_string();

    let eif_bytes = std::fs::read(&eif_path)?;
    let mut pcrs = built.clone();
    pcrs.insert("PCR16".into(), pcr16);
    let mut doc = serde_json::Map::new();
    for (k, v) in &pcrs {
        doc.insert(k.clone(), serde_json::Value::String(v.clone()));
    }
    doc.insert("enclave_args".into(), serde_json::json!(o.enclave_args));
    doc.insert("kernel".into(), serde_json::json!(format!("{}={}", kernel::PACKAGE, kernel::VERSION)));
    doc.insert("cmdline".into(), serde_json::json!(CMDLINE));
    doc.insert("eif_sha256".into(), serde_json::json!(hex::encode(sha2::Sha256::digest(&eif_bytes))));
    doc.insert("toolchain".into(), serde_json::json!(rustc));
    doc.insert("c_toolchain".into(), serde_json::json!(c_toolchain()));
    let (epoch, source) = epoch_and_source(&o.root);
    doc.insert("source_date_epoch".into(), serde_json::json!({"value": epoch, "from": source}));
    doc.insert("overrides".into(), serde_json::json!(overrides_in_effect()));
    let text = serde_json::to_string_pretty(&serde_json::Value::Object(doc))? + "\n";
    std::fs::write(o.out.join("pcrs.json"), text)?;
    Ok(pcrs)
}

#[cfg(test)]
mod tests {
    use super::{foreign_cargo_configs, inherited_build_setting};
    use std::path::{Path, PathBuf};

    mod section_boundaries {
        use super::super::{app_ramdisk, boot_ramdisk, check_sections, CMDLINE};
        use crate::image_cmdline::check_image_cmdline;
        use aws_nitro_enclaves_image_format::defs::{EifBuildInfo, EifIdentityInfo};
        use aws_nitro_enclaves_image_format::utils::EifBuilder;
        use std::collections::BTreeMap;
        use std::path::{Path, PathBuf};

        fn info() -> EifIdentityInfo {
            EifIdentityInfo {
                img_name: "bridle-enclave".into(),
                img_version: "0".into(),
                build_info: EifBuildInfo {
                    build_time: "2026-01-01T00:00:00Z".into(),
                    build_tool: "test".into(),
                    build_tool_version: "0".into(),
                    img_os: "linux".into(),
                    img_kernel: "k".into(),
                },
                docker_info: serde_json::json!({}),
                custom_info: serde_json::json!({}),
            }
        }

        /// Writes an EIF of these sections; returns it and its PCRs measured read back (as
        /// `nitro-cli describe-eif`).
        fn eif(
            dir: &Path,
            tag: &str,
            kernel: &[u8],
            cmdline: &str,
            ramdisks: &[&[u8]],
        ) -> (PathBuf, BTreeMap<String, String>) {
            let k = dir.join(format!("{tag}.kernel"));
            std::fs::write(&k, kernel).unwrap();
            let hasher = <sha2_09::Sha384 as sha2_09::Digest>::new();
            let mut b = EifBuilder::new(&k, cmdline.to_string(), None, hasher, 0, info());
            for (i, r) in ramdisks.iter().enumerate() {
                let p = dir.join(format!("{tag}.r{i}"));
                std::fs::write(&p, r).unwrap();
                b.add_ramdisk(&p);
            }
            let path = dir.join(format!("{tag}.eif"));
            let mut f = std::fs::File::create(&path).unwrap();
            let built = b.write_to(&mut f);
            drop(f);
            let read = super::super::describe(&path).unwrap();
            assert_eq!(built, read);
            (path, read)
        }

        /// What the init reads in /proc/cmdline from a command-line section: the kernel
        /// takes it up to its first NUL; the hypervisor appends its devices after a space.
        fn proc_cmdlines(section: &str) -> [String; 3] {
            let read = section.split('\0').next().unwrap_or("");
            [section.to_string(), format!("{read}\n"), format!("{read} virtio_mmio.device=4K@0xd0000000:5\n")]
        }

        /// A review of 2026-12-05 (boot path): Nitro's PCRs hash the EIF's sections as one
        /// stream without their lengths, so EIFs that split the same bytes otherwise between
        /// the kernel, the command line and the boot ramdisk measure as the published one —
        /// the command line's front moved onto the kernel's end (a bzImage ignores trailing
        /// bytes), a NUL of the kernel's put first, its end moved into the ramdisk, or the
        /// ramdisk's first bytes appended to it. Each of those EIFs has the published PCRs;
        /// the init refuses the command line each gives, and so does the build's own check.
        #[test]
        fn eifs_split_otherwise_measure_alike_and_the_init_refuses_them() {
            let t = tempfile::tempdir().unwrap();
            let dir = t.path();
            // A kernel whose image ends in zero padding, as a NUL for the command line's front.
            let mut kernel = b"MZ\x00\x01 a bzImage ".repeat(64);
            kernel.extend_from_slice(&[0; 16]);
            let modules = [("nsm.ko".to_string(), b"\x7fELF nsm".to_vec())];
            let boot = boot_ramdisk(b"\x7fELF bridle-init".to_vec(), &modules, 1_767_225_600).unwrap();
            assert!(boot.starts_with(b"070701"), "a newc cpio archive");
            let args = ["--vsock".to_string(), "4294967295:5000".to_string()];
            let app = app_ramdisk(b"\x7fELF bridle-enclave".to_vec(), &args, 1_767_225_600).unwrap();

            let (published_eif, published) = eif(dir, "published", &kernel, CMDLINE, &[&boot, &app]);
            check_sections(&published_eif).unwrap();
            for c in proc_cmdlines(CMDLINE) {
                check_image_cmdline(&c).unwrap();
            }

            let mut variants: Vec<(String, Vec<u8>, String, Vec<u8>)> = Vec::new();
            // The command line's front moved onto the kernel's end: at every byte, the
            // review's "random.trust_cpu=on" among them.
            for cut in 1..=CMDLINE.len() {
                let mut k = kernel.clone();
                k.extend_from_slice(&CMDLINE.as_bytes()[..cut]);
                variants.push((format!("front {cut}"), k, CMDLINE[cut..].to_string(), boot.clone()));
            }
            // A NUL of the kernel's put first (the kernel then reads an empty command line).
            for n in 1..=4 {
                let k = kernel[..kernel.len() - n].to_vec();
                let c = format!("{}{CMDLINE}", "\0".repeat(n));
                variants.push((format!("nul {n}"), k, c, boot.clone()));
            }
            // The command line's end moved into the boot ramdisk.
            for cut in 0..CMDLINE.len() {
                let mut r = CMDLINE.as_bytes()[cut..].to_vec();
                r.extend_from_slice(&boot);
                variants.push((format!("end {cut}"), kernel.clone(), CMDLINE[..cut].to_string(), r));
            }
            // The boot ramdisk's first bytes appended to the command line (its header is text).
            for n in 1..=110 {
                let c = format!("{CMDLINE}{}", std::str::from_utf8(&boot[..n]).unwrap());
                variants.push((format!("ramdisk {n}"), kernel.clone(), c, boot[n..].to_vec()));
            }
            let stream = [&kernel[..], CMDLINE.as_bytes(), &boot].concat();
            for (i, (what, k, c, r)) in variants.iter().enumerate() {
                assert_eq!([&k[..], c.as_bytes(), r].concat(), stream, "{what}: the same bytes, split otherwise");
                for proc_cmdline in proc_cmdlines(c) {
                    assert!(check_image_cmdline(&proc_cmdline).is_err(), "{what}: the init boots {proc_cmdline:?}");
                }
                // (The EIF library refuses to write a command line with a NUL; a host's own
                // writer need not.)
                if !c.contains('\0') {
                    let (path, pcrs) = eif(dir, &format!("v{i}"), k, c, &[r, &app]);
                    for pcr in ["PCR0", "PCR1", "PCR2"] {
                        assert_eq!(pcrs[pcr], published[pcr], "{what}: {pcr}");
                    }
                    assert!(check_sections(&path).is_err(), "{what}");
                }
            }
        }

        #[test]
        fn the_boot_ramdisk_begins_with_no_separator() {
            let boot = boot_ramdisk(Vec::new(), &[], 0).unwrap();
            assert!(boot.starts_with(b"070701"));
        }
    }

    #[test]
    fn cargo_configs_outside_the_clone_are_found() {
        let t = tempfile::tempdir().unwrap();
        let base = t.path().canonicalize().unwrap();
        let root = base.join("a/b/clone");
        let home = base.join("home/.cargo");
        for d in [&root.join(".cargo"), &home, &base.join("a/.cargo")] {
            std::fs::create_dir_all(d).unwrap();
        }
        // Only what this test made counts (the machine may have its own above the temp dir).
        let found = |root: &Path| -> Vec<PathBuf> {
            foreign_cargo_configs(root, &home).into_iter().filter(|p| p.starts_with(&base)).collect()
        };
        // The clone's own configuration is part of the source: never reported.
        std::fs::write(root.join(".cargo/config.toml"), "").unwrap();
        assert!(found(&root).is_empty());
        std::fs::write(base.join("a/.cargo/config"), "").unwrap();
        std::fs::write(home.join("config.toml"), "").unwrap();
        assert_eq!(found(&root), vec![base.join("a/.cargo/config"), home.join("config.toml")]);
        // Reached through a symbolic link, the walk is the physical one (as cargo's).
        std::os::unix::fs::symlink(base.join("a/b"), base.join("link")).unwrap();
        assert_eq!(found(&base.join("link/clone")), vec![base.join("a/.cargo/config"), home.join("config.toml")]);
        // A directory named like a file is not a configuration.
        std::fs::remove_file(home.join("config.toml")).unwrap();
        std::fs::create_dir(home.join("config.toml")).unwrap();
        assert_eq!(found(&root), vec![base.join("a/.cargo/config")]);
    }

    #[test]
    fn compiler_and_build_settings_are_not_inherited() {
        for name in [
            "CC",
            "CFLAGS",
            "CFLAGS_x86_64_unknown_linux_musl",
            "TARGET_CC",
            "TARGET_CFLAGS",
            "HOST_CFLAGS",
            "CRATE_CC_NO_DEFAULTS",
            "AWS_LC_SYS_USE_SYSTEM",
            "AWS_LC_SYS_NO_JITTER_ENTROPY",
            "OPENSSL_DIR",
            "PKG_CONFIG_PATH",
            "REALGCC",
            "RUSTFLAGS",
            "RUSTC_WRAPPER",
            "CARGO_ENCODED_RUSTFLAGS",
            "CARGO_PROFILE_RELEASE_LTO",
            "CARGO_TARGET_X86_64_UNKNOWN_LINUX_MUSL_LINKER",
            "CARGO_BUILD_TARGET",
            "LD_PRELOAD",
        ] {
            assert!(inherited_build_setting(name), "{name} must not reach the build");
        }
        for name in ["PATH", "HOME", "CARGO_HOME", "RUSTUP_HOME", "RUSTUP_TOOLCHAIN", "HTTPS_PROXY", "TMPDIR", "CARGO"]
        {
            assert!(!inherited_build_setting(name), "{name} is needed by the build");
        }
    }
}
