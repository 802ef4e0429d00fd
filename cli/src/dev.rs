//! `bridle dev`: a development enclave (mock NSM, Unix socket) and the host on localhost.

use anyhow::{anyhow, Context, Result};
use clap::Args;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[derive(Args)]
pub struct DevArgs {
    /// Working directory for the socket, database and logs.
    #[arg(long, default_value = ".bridle-dev")]
    dir: PathBuf,
    /// Host listen address.
    #[arg(long, default_value = "127.0.0.1:8547")]
    listen: String,
    /// Development clock offset file passed to the enclave (tests move time with it).
    #[arg(long)]
    clock_offset_file: Option<PathBuf>,
    /// Run an enclave cluster of N nodes instead of one enclave (README, "High
    /// availability"): N enclaves and N hosts on loopback; `<dir>/cluster.json` lists them.
    #[arg(long, value_name = "N")]
    cluster: Option<usize>,
}

/// Find a sibling binary (same directory as `bridle`), else rely on PATH.
pub(crate) fn binary(name: &str) -> PathBuf {
    if let Ok(me) = std::env::current_exe() {
        if let Some(dir) = me.parent() {
            let p = dir.join(name);
            if p.exists() {
                return p;
            }
        }
    }
    PathBuf::from(name)
}

pub(crate) struct Kids(pub Vec<Child>);
impl Drop for Kids {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Start a child and wait for its "listening" line on stdout.
pub(crate) fn start(cmd: Command, what: &str) -> Result<(Child, String)> {
    start_reading(cmd, what).map(|(child, line, _)| (child, line))
}

/// [`start`], with the lines the child printed before its "listening" line (at most 64
/// kept).
pub(crate) fn start_reading(mut cmd: Command, what: &str) -> Result<(Child, String, Vec<String>)> {
    let mut child =
        cmd.stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().with_context(|| format!("cannot start {what}"))?;
    let out = child.stdout.take().ok_or_else(|| anyhow!("no stdout from {what}"))?;
    let mut lines = BufReader::new(out).lines();
    let mut before = Vec::new();
    loop {
        match lines.next() {
            Some(Ok(l)) if l.contains("listening on") => {
                // Keep draining stdout so the child never blocks on a full pipe.
                std::thread::spawn(move || for _ in lines.by_ref() {});
                return Ok((child, l, before));
            }
            Some(Ok(l)) => {
                if before.len() < 64 {
                    before.push(l);
                }
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(anyhow!("{what} exited before listening"));
            }
        }
    }
}

pub fn run(a: DevArgs) -> Result<i32> {
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = Arc::clone(&stop);
        // Installed before anything starts: SIGINT/SIGTERM stop polling; dropping `kids` kills and reaps both children.
        ctrlc::set_handler(move || stop.store(true, Ordering::SeqCst)).context("cannot install signal handler")?;
    }
    std::fs::create_dir_all(&a.dir)?;
    let dir = a.dir.canonicalize()?;
    if let Some(n) = a.cluster {
        return crate::dev_cluster::run(n, &dir, &a.listen, a.clock_offset_file.as_ref(), stop);
    }
    let sock = dir.join("enclave.sock");
    let db = dir.join("host.sqlite");
    let mut kids = Kids(vec![]);

    let mut enclave = Command::new(binary("bridle-enclave"));
    let root = dir.join("mock-root.pem");
    enclave.arg("--unix").arg(&sock).arg("--dev").arg("--dev-nsm-root-out").arg(&root);
    if let Some(f) = &a.clock_offset_file {
        enclave.arg("--dev-clock-offset-file").arg(f);
    }
    let (child, _) = start(enclave, "bridle-enclave")?;
    kids.0.push(child);

    let mut host = Command::new(binary("bridle-host"));
    host.arg("--enclave").arg(format!("unix:{}", sock.display())).arg("--listen").arg(&a.listen).arg("--db").arg(&db);
    let (child, line) = start(host, "bridle-host")?;
    kids.0.push(child);
    let url = line.rsplit(' ').next().unwrap_or("").to_string();

    // Trust this enclave for this host URL before anyone is told about it: the owner and
    // agent commands then work at once, with no flag.
    let trust = match crate::trust_cmd::dev_setup(&url, &root) {
        Ok((file, e)) => format!(
            "enclave {} attested with the mock root (any image: development only), in {}",
            e.identity_address,
            file.display()
        ),
        Err(e) => {
            eprintln!("warning: could not record trust in the development enclave: {e:#}");
            format!("NOT SET UP ({e}); pass --identity-key to the owner and agent commands")
        }
    };

    print_banner(&url, &sock, &db, &dir, &root, &trust);

    loop {
        for (i, c) in kids.0.iter_mut().enumerate() {
            if let Ok(Some(status)) = c.try_wait() {
                let name = if i == 0 { "bridle-enclave" } else { "bridle-host" };
                eprintln!("{name} exited ({status}); stopping");
                return Ok(1);
            }
        }
        if stop.load(Ordering::SeqCst) {
            eprintln!("stopping bridle dev");
            return Ok(0);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn print_banner(url: &str, sock: &Path, db: &Path, dir: &Path, root: &Path, trust: &str) {
    println!("Bridle dev is running (development enclave: keys in memory, mock NSM).");
    println!("  trust:   {trust}");
    println!("  host:    {url}");
    println!("  console: {url}/ui/ (owner console: open it in a browser with a wallet)");
    println!("  enclave: unix:{}", sock.display());
    println!("  db:      {}", db.display());
    println!("  nsm root: {} (mock; bridle verify attestation|session --root)", root.display());
    println!();
    println!("Next, in another terminal:");
    println!("  bridle owner keygen --out {}/owner.key", dir.display());
    println!("  bridle agent keygen --out {}/agent.key", dir.display());
    println!(
        "  bridle owner grant --key {0}/owner.key --agent {0}/agent.key --policy examples/policies/usdc-daily.toml",
        dir.display()
    );
    println!("Ctrl-C stops both.");
}
