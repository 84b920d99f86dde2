//! Start-up and shutdown: builds the Redis pool, the queue, the worker pool and the
//! HTTP server from [`Settings`], the same path for `main`, the Docker image and tests.
//!
//! Shutdown order (as in Lemmy): stop accepting HTTP requests and let open ones
//! finish, then stop the workers (in-flight jobs finish within a timeout; the rest are
//! reclaimed by lease expiry). Nothing accepted is lost either way.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::web;
use anyhow::Context;
use tokio::sync::watch;

use crate::alerts::Alerts;
use crate::booking::records::Records;
use crate::booking::Booker;
use crate::config::Settings;
use crate::http::{self, AppState};
use crate::minimax::Minimax;
use crate::queue::{Queue, QueueConfig};
use crate::reconcile::Reconciler;
use crate::redis_conn::RedisPool;
use crate::sandbox::SandboxState;
use crate::shop_api::ShopStore;
use crate::tenants::TenantId;
use crate::tenants::{TenantInput, TenantStore};
use crate::worker::{JobHandler, WorkerPool};
use crate::writeback::Dispatch;
use secrecy::ExposeSecret;

/// Creates the Redis pool (single server or cluster, `redis.mode`) with short
/// timeouts, so a Redis outage turns into fast 503s instead of hanging requests.
pub fn redis_pool(settings: &Settings) -> anyhow::Result<RedisPool> {
    RedisPool::new(&settings.redis).context("creating the Redis pool")
}

pub fn queue_config(settings: &Settings) -> QueueConfig {
    QueueConfig {
        prefix: settings.redis.key_prefix.clone(),
        dedupe_ttl_secs: settings.queue.dedupe_ttl,
        per_tenant_concurrency: settings.queue.per_tenant_concurrency,
        done_retention_secs: settings.queue.done_retention,
        payload_retention_secs: settings.queue.payload_retention,
    }
}

/// A built, bound, not yet running service.
pub struct Application {
    port: u16,
    server: Server,
    metrics_server: Option<Server>,
    workers: Option<WorkerPool>,
    stop_tx: watch::Sender<bool>,
    stop_rx: watch::Receiver<bool>,
    queue: Queue,
    /// The reconciliation scheduler (roles that run workers).
    reconcile_task: Option<tokio::task::JoinHandle<()>>,
    /// Demo mode's own redis-server, when it had to start one; stopped last.
    private_redis: Option<crate::private_redis::PrivateRedis>,
}

/// Stops a running [`Application`] as SIGTERM would.
#[derive(Clone)]
pub struct StopHandle(watch::Sender<bool>);

impl StopHandle {
    pub fn stop(&self) {
        let _ = self.0.send(true);
    }
}

impl Application {
    /// Binds `server.host:server.port` (port 0 picks a free port) and starts the
    /// workers if the role asks for them; jobs are booked into Minimax.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        Self::build_with_handler(settings, None).await
    }

    /// As [`Application::build`], with another job handler than the booking (tests).
    pub async fn build_with_handler(
        settings: Settings,
        handler: Option<Arc<dyn JobHandler>>,
    ) -> anyhow::Result<Self> {
        let mut settings = settings;
        // Demo mode only: production never swaps its configured Redis for a private one.
        let private_redis = if settings.demo.enabled
            && !crate::private_redis::redis_answers(&settings.redis.url)
        {
            let path = std::env::var_os("PATH");
            let r =
                crate::private_redis::PrivateRedis::start(path.as_deref(), &settings.redis.url)?;
            settings.redis.url = r.url();
            Some(r)
        } else {
            None
        };
        let pool = redis_pool(&settings)?;
        let queue = Queue::new(pool.clone(), queue_config(&settings));
        crate::http::scrape::init();
        let prefix = settings.redis.key_prefix.clone();
        let cipher = settings.cipher().context("security.encryption_key")?;
        let mut minimax_settings = settings.minimax.clone();
        if minimax_settings.fingerprint_key.expose_secret()
            == crate::minimax::DEFAULT_FINGERPRINT_KEY
        {
            // A public HMAC key would make the stored fingerprints brute-forceable
            // password hashes; derive a secret one from the at-rest key instead.
            let derived = crate::crypto::derive_key(
                "minimax-connector/fingerprint-key/v1",
                &settings.security.encryption_key,
            );
            minimax_settings.fingerprint_key =
                secrecy::SecretString::from(crate::crypto::hex(&derived));
        }
        let minimax = Minimax::new(
            minimax_settings,
            pool.clone(),
            prefix.clone(),
            cipher.clone(),
        )
        .context("minimax settings")?;
        if settings.security.encryption_key.expose_secret() == crate::config::DEMO_ENCRYPTION_KEY {
            tracing::warn!("using the public demo encryption key: set MMC__SECURITY__ENCRYPTION_KEY in production");
        }
        let shops = ShopStore::new(pool.clone(), prefix.clone(), cipher.clone());
        let tenants = TenantStore::new(pool.clone(), prefix.clone(), cipher);
        let records = Records::new(pool.clone(), prefix.clone());
        let handler = handler.unwrap_or_else(|| {
            let booker = Arc::new(Booker::new(
                tenants.clone(),
                minimax.clone(),
                records.clone(),
                Duration::from_secs(settings.queue.order_lock_secs),
            ));
            Arc::new(Dispatch::new(
                booker,
                queue.clone(),
                shops.clone(),
                records.clone(),
            ))
        });
        let sandbox = settings
            .sandbox
            .enabled
            .then(|| SandboxState::new(settings.sandbox.clone()));
        if sandbox.is_some() {
            tracing::warn!(
                "the embedded Minimax SANDBOX is enabled under /sandbox (not for production)"
            );
        }

        let workers = settings
            .role
            .runs_workers()
            .then(|| WorkerPool::start(queue.clone(), handler, settings.worker_config()));

        let reconciler = Reconciler::new(
            queue.clone(),
            shops,
            tenants.clone(),
            minimax.clone(),
            records,
            settings.reconcile.clone(),
            Alerts::new(&settings.alerts, pool.clone(), prefix.clone()),
            workers.as_ref().map(|w| w.waker()),
        );
        let (stop_tx, stop_rx) = watch::channel(false);
        let reconcile_task = (settings.role.runs_workers() && reconciler.has_work())
            .then(|| reconciler.clone().start(stop_rx.clone()));
        let reconcile_data = web::Data::new(reconciler);
        if settings.role.runs_intake() {
            tokio::spawn(tenants.clone().watch_changes(stop_rx.clone()));
        }

        if settings
            .security
            .admin_tokens
            .iter()
            .any(|t| t.expose_secret() == crate::config::DEMO_ADMIN_TOKEN)
        {
            tracing::warn!("the public demo admin token is accepted: set MMC__SECURITY__ADMIN_TOKENS in production");
        }
        let state = web::Data::new(AppState {
            queue: queue.clone(),
            redis_timeout: Duration::from_millis(settings.redis.timeout_ms),
            worker_heartbeat: workers.as_ref().map(|w| w.heartbeat()),
            worker_poll: Duration::from_millis(settings.worker.poll_interval_ms),
            worker_wake: workers.as_ref().map(|w| w.waker()),
            tenants: tenants.clone(),
            signature_tolerance: Duration::from_secs(settings.intake.signature_tolerance),
            intake: settings.role.runs_intake(),
            admin_tokens: settings.security.admin_tokens.clone(),
            minimax,
            body_timeout: Duration::from_millis(settings.server.body_timeout_ms),
            metrics_token: settings.metrics.token(),
            metrics_on_main: settings.metrics.listen().is_none(),
        });
        if settings.metrics.token().is_none() {
            tracing::info!("/metrics is open (set metrics.token to require a bearer token)");
        }
        crate::http::ui::spawn_sampler(state.clone().into_inner());
        let ui = crate::http::ui::UiConfig {
            sandbox: sandbox.clone(),
            demo_tenant: settings
                .demo
                .enabled
                .then(|| settings.demo.tenant_id.clone()),
        };

        let address = format!("{}:{}", settings.server.host, settings.server.port);
        let listener = TcpListener::bind(&address)
            .with_context(|| format!("binding {address} (server.host, server.port)"))?;
        let port = listener.local_addr()?.port();
        let body_limit = settings.server.body_limit_bytes;
        let http_workers = match settings.server.workers {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        // actix counts connections per worker thread.
        let per_worker = settings
            .server
            .max_connections
            .div_ceil(http_workers)
            .max(1);
        let header_timeout = Duration::from_millis(settings.server.header_timeout_ms);
        let metrics_server = match settings.metrics.listen() {
            Some(address) => {
                let listener = TcpListener::bind(address)
                    .with_context(|| format!("binding {address} (metrics.listen)"))?;
                tracing::info!(%address, "/metrics served on its own address");
                let state = state.clone();
                Some(
                    actix_web::HttpServer::new(move || http::metrics_app(state.clone()))
                        .disable_signals()
                        .workers(1)
                        .client_request_timeout(header_timeout)
                        .max_connections(64)
                        .shutdown_timeout(settings.server.shutdown_timeout)
                        .listen(listener)?
                        .run(),
                )
            }
            None => None,
        };
        // The demo shop (a fake WooCommerce REST API) lives next to the sandbox.
        let mounted = sandbox.map(|sb| (sb, crate::sandbox::demo_shop::DemoShop::default()));
        let server = actix_web::HttpServer::new(move || {
            let mounted = mounted.clone();
            let reconcile_data = reconcile_data.clone();
            let ui = ui.clone();
            http::app(
                state.clone(),
                move |cfg: &mut web::ServiceConfig| {
                    cfg.app_data(reconcile_data.clone());
                    crate::http::ui::configure(cfg, ui.clone());
                    if let Some((sb, shop)) = mounted.clone() {
                        cfg.service(
                            web::scope("/sandbox")
                                .configure(move |c| crate::sandbox::configure(c, sb)),
                        )
                        .service(
                            web::scope("/demo-shop")
                                .configure(move |c| crate::sandbox::demo_shop::configure(c, shop)),
                        );
                    }
                },
                body_limit,
            )
        })
        .disable_signals()
        .workers(http_workers)
        .max_connections(per_worker)
        .client_request_timeout(header_timeout)
        .shutdown_timeout(settings.server.shutdown_timeout)
        .listen(listener)?
        .run();

        if !settings.tenants.is_empty() {
            let seeds = settings.tenants.clone();
            let store = tenants.clone();
            let own = format!("http://127.0.0.1:{port}");
            tokio::spawn(async move { seed_tenants(store, seeds, own).await });
        }

        {
            // Secrets accepted by older versions keep working; the operator is told which.
            let store = tenants.clone();
            tokio::spawn(async move {
                match store.weak_secrets().await {
                    Ok(weak) => {
                        for (tenant, platform, problem) in weak {
                            tracing::warn!(%tenant, %platform, problem, "weak webhook secret: set a new one (PUT or PATCH /admin/tenants/<id>)");
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "cannot check the stored webhook secrets"),
                }
            });
        }
        tracing::info!(%address, port, role = ?settings.role, "minimax-connector listening");
        Ok(Self {
            port,
            server,
            metrics_server,
            workers,
            stop_tx,
            stop_rx,
            queue,
            reconcile_task,
            private_redis,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn queue(&self) -> &Queue {
        &self.queue
    }

    pub fn stop_handle(&self) -> StopHandle {
        StopHandle(self.stop_tx.clone())
    }

    /// Runs until SIGTERM, SIGINT or [`StopHandle::stop`], then shuts down in order.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let Self {
            server,
            metrics_server,
            workers,
            mut stop_rx,
            reconcile_task,
            private_redis,
            ..
        } = self;
        let handle = server.handle();
        let server_task = tokio::spawn(server);
        let metrics = metrics_server.map(|m| (m.handle(), tokio::spawn(m)));
        tokio::select! {
            _ = shutdown_signal() => tracing::info!("signal received, shutting down"),
            _ = stop_rx.changed() => tracing::info!("stop requested, shutting down"),
        }
        // Intake first: no new webhooks are accepted while workers drain.
        handle.stop(true).await;
        let _ = server_task.await;
        if let Some(t) = reconcile_task {
            // A poll cut short resumes from its saved cursor on the next instance.
            t.abort();
        }
        if let Some((handle, task)) = metrics {
            handle.stop(true).await;
            let _ = task.await;
        }
        if let Some(workers) = workers {
            workers.shutdown().await;
        }
        drop(private_redis);
        tracing::info!("stopped");
        Ok(())
    }
}

/// Writes the configured tenants, retrying while Redis is unreachable. `{self}` in a
/// seeded URL stands for this instance (the demo tenant talks to the embedded sandbox).
async fn seed_tenants(store: TenantStore, seeds: Vec<TenantInput>, own: String) {
    for mut seed in seeds {
        let Some(id) = seed.id.clone() else {
            tracing::error!("a tenant in the configuration has no id; skipped");
            continue;
        };
        let Ok(id) = TenantId::parse(id) else {
            tracing::error!("a tenant in the configuration has an invalid id; skipped");
            continue;
        };
        for url in [&mut seed.minimax.api_base, &mut seed.minimax.token_url]
            .into_iter()
            .flatten()
        {
            *url = url.replace("{self}", &own);
        }
        loop {
            let existing = match store.get(&id).await {
                Ok(e) => e,
                Err(e) => {
                    tracing::warn!(tenant = %id, error = %e, "cannot seed tenant yet; retrying");
                    tokio::time::sleep(Duration::from_secs(2)).await;
                    continue;
                }
            };
            match seed.clone().into_tenant(&id, existing.as_ref()) {
                Ok(t) => match store.put(&t).await {
                    Ok(_) => {
                        tracing::info!(tenant = %id, "tenant seeded from configuration");
                        break;
                    }
                    Err(e) => {
                        tracing::warn!(tenant = %id, error = %e, "cannot seed tenant yet; retrying");
                        tokio::time::sleep(Duration::from_secs(2)).await;
                    }
                },
                Err(e) => {
                    tracing::error!(tenant = %id, error = %e, "tenant in the configuration is invalid; skipped");
                    break;
                }
            }
        }
    }
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
