//! The world of the lying-host tests (`tests/tests/review_*.rs`): the real enclave and host,
//! a [`LyingProxy`] in front of the host, and a CLI that trusts the real enclave.

use crate::cli::Cli;
use crate::proxy::LyingProxy;
use crate::{policy, write_key_file, Actor, Granted, Stack};
use alloy_primitives::{Address, B256};
use bridle_common::protocol::{Call, Reply, RequestFrame, SessionStatus, Signed, StatusQuery, PROTOCOL_VERSION};
use std::path::Path;

/// A stack, a lying proxy in front of its host, and a CLI that trusts the real enclave
/// (pinned to the identity read over the enclave's own socket, as a user who verified an
/// attestation would). `owner.key`, `agent.key` and `policy.toml` are in the CLI's directory.
pub struct World {
    pub stack: Stack,
    pub proxy: LyingProxy,
    pub cli: Cli,
    pub owner: Actor,
    pub agent: Actor,
    pub identity: String,
    pub policy_text: String,
    _dir: tempfile::TempDir,
}

impl World {
    /// Start a world whose `policy.toml` is `policy_text`.
    pub fn start(policy_text: &str) -> World {
        let stack = Stack::start();
        let proxy = LyingProxy::start(&stack.host.url);
        let dir = tempfile::tempdir().expect("temp dir");
        let cli = Cli::new(dir.path(), &proxy.url);
        let identity = stack.enclave.identity_key_hex();
        cli.pin(&identity);
        let (owner, agent) = (Actor::random(), Actor::random());
        write_key_file(&dir.path().join("owner.key"), "owner", &owner);
        write_key_file(&dir.path().join("agent.key"), "agent", &agent);
        std::fs::write(dir.path().join("policy.toml"), policy_text).expect("write policy");
        World { stack, proxy, cli, owner, agent, identity, policy_text: policy_text.to_string(), _dir: dir }
    }

    /// A session under `policy.toml`, granted by the test itself (not through the proxy).
    pub async fn grant(&self) -> Granted {
        self.stack.grant(&self.owner, &self.agent, &policy(&self.policy_text)).await.expect("grant")
    }

    /// A transaction the session really signed (the host relays every one: it has them).
    pub async fn signed(&self, g: &Granted, tx: bridle_common::tx::TxRequest) -> Signed {
        let (c, v) = self.stack.sign(g, tx).await;
        assert_eq!(c, 200, "{v}");
        serde_json::from_value(v).expect("a Signed")
    }

    /// The session's facts, straight from the enclave's socket.
    pub fn truth(&self, g: &Granted) -> SessionStatus {
        match self.stack.enclave.call(Call::Status(StatusQuery { session: Some(g.session), nonce: None, held: None })) {
            Ok(Reply::Status(s)) => *s.session.expect("the session is in the enclave"),
            other => panic!("{other:?}"),
        }
    }
}

/// A fresh owner nonce: the tests' own owner calls count from the time in milliseconds plus
/// 5 minutes, above the CLI's default (milliseconds), so every CLI owner call in these tests
/// names one.
pub fn fresh_nonce() -> String {
    Actor::next_nonce().to_string()
}

/// The enclave's genuine status of `session`, signed for `nonce` and showing the payload
/// held under `held`, straight from its socket: what a lying host can get by asking the
/// enclave itself another question than the one it was asked.
pub fn genuine_status(socket: &Path, session: Address, nonce: B256, held: Option<B256>) -> serde_json::Value {
    let call = Call::Status(StatusQuery { session: Some(session), nonce: Some(nonce), held });
    let body = bridle_common::frame::to_cbor(&RequestFrame { version: PROTOCOL_VERSION, call }).expect("encodes");
    match crate::call_socket_raw(socket, &body) {
        Ok(Reply::Status(st)) => serde_json::to_value(st).expect("JSON"),
        other => panic!("{other:?}"),
    }
}
