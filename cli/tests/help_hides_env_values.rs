//! `bridle … --help` names the environment variables an option reads, never their values:
//! `ETH_RPC_URL` and `BRIDLE_HOST` often carry a provider's API key or a password in the URL
//! (a review of 2026-12-06: `bridle mcp --help` printed `[env: ETH_RPC_URL=https://…/KEY]`).

use std::process::Command;

const RPC_SECRET: &str = "https://rpc.example/v3/RPC-SECRET-KEY";
const HOST_SECRET: &str = "https://user:HOST-SECRET-PASSWORD@host.example";

fn help(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_bridle"))
        .args(args)
        .arg("--help")
        .env("ETH_RPC_URL", RPC_SECRET)
        .env("BRIDLE_HOST", HOST_SECRET)
        .output()
        .expect("run bridle");
    assert!(out.status.success(), "bridle {args:?} --help failed: {out:?}");
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

#[test]
fn help_names_the_environment_variables_but_never_their_values() {
    for (args, var) in [
        (&["mcp"][..], "ETH_RPC_URL"),
        (&["mcp"][..], "BRIDLE_HOST"),
        (&["audit", "export"][..], "BRIDLE_HOST"),
        (&["owner", "status"][..], "BRIDLE_HOST"),
        (&["agent", "sign-message"][..], "BRIDLE_HOST"),
    ] {
        let text = help(args);
        assert!(text.contains(&format!("[env: {var}")), "{args:?}: the variable is named: {text}");
        for secret in ["RPC-SECRET-KEY", "HOST-SECRET-PASSWORD", "rpc.example", "host.example"] {
            assert!(!text.contains(secret), "{args:?} --help shows {secret}: {text}");
        }
    }
}
