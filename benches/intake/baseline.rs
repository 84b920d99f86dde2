//! The baseline server: actix-web, a deadpool-redis pool, one `XADD` of the raw body.

use actix_web::{web, App, HttpResponse, HttpServer};

enum Pool {
    Standalone(deadpool_redis::Pool),
    Cluster(deadpool_redis::cluster::Pool),
}

async fn xadd<C: redis::aio::ConnectionLike>(
    conn: &mut C,
    key: &str,
    body: &[u8],
) -> redis::RedisResult<String> {
    redis::cmd("XADD")
        .arg(key)
        .arg("*")
        .arg("b")
        .arg(body)
        .query_async(conn)
        .await
}

async fn receive(
    path: web::Path<(String, String)>,
    body: web::Bytes,
    pool: web::Data<(Pool, String)>,
) -> HttpResponse {
    let (_, tenant) = path.into_inner();
    let key = format!("{}:{{t:{tenant}}}:baseline", pool.1);
    let id = match &pool.0 {
        Pool::Standalone(p) => match p.get().await {
            Ok(mut c) => xadd(&mut c, &key, &body).await,
            Err(e) => return HttpResponse::ServiceUnavailable().body(e.to_string()),
        },
        Pool::Cluster(p) => match p.get().await {
            Ok(mut c) => xadd(&mut c, &key, &body).await,
            Err(e) => return HttpResponse::ServiceUnavailable().body(e.to_string()),
        },
    };
    match id {
        Ok(id) => {
            HttpResponse::Accepted().json(serde_json::json!({"status": "accepted", "id": id}))
        }
        Err(e) => HttpResponse::ServiceUnavailable().body(e.to_string()),
    }
}

pub fn run(spec: &str) {
    let port: u16 = std::env::var("INTAKE_BENCH_PORT").unwrap().parse().unwrap();
    let prefix = std::env::var("INTAKE_BENCH_PREFIX").unwrap();
    let (mode, urls) = spec.split_once(' ').unwrap();
    let pool_cfg = deadpool_redis::PoolConfig::new(32);
    let runtime = Some(deadpool_redis::Runtime::Tokio1);
    let pool = if mode == "cluster" {
        let mut cfg = deadpool_redis::cluster::Config::from_urls(
            urls.split(',').map(str::to_owned).collect::<Vec<_>>(),
        );
        cfg.pool = Some(pool_cfg);
        Pool::Cluster(cfg.create_pool(runtime).unwrap())
    } else {
        let mut cfg = deadpool_redis::Config::from_url(urls);
        cfg.pool = Some(pool_cfg);
        Pool::Standalone(cfg.create_pool(runtime).unwrap())
    };
    let data = web::Data::new((pool, prefix));
    actix_web::rt::System::new().block_on(async move {
        HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .route("/webhooks/{platform}/{tenant}", web::post().to(receive))
                .route("/", web::get().to(HttpResponse::Ok))
        })
        .bind(("127.0.0.1", port))
        .unwrap()
        .run()
        .await
        .unwrap()
    });
}
