//! The HTTP front: hyper 1 on tokio, one fresh component instance per request
//! from a pre-instantiated `ProxyPre`, the response body streamed as the guest
//! writes it. Connections are accepted here and served on the serving threads
//! (`serving`). Before a request gets an instance it passes admission (its org's
//! in-flight cap) and its whole body is read within the body deadline.

use std::convert::Infallible;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http::header::{HOST, HeaderValue};
use http::{Request, Response};
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use policy::sealed::KeyRing;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, oneshot, watch};
use tokio::task::JoinHandle;
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{
    Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store,
};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::admission::{Admission, Admitted, EdgeLimits, Prefetched};
use crate::clock::GuestClock;
use crate::error_response::{Body, HostError, header_timeout_bytes};
use crate::guest_deadline::{self, DeadlineExceeded, GuestBudget};
use crate::intake;
use crate::keyvalue::{
    self, CounterJournal, Decision, GatewayCorePre, KvHost, KvView, RequestFacts,
};
use crate::kv::{DEFAULT_STORE, Kv, KvConfig, KvError};
use crate::metrics;
use crate::ops;
use crate::outbound::{InvalidOutbound, OutboundHooks, OutboundPolicy};
use crate::records::{self, RecordsError};
use crate::serving::{Accepted, ServingThreads};
use crate::settings::{self, InvalidTrustedProxy, Settings};

/// Header carrying the TCP peer (`ip:port`, IPv6 as `[ip]:port`), as Spin sets
/// it; any client-supplied value is removed first so it cannot be spoofed.
pub const CLIENT_ADDR_HEADER: &str = "spin-client-addr";

/// Largest linear memory a guest may grow to.
const MAX_MEMORY: usize = 256 << 20;
/// How long `shutdown` lets in-flight requests (streams) finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// How to run the edge.
#[derive(Debug, Clone)]
pub struct EdgeConfig {
    /// Address to listen on; port 0 picks a free port (see [`EdgeServer::local_addr`]).
    pub listen: SocketAddr,
    /// The key-value backend.
    pub kv: KvConfig,
    /// A component file to serve instead of the embedded one.
    pub component: Option<PathBuf>,
    /// A records file loaded into the store before serving.
    pub records: Option<PathBuf>,
    /// Upstreams the guest may call: `host` (any port) or `host:port`, exact
    /// match; empty denies all outbound HTTP.
    pub allowed_outbound: Vec<String>,
    /// Outbound connect timeout (caps the guest's own).
    pub connect_timeout: Duration,
    /// Outbound time to the response head (caps the guest's own).
    pub first_byte_timeout: Duration,
    /// Outbound time between body chunks (caps the guest's own).
    pub between_bytes_timeout: Duration,
    /// The guest's wall clock (the system clock unless a test moves it).
    pub clock: GuestClock,
    /// Connection, instance, deadline and per-org concurrency limits.
    pub limits: EdgeLimits,
    /// Proxies (CIDRs or addresses) whose forwarding headers the guest honours,
    /// served to it as the `trusted_proxies` config variable; empty trusts none.
    pub trusted_proxies: Vec<String>,
    /// Where to serve `/metrics`, `/healthz` and `/readyz`; none: not served.
    pub ops_listen: Option<SocketAddr>,
    /// Keys that open the provider credentials sealed in org records, served to
    /// the guest as the `edge_keys` config variable; empty opens none (requests
    /// to a provider with a credential are refused with 503).
    pub edge_keys: KeyRing,
}

impl Default for EdgeConfig {
    fn default() -> Self {
        EdgeConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            kv: KvConfig::Memory,
            component: None,
            records: None,
            allowed_outbound: Vec::new(),
            connect_timeout: Duration::from_secs(10),
            // A non-streamed completion sends its head only when generation is
            // done, which can take minutes.
            first_byte_timeout: Duration::from_secs(300),
            between_bytes_timeout: Duration::from_secs(120),
            clock: GuestClock::system(),
            limits: EdgeLimits::default(),
            trusted_proxies: Vec::new(),
            ops_listen: None,
            edge_keys: KeyRing::default(),
        }
    }
}

/// Errors starting or using the edge.
#[derive(Debug, thiserror::Error)]
pub enum EdgeError {
    /// The key-value store could not be opened or written.
    #[error("key-value store: {0}")]
    Kv(#[from] KvError),
    /// The records file is invalid.
    #[error(transparent)]
    Records(#[from] RecordsError),
    /// An `allowed_outbound` entry is malformed.
    #[error(transparent)]
    Outbound(#[from] InvalidOutbound),
    /// A `trusted_proxies` entry is malformed.
    #[error(transparent)]
    TrustedProxy(#[from] InvalidTrustedProxy),
    /// The engine could not be configured, or the component not loaded or linked.
    #[error("component: {0}")]
    Component(String),
    /// The listen address could not be bound.
    #[error("binding {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The guest trapped or failed while answering.
    #[error("guest: {0}")]
    Guest(String),
    /// A limit is out of range.
    #[error("invalid limit: {0}")]
    Limits(String),
    /// The serving threads could not be started.
    #[error("starting the serving threads: {0}")]
    Threads(std::io::Error),
}

fn component_err(e: impl std::fmt::Display) -> EdgeError {
    EdgeError::Component(format!("{e:#}"))
}

/// Per-instance state: WASI contexts, the resource table, outbound hooks, KV.
pub(crate) struct HostState {
    table: ResourceTable,
    wasi: WasiCtx,
    http: WasiHttpCtx,
    hooks: OutboundHooks,
    kv: KvHost,
    journal: CounterJournal,
    prefetched: Prefetched,
    budget: GuestBudget,
    settings: Settings,
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for HostState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}

/// Everything requests share; built once at start.
struct Shared {
    engine: Engine,
    proxy: ProxyPre<HostState>,
    core: Option<GatewayCorePre<HostState>>,
    kv: KvHost,
    outbound: OutboundPolicy,
    clock: GuestClock,
    limits: EdgeLimits,
    admission: Arc<Admission>,
    settings: Settings,
}

impl Shared {
    fn new_store(&self, prefetched: Prefetched) -> Store<HostState> {
        // Guest stdout/stderr go to ours (the component's own log lines); no
        // environment, arguments or preopened directories.
        let wasi = WasiCtxBuilder::new()
            .inherit_stdout()
            .inherit_stderr()
            .wall_clock(self.clock.clone())
            .build();
        let mut store = Store::new(
            &self.engine,
            HostState {
                table: ResourceTable::new(),
                wasi,
                http: WasiHttpCtx::new(),
                hooks: OutboundHooks::new(self.outbound.clone()),
                kv: self.kv.clone(),
                journal: CounterJournal::default(),
                prefetched,
                budget: GuestBudget::new(
                    self.limits.guest_cpu_limit,
                    self.limits.guest_response_deadline,
                ),
                settings: self.settings.clone(),
            },
        );
        guest_deadline::arm(&mut store, |s: &mut HostState| &mut s.budget);
        store
    }
}

impl Shared {
    /// Compiles and links the component against `kv` once; requests and policy
    /// probes instantiate it from here.
    async fn build(
        cfg: &EdgeConfig,
        kv: &Kv,
        outbound: OutboundPolicy,
        settings: Settings,
    ) -> Result<Arc<Shared>, EdgeError> {
        let (engine, pool) = engine(cfg.limits.max_instances)?;
        let component = load_component(&engine, cfg.component.clone()).await?;
        let mut linker = Linker::<HostState>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(component_err)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)
            .map_err(component_err)?;
        keyvalue::add_to_linker(&mut linker, |s: &mut HostState| KvView {
            table: &mut s.table,
            journal: &mut s.journal,
            prefetched: &mut s.prefetched,
            host: &s.kv,
        })
        .map_err(component_err)?;
        settings::add_to_linker(&mut linker, |s: &mut HostState| &s.settings)
            .map_err(component_err)?;
        let pre = linker.instantiate_pre(&component).map_err(component_err)?;
        let proxy = ProxyPre::new(pre.clone()).map_err(|e| {
            EdgeError::Component(format!(
                "the component does not export wasi:http/incoming-handler: {e:#}"
            ))
        })?;
        // The policy export is optional: without it only `decide` is unavailable.
        let core = GatewayCorePre::new(pre).ok();
        let kv_host = KvHost::new(kv.clone(), &[DEFAULT_STORE]);

        Ok(Arc::new(Shared {
            engine,
            proxy,
            core,
            kv: kv_host.clone(),
            outbound,
            clock: cfg.clock.clone(),
            // A pool made smaller by an earlier server in this process bounds this one.
            admission: Admission::new(
                kv.clone(),
                &cfg.limits,
                cfg.limits.max_instances.min(pool),
                kv_host.records().clone(),
            ),
            limits: cfg.limits.clone(),
            settings,
        }))
    }

    /// Runs `tollgate:gateway/policy.decide` in a fresh instance.
    async fn decide(&self, facts: RequestFacts) -> Result<Decision, EdgeError> {
        let pre = self.core.as_ref().ok_or_else(|| {
            EdgeError::Component("the component does not export tollgate:gateway/policy".into())
        })?;
        let mut store = self.new_store(Prefetched::default());
        let core = pre
            .instantiate_async(&mut store)
            .await
            .map_err(|e| EdgeError::Guest(format!("{e:#}")))?;
        core.tollgate_gateway_policy()
            .call_decide(&mut store, &facts)
            .await
            .map_err(|e| EdgeError::Guest(format!("{e:#}")))
    }
}

/// The component's policy export over a given store, without serving HTTP: what a
/// control plane runs to explain a decision exactly as the edge reaches it.
pub struct PolicyProbe {
    shared: Arc<Shared>,
}

impl PolicyProbe {
    /// Connects to `kv` and compiles (once per process) and links the embedded component.
    pub async fn new(kv: &KvConfig) -> Result<PolicyProbe, EdgeError> {
        let cfg = EdgeConfig {
            kv: kv.clone(),
            ..EdgeConfig::default()
        };
        let (outbound, settings) = checked_parts(&cfg)?;
        let kv = Kv::connect(&cfg.kv).await?;
        let shared = Shared::build(&cfg, &kv, outbound, settings).await?;
        Ok(PolicyProbe { shared })
    }

    /// The decision the edge would reach for `facts`; consumes no counter.
    pub async fn decide(&self, facts: RequestFacts) -> Result<Decision, EdgeError> {
        self.shared.decide(facts).await
    }
}

/// Freed slots whose memory is reset together.
const DECOMMIT_BATCH: usize = 16;

/// Written bytes of a freed slot's memory (or table) reset in place rather than
/// unmapped.
const KEEP_RESIDENT: usize = 1 << 20;

/// One engine per process: compiled code and the pooling allocator's slots are
/// shared by every server (tests start many). The first start sizes the pool;
/// returns the engine and that size.
fn engine(max_instances: u32) -> Result<(Engine, u32), EdgeError> {
    static ENGINE: Mutex<Option<(Engine, u32)>> = Mutex::new(None);
    let mut slot = ENGINE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(engine) = &*slot {
        return Ok(engine.clone());
    }
    let max = max_instances;
    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(max)
        // A Rust wasip2 component is one main module plus a few small shims.
        .max_core_instances_per_component(16)
        .total_core_instances(max * 8)
        .max_memories_per_component(2)
        .total_memories(max * 2)
        .max_tables_per_component(16)
        .total_tables(max * 8)
        .total_stacks(max)
        .max_memory_size(MAX_MEMORY)
        // Resetting a slot is an madvise, and each one interrupts every other core
        // to flush its TLB: batched, a request no longer pays for one.
        .decommit_batch_size(DECOMMIT_BATCH);
    // A request dirties a few dozen pages of its instance's memory; after the
    // madvise above, each was a page fault (and zeroing) on the next request.
    // With PAGEMAP_SCAN (Linux 6.7+) only the written pages are reset, in place,
    // and stay mapped. Without it, keeping memory resident would memset all of it
    // on every reset, which costs more than the faults: madvise alone then.
    if PoolingAllocationConfig::is_pagemap_scan_available() {
        pool.pagemap_scan(Enabled::Yes)
            .linear_memory_keep_resident(KEEP_RESIDENT)
            .table_keep_resident(KEEP_RESIDENT);
    }
    let mut config = Config::new();
    config.wasm_component_model(true);
    // Guest code checks the epoch, so a deadline can interrupt it anywhere.
    config.epoch_interruption(true);
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    let engine = match Engine::new(&config) {
        Ok(engine) => engine,
        Err(e) => {
            // The pool reserves address space up front; where that is not
            // allowed (tight ulimit -v), allocate on demand instead.
            tracing::warn!(error = %e, "pooling allocator unavailable, allocating on demand");
            config.allocation_strategy(InstanceAllocationStrategy::OnDemand);
            Engine::new(&config).map_err(component_err)?
        }
    };
    guest_deadline::start_ticker(&engine);
    *slot = Some((engine.clone(), max));
    Ok((engine, max))
}

/// Compiles the embedded component once per process; a file is compiled on
/// every start (it may have changed).
async fn load_component(engine: &Engine, path: Option<PathBuf>) -> Result<Component, EdgeError> {
    static EMBEDDED: Mutex<Option<Component>> = Mutex::new(None);
    let engine = engine.clone();
    // Compiling takes seconds: keep it off the async workers.
    tokio::task::spawn_blocking(move || match path {
        Some(path) => Component::from_file(&engine, &path)
            .map_err(|e| EdgeError::Component(format!("{}: {e:#}", path.display()))),
        None => {
            let mut slot = EMBEDDED.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(c) = &*slot {
                return Ok(c.clone());
            }
            let c = Component::new(&engine, crate::component_wasm()).map_err(component_err)?;
            *slot = Some(c.clone());
            Ok(c)
        }
    })
    .await
    .map_err(component_err)?
}

/// A running edge server.
pub struct EdgeServer {
    local_addr: SocketAddr,
    kv: Kv,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
    ops_addr: Option<SocketAddr>,
}

impl EdgeServer {
    /// Opens the store, loads records, compiles and links the component, binds
    /// and starts serving.
    pub async fn start(cfg: EdgeConfig) -> Result<EdgeServer, EdgeError> {
        let (outbound, settings) = checked_parts(&cfg)?;
        let kv = Kv::connect(&cfg.kv).await?;
        if let Some(path) = &cfg.records {
            let entries = records::load_file(path)?;
            kv.set_many(&entries).await?;
            tracing::info!(path = %path.display(), records = entries.len(), "records loaded");
        }

        let shared = Shared::build(&cfg, &kv, outbound, settings).await?;

        let listener = TcpListener::bind(cfg.listen)
            .await
            .map_err(|source| EdgeError::Bind {
                addr: cfg.listen,
                source,
            })?;
        let local_addr = listener.local_addr().map_err(|source| EdgeError::Bind {
            addr: cfg.listen,
            source,
        })?;
        let (stop, stopped) = watch::channel(false);
        let ops_addr = match cfg.ops_listen {
            Some(addr) => Some(
                ops::serve(addr, kv.clone(), stopped.clone())
                    .await
                    .map_err(|source| EdgeError::Bind { addr, source })?
                    .0,
            ),
            None => None,
        };
        let serving = shared.clone();
        let threads = ServingThreads::start(cfg.limits.serving_threads, move |accepted| {
            serve_connection(serving.clone(), accepted)
        })
        .map_err(EdgeError::Threads)?;
        let task = tokio::spawn(accept_loop(listener, shared.clone(), threads, stopped));
        tracing::info!(%local_addr, "edge serving");
        Ok(EdgeServer {
            local_addr,
            kv,
            shared,
            stop,
            task: Some(task),
            ops_addr,
        })
    }

    /// The bound address (the real port when configured with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The bound address of the ops endpoints, when configured.
    pub fn ops_addr(&self) -> Option<SocketAddr> {
        self.ops_addr
    }

    /// `http://<local_addr>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.local_addr)
    }

    /// The store the component reads, to seed or inspect records and counters.
    pub fn kv(&self) -> &Kv {
        &self.kv
    }

    /// Asks the component's `tollgate:gateway/policy.decide` export, in a fresh
    /// instance, exactly as a request would be decided.
    pub async fn decide(&self, facts: RequestFacts) -> Result<Decision, EdgeError> {
        self.shared.decide(facts).await
    }

    /// Waits until no request holds a guest instance, at most `within`: then
    /// every request answered so far has settled its counters and spooled its
    /// usage (a guest does both after its last byte). Whether it got there.
    pub async fn wait_idle(&self, within: Duration) -> bool {
        self.shared
            .admission
            .all_instances_free(Instant::now() + within)
            .await
    }

    /// Stops accepting, lets in-flight requests finish (up to a grace period),
    /// then returns.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for EdgeServer {
    fn drop(&mut self) {
        // Dropped without `shutdown`: still stop accepting in the background.
        let _ = self.stop.send(true);
    }
}

/// The outbound policy and guest settings of `cfg`, once its limits are checked.
fn checked_parts(cfg: &EdgeConfig) -> Result<(OutboundPolicy, Settings), EdgeError> {
    let outbound = OutboundPolicy::new(
        &cfg.allowed_outbound,
        cfg.connect_timeout,
        cfg.first_byte_timeout,
        cfg.between_bytes_timeout,
        cfg.limits.serving_threads,
    )?;
    check_limits(&cfg.limits)?;
    let settings = Settings::new(&cfg.trusted_proxies, &cfg.edge_keys)?;
    Ok((outbound, settings))
}

/// Refuses limits that would make the edge refuse everything.
fn check_limits(l: &EdgeLimits) -> Result<(), EdgeError> {
    let zero = [
        ("max_connections", l.max_connections == 0),
        ("max_instances", l.max_instances == 0),
        ("serving_threads", l.serving_threads == 0),
        ("org_max_in_flight", l.org_max_in_flight == 0),
        ("anonymous_max_in_flight", l.anonymous_max_in_flight == 0),
        ("header_read_timeout", l.header_read_timeout.is_zero()),
        ("body_read_timeout", l.body_read_timeout.is_zero()),
        ("guest_cpu_limit", l.guest_cpu_limit.is_zero()),
        (
            "guest_response_deadline",
            l.guest_response_deadline.is_zero(),
        ),
    ];
    match zero.iter().find(|(_, bad)| *bad) {
        Some((name, _)) => Err(EdgeError::Limits(format!("{name} must be above zero"))),
        None => Ok(()),
    }
}

async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    threads: ServingThreads,
    mut stopped: watch::Receiver<bool>,
) {
    let graceful = GracefulShutdown::new();
    let connections = Arc::new(Semaphore::new(shared.limits.max_connections));
    loop {
        // At the cap, stop accepting: new connections wait in the listen backlog.
        let permit = tokio::select! {
            permit = connections.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
            _ = stopped.changed() => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Typically EMFILE: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stopped.changed() => break,
        };
        // Small SSE chunks must leave immediately, not wait for Nagle.
        let _ = stream.set_nodelay(true);
        match stream.into_std() {
            Ok(stream) => threads.hand_over(Accepted {
                stream,
                peer,
                permit,
                watcher: graceful.watcher(),
            }),
            Err(e) => tracing::warn!(error = %e, "accepted connection unusable"),
        }
    }
    drop(listener);
    let deadline = Instant::now() + SHUTDOWN_GRACE;
    if tokio::time::timeout_at(deadline.into(), graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("shutdown grace period over; dropping open connections");
    }
    // A guest may still be settling usage after its connection closed; the
    // serving threads (and the guests on them) end when `threads` is dropped.
    if !shared.admission.all_instances_free(deadline).await {
        tracing::warn!("shutdown grace period over; dropping running guests");
    }
}

/// Serves one connection on the serving thread it was handed to.
async fn serve_connection(shared: Arc<Shared>, accepted: Accepted) {
    let Accepted {
        stream,
        peer,
        permit,
        watcher,
    } = accepted;
    // A second handle on the socket, to answer 408 after hyper gives up on a
    // request head (it closes such connections without a word).
    let late_head = stream.try_clone().ok();
    let stream = match tokio::net::TcpStream::from_std(stream) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "accepted connection unusable");
            return;
        }
    };
    let served = Arc::new(AtomicBool::new(false));
    let header_timeout = shared.limits.header_read_timeout;
    let served_in = served.clone();
    let service = service_fn(move |req| {
        let shared = shared.clone();
        served_in.store(true, Ordering::Relaxed);
        async move { Ok::<_, Infallible>(handle(&shared, peer, req).await) }
    });
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .keep_alive(true)
        .serve_connection(TokioIo::new(stream), service);
    match watcher.watch(conn).await {
        // A first request head that never completed: tell the client. An idle
        // keep-alive connection is closed silently, as nginx does.
        Err(e) if e.is_timeout() && !served.load(Ordering::Relaxed) => {
            if let Some(mut socket) = late_head {
                let _ = socket.write(&header_timeout_bytes());
            }
        }
        Err(e) => tracing::debug!(error = %e, "connection ended with an error"),
        Ok(()) => {}
    }
    drop(permit);
}

async fn handle(shared: &Shared, peer: SocketAddr, mut req: Request<Incoming>) -> Response<Body> {
    let started = Instant::now();
    let method = req.method().clone();
    // The path only: query strings and headers may carry credentials.
    let path = req.uri().path().to_string();

    let headers = req.headers_mut();
    headers.remove(CLIENT_ADDR_HEADER);
    let peer = SocketAddr::new(peer.ip().to_canonical(), peer.port());
    headers.insert(
        CLIENT_ADDR_HEADER,
        HeaderValue::from_str(&peer.to_string()).expect("a socket address is a valid header"),
    );
    // wasi-http needs an authority; HTTP/1.0 clients may omit Host.
    if !headers.contains_key(HOST) {
        headers.insert(HOST, HeaderValue::from_static("localhost"));
    }

    let mut org = None;
    let response = match admit_and_run(shared, req, &mut org).await {
        Ok(response) => {
            let code = response
                .headers()
                .get(metrics::ERROR_CODE_HEADER)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            let status = response.status().as_u16();
            metrics::metrics().request(
                org.as_deref().unwrap_or(metrics::NO_ORG),
                status,
                code,
                started,
            );
            response
        }
        Err(e) => {
            if matches!(e, HostError::Gateway | HostError::GuestDeadline) {
                tracing::error!(%method, %path, error = ?e, "gateway component failed");
            }
            let response = e.response();
            let status = response.status().as_u16();
            metrics::metrics().request(
                org.as_deref().unwrap_or(metrics::NO_ORG),
                status,
                e.code(),
                started,
            );
            response
        }
    };
    tracing::debug!(
        %method,
        %path,
        status = response.status().as_u16(),
        micros = started.elapsed().as_micros() as u64,
        "request"
    );
    response
}

/// Admission, then the body, then an instance, then the guest: the order in
/// which a hostile client holds the least.
async fn admit_and_run(
    shared: &Shared,
    req: Request<Incoming>,
    org: &mut Option<Arc<str>>,
) -> Result<Response<Body>, HostError> {
    let mut slot = shared.admission.admit(req.headers()).await?;
    *org = slot.org();
    let prefetched = slot.take_prefetched();
    let (parts, body) = req.into_parts();
    let body = intake::read_body(&parts.headers, body, shared.limits.body_read_timeout).await?;
    let admitted = shared.admission.instance(slot).await?;
    let body = Full::new(body).map_err(wasmtime_wasi_http::Error::from);
    run_guest(
        shared,
        Request::from_parts(parts, body),
        admitted,
        prefetched,
    )
    .await
}

type Guest = JoinHandle<(wasmtime::Result<()>, Store<HostState>)>;

async fn run_guest<B>(
    shared: &Shared,
    req: Request<B>,
    admitted: Admitted,
    prefetched: Prefetched,
) -> Result<Response<Body>, HostError>
where
    B: hyper::body::Body<Data = bytes::Bytes, Error = wasmtime_wasi_http::Error> + Send + 'static,
{
    let failed = |e: &dyn std::fmt::Display| {
        tracing::error!(error = %e, "gateway component failed");
        HostError::Gateway
    };
    let mut store = shared.new_store(prefetched);
    let answered = store.data().budget.answered_flag();
    let (tx, mut rx) = oneshot::channel();
    let req = store
        .data_mut()
        .http()
        .new_incoming_request(Scheme::Http, req)
        .map_err(|e| failed(&format!("{e:#}")))?;
    let out = store
        .data_mut()
        .http()
        .new_response_outparam(tx)
        .map_err(|e| failed(&format!("{e:#}")))?;
    let proxy = shared
        .proxy
        .instantiate_async(&mut store)
        .await
        .map_err(|e| failed(&format!("instantiating: {e:#}")))?;

    // The guest keeps running after it hands over the response head: it writes
    // the body into the stream hyper is reading from, so the body streams. It
    // holds its admission (org slot, instance) until it is done.
    let mut guest: Guest = tokio::spawn(async move {
        let result = proxy
            .wasi_http_incoming_handler()
            .call_handle(&mut store, req, out)
            .await;
        drop(admitted);
        (result, store)
    });
    let head = tokio::select! {
        head = &mut rx => head.ok(),
        joined = &mut guest => {
            // Done before we looked: a head it set is still in the channel.
            let head = rx.try_recv().ok();
            if head.is_none() {
                return Err(settle_failed(&shared.kv, joined).await);
            }
            if let Ok((Err(e), _)) = joined {
                tracing::error!(error = %format!("{e:#}"), "gateway component failed mid-response");
            }
            return head.expect("checked").map_err(|code| failed(&format!("component answered with error code {code:?}")));
        }
    };
    match head {
        Some(Ok(response)) => {
            answered.store(true, Ordering::Relaxed);
            // After the head the request stands as the guest left it: it may have
            // settled usage already, and a provider may bill what it streamed.
            tokio::spawn(async move {
                if let Ok((Err(e), _)) = guest.await {
                    tracing::error!(error = %format!("{e:#}"), "gateway component failed mid-response");
                }
            });
            Ok(response)
        }
        Some(Err(code)) => {
            let _ = guest.await;
            Err(failed(&format!(
                "component answered with error code {code:?}"
            )))
        }
        None => Err(settle_failed(&shared.kv, guest.await).await),
    }
}

/// A guest that ended without a response head: if it trapped or was
/// interrupted, takes its counter increments back out unless an upstream may
/// have seen the request (then its reservation stands as the charge: never less
/// than a provider may bill).
async fn settle_failed(
    kv: &KvHost,
    joined: Result<(wasmtime::Result<()>, Store<HostState>), tokio::task::JoinError>,
) -> HostError {
    let (result, mut store) = match joined {
        Ok(j) => j,
        Err(e) => {
            tracing::error!(error = %e, "gateway component task failed");
            return HostError::Gateway;
        }
    };
    let Err(e) = result else {
        tracing::error!("gateway component returned without setting a response");
        return HostError::Gateway;
    };
    let deadline = e.downcast_ref::<DeadlineExceeded>().is_some();
    tracing::error!(error = %format!("{e:#}"), "gateway component failed before answering");
    let state = store.data_mut();
    if state.hooks.may_have_reached_upstream() {
        tracing::warn!("an upstream may have served the request: its reservation stands");
    } else {
        match std::mem::take(&mut state.journal).roll_back(kv.kv()).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(counters = n, "released the failed request's counters"),
            Err(e) => {
                tracing::error!(error = %e, "could not release the failed request's counters")
            }
        }
    }
    if deadline {
        HostError::GuestDeadline
    } else {
        HostError::Gateway
    }
}
