//! `bridle-enclave-bench`: the enclave alone through its own socket, no host (issue 12
//! items 2 and 3): its CPU per request against a raw signature, and its signing rate on
//! every core against one core (pinned with `taskset`), beside raw k256's own scaling. The
//! work is in `bridle_tests::load::socket`.
//!
//! Exit status: 0 every request signed; 1 refusals or errors (the figures are still
//! printed); 2 usage or setup error.

use bridle_tests::load::args::bounded;
use bridle_tests::load::socket::{execute, SocketArgs};

const USAGE: &str = "\
bridle-enclave-bench: the enclave alone through its socket (starts BRIDLE_BIN_DIR/bridle-enclave twice:
one enclave with every allowed CPU, one started on the last of them alone; needs taskset)

  --sessions N      sessions on each enclave, used round-robin (default 64, at most 100000)
  --connections C   Unix connections (default 8, at most 24: a host's largest pool)
  --pipeline P      frames in flight per connection (default 8, at most 64)
  --requests M      requests per phase, stamped before it (default 40000, at most 200000)
  --rounds R        rounds; each runs a phase on the one-core enclave and one on the all-core enclave (default 3, at most 50)
  --raw-secs S      seconds of each raw k256 measurement (default 1.0, 0.05 to 10)
  (requests x rounds / sessions must stay at most 50000: the enclave keeps 65536 live stamps per session)
  --verify-every K  recover every K-th signature to its session (default 64; 0: none)
  --json            one JSON object on stdout
  --quiet           no progress lines on stderr";

fn parse(argv: &[String]) -> Result<Option<(SocketArgs, bool, bool)>, String> {
    let mut a = SocketArgs::default();
    let (mut json, mut quiet) = (false, false);
    let mut it = argv.iter();
    while let Some(flag) = it.next() {
        let mut value = |max: f64| bounded(flag, &mut it, 0.0, max);
        match flag.as_str() {
            "--sessions" => a.sessions = value(100_000.0)? as usize,
            "--connections" => a.connections = value(bridle_common::frame::MAX_HOST_POOL as f64)? as usize,
            "--pipeline" => a.pipeline = value(64.0)? as usize,
            "--requests" => a.requests = value(200_000.0)? as usize,
            "--rounds" => a.rounds = value(50.0)? as usize,
            "--raw-secs" => a.raw_secs = value(10.0)?,
            "--verify-every" => a.verify_every = value(1e9)? as usize,
            "--json" => json = true,
            "--quiet" => quiet = true,
            "-h" | "--help" => return Ok(None),
            other => return Err(format!("unknown option {other} (--help)")),
        }
    }
    Ok(Some((a, json, quiet)))
}

fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let (a, json, quiet) = match parse(&argv) {
        Ok(Some(p)) => p,
        Ok(None) => {
            println!("{USAGE}");
            return;
        }
        Err(e) => {
            eprintln!("bridle-enclave-bench: {e}");
            std::process::exit(2);
        }
    };
    let note = move |m: &str| {
        if !quiet {
            eprintln!("bridle-enclave-bench: {m}");
        }
    };
    match execute(&a, &note) {
        Ok(r) => {
            if json {
                println!("{}", r.to_json());
            } else {
                print!("{}", r.human());
            }
            std::process::exit(r.exit_code());
        }
        Err(e) => {
            eprintln!("bridle-enclave-bench: {e}");
            std::process::exit(2);
        }
    }
}
