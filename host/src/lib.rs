//! Bridle host proxy.
//!
//! The host is **untrusted**: it relays requests from agents and owners to the enclave
//! over one socket, stores what it relays, and serves HTTP (JSON API, Ethereum JSON-RPC,
//! Prometheus metrics). It holds no secrets and never computes or alters anything the
//! enclave checks — every owner action carries the owner's signature and every signing
//! request the agent's stamp, both verified inside the enclave (R-TRUST-3).
//!
//! An enclave restart loses every session key (R-TRUST-4): the host notices the new
//! enclave identity, marks every stored session of the old one `lost`, and answers 410 for
//! them. It never re-sends stored sessions to a new enclave.

pub mod api;
pub mod api_error;
pub mod api_lists;
pub mod attestation;
mod audit_reads;
pub mod audit_retention;
pub mod audit_store;
pub mod body;
pub mod cluster;
pub mod config;
pub mod conn;
pub mod console;
pub mod enclave_client;
pub mod enclave_pipe;
pub mod metrics;
pub mod openapi;
pub mod owner_replies;
pub mod retention;
pub mod rpc;
pub mod rpc_json;
pub mod rpc_tx;
pub mod rpc_userop;
pub mod serve;
pub mod session_gate;
pub mod store;
pub mod sweeper;
#[cfg(test)]
mod test_fakes;

/// A real PostgreSQL server for the store tests: the file `bridle-tests` exports too.
#[cfg(test)]
#[allow(dead_code)]
#[path = "../../tests/src/postgres.rs"]
mod test_pg;

use crate::enclave_client::{ClientConfig, EnclaveClient, IdentityHook};
use crate::metrics::Metrics;
use crate::store::{Database, Event, Store};
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;
use bridle_common::address::SocketAddress;
use bridle_common::frame::DEFAULT_MAX_FRAME;
use bridle_common::protocol::{Call, StatusQuery};
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub use crate::enclave_client::ClientError;

/// Default listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8547";
/// Default database path (SQLite).
pub const DEFAULT_DB: &str = "bridle-host.sqlite";
/// Default HTTP body limit: 1 MiB.
pub const DEFAULT_BODY_LIMIT: usize = 1 << 20;
/// Default interval of the background enclave probe.
pub const DEFAULT_PROBE_INTERVAL: Duration = Duration::from_secs(5);

/// Everything the host needs to run.
#[derive(Debug, Clone)]
pub struct HostConfig {
    /// The enclave socket: `unix:/path` or `vsock:CID:PORT`.
    pub enclave: SocketAddress,
    /// Where the host keeps its records: a SQLite file (`:memory:` for a throwaway
    /// database) or a PostgreSQL server other hosts may share.
    pub database: Database,
    /// This host's name in a shared database (which enclave identity it fronts, so that a
    /// restart marks lost only that enclave's sessions). Default: `HOSTNAME/ENCLAVE`.
    pub host_id: String,
    /// Pooled enclave connections.
    pub pool_size: usize,
    /// Enclave calls in flight on one connection (a cluster host's default is 8: a cluster
    /// call holds its place until committed).
    pub pipeline: usize,
    /// Largest enclave frame, bytes.
    pub max_frame: usize,
    /// Per enclave call timeout.
    pub call_timeout: Duration,
    /// Largest HTTP request body, bytes.
    pub body_limit: usize,
    /// How often a background task asks the enclave for its status (reachability and
    /// restart detection without traffic). `None` disables the probe.
    pub probe_interval: Option<Duration>,
    /// Capacity of the asynchronous event queue.
    pub event_queue: usize,
    /// Connections the public listener serves at once from one source ([`serve::Source`]);
    /// 0: no such bound.
    pub connections_per_source: usize,
    /// Addresses the per-source bound does not apply to (a proxy in front of the host).
    pub connections_per_source_exempt: Vec<std::net::IpAddr>,
    /// When the enclave is a node of an enclave cluster: how this host takes part.
    pub cluster: Option<cluster::ClusterSettings>,
    /// Sweeps that run by themselves ([`sweeper`]), when set.
    pub sweep: Option<sweeper::SweepSettings>,
    /// How long the host keeps its events (pruned every [`PRUNE_EVERY`]).
    pub events: store::EventRetention,
    /// How long the host keeps a session after it ended ([`retention`]); `None`: for good.
    pub session_retention: Option<Duration>,
    /// How long the host keeps audit entries ([`audit_retention`]); `None`: for good.
    pub audit_retention: Option<Duration>,
}

impl HostConfig {
    /// Defaults for everything but the enclave address.
    pub fn new(enclave: SocketAddress) -> HostConfig {
        HostConfig {
            host_id: default_host_id(&enclave),
            enclave,
            database: Database::Sqlite(PathBuf::from(DEFAULT_DB)),
            pool_size: enclave_client::DEFAULT_POOL_SIZE,
            pipeline: enclave_client::DEFAULT_PIPELINE,
            max_frame: DEFAULT_MAX_FRAME,
            call_timeout: enclave_client::DEFAULT_CALL_TIMEOUT,
            body_limit: DEFAULT_BODY_LIMIT,
            probe_interval: Some(DEFAULT_PROBE_INTERVAL),
            event_queue: store::DEFAULT_EVENT_QUEUE,
            connections_per_source: serve::DEFAULT_PER_SOURCE,
            connections_per_source_exempt: serve::DEFAULT_EXEMPT.to_vec(),
            cluster: None,
            sweep: None,
            events: store::EventRetention::default(),
            session_retention: Some(retention::DEFAULT_SESSION_RETENTION),
            audit_retention: None,
        }
    }
}

/// `HOSTNAME/ENCLAVE`: stable across restarts of this host in front of the same socket.
pub fn default_host_id(enclave: &SocketAddress) -> String {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".into());
    format!("{name}/{enclave}")
}

/// Shared state of the HTTP handlers.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

pub struct Shared {
    pub client: EnclaveClient,
    /// A cluster node's own connections for the cluster's traffic (polling, delivering,
    /// replies), apart from the pool client calls wait in: a commit waits for this traffic.
    pub cluster_client: Option<EnclaveClient>,
    pub store: Arc<Store>,
    pub metrics: Arc<Metrics>,
    pub config: HostConfig,
    /// The enclave's signed audit log, as stored (R-AUD-1).
    pub audit: Arc<audit_store::AuditStore>,
    /// The sweeper's counters (rendered on `/metrics` when it runs).
    pub sweep_metrics: Arc<sweeper::SweepMetrics>,
    /// Turns of the list routes' reads ([`api_lists::LISTS_AT_ONCE`]).
    pub lists: Arc<tokio::sync::Semaphore>,
    /// Turns of `POST /v1/policy/normalize` ([`console::NORMALIZING_AT_ONCE`]).
    pub normalizing: Arc<tokio::sync::Semaphore>,
}

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl AppState {
    /// Open the database and set up the (lazy) enclave client. Does not contact the
    /// enclave: the host starts whether or not the enclave is up.
    pub fn open(config: HostConfig) -> anyhow::Result<AppState> {
        let backends = store::open(&config.database)?;
        let store = Store::new(backends.store, &config.host_id, config.event_queue)?;
        let audit = audit_store::AuditStore::new(backends.audit);
        let metrics = Arc::new(Metrics::new());
        let hook_store = store.clone();
        let hook: IdentityHook = Arc::new(move |previous, current| {
            let store = hook_store.clone();
            Box::pin(async move {
                match store.run(move |s| s.enclave_changed(previous, &current)).await {
                    Ok(n) => match previous {
                        Some(old) => tracing::warn!(
                            old_identity = %old,
                            new_identity = %current,
                            sessions_lost = n,
                            "enclave restarted (new identity): every session of the old enclave is lost and cannot be restored"
                        ),
                        None if n > 0 => tracing::warn!(
                            identity = %current,
                            sessions_lost = n,
                            "enclave identity differs from the stored sessions' enclave: those sessions are lost and cannot be restored"
                        ),
                        None => tracing::info!(identity = %current, "enclave identity learned"),
                    },
                    Err(e) => tracing::error!(
                        identity = %current,
                        error = %e,
                        "cannot mark the old enclave's sessions lost in the database"
                    ),
                }
            })
        });
        // A cluster node's frames carry the cluster's messages (up to 20 MiB).
        let max_frame =
            if config.cluster.is_some() { config.max_frame.max(cluster::MAX_RELAY_BODY) } else { config.max_frame };
        let mut client = EnclaveClient::new(
            config.enclave.clone(),
            ClientConfig {
                pool_size: config.pool_size,
                pipeline: config.pipeline,
                max_frame,
                call_timeout: config.call_timeout,
            },
        )
        .with_metrics(metrics.clone())
        .on_identity(hook);
        let mut cluster_client = None;
        if let Some(c) = &config.cluster {
            if config.pool_size > cluster::MAX_CLIENT_POOL {
                anyhow::bail!(
                    "pool {} is more than a cluster node's enclave leaves this host's calls: at most {}",
                    config.pool_size,
                    cluster::MAX_CLIENT_POOL
                );
            }
            let link = cluster::ClusterLink::new(c.clone()).map_err(|e| anyhow::anyhow!(e))?;
            client = client.with_cluster(Arc::new(link));
            cluster_client = Some(EnclaveClient::new(
                config.enclave.clone(),
                ClientConfig {
                    pool_size: cluster::TRAFFIC_POOL,
                    pipeline: 1,
                    max_frame,
                    call_timeout: config.call_timeout,
                },
            ));
        }
        Ok(AppState(Arc::new(Shared {
            client,
            cluster_client,
            store,
            metrics,
            config,
            audit,
            sweep_metrics: Arc::default(),
            lists: Arc::new(tokio::sync::Semaphore::new(api_lists::LISTS_AT_ONCE)),
            normalizing: Arc::new(tokio::sync::Semaphore::new(console::NORMALIZING_AT_ONCE)),
        })))
    }

    /// Queue an event for storage without waiting; a full queue drops it (counted).
    pub fn record_event(&self, ev: Event) {
        if !self.store.record_event(ev) {
            self.metrics.event_dropped();
        }
    }

    /// One status round trip (reachability, identity, restart detection).
    pub async fn probe(&self) -> Result<(), ClientError> {
        self.client.call(Call::Status(StatusQuery { session: None, nonce: None, held: None })).await.map(|_| ())
    }

    /// Start the background probe, when configured.
    pub fn spawn_probe(&self) -> Option<tokio::task::JoinHandle<()>> {
        let interval = self.config.probe_interval?;
        let st = self.clone();
        Some(tokio::spawn(async move {
            let mut was_up: Option<bool> = None;
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let r = st.probe().await;
                let up = r.is_ok();
                if was_up != Some(up) {
                    match r {
                        Ok(()) => tracing::info!(enclave = %st.config.enclave, "enclave reachable"),
                        Err(e) => tracing::warn!(enclave = %st.config.enclave, error = %e, "enclave not reachable"),
                    }
                    was_up = Some(up);
                }
            }
        }))
    }
}

/// How often the host deletes the events its retention does not keep.
pub const PRUNE_EVERY: Duration = Duration::from_secs(60);
/// The pause between two windows of a pruning pass: the event writer and owner actions
/// take the database in between (a review of 2026-12-05: a backlog of millions held it
/// almost without a break).
pub const PRUNE_PAUSE: Duration = Duration::from_millis(20);
/// A pass ends after this many windows in a row that kept everything they held: the rest
/// of the table is newer (a run of events stamped ahead of the others longer than this
/// delays the age bound until it ages; the row bound still applies).
pub const PRUNE_IDLE_WINDOWS: usize = 16;

/// One pruning pass over the event table, from its oldest id, a window at a time (see
/// [`store::Store::prune_window`]), pausing `pause` between windows; returns how many
/// events it deleted.
pub async fn prune_pass(
    store: &Arc<store::Store>,
    retention: &store::EventRetention,
    pause: Duration,
) -> anyhow::Result<u64> {
    let (mut deleted, mut after, mut idle) = (0u64, 0u64, 0usize);
    while idle < PRUNE_IDLE_WINDOWS {
        let r = retention.clone();
        let (n, end) = match store.run(move |db| db.prune_window(store::now_ms(), &r, after)).await {
            Ok(window) => window,
            Err(e) if deleted == 0 => return Err(e),
            // What this pass deleted so far is still counted.
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "cannot delete old events");
                break;
            }
        };
        let Some(end) = end else { break };
        deleted += n as u64;
        idle = if n == 0 { idle + 1 } else { 0 };
        after = end;
        tokio::time::sleep(pause).await;
    }
    Ok(deleted)
}

impl AppState {
    /// Delete, every [`PRUNE_EVERY`] from the start, the events past `config.events`.
    pub fn spawn_event_pruner(&self) -> Option<tokio::task::JoinHandle<()>> {
        let retention = self.config.events.clone();
        if retention.max_age.is_none() && retention.max_rows == 0 {
            return None;
        }
        let st = self.clone();
        Some(tokio::spawn(async move {
            let mut tick = tokio::time::interval(PRUNE_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                match prune_pass(&st.store, &retention, PRUNE_PAUSE).await {
                    Ok(0) => {}
                    Ok(n) => {
                        st.metrics.events_pruned(n);
                        tracing::info!(events = n, "events past their retention deleted");
                    }
                    Err(e) => tracing::warn!(error = %format!("{e:#}"), "cannot delete old events"),
                }
            }
        }))
    }
}

/// The HTTP router over `state`.
pub fn router(state: AppState) -> Router {
    let body_limit = state.config.body_limit;
    Router::new()
        .route("/health", get(api::health))
        .route("/metrics", get(api::metrics))
        .route("/openapi.json", get(openapi::serve))
        .route("/v1/status", get(api::status))
        .route("/v1/attestation", get(api::attestation))
        .route("/v1/audit", get(api::audit))
        .route("/v1/audit/export", get(audit_store::export))
        .route("/v1/audit/head", get(api::audit_head))
        .route("/v1/sessions", post(api::create_session))
        .route("/v1/sessions/{session}", get(api::get_session))
        .route("/v1/sessions/{session}/policy", post(api::update_policy))
        .route("/v1/sessions/{session}/policies", get(api_lists::session_policies))
        .route("/v1/sessions/{session}/revoke", post(api::revoke))
        .route("/v1/sessions/{session}/approve", post(api::approve_pending))
        .route("/v1/sessions/{session}/deny", post(api::deny_pending))
        .route("/v1/sessions/{session}/allowances", get(api::allowances))
        .route("/v1/sessions/{session}/sweep", post(api::sweep))
        .route("/v1/sessions/{session}/sweeps", get(api_lists::sweeps))
        .route("/v1/owners/{owner}/revoke-all", post(api::revoke_all))
        .route("/v1/owners/{owner}/allow-image", post(api::allow_image))
        .route("/v1/cluster/info", get(cluster::info))
        .route("/v1/owners/{owner}/sessions", get(api_lists::owner_sessions))
        .route("/v1/sign", post(api::sign))
        .route("/rpc", post(rpc::rpc))
        .merge(console::router(body_limit))
        .fallback(api::not_found)
        .method_not_allowed_fallback(api::method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(state.clone(), api::track))
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(state)
}

/// Serve `state` on `listener` until `shutdown` resolves; then finish in-flight requests
/// and flush the event queue.
pub async fn run(
    state: AppState,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    // The state's cluster link took its advertised URL when it was opened: one left to the
    // bound address must have been derived before ([`serve`] and `main` do); `run_on`
    // refuses a state without one.
    let cluster = bind_cluster(&mut state.config.clone()).await?;
    run_on(state, listener, cluster, shutdown).await
}

/// Bind the cluster listener when this host's enclave is a cluster node (`None` otherwise),
/// and when `config` advertises no URL, advertise `http://` the address bound (the
/// configuration allows that only for a literal IP address that is not the unspecified
/// one; a port of 0 then names the port the system picked).
///
/// Bind it before announcing readiness, and before [`AppState::open`] (which takes the
/// advertised URL): a port already taken then fails the start, instead of a host that says
/// it is listening and exits a moment later.
pub async fn bind_cluster(config: &mut HostConfig) -> anyhow::Result<Option<tokio::net::TcpListener>> {
    let Some(c) = &mut config.cluster else { return Ok(None) };
    let l = tokio::net::TcpListener::bind(&c.listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen for the cluster on {}: {e}", c.listen))?;
    if c.advertise.is_empty() {
        c.advertise = format!("http://{}", l.local_addr()?);
    }
    Ok(Some(l))
}

/// [`run`] on listeners bound beforehand: `cluster` from [`bind_cluster`] (required when
/// the configuration has a cluster part, ignored otherwise).
pub async fn run_on(
    state: AppState,
    listener: tokio::net::TcpListener,
    cluster: Option<tokio::net::TcpListener>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let cluster = match (&state.config.cluster, cluster) {
        (Some(c), Some(_)) if c.advertise.is_empty() => {
            anyhow::bail!("a cluster host needs its advertised URL: bind_cluster derives it, before AppState::open")
        }
        (Some(c), Some(l)) => Some((c.advertise.clone(), l)),
        (Some(_), None) => anyhow::bail!("a cluster host needs its cluster listener (bind_cluster)"),
        (None, _) => None,
    };
    let probe = state.spawn_probe();
    // The audit puller is background enclave traffic too: it runs when the probe does.
    let audit =
        state.config.probe_interval.map(|_| audit_store::spawn(state.clone(), audit_store::DEFAULT_PULL_INTERVAL));
    let sweeper = sweeper::spawn(state.clone());
    let pruner = state.spawn_event_pruner();
    let forgetter = retention::spawn(state.clone());
    let audit_pruner = audit_retention::spawn(state.clone());
    let app = router(state.clone());
    // The cluster listener and the node's traffic, when this host's enclave is a node.
    let mut cluster_tasks = Vec::new();
    if let Some((advertise, l)) = cluster {
        tracing::info!(listen = ?l.local_addr().ok(), advertise = %advertise, "cluster listener");
        let peer_app = cluster::router(state.clone());
        cluster_tasks.push(tokio::spawn(serve::serve(
            l,
            peer_app,
            serve::cluster(cluster::MAX_RELAY_BODY),
            std::future::pending(),
        )));
        cluster_tasks.extend(cluster::spawn(state.clone()));
    }
    let limits = serve::public(
        state.config.connections_per_source,
        state.config.connections_per_source_exempt.clone(),
        state.config.body_limit,
    );
    serve::serve(listener, app, limits, shutdown).await;
    if let Some(p) = probe {
        p.abort();
    }
    for t in cluster_tasks {
        t.abort();
    }
    if let Some(a) = audit {
        a.abort();
    }
    if let Some(s) = sweeper {
        s.abort();
    }
    if let Some(p) = pruner {
        p.abort();
    }
    if let Some(f) = forgetter {
        f.abort();
    }
    if let Some(p) = audit_pruner {
        p.abort();
    }
    let store = state.store.clone();
    let _ = tokio::task::spawn_blocking(move || store.flush()).await;
    Ok(())
}

/// Open the host with `config` and serve it on `listener` until SIGINT or SIGTERM.
pub async fn serve(mut config: HostConfig, listener: tokio::net::TcpListener) -> anyhow::Result<()> {
    let shutdown = shutdown_signal();
    // The cluster listener first: an advertised URL left to it is derived from the address
    // it bound, which the state's cluster link takes.
    let cluster = bind_cluster(&mut config).await?;
    let state = AppState::open(config)?;
    run_on(state, listener, cluster, shutdown).await
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
///
/// The handlers are registered when this is called, not when the future is first polled:
/// call it before announcing readiness, so a signal that arrives right after "listening"
/// still shuts down gracefully instead of killing the process.
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).ok();
        let mut int = signal(SignalKind::interrupt()).ok();
        async move {
            let term = async {
                match term.as_mut() {
                    Some(s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            let int = async {
                match int.as_mut() {
                    Some(s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                _ = int => tracing::info!("SIGINT: shutting down"),
                _ = term => tracing::info!("SIGTERM: shutting down"),
            }
        }
    }
    #[cfg(not(unix))]
    async {
        if tokio::signal::ctrl_c().await.is_ok() {
            tracing::info!("Ctrl-C: shutting down");
        }
    }
}
