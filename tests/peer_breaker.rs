//! The outbox's per-peer circuit breaker, through the real worker: a peer that is down (a
//! loopback listener that accepts and closes every connection, counting them) sees exactly
//! `retry.breaker_failures` connections; every later attempt is skipped as `PEER_UNAVAILABLE`
//! without touching the network. (Half-open and closing again: `node::outbox`'s unit test, on a
//! clock it controls.)

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::Duration;

use common::nodes::*;
use serde_json::Value;
use tokio::net::TcpListener;

const TOK_OPS: &str = "tok-ops-0123456789abcdef";

#[tokio::test(flavor = "multi_thread")]
async fn the_breaker_opens_after_its_failures_and_keeps_the_peer_untouched() {
    // The dead peer: accepts, counts, closes (the TLS handshake fails: PEER_UNREACHABLE).
    let dead = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead_at = dead.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    tokio::spawn(async move {
        while let Ok((s, _)) = dead.accept().await {
            counter.fetch_add(1, SeqCst);
            drop(s);
        }
    });

    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gl = start(l, |d| {
        config_text(
            "gialai",
            d,
            &gialai_departments(),
            ("nghean", &format!("https://{dead_at}"), NGHEAN),
        ) + &admin_token("ops", TOK_OPS)
            // One delivery at a time, so each outcome is recorded before the next attempt; the
            // breaker opens after two failures and stays open for the whole test.
            + "\n[retry]\ninitial_backoff = \"10ms\"\nmax_backoff = \"20ms\"\n\
               give_up_after = \"1h\"\nbreaker_failures = 2\nbreaker_cooldown = \"1h\"\n\
               in_flight = 1\n"
    })
    .await
    .with_worker();
    let http = ApiClient::new();
    const DOCUMENTS: usize = 4;
    for i in 0..DOCUMENTS {
        let r = http
            .post(gl.url("/api/v1/documents"))
            .bearer_auth(TOK_STTTT)
            .multipart(submission(
                &metadata(&[NGHEAN], &format!("V/v thử {i}")),
                false,
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 202);
    }

    // Until every delivery was tried and at least the two beyond the breaker's failures were
    // skipped (polled, generously: the outcome decides, not the time).
    let mut seen = Value::Null;
    for _ in 0..2400 {
        let r = http
            .get(gl.url(&format!("/admin/v1/deliveries?recipient={NGHEAN}")))
            .bearer_auth(TOK_OPS)
            .send()
            .await
            .unwrap();
        seen = json_of(r).await;
        let items = seen["items"].as_array().unwrap();
        let tried = items
            .iter()
            .filter(|d| d["attempts"].as_u64() >= Some(1))
            .count();
        let skipped = items
            .iter()
            .filter(|d| d["last_error"]["code"] == "PEER_UNAVAILABLE")
            .count();
        if items.len() == DOCUMENTS && tried == DOCUMENTS && skipped >= DOCUMENTS - 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let items = seen["items"].as_array().unwrap();
    let skipped = items
        .iter()
        .filter(|d| d["last_error"]["code"] == "PEER_UNAVAILABLE")
        .count();
    assert!(skipped >= DOCUMENTS - 2, "{seen}");
    // The peer saw exactly the failures that opened the breaker.
    assert_eq!(accepted.load(SeqCst), 2, "{seen}");
    for d in items {
        assert_eq!(d["state"], "retrying", "{seen}");
        let code = d["last_error"]["code"].as_str().unwrap();
        assert!(
            ["PEER_UNREACHABLE", "PEER_UNAVAILABLE"].contains(&code),
            "{seen}"
        );
    }
    gl.shutdown().await;
}
