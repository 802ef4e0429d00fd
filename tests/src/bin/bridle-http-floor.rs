//! `bridle-http-floor`: the CPU one request costs a server on this machine with nothing
//! behind it, in raw signatures measured in the same run: one HTTP request through the
//! host's stack (issue 12 item 1: the floor under the host's CPU per signed request) and one
//! frame through the enclave's connection loop on a Unix socket (item 2: the floor under
//! what the enclave spends beyond the signature). The work is in `bridle_tests::load::floor`
//! and `bridle_tests::load::floor_socket`.
//!
//! Exit status: 0 every request answered; 1 errors (the figures are still printed); 2 usage
//! or setup error.

use bridle_tests::load::args::bounded;
use bridle_tests::load::floor::{human, measure, serve, to_json, Config, Level};

const USAGE: &str = "\
bridle-http-floor: one request with nothing behind it, against a raw k256 signature measured
in the same run: the floor under the host's CPU per request (issue 12 item 1) and under the
enclave's beyond the signature (item 2). Starts four server processes (itself, --serve):
  http       tokio, hyper and axum (the host's stack) on this machine's loopback: reads the
             body and sends a fixed reply of a signed request's size;
  http+json  the same, decoding a typed SignRequest and encoding a typed Signed reply;
  socket     the enclave's framing and connection loop on a Unix socket: reads each frame
             and sends a fixed CBOR Signed reply, nothing decoded;
  socket+sign  the same with one raw k256 signature per request: a server that only signs,
             at a signing server's pace (its CPU per request less one raw signature is the
             transport's share at the enclave's rate).
HTTP is driven as bridle-load drives a host (reqwest, closed loop, kept-alive connections,
the request body of an ERC-20 transfer with its stamp); the socket as bridle-enclave-bench
drives an enclave (pipelined frames of that request).

  --concurrency C   HTTP requests in flight (default 32, at most 1024)
  --connections N   socket connections (default 8, at most 24)
  --pipeline P      frames in flight per socket connection (default 8, at most 64)
  --requests N      requests per phase (default 100000, at most 10000000)
  --rounds R        rounds, each one phase per server (default 3, at most 50)
  --raw-secs S      seconds of each raw k256 measurement (default 1.0, 0.05 to 10)
  --json            one JSON object on stdout
  --quiet           no progress lines on stderr";

struct Args {
    config: Config,
    json: bool,
    quiet: bool,
}

fn parse(argv: &[String]) -> Result<Option<Args>, String> {
    let mut a = Args { config: Config::default(), json: false, quiet: false };
    let c = &mut a.config;
    let mut it = argv.iter();
    while let Some(flag) = it.next() {
        let mut value = |min: f64, max: f64| bounded(flag, &mut it, min, max);
        match flag.as_str() {
            "--concurrency" => c.concurrency = value(1.0, 1024.0)? as usize,
            "--connections" => c.connections = value(1.0, bridle_common::frame::MAX_HOST_POOL as f64)? as usize,
            "--pipeline" => c.pipeline = value(1.0, bridle_common::frame::MAX_PIPELINE as f64)? as usize,
            "--requests" => c.requests = value(1.0, 1e7)? as u64,
            "--rounds" => c.rounds = value(1.0, 50.0)? as usize,
            "--raw-secs" => c.raw_secs = value(0.05, 10.0)?,
            "--json" => a.json = true,
            "--quiet" => a.quiet = true,
            "-h" | "--help" => return Ok(None),
            other => return Err(format!("unknown option {other} (--help)")),
        }
    }
    Ok(Some(a))
}

fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    if argv.first().map(String::as_str) == Some("--serve") {
        let level = argv.get(1).and_then(|l| Level::parse(l));
        let Some(level) = level else {
            eprintln!("bridle-http-floor: --serve http|http+json|socket|socket+sign");
            std::process::exit(2);
        };
        if let Err(e) = serve(level) {
            eprintln!("bridle-http-floor ({}): {e}", level.name());
            std::process::exit(2);
        }
        return;
    }
    let a = match parse(&argv) {
        Ok(Some(a)) => a,
        Ok(None) => {
            println!("{USAGE}");
            return;
        }
        Err(e) => {
            eprintln!("bridle-http-floor: {e}");
            std::process::exit(2);
        }
    };
    let quiet = a.quiet;
    let note = move |m: &str| {
        if !quiet {
            eprintln!("bridle-http-floor: {m}");
        }
    };
    match measure(&a.config, &note) {
        Ok(phases) => {
            if a.json {
                println!("{}", to_json(&phases, &a.config));
            } else {
                print!("{}", human(&phases, &a.config));
            }
            let errors: u64 = phases.iter().map(|p| p.errors).sum();
            std::process::exit(if errors == 0 { 0 } else { 1 });
        }
        Err(e) => {
            eprintln!("bridle-http-floor: {e}");
            std::process::exit(2);
        }
    }
}
