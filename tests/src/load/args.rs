//! The command line of `bridle-load` (hand-rolled: this crate has no argument parser).

use std::path::PathBuf;
use std::time::Duration;

/// Largest count bound (`--requests`): the latency vector holds one `u32` per request.
pub const MAX_REQUESTS: u64 = 10_000_000;
/// Largest time bound (`--duration`), seconds.
pub const MAX_DURATION_SECS: f64 = 3600.0;
/// Time bound when neither `--duration` nor `--requests` is given.
pub const DEFAULT_DURATION_SECS: f64 = 10.0;
/// Time bound when only `--requests` is given.
pub const DEFAULT_TIME_BOUND_SECS: f64 = 600.0;
pub const MAX_SESSIONS: usize = 100_000;
pub const MAX_CONCURRENCY: usize = 4096;
pub const MAX_RATE: f64 = 1_000_000.0;
/// Most worker threads of the generator's own runtime (`--threads`).
pub const MAX_THREADS: usize = 256;

pub const USAGE: &str = "\
bridle-load: end-to-end signing load against a Bridle host, with latency percentiles, CPU per
request and the raw secp256k1 signing rate of this machine measured in the same run.

USAGE:
  bridle-load [--host URL (--enclave-key 0x… | --trust-file FILE | --trust-host-identity)
               [--host-pid PID] [--enclave-pid PID]]
              [--sessions N] [--concurrency C] [--duration SECS] [--requests N] [--rate R]
              [--json] [--quiet] [--raw-secs S] [--verify-every K] [--timeout SECS] [--chain-id ID]
              [--api sign|rpc] [--threads T]

Without --host it starts its own enclave and host from BRIDLE_BIN_DIR (default target/debug:
use target/release for numbers) and tears them down at the end.

  --host URL               an existing host (http:// only: this build has no TLS). Nothing
                           else is contacted. The host is untrusted, so the enclave identity
                           the stamps are made for must come from one of:
  --enclave-key 0x…        the enclave identity public key (SEC1 hex), pinned;
  --trust-file FILE        an `attested` or `pinned` entry for the host in a Bridle trust file
                           (`bridle trust attest` verifies the attestation and writes it;
                           default: $BRIDLE_TRUST_FILE, else ~/.config/bridle/trust.json);
  --trust-host-identity    accept the identity the host reports, NOT verified (said in the output).
  --host-pid, --enclave-pid  local PIDs of the host and enclave, for CPU per request.
  --sessions N             sessions granted (owner and agent keys made in memory), requests
                           spread round-robin, each with its own chain nonce (default 8)
  --concurrency C          requests in flight (closed loop); the in-flight cap with --rate (default 16)
  --duration SECS          time bound (default 10, or 600 with --requests; max 3600)
  --requests N             count bound (default and max 10000000)
  --rate R                 open loop: start R requests per second whatever the completions
                           (latency also from each request's scheduled start)
  --json                   one JSON object on stdout instead of the human summary
  --quiet                  no progress line on stderr
  --raw-secs S             seconds for each raw k256 measurement (default 3)
  --verify-every K         recover the signature of every K-th request (default 64; 0: never);
                           the digest of every signed request is checked
  --timeout SECS           per-request timeout (default 30)
  --chain-id ID            chain of the transfers and the policy (default 31337)
  --api sign|rpc           sign through POST /v1/sign (default) or the JSON-RPC face
                           (eth_signTransaction on POST /rpc, as Ethereum client libraries do)
  --threads T              worker threads of the generator's own runtime (default: one per CPU);
                           on the host's machine, fewer leave more of it to the host and enclave

Exit status: 0 every request signed; 1 the run finished with refusals or errors; 2 usage or
setup error (nothing was measured).";

/// What the user asked for, validated and with both bounds filled in.
#[derive(Debug, Clone, PartialEq)]
pub struct Args {
    pub host: Option<String>,
    pub enclave_key: Option<String>,
    pub trust_file: Option<PathBuf>,
    pub trust_host_identity: bool,
    pub host_pid: Option<u32>,
    pub enclave_pid: Option<u32>,
    pub sessions: usize,
    pub concurrency: usize,
    /// Count bound.
    pub requests: u64,
    /// Time bound.
    pub duration: Duration,
    /// Open loop at this many requests per second; closed loop when `None`.
    pub rate: Option<f64>,
    pub json: bool,
    pub quiet: bool,
    pub raw_secs: f64,
    pub verify_every: u64,
    pub timeout: Duration,
    pub chain_id: u64,
    /// Sign through `eth_signTransaction` on `POST /rpc` instead of `POST /v1/sign`.
    pub rpc: bool,
    /// Worker threads of the generator's runtime; one per CPU when `None`.
    pub threads: Option<usize>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Parsed {
    Run(Box<Args>),
    Help,
}

fn num<T: std::str::FromStr>(flag: &str, v: &str) -> Result<T, String> {
    v.trim().parse().map_err(|_| format!("{flag}: {v:?} is not a valid number"))
}

fn secs(flag: &str, v: &str) -> Result<f64, String> {
    let x: f64 = num(flag, v)?;
    if !x.is_finite() || x <= 0.0 {
        return Err(format!("{flag}: must be a positive number of seconds"));
    }
    Ok(x)
}

/// The next argument, as the value of `flag`: a number within `min..=max` (the small
/// benchmark binaries' options: `bridle-enclave-bench`, `bridle-http-floor`).
pub fn bounded<'a>(flag: &str, it: &mut impl Iterator<Item = &'a String>, min: f64, max: f64) -> Result<f64, String> {
    let v = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
    let n: f64 = num(flag, v)?;
    if !(min..=max).contains(&n) {
        return Err(format!("{flag}: {v} is outside {min}..={max}"));
    }
    Ok(n)
}

/// Parse the arguments after the program name.
pub fn parse(argv: &[String]) -> Result<Parsed, String> {
    let mut host = None;
    let mut enclave_key = None;
    let mut trust_file = None;
    let mut trust_host_identity = false;
    let mut host_pid = None;
    let mut enclave_pid = None;
    let mut sessions = 8usize;
    let mut concurrency = 16usize;
    let mut requests: Option<u64> = None;
    let mut duration: Option<f64> = None;
    let mut rate: Option<f64> = None;
    let mut json = false;
    let mut quiet = false;
    let mut raw_secs = 3.0;
    let mut verify_every = 64u64;
    let mut timeout = 30.0;
    let mut chain_id = 31337u64;
    let mut rpc = false;
    let mut threads: Option<usize> = None;

    let mut it = argv.iter();
    while let Some(a) = it.next() {
        let (flag, inline) = match a.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_string())),
            _ => (a.as_str(), None),
        };
        let switch = matches!(flag, "--json" | "--quiet" | "--trust-host-identity" | "--help" | "-h");
        if switch && inline.is_some() {
            return Err(format!("{flag} takes no value"));
        }
        let mut value = || -> Result<String, String> {
            match &inline {
                Some(v) => Ok(v.clone()),
                None => it.next().cloned().ok_or_else(|| format!("{flag} needs a value")),
            }
        };
        match flag {
            "--help" | "-h" => return Ok(Parsed::Help),
            "--json" => json = true,
            "--quiet" => quiet = true,
            "--trust-host-identity" => trust_host_identity = true,
            "--host" => host = Some(value()?),
            "--enclave-key" => enclave_key = Some(value()?),
            "--trust-file" => trust_file = Some(PathBuf::from(value()?)),
            "--host-pid" => host_pid = Some(num(flag, &value()?)?),
            "--enclave-pid" => enclave_pid = Some(num(flag, &value()?)?),
            "--sessions" => sessions = num(flag, &value()?)?,
            "--concurrency" => concurrency = num(flag, &value()?)?,
            "--requests" => requests = Some(num(flag, &value()?)?),
            "--duration" => duration = Some(secs(flag, &value()?)?),
            "--rate" => rate = Some(num(flag, &value()?)?),
            "--raw-secs" => raw_secs = secs(flag, &value()?)?,
            "--verify-every" => verify_every = num(flag, &value()?)?,
            "--timeout" => timeout = secs(flag, &value()?)?,
            "--chain-id" => chain_id = num(flag, &value()?)?,
            "--threads" => threads = Some(num(flag, &value()?)?),
            "--api" => {
                rpc = match value()?.as_str() {
                    "sign" => false,
                    "rpc" => true,
                    other => return Err(format!("--api: sign or rpc, not {other:?}")),
                }
            }
            other => return Err(format!("unknown argument {other:?} (--help lists them)")),
        }
    }

    if !(1..=MAX_SESSIONS).contains(&sessions) {
        return Err(format!("--sessions: between 1 and {MAX_SESSIONS}"));
    }
    if !(1..=MAX_CONCURRENCY).contains(&concurrency) {
        return Err(format!("--concurrency: between 1 and {MAX_CONCURRENCY}"));
    }
    if let Some(r) = requests {
        if !(1..=MAX_REQUESTS).contains(&r) {
            return Err(format!("--requests: between 1 and {MAX_REQUESTS}"));
        }
    }
    if let Some(d) = duration {
        if d > MAX_DURATION_SECS {
            return Err(format!("--duration: at most {MAX_DURATION_SECS} s"));
        }
    }
    if let Some(r) = rate {
        if !r.is_finite() || r <= 0.0 || r > MAX_RATE {
            return Err(format!("--rate: a positive number of requests per second, at most {MAX_RATE}"));
        }
    }
    if threads.is_some_and(|t| !(1..=MAX_THREADS).contains(&t)) {
        return Err(format!("--threads: between 1 and {MAX_THREADS}"));
    }
    if raw_secs > 60.0 {
        return Err("--raw-secs: at most 60".into());
    }
    if timeout > 600.0 {
        return Err("--timeout: at most 600 s".into());
    }
    // Both bounds always apply.
    let (requests, duration) = match (requests, duration) {
        (None, None) => (MAX_REQUESTS, DEFAULT_DURATION_SECS),
        (Some(r), None) => (r, DEFAULT_TIME_BOUND_SECS),
        (None, Some(d)) => (MAX_REQUESTS, d),
        (Some(r), Some(d)) => (r, d),
    };

    match &host {
        Some(h) => {
            let lower = h.to_ascii_lowercase();
            if lower.starts_with("https://") {
                return Err("--host: https is not supported (this build of bridle-load has no TLS): give an \
                            http:// address, e.g. through a local tunnel you trust"
                    .into());
            }
            if !lower.starts_with("http://") || h.len() <= "http://".len() {
                return Err(format!("--host: {h:?} is not an http:// URL"));
            }
            let pinned = enclave_key.is_some() as u8 + trust_file.is_some() as u8 + trust_host_identity as u8;
            if pinned > 1 {
                return Err("give one of --enclave-key, --trust-file and --trust-host-identity".into());
            }
        }
        None => {
            for (given, flag) in [
                (enclave_key.is_some(), "--enclave-key"),
                (trust_file.is_some(), "--trust-file"),
                (trust_host_identity, "--trust-host-identity"),
                (host_pid.is_some(), "--host-pid"),
                (enclave_pid.is_some(), "--enclave-pid"),
            ] {
                if given {
                    return Err(format!(
                        "{flag} only goes with --host: without it bridle-load starts its own enclave and host"
                    ));
                }
            }
        }
    }

    Ok(Parsed::Run(Box::new(Args {
        host: host.map(|h| h.trim_end_matches('/').to_string()),
        enclave_key,
        trust_file,
        trust_host_identity,
        host_pid,
        enclave_pid,
        sessions,
        concurrency,
        requests,
        duration: Duration::from_secs_f64(duration),
        rate,
        json,
        quiet,
        raw_secs,
        verify_every,
        timeout: Duration::from_secs_f64(timeout),
        chain_id,
        rpc,
        threads,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<Args, String> {
        let v: Vec<String> = s.split_whitespace().map(String::from).collect();
        match parse(&v)? {
            Parsed::Run(a) => Ok(*a),
            Parsed::Help => Err("help".into()),
        }
    }

    #[test]
    fn both_bounds_always_apply() {
        let a = p("").unwrap();
        assert_eq!((a.requests, a.duration.as_secs()), (MAX_REQUESTS, 10));
        let a = p("--requests 200").unwrap();
        assert_eq!((a.requests, a.duration.as_secs()), (200, 600));
        let a = p("--duration 20").unwrap();
        assert_eq!((a.requests, a.duration.as_secs()), (MAX_REQUESTS, 20));
        let a = p("--duration=2.5 --requests=7").unwrap();
        assert_eq!((a.requests, a.duration.as_millis()), (7, 2500));
        assert!(p("--requests 0").is_err());
        assert!(p("--requests 10000001").is_err());
        assert!(p("--duration 3601").is_err());
        assert!(p("--duration 0").is_err());
        assert!(p("--sessions 0").is_err());
        assert!(p("--concurrency 5000").is_err());
        assert!(p("--rate 0").is_err());
        assert!(p("--rate nan").is_err());
        assert_eq!(p("--threads 1").unwrap().threads, Some(1));
        assert_eq!(p("").unwrap().threads, None);
        assert!(p("--threads 0").is_err() && p("--threads 257").is_err());
    }

    #[test]
    fn remote_options_need_a_host_and_one_identity_source() {
        assert!(p("--enclave-key 0x02").unwrap_err().contains("only goes with --host"));
        assert!(p("--host-pid 1").unwrap_err().contains("only goes with --host"));
        assert!(p("--host https://x").unwrap_err().contains("no TLS"));
        assert!(p("--host ftp://x").is_err());
        assert!(p("--host http://x --enclave-key 0x02 --trust-host-identity").unwrap_err().contains("one of"));
        let a = p("--host http://h:1/ --trust-host-identity --rate 100 --json --quiet").unwrap();
        assert_eq!(a.host.as_deref(), Some("http://h:1"));
        assert!(a.trust_host_identity && a.json && a.quiet);
        assert_eq!(a.rate, Some(100.0));
        assert!(p("--bogus").unwrap_err().contains("unknown"));
        assert!(p("--json=1").is_err());
        assert!(p("--sessions").unwrap_err().contains("needs a value"));
    }
}
