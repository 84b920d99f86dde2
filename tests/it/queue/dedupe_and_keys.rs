//! Atomic dedupe under concurrent delivery, tenant id checks and the key layout
//! (prefix and per-tenant hash tag).

use super::*;
use crate::helpers::tid;

#[tokio::test]
async fn same_dedupe_key_from_50_concurrent_tasks_yields_one_job() {
    let q = helpers::queue(&helpers::unique_prefix("dedupe"));
    let mut tasks = Vec::new();
    for i in 0..50 {
        let q = q.clone();
        tasks.push(tokio::spawn(async move {
            q.enqueue(
                &tid("shop-a"),
                Some("order-1:paid"),
                &format!("{{\"n\":{i}}}"),
                None,
            )
            .await
            .unwrap()
        }));
    }
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.unwrap());
    }
    let created: Vec<_> = results.iter().filter(|r| r.created).collect();
    assert_eq!(created.len(), 1, "exactly one enqueue creates the job");
    assert!(
        results.iter().all(|r| r.id == created[0].id),
        "all name the same job"
    );
    let counts = q.counts(&tid("shop-a")).await.unwrap();
    assert_eq!(counts.queued, 1);
    // A different key is a different job.
    let other = q
        .enqueue(&tid("shop-a"), Some("order-2:paid"), "{}", None)
        .await
        .unwrap();
    assert!(other.created);
    assert_ne!(other.id, created[0].id);
}

/// The queue takes a `TenantId`, so an id that would break a key (a `}` ends the hash
/// tag, a space or an empty id) cannot reach it: it fails to parse at the edge.
#[test]
fn invalid_tenant_ids_cannot_be_built_for_the_queue() {
    for bad in ["", "a}b", "x y", &"a".repeat(65)] {
        assert!(
            minimax_connector::tenants::TenantId::parse(bad).is_err(),
            "{bad:?}"
        );
    }
    assert!(minimax_connector::tenants::TenantId::parse("shop-1_A").is_ok());
}

#[tokio::test]
async fn keys_carry_the_prefix_and_a_per_tenant_hash_tag() {
    let prefix = helpers::unique_prefix("keys");
    let q = helpers::queue(&prefix);
    q.enqueue(&tid("shop-h"), Some("dk"), "{}", None)
        .await
        .unwrap();
    let Claim::Job(j) = q.claim(&tid("shop-h"), 10_000).await.unwrap() else {
        panic!()
    };
    q.finish(&j, 0, &Finish::Dead { reason: "x".into() })
        .await
        .unwrap();
    let mut conn = q.pool().get().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(keys.len() >= 5, "{keys:?}");
    let tenant_keys: Vec<_> = keys.iter().filter(|k| k.contains("{t:shop-h}")).collect();
    // Everything except the two global indexes carries the tenant's hash tag.
    assert_eq!(tenant_keys.len(), keys.len() - 2, "{keys:?}");
    assert!(keys.contains(&format!("{prefix}:tenants")));
    assert!(keys.contains(&format!("{prefix}:active")));
    for k in tenant_keys {
        assert!(k.starts_with(&format!("{prefix}:{{t:shop-h}}:")), "{k}");
    }
}

#[tokio::test]
async fn the_sweep_restores_a_lost_tenant_registration_from_the_tenant_store() {
    let prefix = helpers::unique_prefix("sweep");
    let q = helpers::queue(&prefix);
    let settings = helpers::settings_for(&helpers::redis_url(), &prefix);
    helpers::put_tenant(
        &settings,
        "shop-lost",
        helpers::tenant_body(helpers::SECRET),
    )
    .await;
    helpers::put_tenant(
        &settings,
        "shop-idle",
        helpers::tenant_body(helpers::SECRET),
    )
    .await;
    let job = q
        .enqueue(&tid("shop-lost"), None, "{}", None)
        .await
        .unwrap();
    assert!(job.created);
    // The registration is lost (on a cluster it is a separate command that can fail).
    let mut conn = q.pool().get().await.unwrap();
    let _: () = redis::cmd("SREM")
        .arg(format!("{prefix}:tenants"))
        .arg("shop-lost")
        .query_async(&mut conn)
        .await
        .unwrap();
    let _: () = redis::cmd("ZREM")
        .arg(format!("{prefix}:active"))
        .arg("shop-lost")
        .query_async(&mut conn)
        .await
        .unwrap();
    let due = q
        .due_tenants(Utc::now().timestamp_millis(), 100)
        .await
        .unwrap();
    assert!(!due.contains(&tid("shop-lost")), "{due:?}");

    assert_eq!(q.sweep().await.unwrap(), 2);
    let mut tenants = q.tenants().await.unwrap();
    tenants.sort();
    assert_eq!(tenants, ["shop-idle", "shop-lost"]);
    let due = q
        .due_tenants(Utc::now().timestamp_millis(), 100)
        .await
        .unwrap();
    assert!(due.contains(&tid("shop-lost")), "{due:?}");
    match q.claim(&tid("shop-lost"), 5_000).await.unwrap() {
        Claim::Job(c) => assert_eq!(c.id, job.id),
        other => panic!("the queued job is found again: {other:?}"),
    }
}
