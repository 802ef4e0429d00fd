//! `bridle-load`: end-to-end signing load against a Bridle host — its own local stack, or
//! any host given with `--host` — measured side by side with the raw secp256k1 signing rate
//! of this machine in the same run. `bridle-load --help` lists the options; the work is in
//! `bridle_tests::load`.
//!
//! Exit status: 0 every request signed; 1 the run finished with refusals or errors (the
//! summary is still printed); 2 usage or setup error.

use bridle_tests::load::{self, args};

fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let a = match args::parse(&argv) {
        Ok(args::Parsed::Run(a)) => a,
        Ok(args::Parsed::Help) => {
            println!("{}", args::USAGE);
            return;
        }
        Err(e) => {
            eprintln!("bridle-load: {e}");
            std::process::exit(2);
        }
    };
    // The generator's runtime: one worker per CPU unless `--threads` says otherwise (on the
    // host's own machine, fewer leave more of it to the host and the enclave).
    let threads = a.threads.unwrap_or_else(load::machine::cores);
    let rt = match tokio::runtime::Builder::new_multi_thread().worker_threads(threads).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("bridle-load: runtime: {e}");
            std::process::exit(2);
        }
    };
    rt.block_on(run(*a))
}

async fn run(a: args::Args) {
    let quiet = a.quiet;
    let note = move |m: &str| {
        if !quiet {
            eprintln!("bridle-load: {m}");
        }
    };
    match load::execute(&a, &note).await {
        Ok(r) => {
            if a.json {
                println!("{}", r.to_json());
            } else {
                print!("{}", r.human());
            }
            std::process::exit(r.exit_code());
        }
        Err(e) => {
            eprintln!("bridle-load: {e}");
            std::process::exit(2);
        }
    }
}
