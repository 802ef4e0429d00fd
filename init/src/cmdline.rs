//! What PID 1 reads from the kernel command line and the image: pure parsing, tested on
//! the host.

/// Options for the init, from `/proc/cmdline`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct BootOptions {
    /// `bridle.dev=1`: start the enclave with `--dev` (mock NSM) and print the mock root
    /// certificate on the console. For VMs without an NSM device (the boot test). What
    /// keeps a development boot from passing for the release image is not the PCRs'
    /// measurement of the command line — they fix the bytes of the kernel, the command line
    /// and the boot ramdisk concatenated, not where the command line starts and ends, and
    /// not what the hypervisor appends — but `--dev`, which changes PCR16 and gives a mock
    /// NSM whose documents verify against no AWS root, and [`check_dev`], which refuses it
    /// where an NSM device is bound. (The init also requires the image's own command line
    /// as the prefix of the one it reads: `crate::image_cmdline`.)
    pub dev: bool,
    /// `bridle.heartbeat=0|1`: force the Nitro boot heartbeat off or on. Default: send it
    /// exactly when an NSM device is present (that is, on Nitro).
    pub heartbeat: Option<bool>,
    /// `bridle.heartbeat_cid=N`: where the heartbeat goes (default 3, Nitro's parent
    /// instance). A VM whose user-space vsock backend is the host (CID 2) sets 2.
    pub heartbeat_cid: Option<u32>,
}

/// Splits a kernel command line into words; double quotes group (as the kernel does).
pub fn words(cmdline: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut any = false;
    for c in cmdline.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                any = true;
            }
            c if c.is_whitespace() && !quoted => {
                if any {
                    out.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            c => {
                cur.push(c);
                any = true;
            }
        }
    }
    if any {
        out.push(cur);
    }
    out
}

fn flag(value: &str) -> Result<bool, String> {
    match value {
        "1" | "y" | "yes" | "on" | "true" => Ok(true),
        "0" | "n" | "no" | "off" | "false" => Ok(false),
        other => Err(format!("expected 0 or 1, got {other:?}")),
    }
}

/// Reads the `bridle.*` options; an unknown `bridle.` option is an error (a typo must
/// not silently change how the enclave boots).
pub fn boot_options(cmdline: &str) -> Result<BootOptions, String> {
    let mut o = BootOptions::default();
    for w in words(cmdline) {
        let Some(rest) = w.strip_prefix("bridle.") else { continue };
        let (key, value) = rest.split_once('=').unwrap_or((rest, "1"));
        match key {
            "dev" => o.dev = flag(value).map_err(|e| format!("bridle.dev: {e}"))?,
            "heartbeat" => o.heartbeat = Some(flag(value).map_err(|e| format!("bridle.heartbeat: {e}"))?),
            "heartbeat_cid" => {
                o.heartbeat_cid =
                    Some(value.parse().map_err(|_| format!("bridle.heartbeat_cid: {value:?} is not a CID"))?)
            }
            _ => {
                return Err(format!(
                    "unknown boot option {w:?} (known: bridle.dev, bridle.heartbeat, bridle.heartbeat_cid)"
                ))
            }
        }
    }
    Ok(o)
}

/// The parameters the command line gives module `name` (`name.key=value`, `-` and `_`
/// equivalent, as modprobe passes them), joined for `init_module(2)`.
pub fn module_params(cmdline: &str, name: &str) -> String {
    let norm = |s: &str| s.replace('-', "_");
    let want = norm(name);
    let mut params = Vec::new();
    for w in words(cmdline) {
        if let Some((module, param)) = w.split_once('.') {
            if norm(module) == want && !param.is_empty() && !param.starts_with('=') {
                // Quote values with spaces, as the kernel's parser expects.
                match param.split_once('=') {
                    Some((k, v)) if v.contains(char::is_whitespace) => params.push(format!("{k}=\"{v}\"")),
                    _ => params.push(param.to_string()),
                }
            }
        }
    }
    params.join(" ")
}

/// The module load order: one file name per line (relative to the modules directory);
/// blank lines and `#` comments ignored. A name with a `/` or `..` is refused.
pub fn module_order(text: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if line.contains('/') || line.contains("..") || !line.ends_with(".ko") {
            return Err(format!("module list: {line:?} is not a plain NAME.ko file name"));
        }
        out.push(line.to_string());
    }
    Ok(out)
}

/// The enclave's arguments: one per line, blank lines ignored (no quoting, no shell).
pub fn enclave_args(text: &str) -> Vec<String> {
    text.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_string).collect()
}

/// A development boot only where no NSM device is bound: on Nitro, the command line the
/// init reads holds what the hypervisor appends after the image's own (its
/// `virtio_mmio.device=…`), which no PCR measures, so a `bridle.dev=1` there is refused
/// rather than trusted to have been measured — an enclave with a mock NSM on real hardware
/// would hand out documents that verify against nothing, to users who trust on first use (a
/// review of 2026-12-05).
pub fn check_dev(opts: &BootOptions, nsm_bound: bool) -> Result<(), String> {
    if opts.dev && nsm_bound {
        return Err("bridle.dev=1 on a machine with an NSM device (a Nitro Enclave): a development boot is only for VMs without one".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_and_quotes() {
        assert_eq!(words(" a  b=\"c d\" e\n"), vec!["a", "b=c d", "e"]);
        assert_eq!(words(""), Vec::<String>::new());
    }

    #[test]
    fn bridle_options() {
        let o = boot_options("console=ttyS0 reboot=k panic=30").unwrap();
        assert_eq!(o, BootOptions::default());
        let o = boot_options("console=ttyS0 bridle.dev=1 bridle.heartbeat=0").unwrap();
        assert!(o.dev);
        assert_eq!(o.heartbeat, Some(false));
        assert!(boot_options("bridle.dev").unwrap().dev);
        assert_eq!(boot_options("bridle.heartbeat_cid=2").unwrap().heartbeat_cid, Some(2));
        assert!(boot_options("bridle.heartbeat_cid=x").is_err());
        assert!(boot_options("bridle.dve=1").unwrap_err().contains("unknown boot option"));
        assert!(boot_options("bridle.dev=maybe").is_err());
        // Never where an NSM device is bound.
        let dev = boot_options("bridle.dev=1").unwrap();
        assert!(check_dev(&dev, false).is_ok());
        assert!(check_dev(&dev, true).unwrap_err().contains("NSM device"));
        assert!(check_dev(&BootOptions::default(), true).is_ok());
    }

    #[test]
    fn params_for_a_module() {
        let c = "virtio_mmio.device=4K@0xd0000000:5 virtio-mmio.device=4K@0xd0001000:6 nsm.x=1 vsock";
        assert_eq!(module_params(c, "virtio_mmio"), "device=4K@0xd0000000:5 device=4K@0xd0001000:6");
        assert_eq!(module_params(c, "nsm"), "x=1");
        assert_eq!(module_params(c, "vsock"), "");
        assert_eq!(module_params("m.k=\"a b\"", "m"), "k=\"a b\"");
    }

    #[test]
    fn module_list() {
        assert_eq!(module_order("# order\nvsock.ko\n\n nsm.ko \n").unwrap(), vec!["vsock.ko", "nsm.ko"]);
        assert!(module_order("../x.ko").is_err());
        assert!(module_order("a/b.ko").is_err());
        assert!(module_order("x.ko.xz").is_err());
    }

    #[test]
    fn args_file() {
        assert_eq!(enclave_args("--vsock\n4294967295:5000\n\n"), vec!["--vsock", "4294967295:5000"]);
    }
}
