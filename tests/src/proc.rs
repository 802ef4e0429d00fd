//! A child process of a test, killed on drop; started until it prints a marker.

use super::*;

/// A child process killed on drop.
pub struct Proc {
    pub child: Child,
    /// The stdout line that had the marker.
    pub line: String,
    /// The stdout lines printed before it.
    pub before: Vec<String>,
}

impl Proc {
    /// Spawn and wait (up to 20 s) for a stdout line containing "listening on".
    pub fn spawn(cmd: Command) -> Proc {
        Self::spawn_until(cmd, "listening on")
    }

    /// Spawn and wait (up to 20 s) for a stdout line containing `marker`.
    pub fn spawn_until(mut cmd: Command, marker: &str) -> Proc {
        let marker = marker.to_string();
        // BRIDLE_TEST_LOG_DIR keeps every process's stderr (its log) for debugging.
        let stderr = match std::env::var_os("BRIDLE_TEST_LOG_DIR") {
            Some(d) => {
                static N: AtomicU64 = AtomicU64::new(0);
                let name = format!(
                    "{}-{}-{}.log",
                    cmd.get_program().to_string_lossy().rsplit('/').next().unwrap_or("proc"),
                    std::process::id(),
                    N.fetch_add(1, Ordering::Relaxed)
                );
                std::fs::File::create(Path::new(&d).join(name)).map(Stdio::from).unwrap_or_else(|_| Stdio::null())
            }
            None => Stdio::null(),
        };
        let mut child = cmd.stdout(Stdio::piped()).stderr(stderr).spawn().expect("spawn");
        let out = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(out).lines();
            let mut before = Vec::new();
            let mut sent = false;
            for l in lines.by_ref().map_while(Result::ok) {
                if sent {
                    continue;
                }
                if l.contains(&marker) {
                    let _ = tx.send((l, std::mem::take(&mut before)));
                    sent = true;
                } else if before.len() < 64 {
                    before.push(l);
                }
            }
        });
        let (line, before) = match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(l) => l,
            Err(_) => {
                let _ = child.kill();
                panic!("process did not start listening: {cmd:?}");
            }
        };
        Proc { child, line, before }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM, then wait up to 10 s for a clean exit (SIGKILL after that).
    pub fn terminate(&mut self) -> Option<std::process::ExitStatus> {
        let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        for _ in 0..100 {
            if let Ok(Some(st)) = self.child.try_wait() {
                return Some(st);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        self.kill();
        None
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        // SIGTERM first so supervisors (`bridle dev`) stop their children; then SIGKILL.
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
            for _ in 0..30 {
                if matches!(self.child.try_wait(), Ok(Some(_))) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        self.kill();
    }
}
