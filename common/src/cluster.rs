//! The cluster calls: how a host carries its enclave's traffic to the other nodes of an
//! enclave cluster (README, "High availability").
//!
//! The enclaves of a cluster talk only to each other, through their hosts, inside channels
//! bound to each node's attestation (crate `bridle-channel`). A host never reads or makes
//! that traffic: it polls its enclave for messages to deliver ([`ClusterCall::Poll`]),
//! posts each to the named node's host, hands what comes back to its enclave
//! ([`ClusterCall::Respond`]), and hands its enclave the messages other hosts post to it
//! ([`ClusterCall::Deliver`]). Whatever a host does to these bytes — drop, delay, reorder,
//! replay, alter — costs availability at most.

use serde::{Deserialize, Serialize};

/// Largest frame of a call other than cluster traffic that a cluster node serves (a
/// stand-alone enclave: its `--max-frame`, 1 MiB). Every such call may become a log entry
/// that every node holds until a snapshot covers it and that a snapshot keeps up to 1 000
/// of, so its size is bounded before it is proposed: 128 KiB holds the largest
/// policy (32 KiB), typed data (64 KiB) and a contract deployment's initcode (48 KiB,
/// EIP-3860).
pub const MAX_CALL_FRAME: usize = 128 << 10;

/// The cluster calls. See the module docs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClusterCall {
    /// Take part in the cluster: found a new one (`bootstrap`), or join one through the
    /// nodes at `seeds`. `advertise` is the URL where this node's host receives cluster
    /// traffic. Answered at once; joining goes on in the background ([`ClusterCall::Info`]).
    Start(ClusterStart),
    /// Messages this enclave wants delivered, waiting up to `wait_ms` for the first.
    Poll { wait_ms: u64, max: u32 },
    /// A message another node's host posted to ours; the reply goes back to it.
    Deliver {
        #[serde(with = "serde_bytes")]
        bytes: Vec<u8>,
    },
    /// What came back for outbound message `id` (or why nothing did).
    Respond { id: u64, result: Result<serde_bytes::ByteBuf, String> },
    /// Where this node stands.
    Info,
}

/// Connections a cluster node's enclave serves at once (its host's client pool, its
/// cluster-traffic pool and reconnections share them; more are refused). A host checks its
/// pools against it at start.
pub const NODE_MAX_CONNECTIONS: usize = 64;

/// Most seeds a [`ClusterStart`] may name.
pub const MAX_SEEDS: usize = 16;

/// Longest peer URL a node takes (`--cluster-advertise`, seeds, a joining node's).
pub const MAX_PEER_URL: usize = 512;

/// Whether `url` may be a cluster peer's URL: `http://` or `https://`, then a host and
/// optionally a port and path, at most [`MAX_PEER_URL`] bytes of printable ASCII with no
/// query, fragment, user info or backslash. Hosts append `/v1/cluster/…` to it and POST
/// there; a URL a joining node's host chose is called by every other host, so a `?` or `#`
/// must not move that path out of the way, nor an `@` change the host it goes to (a review
/// of 2026-12-06).
pub fn is_peer_url(url: &str) -> bool {
    let rest = url.strip_prefix("http://").or_else(|| url.strip_prefix("https://"));
    url.len() <= MAX_PEER_URL
        && rest.is_some_and(|r| !r.is_empty() && !r.starts_with('/'))
        && url.bytes().all(|b| b.is_ascii_graphic() && !matches!(b, b'?' | b'#' | b'@' | b'\\'))
}

/// The header (HTTP relay) and upgrade-request header (stream) in which a host names the
/// URL it is reached at (its `--cluster-advertise`): the receiving host learns its peers
/// from the traffic it carries, even those its own enclave never told it of.
pub const RELAY_FROM_HEADER: &str = "x-bridle-cluster-from";

/// See [`ClusterCall::Start`]. Sent again while the node is still joining, with the host's
/// latest seeds (a joining node asks those).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterStart {
    pub advertise: String,
    #[serde(default)]
    pub seeds: Vec<String>,
    #[serde(default)]
    pub bootstrap: bool,
}

/// A message for another node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outbound {
    pub id: u64,
    /// The URL of the host that receives it (`…/v1/cluster/relay` is appended by the host).
    pub to: String,
    #[serde(with = "serde_bytes")]
    pub bytes: Vec<u8>,
}

/// Replies to cluster calls.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClusterReply {
    Started,
    Outbound(Vec<Outbound>),
    Delivered {
        #[serde(with = "serde_bytes")]
        bytes: Vec<u8>,
    },
    Ok,
    Info(ClusterInfo),
}

/// One member of the cluster as this node sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberInfo {
    pub node_id: u64,
    pub peer_url: String,
    /// Digest of the member's image (keccak256 of PCR0 ‖ PCR1 ‖ PCR2), hex.
    pub image: String,
    pub voter: bool,
    /// The decision rules version the member runs (`policy::RULES_VERSION` of its image; 0
    /// for an image from before versions). While members differ, what decides is refused.
    #[serde(default)]
    pub rules: u32,
}

/// Where a node stands (not the enclave's signed word: an operator's view).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterInfo {
    pub node_id: u64,
    /// `leader`, `follower`, `candidate`, `learner`, `joining` or `shutdown`.
    pub role: String,
    pub leader: Option<u64>,
    pub leader_url: Option<String>,
    pub term: u64,
    pub last_applied: Option<u64>,
    /// The log index of this node's latest snapshot (built, or received from the leader).
    #[serde(default)]
    pub snapshot: Option<u64>,
    pub members: Vec<MemberInfo>,
    /// This node's image digest, hex.
    pub image: String,
    /// Whether the cluster's state (its identity) has reached this node.
    pub ready: bool,
    /// The decision rules version this node runs.
    #[serde(default)]
    pub rules: u32,
}

/// A call that only the leader serves, made to a follower: where to send it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotLeader {
    pub leader: Option<u64>,
    /// The leader's host (its cluster URL), when known.
    pub leader_url: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_urls_are_plain_http_origins_with_a_path_at_most() {
        for ok in ["http://10.0.0.2:7443", "https://node-2.example:443/", "https://lb.example/bridle/node-2"] {
            assert!(is_peer_url(ok), "{ok}");
        }
        let long = format!("http://{}", "a".repeat(MAX_PEER_URL));
        for bad in [
            "http://10.0.0.9/x?",
            "http://10.0.0.9/?/v1",
            "http://10.0.0.9/#",
            "http://user@10.0.0.9",
            "http://10.0.0.9\\@evil",
            "http://10.0.0.9 /",
            "http://10.0.0.9/\u{e9}",
            "http://",
            "http:///path",
            "ftp://10.0.0.9",
            "10.0.0.9:7443",
            "",
            long.as_str(),
        ] {
            assert!(!is_peer_url(bad), "{bad:?}");
        }
    }
}
