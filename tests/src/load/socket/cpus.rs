//! CPU affinity through `taskset` (util-linux): which CPUs a process may use, pinning every
//! thread of a process, and putting this process's own set back when done.

use std::process::Command;

/// A CPU list as `taskset -c` writes it (`0,1`).
pub fn list(cpus: &[usize]) -> String {
    cpus.iter().map(|c| c.to_string()).collect::<Vec<_>>().join(",")
}

/// Parse a `taskset -c` list (`0-3,5`); `None` if it is not one.
pub fn parse(text: &str) -> Option<Vec<usize>> {
    let mut out = Vec::new();
    for part in text.trim().split(',') {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (usize, usize) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
                if b < a || b - a > 4096 {
                    return None;
                }
                out.extend(a..=b);
            }
            None => out.push(part.trim().parse().ok()?),
        }
    }
    out.sort_unstable();
    out.dedup();
    (!out.is_empty()).then_some(out)
}

/// The CPUs `pid` may run on.
pub fn allowed(pid: u32) -> Result<Vec<usize>, String> {
    let out = Command::new("taskset")
        .args(["-c", "-p", &pid.to_string()])
        .output()
        .map_err(|e| format!("taskset: {e} (util-linux)"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    // "pid 123's current affinity list: 0,1"
    text.rsplit_once(':')
        .and_then(|(_, l)| parse(l))
        .ok_or_else(|| format!("taskset -c -p {pid}: unexpected answer {:?}", text.trim()))
}

/// Pin every thread of `pid` to `cpus`.
pub fn pin(pid: u32, cpus: &[usize]) -> Result<(), String> {
    let l = list(cpus);
    let out = Command::new("taskset")
        .args(["-a", "-p", "-c", &l, &pid.to_string()])
        .output()
        .map_err(|e| format!("taskset: {e} (util-linux)"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("taskset -a -p -c {l} {pid}: {}", String::from_utf8_lossy(&out.stderr).trim()))
    }
}

/// Puts this process's CPU set back as it was when dropped (every return and unwind).
pub struct Restore(pub Vec<usize>);

impl Drop for Restore {
    fn drop(&mut self) {
        let _ = pin(std::process::id(), &self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_parse_and_print() {
        assert_eq!(parse("0-3,5"), Some(vec![0, 1, 2, 3, 5]));
        assert_eq!(parse(" 1 \n"), Some(vec![1]));
        assert_eq!(parse("2,2,0"), Some(vec![0, 2]));
        assert_eq!(parse(""), None);
        assert_eq!(parse("3-1"), None);
        assert_eq!(parse("a"), None);
        assert_eq!(parse("0-99999"), None);
        assert_eq!(list(&[0, 2]), "0,2");
    }

    #[test]
    fn reads_this_process() {
        let me = allowed(std::process::id()).unwrap();
        assert!(!me.is_empty());
    }
}
