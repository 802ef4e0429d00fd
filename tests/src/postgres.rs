//! A real, throwaway PostgreSQL server for tests (Debian's `postgresql` package; no mock).
//!
//! [`PgServer::start`] makes a temporary directory, runs `initdb` (password
//! authentication, a random password) and starts `postgres` on 127.0.0.1 at a free port
//! with its Unix socket in that directory, through `pg_ctl -w` (which waits until the
//! server accepts connections). PostgreSQL refuses to run as root: when the tests run as
//! root, every server command runs as the `postgres` system user (`runuser`), and the
//! directory is handed to that user.
//!
//! Cleanup does not rely on destructors alone: a small watchdog shell holds a pipe from
//! the test process and, when the pipe closes — the server is dropped, or the process
//! exits or dies — stops the server and removes the directory. So the server shared by
//! every test of one process ([`shared`]) is cleaned up too, though statics are never
//! dropped.
//!
//! Missing binaries: the tests skip, saying why, unless `CI=true`, where they fail.
//!
//! Standard library and `tempfile` only: `bridle-host`'s tests include this very file
//! (`#[path]`), so the host's store tests need no dependency on this crate.

use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

/// A running PostgreSQL server, stopped and removed on drop.
pub struct PgServer {
    bin: PathBuf,
    dir: PathBuf,
    pub port: u16,
    password: String,
    as_postgres: bool,
    watchdog: Mutex<Option<(Child, ChildStdin)>>,
}

/// The directory holding `initdb`, `pg_ctl` and `postgres`: `$BRIDLE_PG_BIN`, else the
/// newest `/usr/lib/postgresql/*/bin` (Debian's layout).
pub fn bin_dir() -> Option<PathBuf> {
    let ok = |d: &Path| ["initdb", "pg_ctl", "postgres", "createdb"].iter().all(|b| d.join(b).is_file());
    if let Some(d) = std::env::var_os("BRIDLE_PG_BIN").map(PathBuf::from) {
        return ok(&d).then_some(d);
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
        .filter(|(_, d)| ok(d))
        .collect();
    versions.sort();
    versions.pop().map(|(_, d)| d)
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Uid:")).map(|l| l.split_whitespace().nth(2) == Some("0")))
        .unwrap_or(false)
}

/// uid and gid of the `postgres` system user.
fn postgres_user() -> (u32, u32) {
    let passwd = std::fs::read_to_string("/etc/passwd").expect("read /etc/passwd");
    let line = passwd
        .lines()
        .find(|l| l.starts_with("postgres:"))
        .expect("no `postgres` system user (apt-get install postgresql creates it)");
    let f: Vec<&str> = line.split(':').collect();
    (f[2].parse().expect("uid"), f[3].parse().expect("gid"))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl PgServer {
    /// Start a server, or `None` (with the reason printed) when PostgreSQL is not
    /// installed and this is not CI. Panics when it is CI, or when the server fails.
    pub fn start() -> Option<PgServer> {
        let Some(bin) = bin_dir() else {
            let why = "PostgreSQL server binaries not found (/usr/lib/postgresql/*/bin or $BRIDLE_PG_BIN): \
                       apt-get install postgresql (scripts/install-test-deps.sh does)";
            assert!(!in_ci(), "{why}; CI=true, so this fails instead of skipping");
            eprintln!("SKIPPED (PostgreSQL): {why}");
            return None;
        };
        let as_postgres = is_root();
        let dir = tempfile::Builder::new().prefix("bridle-pg-").tempdir().expect("temp dir").keep();
        let mut pw = [0u8; 16];
        std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom").unwrap(), &mut pw).unwrap();
        let password: String = pw.iter().map(|b| format!("{b:02x}")).collect();
        let pwfile = dir.join("pw");
        std::fs::write(&pwfile, &password).unwrap();
        std::fs::create_dir(dir.join("data")).unwrap();
        if as_postgres {
            let (uid, gid) = postgres_user();
            for p in [dir.as_path(), &pwfile, &dir.join("data")] {
                std::os::unix::fs::chown(p, Some(uid), Some(gid)).expect("chown to postgres");
            }
        }
        let mut server = PgServer { bin, dir, port: free_port(), password, as_postgres, watchdog: Mutex::new(None) };
        server.watch();
        let data = server.dir.join("data");
        server.run(
            "initdb",
            &[
                "-D".as_ref(),
                data.as_os_str(),
                "-U".as_ref(),
                "postgres".as_ref(),
                format!("--pwfile={}", pwfile.display()).as_ref(),
                "-A".as_ref(),
                "scram-sha-256".as_ref(),
                "-E".as_ref(),
                "UTF8".as_ref(),
                "--no-sync".as_ref(),
            ],
        );
        let log = server.dir.join("server.log");
        // The port is picked before the server starts, and another process may take it in
        // between: the server then cannot bind it, and another port is tried (twice at most).
        for attempt in 1.. {
            // Only what this attempt wrote to the log tells why it failed (pg_ctl appends).
            let logged = std::fs::metadata(&log).map_or(0, |m| m.len() as usize);
            let opts = format!(
                "-k {} -p {} -h 127.0.0.1 -c lc_messages=C -c fsync=off -c synchronous_commit=off -c full_page_writes=off",
                server.dir.display(),
                server.port
            );
            let args: [&std::ffi::OsStr; 10] = [
                "-D".as_ref(),
                data.as_os_str(),
                "-l".as_ref(),
                log.as_os_str(),
                "-o".as_ref(),
                opts.as_ref(),
                "-w".as_ref(),
                "-t".as_ref(),
                "60".as_ref(),
                "start".as_ref(),
            ];
            match server.try_run("pg_ctl", &args) {
                Ok(()) => break,
                Err(_)
                    if attempt < 3
                        && std::fs::read(&log).is_ok_and(|l| {
                            String::from_utf8_lossy(l.get(logged..).unwrap_or_default())
                                .contains("Address already in use")
                        }) =>
                {
                    eprintln!("PostgreSQL: port {} taken, trying another", server.port);
                    server.port = free_port();
                }
                Err(e) => panic!("{e}"),
            }
        }
        Some(server)
    }

    /// The watchdog: stops the server and removes the directory once its stdin closes.
    fn watch(&self) {
        let script = if self.as_postgres {
            r#"read _; runuser -u postgres -- "$0/pg_ctl" -D "$1/data" -m immediate -w stop; rm -rf "$1""#
        } else {
            r#"read _; "$0/pg_ctl" -D "$1/data" -m immediate -w stop; rm -rf "$1""#
        };
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(script)
            .arg(&self.bin)
            .arg(&self.dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the PostgreSQL watchdog");
        let stdin = child.stdin.take().unwrap();
        *self.watchdog.lock().unwrap() = Some((child, stdin));
    }

    fn command(&self, program: &str) -> Command {
        let exe = self.bin.join(program);
        let mut c = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(exe);
            c
        } else {
            Command::new(exe)
        };
        c.current_dir(&self.dir).env("PGPASSWORD", &self.password).stdin(Stdio::null());
        c
    }

    fn run(&self, program: &str, args: &[&std::ffi::OsStr]) {
        if let Err(e) = self.try_run(program, args) {
            panic!("{e}");
        }
    }

    /// Run `program`; its failure with its output and the server's log.
    fn try_run(&self, program: &str, args: &[&std::ffi::OsStr]) -> Result<(), String> {
        let out = self.command(program).args(args).output().map_err(|e| format!("cannot run {program}: {e}"))?;
        if out.status.success() {
            return Ok(());
        }
        let log = std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default();
        Err(format!(
            "{program} failed ({}):\n{}\n{}\n--- server.log\n{log}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }

    /// The password of the `postgres` role (for tests that check it is never printed).
    pub fn password(&self) -> &str {
        &self.password
    }

    /// The URL of database `name` on this server.
    pub fn url(&self, name: &str) -> String {
        format!("postgres://postgres:{}@127.0.0.1:{}/{name}", self.password, self.port)
    }

    /// Create a fresh, empty database; returns its URL.
    pub fn create_database(&self, tag: &str) -> String {
        static N: AtomicU64 = AtomicU64::new(0);
        let clean: String = tag
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' })
            .take(40)
            .collect();
        let name = format!("t_{clean}_{}_{}", std::process::id(), N.fetch_add(1, Ordering::SeqCst));
        let port = self.port.to_string();
        self.run(
            "createdb",
            &[
                "-h".as_ref(),
                "127.0.0.1".as_ref(),
                "-p".as_ref(),
                port.as_ref(),
                "-U".as_ref(),
                "postgres".as_ref(),
                name.as_ref(),
            ],
        );
        self.url(&name)
    }

    /// Stop the server and remove its directory, now.
    pub fn stop(&self) {
        if let Some((mut child, stdin)) = self.watchdog.lock().unwrap_or_else(|e| e.into_inner()).take() {
            drop(stdin);
            let _ = child.wait();
        }
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One server for every test of this process, started on first use; `None` when
/// PostgreSQL is not installed (and not CI).
pub fn shared() -> Option<&'static PgServer> {
    static SERVER: OnceLock<Option<PgServer>> = OnceLock::new();
    SERVER.get_or_init(PgServer::start).as_ref()
}

/// A fresh database on the shared server: its URL.
pub fn fresh_database(tag: &str) -> Option<String> {
    shared().map(|s| s.create_database(tag))
}
