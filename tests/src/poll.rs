//! Watching a running stack: wait until a condition holds, read the host's metrics.

use crate::Stack;
use std::future::Future;
use std::time::{Duration, Instant};

/// Wait (up to 30 s, every 200 ms) until `f` holds; panics naming `what` when it does not.
pub async fn until<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    while !f().await {
        assert!(start.elapsed() < Duration::from_secs(30), "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

impl Stack {
    /// The value of the host's Prometheus metric `name` (exactly that name, no labels);
    /// panics when `/metrics` does not have it.
    pub async fn metric(&self, name: &str) -> u64 {
        let text = self.http.get(format!("{}/metrics", self.host.url)).send().await.unwrap().text().await.unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(' ')).and_then(|r| r.trim().parse().ok()))
            .unwrap_or_else(|| panic!("no metric {name} in:\n{text}"))
    }
}
