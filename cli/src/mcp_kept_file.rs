//! The kept payments on disk: what `bridle mcp` knows of its payments outlives the process.
//!
//! The guard of [`crate::mcp_kept`] held only in the server's memory (a review of
//! 2026-12-07): a host that withheld a stamped request and answered a refusal, then had it
//! signed and broadcast, got the payment made twice once `bridle mcp` was started again (a
//! new conversation, a client restart) and the model asked for it again. Now every change
//! to the kept payments is written to a file — the session's, next to the trust file
//! (`<trust file's directory>/mcp/<session>.json`) unless `--kept-file` names another —
//! before the server goes on: a payment is kept as unseen before its request is sent, and as
//! sent before it is broadcast. A server that cannot write it signs nothing.
//!
//! One server at a time per file: a lock (`<file>.lock`, an advisory lock the system drops
//! when the process ends) is taken at start, and a second server for the same session and
//! file refuses to start — two servers would each pay what the other was refused.

use crate::mcp_kept::{KeptPayments, Saved, MAX_KEPT, MAX_REVERTED};
use alloy_primitives::Address;
use anyhow::{bail, Context, Result};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The most bytes a kept-payments file may hold: [`MAX_KEPT`] and [`MAX_REVERTED`]
/// payments of a transaction of up to the host's body limit, twice (the request and what was
/// signed), in hex: a bound against a file that is not one.
const MAX_FILE_BYTES: u64 = 1 << 30;

/// The kept-payments file of one server, locked for its life.
#[derive(Debug)]
pub struct KeptFile {
    path: PathBuf,
    /// Held for the lock.
    _lock: File,
}

/// The default file for `session`: `<the trust file's directory>/mcp/<session>.json`.
pub fn default_path(session: Address) -> Result<PathBuf> {
    let trust = crate::trust::path()?;
    let dir = trust.parent().map(Path::to_path_buf).unwrap_or_default();
    Ok(dir.join("mcp").join(format!("{session:#x}.json")))
}

fn now_unix() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

impl KeptFile {
    /// Lock `path` for this server and read what it holds (nothing yet: none kept).
    pub fn open(path: &Path, session: Address) -> Result<(KeptFile, KeptPayments)> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            create_private_dir(dir)?;
        }
        let lock_path = path.with_extension("json.lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .with_context(|| format!("cannot open {}", lock_path.display()))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => bail!(
                "another `bridle mcp` serves session {session} with the kept payments in {}: two servers would each \
                 pay what the other was refused; stop it first (or give this one --kept-file, once you know the \
                 other's payments)",
                path.display()
            ),
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("cannot lock {}", lock_path.display()))
            }
        }
        let kept = match std::fs::metadata(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => KeptPayments::default(),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
            Ok(m) if m.len() > MAX_FILE_BYTES => {
                bail!("{} is {} bytes, more than a kept-payments file holds", path.display(), m.len())
            }
            Ok(_) => {
                let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
                let saved: Vec<Saved> = serde_json::from_str(&text).with_context(|| {
                    format!(
                        "{} is not a kept-payments file (move it away only if no payment in it is pending)",
                        path.display()
                    )
                })?;
                if saved.len() > MAX_KEPT + MAX_REVERTED {
                    bail!(
                        "{} holds {} payments, more than the {} a server keeps",
                        path.display(),
                        saved.len(),
                        MAX_KEPT + MAX_REVERTED
                    );
                }
                KeptPayments::restored(saved, now_unix(), Instant::now())
            }
        };
        Ok((KeptFile { path: path.to_path_buf(), _lock: lock }, kept))
    }

    /// Write `kept` down (a new file renamed over the old one, synced first).
    pub fn save(&self, kept: &KeptPayments) -> Result<()> {
        self.save_within(kept, MAX_FILE_BYTES)
    }

    fn save_within(&self, kept: &KeptPayments, max: u64) -> Result<()> {
        let text = serde_json::to_vec(&kept.saved(now_unix(), Instant::now()))?;
        // What `open` would refuse is never written (a review of 2026-12-07: a file grown past
        // the bound by oversize requests stopped the next start): the change is refused here,
        // before anything is signed.
        if text.len() as u64 > max {
            bail!(
                "the kept payments would take {} bytes, more than a kept-payments file holds ({max}): resolve some \
                 first",
                text.len()
            );
        }
        let tmp = self.path.with_extension("json.new");
        let mut f = private_file(&tmp)?;
        f.write_all(&text).and_then(|()| f.sync_all()).with_context(|| format!("cannot write {}", tmp.display()))?;
        std::fs::rename(&tmp, &self.path).with_context(|| format!("cannot replace {}", self.path.display()))?;
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn create_private_dir(dir: &Path) -> Result<()> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
    b.create(dir).with_context(|| format!("cannot create {}", dir.display()))
}

fn private_file(path: &Path) -> Result<File> {
    let mut o = OpenOptions::new();
    o.create(true).truncate(true).write(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    o.open(path).with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mcp_kept::tests::{payment, tx};
    use crate::mcp_kept::Send;
    use alloy_primitives::Bytes;

    #[test]
    fn what_is_kept_outlives_the_server_and_one_server_holds_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mcp/s.json");
        let session = Address::repeat_byte(0x5e);
        let (file, mut kept) = KeptFile::open(&path, session).unwrap();
        assert_eq!(kept.send(&payment(1), 0, false), Send::Fresh);
        kept.unseen(payment(1), tx(3), Some("rate_limited"), 4, Instant::now());
        kept.sent(payment(2), tx(4), Bytes::from(vec![2u8; 8]));
        file.save(&kept).unwrap();
        // A second server for the same file refuses to start.
        let e = KeptFile::open(&path, session).unwrap_err().to_string();
        assert!(e.contains("another `bridle mcp` serves session"), "{e}");
        drop(file);
        // The next server knows both payments.
        let (_file, again) = KeptFile::open(&path, session).unwrap();
        assert_eq!(again.send(&payment(1), 0, false), Send::Again { tx: tx(3), held: false });
        assert!(matches!(again.send(&payment(2), 4, false), Send::NotMined { nonce: 4, .. }));
        assert_eq!(again.send(&payment(2), 5, false), Send::NonceTaken { nonce: 4 });
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
    }

    #[test]
    fn what_the_file_could_not_be_read_back_as_is_never_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.json");
        let (file, mut kept) = KeptFile::open(&path, Address::ZERO).unwrap();
        kept.unseen(payment(1), tx(3), None, 0, Instant::now());
        file.save_within(&kept, 1 << 20).unwrap();
        let before = std::fs::read(&path).unwrap();
        kept.unseen(payment(2), tx(4), None, 0, Instant::now());
        let e = file.save_within(&kept, before.len() as u64).unwrap_err().to_string();
        assert!(e.contains("more than a kept-payments file holds"), "{e}");
        assert_eq!(std::fs::read(&path).unwrap(), before, "the file is left as it was");
    }

    #[test]
    fn a_file_that_is_not_kept_payments_stops_the_server() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.json");
        std::fs::write(&path, "{\"not\": \"a list\"}").unwrap();
        let e = format!("{:#}", KeptFile::open(&path, Address::ZERO).unwrap_err());
        assert!(e.contains("is not a kept-payments file"), "{e}");
    }
}
