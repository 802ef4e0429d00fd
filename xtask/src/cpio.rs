//! Deterministic `newc` cpio archives (the initramfs format the kernel unpacks): entries
//! sorted by path, parents before children, inode numbers in that order, every mtime,
//! uid and gid fixed, modes given explicitly. The same entries always give the same bytes.

use std::collections::BTreeMap;

/// What an entry is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Dir,
    File(Vec<u8>),
    /// A character device node (major, minor).
    CharDev(u32, u32),
}

/// An archive under construction: path (no leading `/`) → (kind, permission bits).
#[derive(Debug, Default, Clone)]
pub struct Archive {
    entries: BTreeMap<String, (Kind, u32)>,
}

impl Archive {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an entry; its parent directories are added (mode 0755) when missing.
    pub fn add(&mut self, path: &str, kind: Kind, perm: u32) -> Result<(), String> {
        let path = path.trim_start_matches('/');
        if path.is_empty() || path.split('/').any(|c| c.is_empty() || c == "." || c == "..") {
            return Err(format!("cpio: bad path {path:?}"));
        }
        if perm > 0o7777 {
            return Err(format!("cpio: {path}: mode {perm:o} is not a permission"));
        }
        let mut parent = String::new();
        let comps: Vec<&str> = path.split('/').collect();
        for c in &comps[..comps.len() - 1] {
            if !parent.is_empty() {
                parent.push('/');
            }
            parent.push_str(c);
            match self.entries.get(&parent) {
                Some((Kind::Dir, _)) => {}
                Some(_) => return Err(format!("cpio: {parent} is not a directory")),
                None => {
                    self.entries.insert(parent.clone(), (Kind::Dir, 0o755));
                }
            }
        }
        if self.entries.insert(path.to_string(), (kind, perm)).is_some() {
            return Err(format!("cpio: {path} added twice"));
        }
        Ok(())
    }

    /// The archive's bytes (`newc`, ending with `TRAILER!!!`). Every entry has mtime
    /// `mtime`, uid 0 and gid 0.
    pub fn to_bytes(&self, mtime: u32) -> Vec<u8> {
        let mut out = Vec::new();
        // BTreeMap order puts every directory before its children (a strict prefix sorts
        // first), as the kernel needs when it unpacks.
        for (ino, (path, (kind, perm))) in self.entries.iter().enumerate() {
            let (type_bits, nlink, data, (rmaj, rmin)): (u32, u32, &[u8], _) = match kind {
                Kind::Dir => (0o040000, 2, &[], (0, 0)),
                Kind::File(d) => (0o100000, 1, d.as_slice(), (0, 0)),
                Kind::CharDev(ma, mi) => (0o020000, 1, &[], (*ma, *mi)),
            };
            header(&mut out, ino as u32 + 1, type_bits | perm, nlink, mtime, data.len() as u32, rmaj, rmin, path);
            out.extend_from_slice(data);
            pad4(&mut out);
        }
        header(&mut out, 0, 0, 1, 0, 0, 0, 0, "TRAILER!!!");
        out
    }
}

fn pad4(out: &mut Vec<u8>) {
    while !out.len().is_multiple_of(4) {
        out.push(0);
    }
}

#[allow(clippy::too_many_arguments)]
fn header(out: &mut Vec<u8>, ino: u32, mode: u32, nlink: u32, mtime: u32, size: u32, rmaj: u32, rmin: u32, name: &str) {
    let namesize = name.len() as u32 + 1;
    // magic, ino, mode, uid, gid, nlink, mtime, filesize, devmajor, devminor, rdevmajor,
    // rdevminor, namesize, check
    let fields = [ino, mode, 0, 0, nlink, mtime, size, 0, 0, rmaj, rmin, namesize, 0];
    out.extend_from_slice(b"070701");
    for f in fields {
        out.extend_from_slice(format!("{f:08x}").as_bytes());
    }
    out.extend_from_slice(name.as_bytes());
    out.push(0);
    pad4(out);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(order: &[usize]) -> Vec<u8> {
        let items: [(&str, Kind, u32); 4] = [
            ("init", Kind::File(b"\x7fELF".to_vec()), 0o755),
            ("dev/console", Kind::CharDev(5, 1), 0o600),
            ("lib/modules/order", Kind::File(b"vsock.ko\n".to_vec()), 0o644),
            ("proc", Kind::Dir, 0o755),
        ];
        let mut a = Archive::new();
        for &i in order {
            let (p, k, m) = items[i].clone();
            a.add(p, k, m).unwrap();
        }
        a.to_bytes(0)
    }

    #[test]
    fn same_entries_same_bytes_whatever_the_order() {
        assert_eq!(sample(&[0, 1, 2, 3]), sample(&[3, 2, 1, 0]));
        assert_eq!(sample(&[0, 1, 2, 3]).len() % 4, 0);
    }

    #[test]
    fn newc_layout() {
        let bytes = sample(&[0, 1, 2, 3]);
        assert!(bytes.starts_with(b"070701"));
        let text = String::from_utf8_lossy(&bytes);
        // Parents first: dev before dev/console, lib before lib/modules before its file.
        let pos = |s: &str| text.find(&format!("{s}\0")).unwrap_or_else(|| panic!("{s}"));
        assert!(pos("dev") < pos("dev/console"));
        assert!(pos("lib") < pos("lib/modules") && pos("lib/modules") < pos("lib/modules/order"));
        assert!(text.contains("TRAILER!!!"));
        // The console node: mode 020600, rdev 5:1, uid/gid 0, mtime 0.
        let h = &bytes[pos("dev/console") - 110..pos("dev/console")];
        let field =
            |i: usize| u32::from_str_radix(std::str::from_utf8(&h[6 + 8 * i..14 + 8 * i]).unwrap(), 16).unwrap();
        assert_eq!(field(1), 0o020600);
        assert_eq!((field(2), field(3), field(5)), (0, 0, 0));
        assert_eq!((field(9), field(10)), (5, 1));
    }

    #[test]
    fn refuses_bad_paths_and_duplicates() {
        let mut a = Archive::new();
        assert!(a.add("../x", Kind::Dir, 0o755).is_err());
        assert!(a.add("a//b", Kind::Dir, 0o755).is_err());
        assert!(a.add("x", Kind::Dir, 0o10000).is_err());
        a.add("f", Kind::File(vec![]), 0o644).unwrap();
        assert!(a.add("f", Kind::File(vec![]), 0o644).is_err());
        assert!(a.add("f/g", Kind::File(vec![]), 0o644).is_err(), "f is a file");
    }

    #[test]
    fn the_host_cpio_reads_it() {
        // Cross-check with GNU cpio when it is installed (skipped otherwise).
        if std::process::Command::new("cpio").arg("--version").output().is_err() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let bytes = sample(&[0, 1, 2, 3]);
        let mut child = std::process::Command::new("cpio")
            .args(["-it", "--quiet"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .current_dir(dir.path())
            .spawn()
            .unwrap();
        use std::io::Write;
        child.stdin.take().unwrap().write_all(&bytes).unwrap();
        let out = child.wait_with_output().unwrap();
        let list = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            list.lines().collect::<Vec<_>>(),
            ["dev", "dev/console", "init", "lib", "lib/modules", "lib/modules/order", "proc"]
        );
    }
}
