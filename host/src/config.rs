//! Host configuration: a TOML file (`bridle-host --config host.toml`), environment
//! variables and flags.
//!
//! Every setting has the same name in all three places: the flag `--call-timeout`, the
//! environment variable `BRIDLE_CALL_TIMEOUT` and the file key `call_timeout`. Precedence,
//! highest first: **flag > environment variable > file > built-in default**.
//! `examples/host.toml` documents every key.

use crate::store::Database;
use crate::{default_host_id, HostConfig, DEFAULT_BODY_LIMIT, DEFAULT_DB, DEFAULT_LISTEN};
use bridle_common::address::SocketAddress;
use bridle_common::frame::DEFAULT_MAX_FRAME;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Default per enclave call timeout, seconds.
pub const DEFAULT_CALL_TIMEOUT_SECS: u64 = 10;
/// Default seconds between the sweeper's rounds.
pub const DEFAULT_SWEEP_INTERVAL_SECS: u64 = 30;
/// Default seconds before an unmined revocation's fees are bumped.
pub const DEFAULT_SWEEP_BUMP_AFTER_SECS: u64 = 120;
/// Default seconds between background enclave probes.
pub const DEFAULT_PROBE_INTERVAL_SECS: u64 = 5;

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

impl fmt::Display for LogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        })
    }
}

/// One layer of settings, every one optional: the file, or the flags and environment
/// variables together (clap already ranks a flag above its environment variable).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Layer {
    /// Enclave socket: `unix:/path/to/socket` or `vsock:CID:PORT`.
    pub enclave: Option<String>,
    /// HTTP listen address.
    pub listen: Option<String>,
    /// SQLite database path.
    pub db: Option<PathBuf>,
    /// `postgres://USER[:PASSWORD]@HOST[:PORT]/DB` (or `sqlite:PATH`); replaces `db`.
    pub database_url: Option<String>,
    /// This host's name in a shared database.
    pub host_id: Option<String>,
    /// `text` or `json`.
    pub log_format: Option<LogFormat>,
    /// Pooled enclave connections.
    pub pool: Option<usize>,
    /// Enclave calls in flight on one connection (1 to 64; a cluster host's default: 8).
    pub pipeline: Option<usize>,
    /// Per enclave call timeout, seconds.
    pub call_timeout: Option<u64>,
    /// Largest HTTP request body, bytes.
    pub body_limit: Option<usize>,
    /// Largest enclave frame, bytes.
    pub max_frame: Option<usize>,
    /// Connections the public listener serves at once from one source address (IPv6: /64);
    /// 0: no such bound.
    pub connections_per_source: Option<usize>,
    /// Comma-separated addresses the per-source bound does not apply to (a proxy in front).
    pub connections_per_source_exempt: Option<String>,
    /// Seconds between background enclave status probes; 0 disables.
    pub probe_interval: Option<u64>,
    /// Cluster: where this host listens for the other hosts (e.g. `0.0.0.0:8550`).
    pub cluster_listen: Option<String>,
    /// Cluster: the URL the other hosts reach this one at (e.g. `http://10.0.1.5:8550`).
    pub cluster_advertise: Option<String>,
    /// Cluster: hosts of existing members to join through, comma-separated URLs.
    pub cluster_seeds: Option<String>,
    /// Cluster: found a new cluster (the first node only, once).
    pub cluster_bootstrap: Option<bool>,
    /// Cluster: the local IP address connections to the other hosts come from.
    pub cluster_source_address: Option<String>,
    /// Sweeps that run by themselves: Ethereum JSON-RPC URLs, comma-separated, one per chain.
    pub sweep_rpc: Option<String>,
    /// Seconds between the sweeper's looks at every session.
    pub sweep_interval: Option<u64>,
    /// Seconds a broadcast revocation may stay unmined before its fees are bumped.
    pub sweep_bump_after: Option<u64>,
    /// Days the host keeps its events; 0 keeps them whatever their age.
    pub events_max_age_days: Option<u64>,
    /// The most events the host keeps, the newest; 0 keeps any number.
    pub events_max_rows: Option<u64>,
    /// Days the host keeps a session after it ended (revoked, lost, or past its validity),
    /// then forgets it once its enclave no longer holds it; 0 keeps sessions for good.
    pub session_retention_days: Option<u64>,
    /// Days the host keeps its copy of the enclave's audit log entries, by the time each was
    /// logged (the oldest of each chain go first); 0 keeps them for good.
    pub audit_retention_days: Option<u64>,
}

impl Layer {
    /// Parse a config file's text; unknown keys are errors (a typo must not be ignored).
    pub fn from_toml(text: &str) -> Result<Layer, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    /// Read and parse a config file.
    pub fn load(path: &Path) -> Result<Layer, String> {
        let text =
            std::fs::read_to_string(path).map_err(|e| format!("cannot read config file {}: {e}", path.display()))?;
        Layer::from_toml(&text).map_err(|e| format!("config file {}: {e}", path.display()))
    }
}

/// Where a setting's value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Flag,
    Env,
    File,
    Default,
}

/// The effective settings, each with its source.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub enclave: SocketAddress,
    pub listen: String,
    pub db: PathBuf,
    /// The database in use: `db` unless `database_url` names one.
    pub database: Database,
    pub host_id: String,
    pub log_format: LogFormat,
    pub pool: usize,
    pub pipeline: usize,
    pub call_timeout: u64,
    pub body_limit: usize,
    pub max_frame: usize,
    pub probe_interval: u64,
    /// The public listener's per-source bound (0: none) and the addresses exempt from it.
    pub connections_per_source: usize,
    pub connections_per_source_exempt: Vec<std::net::IpAddr>,
    /// The cluster part, when `cluster_listen` is set.
    pub cluster: Option<crate::cluster::ClusterSettings>,
    /// The sweeper, when `sweep_rpc` is set.
    pub sweep: Option<crate::sweeper::SweepSettings>,
    /// How long events are kept (`events_max_age_days`, `events_max_rows`).
    pub events: crate::store::EventRetention,
    /// How long an ended session is kept (`session_retention_days`); `None`: for good.
    pub session_retention: Option<Duration>,
    /// How long audit entries are kept (`audit_retention_days`); `None`: for good.
    pub audit_retention: Option<Duration>,
    /// The config file read, if any.
    pub config_file: Option<PathBuf>,
    /// Setting name → where its value came from.
    pub sources: std::collections::BTreeMap<&'static str, Source>,
}

/// Comma-separated IP addresses (spaces around them allowed; an empty list is none).
fn parse_addresses(text: &str) -> Result<Vec<std::net::IpAddr>, String> {
    text.split(',')
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(|a| a.parse().map_err(|_| format!("{a:?} is not an IP address")))
        .collect()
}

impl Settings {
    /// Resolve `cli` (flags and environment, with `cli_source` telling which of the two
    /// set each name) over `file` over the defaults.
    pub fn resolve(
        cli: &Layer,
        cli_source: impl Fn(&str) -> Source,
        file: &Layer,
        config_file: Option<PathBuf>,
    ) -> Result<Settings, String> {
        let mut sources = std::collections::BTreeMap::new();
        macro_rules! pick {
            ($name:ident, $default:expr) => {{
                let (v, src) = match (&cli.$name, &file.$name) {
                    (Some(v), _) => (v.clone(), cli_source(stringify!($name))),
                    (None, Some(v)) => (v.clone(), Source::File),
                    (None, None) => ($default, Source::Default),
                };
                sources.insert(stringify!($name), src);
                v
            }};
        }
        let enclave_text = pick!(enclave, String::new());
        if enclave_text.is_empty() {
            return Err(
                "no enclave socket: set --enclave, BRIDLE_ENCLAVE or `enclave` in the config file (unix:/path or vsock:CID:PORT)"
                    .into(),
            );
        }
        let enclave: SocketAddress = enclave_text
            .parse()
            .map_err(|e| format!("enclave `{enclave_text}` (from {}): {e}", source_name(sources["enclave"])))?;
        let listen = pick!(listen, DEFAULT_LISTEN.to_string());
        let db = pick!(db, PathBuf::from(DEFAULT_DB));
        let database_url = pick!(database_url, String::new());
        let database = if database_url.trim().is_empty() {
            Database::Sqlite(db.clone())
        } else {
            if sources["db"] != Source::Default {
                return Err(format!(
                    "both db (from {}) and database_url (from {}) name a database: give one",
                    source_name(sources["db"]),
                    source_name(sources["database_url"])
                ));
            }
            Database::parse(&database_url)
                .map_err(|e| format!("database_url (from {}): {e}", source_name(sources["database_url"])))?
        };
        let host_id = pick!(host_id, default_host_id(&enclave));
        if host_id.trim().is_empty() {
            return Err(format!("host_id is empty (from {})", source_name(sources["host_id"])));
        }
        let log_format = pick!(log_format, LogFormat::Text);
        let call_timeout = pick!(call_timeout, DEFAULT_CALL_TIMEOUT_SECS);
        let body_limit = pick!(body_limit, DEFAULT_BODY_LIMIT);
        let max_frame = pick!(max_frame, DEFAULT_MAX_FRAME);
        let probe_interval = pick!(probe_interval, DEFAULT_PROBE_INTERVAL_SECS);
        let connections_per_source = pick!(connections_per_source, crate::serve::DEFAULT_PER_SOURCE);
        let exempt_text = pick!(
            connections_per_source_exempt,
            crate::serve::DEFAULT_EXEMPT.iter().map(|a| a.to_string()).collect::<Vec<_>>().join(",")
        );
        let connections_per_source_exempt = parse_addresses(&exempt_text).map_err(|e| {
            format!(
                "connections_per_source_exempt (from {}): {e}",
                source_name(sources["connections_per_source_exempt"])
            )
        })?;
        let cluster_listen = pick!(cluster_listen, String::new());
        let cluster_advertise = pick!(cluster_advertise, String::new());
        let cluster_seeds = pick!(cluster_seeds, String::new());
        let cluster_bootstrap = pick!(cluster_bootstrap, false);
        let cluster_source_address = pick!(cluster_source_address, String::new());
        let cluster = if cluster_listen.trim().is_empty() {
            if !cluster_advertise.is_empty() || !cluster_seeds.is_empty() || cluster_bootstrap {
                return Err("cluster_advertise, cluster_seeds and cluster_bootstrap need cluster_listen".into());
            }
            None
        } else {
            if cluster_advertise.is_empty() {
                // Derived from the bound address (`bind_cluster`): only one other hosts can
                // reach, a literal IP address that is not the unspecified one.
                // (An IPv6 address with a zone names no URL other hosts could use.)
                match cluster_listen.trim().parse::<std::net::SocketAddr>() {
                    Ok(std::net::SocketAddr::V6(a)) if a.scope_id() != 0 => {
                        return Err(format!(
                            "cluster_advertise is needed when cluster_listen has an IPv6 zone (from {}: {cluster_listen:?})",
                            source_name(sources["cluster_listen"])
                        ))
                    }
                    Ok(a) if !a.ip().is_unspecified() => {}
                    _ => {
                        return Err(format!(
                            "cluster_advertise (the http(s) URL other hosts reach this one at) is needed when cluster_listen is not one IP address other hosts can reach (from {}: {cluster_listen:?})",
                            source_name(sources["cluster_listen"])
                        ))
                    }
                }
            } else if !bridle_common::cluster::is_peer_url(&cluster_advertise) {
                return Err(format!(
                    "cluster_advertise must be the http(s) URL other hosts reach this one at, with no query, fragment or user info (from {}), got {cluster_advertise:?}",
                    source_name(sources["cluster_advertise"])
                ));
            }
            let seeds: Vec<String> =
                cluster_seeds.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect();
            if let Some(bad) = seeds.iter().find(|s| !bridle_common::cluster::is_peer_url(s)) {
                return Err(format!(
                    "each of cluster_seeds must be an http(s) URL with no query, fragment or user info (from {}), got {bad:?}",
                    source_name(sources["cluster_seeds"])
                ));
            }
            if !cluster_bootstrap && seeds.is_empty() {
                return Err("a cluster host needs cluster_seeds (to join) or cluster_bootstrap (to found one)".into());
            }
            let source = match cluster_source_address.trim() {
                "" => None,
                a => Some(a.parse().map_err(|e| format!("cluster_source_address {a:?}: {e}"))?),
            };
            Some(crate::cluster::ClusterSettings {
                listen: cluster_listen,
                advertise: cluster_advertise,
                seeds,
                bootstrap: cluster_bootstrap,
                source,
            })
        };
        let sweep_rpc = pick!(sweep_rpc, String::new());
        let sweep_interval = pick!(sweep_interval, DEFAULT_SWEEP_INTERVAL_SECS);
        let sweep_bump_after = pick!(sweep_bump_after, DEFAULT_SWEEP_BUMP_AFTER_SECS);
        let rpcs: Vec<String> = sweep_rpc.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect();
        if let Some(bad) = rpcs.iter().find(|u| !(u.starts_with("http://") || u.starts_with("https://"))) {
            return Err(format!(
                "sweep_rpc: {bad:?} is not an http(s) URL (from {})",
                source_name(sources["sweep_rpc"])
            ));
        }
        if sweep_interval == 0 || sweep_bump_after == 0 {
            return Err("sweep_interval and sweep_bump_after must be at least 1 s".into());
        }
        let sweep = (!rpcs.is_empty()).then(|| crate::sweeper::SweepSettings {
            rpcs,
            interval: Duration::from_secs(sweep_interval),
            bump_after: Duration::from_secs(sweep_bump_after),
        });
        let events = crate::store::EventRetention {
            max_age: match pick!(events_max_age_days, crate::store::DEFAULT_EVENTS_MAX_AGE_DAYS) {
                0 => None,
                days => Some(Duration::from_secs(days.saturating_mul(86_400))),
            },
            max_rows: pick!(events_max_rows, crate::store::DEFAULT_EVENTS_MAX_ROWS),
        };
        let session_retention = match pick!(session_retention_days, crate::retention::DEFAULT_SESSION_RETENTION_DAYS) {
            0 => None,
            days => Some(Duration::from_secs(days.saturating_mul(86_400))),
        };
        let audit_retention = match pick!(audit_retention_days, 0) {
            0 => None,
            days => Some(Duration::from_secs(days.saturating_mul(86_400))),
        };
        // A cluster host's pool is bounded by what the node's enclave leaves it (see
        // `cluster::MAX_CLIENT_POOL`).
        let pool = pick!(pool, crate::enclave_client::DEFAULT_POOL_SIZE);
        if pool == 0 {
            return Err(format!("pool must be at least 1 (from {})", source_name(sources["pool"])));
        }
        let (max, explanation) = if cluster.is_some() {
            let max = crate::cluster::MAX_CLIENT_POOL;
            (
                max,
                format!(
                    "a cluster node's enclave leaves this host's calls: at most {max} ({} connections, {} of them for cluster traffic, {} for the audit pull, {} spare)",
                    bridle_common::cluster::NODE_MAX_CONNECTIONS,
                    crate::cluster::TRAFFIC_POOL,
                    crate::enclave_client::AUDIT_CONNECTIONS,
                    crate::cluster::SPARE_CONNECTIONS
                ),
            )
        } else {
            let max = bridle_common::frame::MAX_HOST_POOL;
            (
                max,
                format!(
                    "the enclave serves a host: at most {max} ({} connections, {} for the audit pull, {} for owner calls and reads, the rest spare)",
                    bridle_common::frame::ENCLAVE_MAX_CONNECTIONS,
                    crate::enclave_client::AUDIT_CONNECTIONS,
                    crate::enclave_client::OWNER_CONNECTIONS + crate::enclave_client::READING_CONNECTIONS
                ),
            )
        };
        if pool > max {
            return Err(format!("pool {pool} (from {}) is more than {explanation}", source_name(sources["pool"])));
        }
        // A cluster host's calls wait for commits: more of them in flight (see
        // `cluster::DEFAULT_CLIENT_PIPELINE`).
        let pipeline = pick!(
            pipeline,
            if cluster.is_some() {
                crate::cluster::DEFAULT_CLIENT_PIPELINE
            } else {
                crate::enclave_client::DEFAULT_PIPELINE
            }
        );
        if pipeline == 0 || pipeline > crate::enclave_client::MAX_PIPELINE {
            return Err(format!(
                "pipeline {pipeline} (from {}) must be 1 to {}",
                source_name(sources["pipeline"]),
                crate::enclave_client::MAX_PIPELINE
            ));
        }
        if call_timeout == 0 {
            return Err(format!("call_timeout must be at least 1 s (from {})", source_name(sources["call_timeout"])));
        }
        Ok(Settings {
            enclave,
            listen,
            db,
            database,
            host_id,
            log_format,
            pool,
            pipeline,
            call_timeout,
            body_limit,
            max_frame,
            probe_interval,
            connections_per_source,
            connections_per_source_exempt,
            cluster,
            sweep,
            events,
            session_retention,
            audit_retention,
            config_file,
            sources,
        })
    }

    /// The host configuration these settings describe.
    pub fn host_config(&self) -> HostConfig {
        let mut c = HostConfig::new(self.enclave.clone());
        c.database = self.database.clone();
        c.host_id = self.host_id.clone();
        c.pool_size = self.pool;
        c.pipeline = self.pipeline;
        c.call_timeout = Duration::from_secs(self.call_timeout);
        c.body_limit = self.body_limit;
        c.max_frame = self.max_frame;
        c.probe_interval = (self.probe_interval > 0).then(|| Duration::from_secs(self.probe_interval));
        c.connections_per_source = self.connections_per_source;
        c.connections_per_source_exempt = self.connections_per_source_exempt.clone();
        c.cluster = self.cluster.clone();
        c.sweep = self.sweep.clone();
        c.events = self.events.clone();
        c.session_retention = self.session_retention;
        c.audit_retention = self.audit_retention;
        c
    }

    /// The effective settings as JSON (`bridle-host --print-config`). A database password
    /// is shown as `***`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "enclave": self.enclave.to_string(),
            "listen": self.listen,
            "db": self.db,
            "database_url": match &self.database {
                Database::Postgres(_) => Some(self.database.redacted()),
                Database::Sqlite(_) if self.sources.get("database_url") != Some(&Source::Default) => {
                    Some(self.database.redacted())
                }
                Database::Sqlite(_) => None,
            },
            "database": self.database.redacted(),
            "backend": self.database.kind(),
            "host_id": self.host_id,
            "log_format": self.log_format,
            "pool": self.pool,
            "pipeline": self.pipeline,
            "call_timeout": self.call_timeout,
            "body_limit": self.body_limit,
            "max_frame": self.max_frame,
            "probe_interval": self.probe_interval,
            "connections_per_source": self.connections_per_source,
            "connections_per_source_exempt": self.connections_per_source_exempt,
            "events": {
                "max_age_days": self.events.max_age.map_or(0, |d| d.as_secs() / 86_400),
                "max_rows": self.events.max_rows,
            },
            "session_retention_days": self.session_retention.map_or(0, |d| d.as_secs() / 86_400),
            "audit_retention_days": self.audit_retention.map_or(0, |d| d.as_secs() / 86_400),
            "sweep": self.sweep.as_ref().map(|w| serde_json::json!({
                "rpc": w.rpcs, "interval": w.interval.as_secs(), "bump_after": w.bump_after.as_secs(),
            })),
            "cluster": self.cluster.as_ref().map(|c| serde_json::json!({
                "listen": c.listen,
                "advertise": c.advertise,
                "seeds": c.seeds,
                "bootstrap": c.bootstrap,
                "source_address": c.source.map(|a| a.to_string()),
            })),
            "config_file": self.config_file,
            "sources": self.sources,
        })
    }
}

fn source_name(s: Source) -> &'static str {
    match s {
        Source::Flag => "a flag",
        Source::Env => "the environment",
        Source::File => "the config file",
        Source::Default => "the default",
    }
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
