//! Small helpers shared by the commands.

use anyhow::{anyhow, Context, Result};
use bridle_common::units::parse_native;
use clap::Args;
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Args, Clone)]
pub struct HostArg {
    /// The host's base URL.
    // `--help` names the variable, never its value: a URL may carry an API key or a
    // password (a review of 2026-12-06).
    #[arg(long, env = "BRIDLE_HOST", hide_env_values = true, default_value = "http://127.0.0.1:8547")]
    pub host: String,
}

/// Unix seconds.
pub fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// An owner nonce: the one given, else the current time in milliseconds.
pub fn default_nonce(n: Option<u64>) -> u64 {
    n.unwrap_or_else(|| SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0))
}

/// A file's text, or stdin for `-`.
pub fn read_input(p: &PathBuf) -> Result<String> {
    if p.as_os_str() == "-" {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)?;
        Ok(s)
    } else {
        std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))
    }
}

/// A fee with its unit ("30 gwei", "0.1 ETH"), in wei.
pub fn gwei_or_unit(s: &str) -> Result<u128> {
    let v = parse_native(s).map_err(|e| anyhow!("{e}"))?;
    u128::try_from(v).map_err(|_| anyhow!("{s} is too large"))
}
