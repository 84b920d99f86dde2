//! Slow clients: stalled connections and trickled bodies are cut at the deadline, the
//! connection cap holds.

use super::*;

/// A raw connection that sent part of a request, then stalls or trickles.
async fn stalled(port: u16, kind: usize) -> tokio::net::TcpStream {
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let path = format!("/webhooks/woocommerce/{TENANT}");
    let head = match kind % 3 {
        // Headers never finish.
        0 => format!("POST {path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"),
        // Headers done, the announced body never comes.
        1 => format!(
            "POST {path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100000\r\n\r\n{{\"id\":"
        ),
        // Chunked, one small chunk, then nothing.
        _ => format!(
            "POST {path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n2\r\n{{\"\r\n"
        ),
    };
    s.write_all(head.as_bytes()).await.unwrap();
    s
}

/// Reads until the server closes the connection; what it answered first.
async fn until_closed(mut s: tokio::net::TcpStream, within: Duration) -> Option<String> {
    let mut out = Vec::new();
    let mut buf = [0u8; 1024];
    let read = async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    };
    tokio::time::timeout(within, read).await.ok()?;
    Some(String::from_utf8_lossy(&out).into_owned())
}

#[tokio::test]
async fn two_hundred_stalled_connections_do_not_delay_a_webhook_and_are_cut_at_the_deadline() {
    let (app, _) = intake_app(|s| {
        s.server.header_timeout_ms = 1500;
        s.server.body_timeout_ms = 1500;
    })
    .await;
    let port: u16 = app.base.rsplit(':').next().unwrap().parse().unwrap();
    let mut conns = Vec::new();
    for i in 0..200 {
        conns.push(stalled(port, i).await);
    }
    let started = Instant::now();

    // Meanwhile a normal webhook is answered at once.
    let client = reqwest::Client::new();
    let body = helpers::fixture_body("woocommerce", "order.json");
    let h = helpers::reqwest_headers(&helpers::woo_headers(
        "order.updated",
        &body,
        helpers::SECRET,
    ));
    let sent = Instant::now();
    let (s, text) = send(
        client
            .post(app.url(&format!("/webhooks/woocommerce/{TENANT}")))
            .headers(h)
            .body(body),
    )
    .await;
    let answered_in = sent.elapsed();
    assert_eq!(s, 202, "{text}");
    assert!(
        answered_in < Duration::from_secs(1),
        "answered in {answered_in:?} with 200 stalled connections"
    );
    println!("normal webhook answered in {answered_in:?} next to 200 stalled connections");

    // Every stalled connection is closed by the server after the deadline; those whose
    // head was complete got a JSON 408 first.
    let results = futures::future::join_all(
        conns
            .into_iter()
            .map(|c| until_closed(c, Duration::from_secs(30))),
    )
    .await;
    let closed_after = started.elapsed();
    for (i, r) in results.iter().enumerate() {
        let answer = r
            .as_ref()
            .unwrap_or_else(|| panic!("connection {i} still open"));
        if i % 3 != 0 {
            assert!(answer.starts_with("HTTP/1.1 408"), "{i}: {answer}");
            assert!(answer.contains("\"error\":\"timeout\""), "{i}: {answer}");
        }
    }
    assert!(
        closed_after >= Duration::from_millis(1400),
        "not before the deadline ({closed_after:?})"
    );
    println!("200 stalled connections closed after {closed_after:?} (deadline 1.5 s)");
    assert_eq!(jobs(&app).await, 1, "only the normal webhook");
}

#[tokio::test]
async fn a_trickled_body_is_cut_at_the_deadline() {
    let (app, _) = intake_app(|s| s.server.body_timeout_ms = 1000).await;
    let port: u16 = app.base.rsplit(':').next().unwrap().parse().unwrap();
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let head = format!(
        "POST /webhooks/woocommerce/{TENANT} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100000\r\n\r\n"
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let started = Instant::now();
    let (mut rd, mut wr) = s.into_split();
    // One byte every 100 ms: always some progress, never done.
    let writer = tokio::spawn(async move {
        for _ in 0..600 {
            if wr.write_all(b" ").await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let mut out = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(30), rd.read_to_end(&mut out)).await;
    assert!(read.is_ok(), "the trickling connection was not cut");
    let answer = String::from_utf8_lossy(&out);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(started.elapsed() < Duration::from_secs(30));
    writer.abort();
}

#[tokio::test]
async fn the_connection_cap_holds_until_stalled_connections_are_cut() {
    let (app, _) = intake_app(|s| {
        s.server.workers = 1;
        s.server.max_connections = 4;
        s.server.header_timeout_ms = 1500;
    })
    .await;
    let port: u16 = app.base.rsplit(':').next().unwrap().parse().unwrap();
    let mut conns = Vec::new();
    for _ in 0..4 {
        conns.push(stalled(port, 0).await);
    }
    // Let the server accept all four before the fifth arrives.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    let (s, _) = send(reqwest::Client::new().get(app.url("/health/live"))).await;
    let waited = started.elapsed();
    assert_eq!(s, 200);
    // The fifth was only served once a slot was free, i.e. after the head deadline cut
    // the stalled ones (a lower bound: a loaded machine only makes it later).
    assert!(
        waited >= Duration::from_millis(1000),
        "served after {waited:?}, before the cap was freed"
    );
    for c in conns {
        assert!(until_closed(c, Duration::from_secs(30)).await.is_some());
    }
}
