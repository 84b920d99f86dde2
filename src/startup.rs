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

use crate::booking::records::Records;
use crate::booking::Booker;
use crate::config::Settings;
use crate::http::{self, AppState};
use crate::minimax::Minimax;
use crate::queue::{Queue, QueueConfig};
use crate::redis_conn::RedisPool;
use crate::sandbox::SandboxState;
use crate::tenants::{TenantInput, TenantStore};
use crate::worker::{JobHandler, WorkerConfig, WorkerPool};
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
    workers: Option<WorkerPool>,
    stop_tx: watch::Sender<bool>,
    stop_rx: watch::Receiver<bool>,
    queue: Queue,
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
        let pool = redis_pool(&settings)?;
        let queue = Queue::new(pool.clone(), queue_config(&settings));
        crate::metrics::init();
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
        let tenants = TenantStore::new(pool.clone(), prefix.clone(), cipher);
        let handler = handler.unwrap_or_else(|| {
            Arc::new(Booker::new(
                tenants.clone(),
                minimax.clone(),
                Records::new(pool.clone(), prefix.clone()),
                Duration::from_secs(settings.queue.order_lock_secs),
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

        let workers = settings.role.runs_workers().then(|| {
            WorkerPool::start(
                queue.clone(),
                handler,
                WorkerConfig::from_settings(&settings),
            )
        });

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
        });

        let address = format!("{}:{}", settings.server.host, settings.server.port);
        let listener = TcpListener::bind(&address)
            .with_context(|| format!("binding {address} (server.host, server.port)"))?;
        let port = listener.local_addr()?.port();
        let body_limit = settings.server.body_limit_bytes;
        let mounted = sandbox;
        let server = actix_web::HttpServer::new(move || {
            let mounted = mounted.clone();
            http::app(
                state.clone(),
                move |cfg: &mut web::ServiceConfig| {
                    if let Some(sb) = mounted.clone() {
                        cfg.service(
                            web::scope("/sandbox")
                                .configure(move |c| crate::sandbox::configure(c, sb)),
                        );
                    }
                },
                body_limit,
            )
        })
        .disable_signals()
        .shutdown_timeout(settings.server.shutdown_timeout)
        .listen(listener)?
        .run();

        if !settings.tenants.is_empty() {
            let seeds = settings.tenants.clone();
            let store = tenants.clone();
            let own = format!("http://127.0.0.1:{port}");
            tokio::spawn(async move { seed_tenants(store, seeds, own).await });
        }

        let (stop_tx, stop_rx) = watch::channel(false);
        tracing::info!(%address, port, role = ?settings.role, "minimax-connector listening");
        Ok(Self {
            port,
            server,
            workers,
            stop_tx,
            stop_rx,
            queue,
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
            workers,
            mut stop_rx,
            ..
        } = self;
        let handle = server.handle();
        let server_task = tokio::spawn(server);
        tokio::select! {
            _ = shutdown_signal() => tracing::info!("signal received, shutting down"),
            _ = stop_rx.changed() => tracing::info!("stop requested, shutting down"),
        }
        // Intake first: no new webhooks are accepted while workers drain.
        handle.stop(true).await;
        let _ = server_task.await;
        if let Some(workers) = workers {
            workers.shutdown().await;
        }
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
