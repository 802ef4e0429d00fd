//! This machine: CPU time of local processes, load average, and the raw secp256k1 signing
//! rate (the yardstick every end-to-end figure is divided by).

use std::time::{Duration, Instant};

/// Clock ticks per second of `/proc/<pid>/stat` times (`getconf CLK_TCK`, else 100).
pub fn clock_ticks() -> f64 {
    static TCK: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TCK.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse::<f64>().ok())
            .filter(|t| *t > 0.0)
            .unwrap_or(100.0)
    })
}

/// CPU seconds (user + system) a process has used so far; `None` if it cannot be read.
pub fn cpu_secs(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the ")" that ends the command name: utime is the 14th, stime the 15th.
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok());
    Some((ticks(11)? + ticks(12)?) / clock_ticks())
}

/// Resident memory of a process (KiB, `VmRSS` of `/proc/<pid>/status`).
pub fn rss_kib(pid: u32) -> Option<u64> {
    let st = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    st.lines().find_map(|l| l.strip_prefix("VmRSS:")).and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// The 1-, 5- and 15-minute load averages.
pub fn load_average() -> Option<[f64; 3]> {
    let s = std::fs::read_to_string("/proc/loadavg").ok()?;
    let mut it = s.split_whitespace().map(|v| v.parse::<f64>().ok());
    Some([it.next()??, it.next()??, it.next()??])
}

pub fn cores() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

/// Raw k256 recoverable signatures per second over a prehashed digest, with `threads`
/// threads for `secs` seconds.
pub fn raw_rate(threads: usize, secs: f64) -> f64 {
    let start = Instant::now();
    let stop = start + Duration::from_secs_f64(secs);
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            std::thread::spawn(move || {
                // A nonzero byte below the group order's first byte: always a valid scalar.
                let key = k256::ecdsa::SigningKey::from_slice(&[(t % 250) as u8 + 1; 32]).expect("a valid scalar");
                let mut n = 0u64;
                let mut d = [7u8; 32];
                while Instant::now() < stop {
                    d[..8].copy_from_slice(&n.to_le_bytes());
                    let _ = key.sign_prehash_recoverable(&d).expect("signs");
                    n += 1;
                }
                n
            })
        })
        .collect();
    let total: u64 = handles.into_iter().map(|h| h.join().expect("raw signing thread")).sum();
    total as f64 / start.elapsed().as_secs_f64()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let me = std::process::id();
        let a = cpu_secs(me).unwrap();
        assert!(raw_rate(1, 0.05) > 0.0);
        assert!(cpu_secs(me).unwrap() >= a);
        assert!(cpu_secs(u32::MAX).is_none());
        assert!(load_average().is_some());
        assert!(rss_kib(me).unwrap() > 0);
        assert!(rss_kib(u32::MAX).is_none());
    }
}
