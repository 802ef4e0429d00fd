//! The enclave image's kernel command line, and the init's check of it at boot.
//!
//! This one file is compiled into `bridle-init` (which checks the command line) and into
//! xtask's image builder (`#[path]`; it writes [`CMDLINE`] into the EIF), so the command
//! line the image is built with and the one its init requires cannot drift apart.
//!
//! Why the init checks it: Nitro's PCRs hash the EIF's sections' bytes as one stream —
//! the kernel, the command line and the boot ramdisk for PCR1, everything for PCR0 —
//! without the sections' lengths. The PCRs therefore fix those bytes concatenated, not
//! where the command line starts and ends: an EIF whose command line lost its front to
//! the end of the kernel section (a bzImage ignores trailing bytes), begins with a NUL,
//! or took the first bytes of the boot ramdisk has the same PCR0, PCR1 and PCR2 as the
//! published one (a review of 2026-12-05). The init is measured; so it checks the command
//! line itself and refuses to boot unless `/proc/cmdline` begins with exactly [`CMDLINE`].

/// The kernel command line of the enclave image (the EIF's command-line section).
pub const CMDLINE: &str = "reboot=k panic=30 pci=off console=ttyS0 random.trust_cpu=on";

/// Checks the kernel command line the init reads (`/proc/cmdline`): it must begin with
/// exactly [`CMDLINE`], followed by its end, a newline or a space. What follows a space is
/// not checked: the hypervisor appends options of its own after the measured command line
/// (Nitro's `virtio_mmio.device=…`, separated by a space), and so does the boot test's VM.
/// Bytes the host moved from the boot ramdisk onto the command line follow it without a
/// space (a cpio archive begins with `070701`); a command line that lost its front, or
/// begins with a NUL (then the kernel reads it as empty), does not begin with [`CMDLINE`].
///
/// Returns what follows [`CMDLINE`] (the appended options), trimmed.
pub fn check_image_cmdline(proc_cmdline: &str) -> Result<&str, String> {
    match proc_cmdline.strip_prefix(CMDLINE) {
        Some(rest) if rest.is_empty() || rest.starts_with([' ', '\n']) => Ok(rest.trim()),
        _ => {
            const SHOWN: usize = 300;
            let shown: String = proc_cmdline.chars().take(SHOWN).collect();
            let more = if proc_cmdline.chars().count() > SHOWN { "…" } else { "" };
            Err(format!(
                "the kernel command line {shown:?}{more} does not begin with the image's own {CMDLINE:?} \
                 (then its end or a space): the EIF's sections were split otherwise than they were built \
                 (the PCRs do not fix where the command line starts and ends)"
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{check_image_cmdline, CMDLINE};

    fn ok(cmdline: &str) -> bool {
        check_image_cmdline(cmdline).is_ok()
    }

    #[test]
    fn the_image_command_line_exactly() {
        assert!(ok(CMDLINE));
        // /proc/cmdline ends with a newline.
        assert!(ok(&format!("{CMDLINE}\n")));
    }

    #[test]
    fn options_appended_after_a_space() {
        assert_eq!(check_image_cmdline(&format!("{CMDLINE} a=1 b\n")), Ok("a=1 b"));
        assert_eq!(check_image_cmdline(&format!("{CMDLINE}\n")), Ok(""));
        // As Nitro's hypervisor appends its devices, and the boot test's VMs their options.
        assert!(ok(&format!("{CMDLINE} virtio_mmio.device=4K@0xd0000000:5 virtio_mmio.device=4K@0xd0001000:6\n")));
        assert!(ok(&format!("{CMDLINE} bridle.dev=1 bridle.heartbeat=1 bridle.heartbeat_cid=2\n")));
        assert!(ok(&format!("{CMDLINE} ")));
    }

    #[test]
    fn a_command_line_that_lost_its_front_is_refused() {
        // The review's: the front moved onto the end of the kernel section.
        let cut = CMDLINE.find("random.trust_cpu").unwrap();
        assert!(!ok(&CMDLINE[cut..]));
        assert!(!ok(&format!("{}\n", &CMDLINE[cut..])));
        for i in 1..CMDLINE.len() {
            assert!(!ok(&CMDLINE[i..]), "{:?}", &CMDLINE[i..]);
            assert!(!ok(&format!("{} virtio_mmio.device=4K@0xd0000000:5\n", &CMDLINE[i..])));
        }
    }

    #[test]
    fn a_command_line_that_begins_with_a_nul_is_refused() {
        // The kernel reads a command line that begins with a NUL as empty; were it ever
        // passed on whole, it still does not begin with the image's.
        assert!(!ok(&format!("\0{CMDLINE}")));
        assert!(!ok("\0"));
    }

    #[test]
    fn bytes_moved_across_either_end_are_refused() {
        // The boot ramdisk's first bytes (a cpio archive's magic) appended to the command line.
        assert!(!ok(&format!("{CMDLINE}070701000000010000")));
        assert!(!ok(&format!("{CMDLINE}070701\n")));
        // The command line's end moved into the ramdisk, or shortened by any amount.
        for i in 0..CMDLINE.len() {
            assert!(!ok(&CMDLINE[..i]), "{:?}", &CMDLINE[..i]);
            assert!(!ok(&format!("{}\n", &CMDLINE[..i])));
        }
        // The kernel's last bytes moved onto its front.
        assert!(!ok(&format!("\u{1}\u{2}{CMDLINE}")));
        assert!(!ok(&format!(" {CMDLINE}")));
        // A NUL, a tab or a quote right after it: not a separator the hypervisor uses.
        for sep in ['\0', '\t', '"', '=', 'x'] {
            assert!(!ok(&format!("{CMDLINE}{sep} virtio_mmio.device=4K@0xd0000000:5")), "{sep:?}");
        }
    }

    #[test]
    fn an_empty_command_line_is_refused() {
        assert!(!ok(""));
        assert!(!ok("\n"));
        assert!(!ok(" "));
        let e = check_image_cmdline("\n").unwrap_err();
        assert!(e.contains(CMDLINE), "{e}");
    }

    #[test]
    fn the_image_command_line_is_plain() {
        // One line of space-separated words the kernel takes as they are: no quotes, no
        // control characters, no leading or trailing or doubled space.
        assert!(!CMDLINE.is_empty());
        assert!(CMDLINE.bytes().all(|b| b.is_ascii_graphic() || b == b' '), "{CMDLINE:?}");
        assert!(!CMDLINE.contains('"'));
        assert_eq!(CMDLINE.trim(), CMDLINE);
        assert!(!CMDLINE.contains("  "));
    }
}
