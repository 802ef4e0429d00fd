//! `bridle mcp` on pipes, as an MCP client drives it: one JSON-RPC message a line
//! (`tests/tests/mcp_server.rs`, `tests/tests/review_mcp.rs`).

use crate::cli::{self, Cli};
use alloy_primitives::Address;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// A running `bridle mcp`, initialized.
pub struct Mcp {
    pub child: Child,
    pub stdin: ChildStdin,
    pub lines: mpsc::Receiver<String>,
    pub next_id: u64,
}

impl Mcp {
    /// `bridle mcp` for `session` with the CLI's agent key, host and trust, and a node when
    /// given.
    pub fn start(cli: &Cli, session: Address, rpc: Option<&str>) -> Mcp {
        let mut cmd = cli::bridle_cmd(&cli.trust);
        cmd.current_dir(&cli.dir).env_remove("ETH_RPC_URL").args([
            "mcp",
            "--key",
            "agent.key",
            "--session",
            &session.to_string(),
            "--host",
            &cli.host,
        ]);
        if let Some(rpc) = rpc {
            cmd.args(["--rpc", rpc]);
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start bridle mcp");
        let (stdin, stdout) = (child.stdin.take().unwrap(), child.stdout.take().unwrap());
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut m = Mcp { child, stdin, lines, next_id: 1 };
        let init = m.request(
            "initialize",
            serde_json::json!({"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "test", "version": "0"}}),
        );
        assert_eq!(init["serverInfo"]["name"], "bridle", "{init}");
        m.send(&serde_json::json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
        m
    }

    pub fn send(&mut self, v: &serde_json::Value) {
        writeln!(self.stdin, "{v}").and_then(|_| self.stdin.flush()).expect("write to bridle mcp");
    }

    /// The whole answer to a request (a result or an error; panics after two minutes).
    pub fn exchange(&mut self, method: &str, params: serde_json::Value) -> serde_json::Value {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&serde_json::json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        loop {
            let line = self.lines.recv_timeout(Duration::from_secs(120)).expect("bridle mcp answers");
            let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
            if v["id"] == id {
                return v;
            }
        }
    }

    /// A request's result (panics on a JSON-RPC error).
    pub fn request(&mut self, method: &str, params: serde_json::Value) -> serde_json::Value {
        let v = self.exchange(method, params);
        assert!(v.get("error").is_none(), "{v}");
        v["result"].clone()
    }

    /// A tool call: (is_error, text, structured content).
    pub fn tool(&mut self, name: &str, args: serde_json::Value) -> (bool, String, serde_json::Value) {
        let r = self.request("tools/call", serde_json::json!({"name": name, "arguments": args}));
        let text = r["content"].as_array().into_iter().flatten().filter_map(|c| c["text"].as_str()).collect();
        (r["isError"] == true, text, r["structuredContent"].clone())
    }
}

impl Drop for Mcp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
