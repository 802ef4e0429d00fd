//! `bridle-init`: PID 1 of Bridle's enclave image. There is no shell and nothing else in
//! the image: this program brings the machine up, starts `bridle-enclave`, and powers off
//! when it exits.
//!
//! 1. mount `/proc`, `/sys` and `/dev` (devtmpfs);
//! 2. check that `/proc/cmdline` begins with the image's own command line
//!    ([`image_cmdline::CMDLINE`], followed by its end or a space: the PCRs do not fix where
//!    the command line starts and ends, see [`image_cmdline`]), then read the `bridle.*`
//!    boot options from it (see [`cmdline::BootOptions`]);
//! 3. load the kernel modules listed in `/lib/modules/order` (`virtio_mmio`, `nsm`,
//!    `vsock`, the virtio vsock transport), decompressed at build time, with
//!    `init_module(2)`, passing them their `module.param=value` options from the command
//!    line as modprobe would;
//! 4. check that the clock is set (no earlier than 2026-01-01) and wait until the kernel
//!    RNG is seeded (a non-blocking read of `/dev/random` must succeed; otherwise say so
//!    and block), so that no key is generated from an unseeded generator;
//! 5. on Nitro (an NSM device was bound by the `nsm` driver), send the boot heartbeat:
//!    byte `0xB7` to the parent (CID 3) on vsock port 9000, and wait for it to come back
//!    (`bridle.heartbeat=0|1` and `bridle.heartbeat_cid=N` override, for test VMs);
//! 6. run `/bridle/enclave` with the arguments in `/bridle/enclave.args` (one per line),
//!    plus, with `bridle.dev=1` only, `--dev --dev-nsm-root-out /dev/console` (the mock NSM's
//!    root certificate is printed on the console for the boot test's verifier);
//! 7. when it exits, power off.
//!
//! Any failure is printed on the console (`bridle-init: FATAL: …`) and stops the boot: the
//! machine powers off without starting the enclave.

mod cmdline;
mod image_cmdline;

use std::ffi::CString;
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const MODULES_DIR: &str = "/lib/modules";
const ENCLAVE: &str = "/bridle/enclave";
const ENCLAVE_ARGS: &str = "/bridle/enclave.args";
/// 2026-01-01T00:00:00Z: a clock earlier than this was never set.
const CLOCK_FLOOR: u64 = 1_767_225_600;
/// The Nitro boot heartbeat: parent CID, port, byte.
const HEARTBEAT_CID: u32 = 3;
const HEARTBEAT_PORT: u32 = 9000;
const HEARTBEAT_BYTE: u8 = 0xB7;

fn say(msg: impl std::fmt::Display) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "bridle-init: {msg}");
    let _ = out.flush();
}

fn main() {
    let code = match run() {
        Ok(status) => {
            say(format!("bridle-enclave exited ({status}); powering off"));
            0
        }
        Err(e) => {
            say(format!("FATAL: {e}"));
            say("boot stopped; powering off");
            1
        }
    };
    power_off(code)
}

fn run() -> Result<std::process::ExitStatus, String> {
    if std::process::id() != 1 {
        return Err("not PID 1: bridle-init is the init of the enclave image, not a program to run".into());
    }
    mount_all()?;
    let cmdline = std::fs::read_to_string("/proc/cmdline").map_err(|e| format!("cannot read /proc/cmdline: {e}"))?;
    // Before anything reads an option from it (module parameters included).
    match image_cmdline::check_image_cmdline(&cmdline)? {
        "" => say("kernel command line: the image's own"),
        appended => say(format!("kernel command line: the image's own, then {appended:?}")),
    }
    let opts = cmdline::boot_options(&cmdline)?;
    load_modules(&cmdline)?;
    check_clock()?;
    wait_for_entropy()?;
    let nitro = nsm_bound();
    cmdline::check_dev(&opts, nitro)?;
    match (opts.heartbeat, nitro) {
        (Some(true), _) | (None, true) => heartbeat(opts.heartbeat_cid.unwrap_or(HEARTBEAT_CID))?,
        (Some(false), _) => say("boot heartbeat disabled (bridle.heartbeat=0)"),
        (None, false) => say("no NSM device: not a Nitro Enclave; no boot heartbeat"),
    }
    start_enclave(&opts)
}

fn mount(source: &str, target: &str, fstype: &str, flags: libc::c_ulong) -> Result<(), String> {
    std::fs::create_dir_all(target).map_err(|e| format!("mkdir {target}: {e}"))?;
    let c = |s: &str| CString::new(s).map_err(|_| format!("NUL in {s:?}"));
    let (src, tgt, fs) = (c(source)?, c(target)?, c(fstype)?);
    // SAFETY: mount(2) with valid NUL-terminated strings that outlive the call and no
    // filesystem-specific data (NULL).
    let rc = unsafe { libc::mount(src.as_ptr(), tgt.as_ptr(), fs.as_ptr(), flags, std::ptr::null()) };
    if rc != 0 {
        return Err(format!("mount {fstype} on {target}: {}", std::io::Error::last_os_error()));
    }
    Ok(())
}

fn mount_all() -> Result<(), String> {
    let nodev = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
    mount("proc", "/proc", "proc", nodev)?;
    mount("sysfs", "/sys", "sysfs", nodev)?;
    mount("devtmpfs", "/dev", "devtmpfs", libc::MS_NOSUID | libc::MS_NOEXEC)?;
    Ok(())
}

fn load_modules(cmdline: &str) -> Result<(), String> {
    let order_path = Path::new(MODULES_DIR).join("order");
    let order =
        std::fs::read_to_string(&order_path).map_err(|e| format!("cannot read {}: {e}", order_path.display()))?;
    for file in cmdline::module_order(&order)? {
        let path = Path::new(MODULES_DIR).join(&file);
        let image = std::fs::read(&path).map_err(|e| format!("cannot read module {}: {e}", path.display()))?;
        let name = file.trim_end_matches(".ko");
        let params = cmdline::module_params(cmdline, name);
        let c_params = CString::new(params.clone()).map_err(|_| format!("{name}: NUL in module parameters"))?;
        // SAFETY: init_module(2) reads `image.len()` bytes from `image` and the
        // NUL-terminated parameter string; both outlive the call.
        let rc = unsafe {
            libc::syscall(libc::SYS_init_module, image.as_ptr() as *const libc::c_void, image.len(), c_params.as_ptr())
        };
        if rc != 0 {
            let err = std::io::Error::last_os_error();
            if err.raw_os_error() == Some(libc::EEXIST) {
                say(format!("module {name}: already loaded"));
                continue;
            }
            return Err(format!("cannot load module {name}: {err}"));
        }
        if params.is_empty() {
            say(format!("module {name} loaded"));
        } else {
            say(format!("module {name} loaded ({params})"));
        }
        check_params_taken(name, &params)?;
    }
    Ok(())
}

/// A parameter the command line gives a module that the module does not have is ignored by
/// the kernel. For `virtio_mmio.device=` (how a hypervisor without ACPI announces its
/// virtio-mmio devices: vsock, the NSM) that would leave the enclave without its devices,
/// so say exactly why instead.
fn check_params_taken(name: &str, params: &str) -> Result<(), String> {
    for p in params.split_whitespace() {
        let key = p.split('=').next().unwrap_or(p);
        if name == "virtio_mmio" && key == "device" && !Path::new("/sys/module/virtio_mmio/parameters/device").exists()
        {
            return Err("the command line announces virtio-mmio devices (virtio_mmio.device=…), but this \
                        kernel's virtio_mmio has no `device` parameter (built without \
                        CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES): the vsock and NSM devices cannot be found"
                .into());
        }
    }
    Ok(())
}

fn check_clock() -> Result<(), String> {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    if now < CLOCK_FLOOR {
        return Err(format!(
            "the clock reads {now} s since 1970, before 2026-01-01: it was never set, and session \
             expiry and spend periods would be wrong"
        ));
    }
    say(format!("clock: {now} s since 1970 (UTC)"));
    Ok(())
}

/// Returns once the kernel's CRNG is initialised: a non-blocking read of `/dev/random`
/// fails with EAGAIN until then (Linux ≥ 5.6), after which every read, and getrandom(2),
/// is from the seeded generator.
fn wait_for_entropy() -> Result<(), String> {
    let mut byte = [0u8; 1];
    let open = |nonblock: bool| {
        std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(if nonblock { libc::O_NONBLOCK } else { 0 })
            .open("/dev/random")
            .map_err(|e| format!("cannot open /dev/random: {e}"))
    };
    match open(true)?.read(&mut byte) {
        Ok(1) => {
            say("kernel RNG seeded");
            return Ok(());
        }
        Ok(_) => return Err("/dev/random: empty read".into()),
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        Err(e) => return Err(format!("/dev/random: {e}")),
    }
    say("waiting for the kernel RNG to be seeded before any key is generated…");
    let t0 = std::time::Instant::now();
    open(false)?.read_exact(&mut byte).map_err(|e| format!("/dev/random: {e}"))?;
    say(format!("kernel RNG seeded after {:.1} s", t0.elapsed().as_secs_f64()));
    Ok(())
}

/// Whether the `nsm` driver bound a device (only Nitro, or an emulation of it, has one);
/// then waits (up to 5 s) for devtmpfs to create `/dev/nsm`.
fn nsm_bound() -> bool {
    let bound = std::fs::read_dir("/sys/bus/virtio/drivers/nsm")
        .map(|d| d.flatten().any(|e| e.file_name().to_string_lossy().starts_with("virtio")))
        .unwrap_or(false);
    if bound {
        for _ in 0..50 {
            if Path::new("/dev/nsm").exists() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        say(format!("NSM device bound; /dev/nsm {}", if Path::new("/dev/nsm").exists() { "ready" } else { "missing" }));
    }
    bound
}

fn heartbeat(cid: u32) -> Result<(), String> {
    let fail = |what: &str, e: std::io::Error| format!("boot heartbeat ({what} vsock {cid}:{HEARTBEAT_PORT}): {e}");
    let mut s =
        vsock::VsockStream::connect(&vsock::VsockAddr::new(cid, HEARTBEAT_PORT)).map_err(|e| fail("connect to", e))?;
    s.set_read_timeout(Some(Duration::from_secs(30))).map_err(|e| fail("timeout on", e))?;
    s.write_all(&[HEARTBEAT_BYTE]).map_err(|e| fail("send to", e))?;
    let mut echo = [0u8; 1];
    s.read_exact(&mut echo).map_err(|e| fail("echo from", e))?;
    if echo[0] != HEARTBEAT_BYTE {
        return Err(format!("boot heartbeat: the parent answered {:#04x}, expected {HEARTBEAT_BYTE:#04x}", echo[0]));
    }
    say(format!("boot heartbeat acknowledged (vsock {cid}:{HEARTBEAT_PORT})"));
    Ok(())
}

fn start_enclave(opts: &cmdline::BootOptions) -> Result<std::process::ExitStatus, String> {
    let text = std::fs::read_to_string(ENCLAVE_ARGS).map_err(|e| format!("cannot read {ENCLAVE_ARGS}: {e}"))?;
    let mut args = cmdline::enclave_args(&text);
    if opts.dev {
        say("bridle.dev=1: development enclave (mock NSM); its root certificate follows on the console");
        args.extend(["--dev", "--dev-nsm-root-out", "/dev/console"].map(String::from));
    }
    say(format!("starting {ENCLAVE} {}", args.join(" ")));
    let mut child = std::process::Command::new(ENCLAVE)
        .args(&args)
        .env_clear()
        .env("BRIDLE_LOG", "info")
        .spawn()
        .map_err(|e| format!("cannot start {ENCLAVE}: {e}"))?;
    child.wait().map_err(|e| format!("waiting for {ENCLAVE}: {e}"))
}

fn power_off(code: i32) -> ! {
    // SAFETY: sync(2) has no arguments and cannot fail.
    unsafe { libc::sync() };
    if std::process::id() == 1 {
        // SAFETY: reboot(2) with RB_POWER_OFF; as PID 1 nothing else needs to run after it.
        unsafe { libc::reboot(libc::RB_POWER_OFF) };
    }
    // Not PID 1 (or reboot failed): just exit.
    std::process::exit(code)
}
