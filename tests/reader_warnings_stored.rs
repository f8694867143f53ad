//! What the reader tolerated travels with the message: a received package's warnings are
//! stored with it (the parsed package, `header_json`) and served by the clerk API in the
//! document's `header.warnings`, each with its kind, path and message.

mod common;

use common::corpus::*;
use common::nodes::*;
use serde_json::Value;
use tokio::net::TcpListener;

#[tokio::test(flavor = "multi_thread")]
async fn a_received_packages_warnings_are_stored_and_served_to_the_clerk() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gl_url = format!("http://{}", reserve_port());
    let na = start(listener, |d| {
        config_text(
            "nghean",
            d,
            &nghean_agencies(),
            ("gialai", &gl_url, UBND_GL),
        )
    })
    .await;
    // Bkav writes the promulgation date day first.
    let quirky = good().replacen(
        "<PromulgationDate>2026/11/25</PromulgationDate>",
        "<PromulgationDate>25/11/2026</PromulgationDate>",
        1,
    );
    assert_ne!(quirky, good());
    let http = ApiClient::new();
    let (status, body) = push_as(&http, &na, "gialai", sign(&quirky).as_bytes()).await;
    assert_eq!(status, 200, "{body}");

    let r = http
        .get(na.url("/api/v1/inbox?per_page=100"))
        .bearer_auth(TOK_NGHEAN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let items = json_of(r).await["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 1, "{items:?}");
    let id = items[0]["id"].as_i64().unwrap();
    let r = http
        .get(na.url(&format!("/api/v1/inbox/{id}")))
        .bearer_auth(TOK_NGHEAN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let item = json_of(r).await;
    let warnings: &Vec<Value> = item["header"]["warnings"]
        .as_array()
        .unwrap_or_else(|| panic!("no header.warnings: {item}"));
    let w = warnings
        .iter()
        .find(|w| w["kind"] == "non_canonical_value")
        .unwrap_or_else(|| panic!("{warnings:?}"));
    assert_eq!(
        w["path"],
        "edXMLEnvelope/edXMLHeader/MessageHeader/PromulgationInfo/PromulgationDate"
    );
    assert!(w["message"].as_str().unwrap().contains("dd/MM/yyyy"), "{w}");
    // The date itself was read as what it says.
    assert_eq!(
        item["header"]["header"]["promulgation_info"]["date"],
        "2026/11/25"
    );
    na.shutdown().await;
}
