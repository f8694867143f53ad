//! Replicas of one node share its store but each hands out số from its own books
//! (`node::numbering`): two of them choose the same next number, the store takes it for one and
//! refuses it to the other, and that one is renumbered, signed and written again — the clerk
//! sees success and the register has every number once, without gaps. Two `Node`s on one store
//! are two replicas as far as numbering goes (SQLite here, two PostgreSQL stores on one database
//! too when `LIENTHONG_TEST_POSTGRES` is set).

mod common;

use common::*;
use lienthong::config::Config;
use lienthong::edxml::OrganId;
use lienthong::node::compose::Submission;
use lienthong::node::service::Node;
use lienthong::store::{PgStore, SqliteStore, Store};

fn config(dir: &std::path::Path, store: &str) -> Config {
    let text = nodes::node_table("gialai", "127.0.0.1:0", store)
        + &nodes::agency(
            nodes::STTTT,
            "Sở Thông tin và Truyền thông tỉnh Gia Lai",
            "stttt-gialai",
        )
        + &nodes::agency(nodes::SONV, "Sở Nội vụ tỉnh Gia Lai", "sonv-gialai");
    Config::from_toml(&text, dir, &|_| None).unwrap()
}

/// `per_replica` submissions through each of `replicas` at once, none retried by the caller:
/// every one succeeds, and the numbers stored are 1..=n, each once.
async fn submissions_through_replicas_are_numbered_once<S: Store + Clone>(
    replicas: Vec<Node<S>>,
    per_replica: u32,
) {
    let stttt = OrganId::parse_strict(nodes::STTTT).unwrap();
    let sub: Submission = serde_json::from_str(
        r#"{"recipients": ["000.00.04.H21"], "notation": "STTTT-VP", "content": "Nội dung văn bản.",
            "subject": "V/v hai bản sao", "signer": {"full_name": "Trần Thị Bình"}}"#,
    )
    .unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..per_replica {
        for node in &replicas {
            let (node, stttt, sub) = (node.clone(), stttt.clone(), sub.clone());
            let key = (i % 3 == 0).then(|| format!("k-{i}-{}", fastrand::u32(..)));
            tasks.spawn(async move { node.submit(&stttt, "idesk", &sub, vec![], key).await });
        }
    }
    let mut ids = Vec::new();
    while let Some(done) = tasks.join_next().await {
        let submitted = done.unwrap().expect("a replica's submission succeeds");
        ids.push(submitted.message_id);
    }
    let store = &replicas[0].store;
    let mut numbers = Vec::new();
    for id in ids {
        let m = store.outgoing_item(nodes::STTTT, id).await.unwrap().message;
        numbers.push(m.code_number.unwrap().parse::<u32>().unwrap());
    }
    numbers.sort_unstable();
    let n = per_replica * replicas.len() as u32;
    assert_eq!(numbers, (1..=n).collect::<Vec<_>>());
    let year = lienthong::edxml::vietnam_time(time::OffsetDateTime::now_utc()).year();
    assert_eq!(store.last_number(nodes::STTTT, year).await.unwrap(), n);
    store.verify_audit().await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_on_one_sqlite_store_number_without_gaps_or_repeats() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("node.db").display());
    let store = SqliteStore::open(&url).await.unwrap();
    let replicas = (0..2)
        .map(|_| Node::new(config(dir.path(), &url), store.clone()).unwrap())
        .collect();
    submissions_through_replicas_are_numbered_once(replicas, 12).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_on_one_postgres_database_number_without_gaps_or_repeats() {
    let Ok(admin) = std::env::var("LIENTHONG_TEST_POSTGRES") else {
        eprintln!(
            "SKIPPED (no PostgreSQL): two_replicas_on_one_postgres_database_number_without_gaps_or_repeats — set LIENTHONG_TEST_POSTGRES"
        );
        return;
    };
    let name = format!("lt_t_replicas_{}_{}", std::process::id(), fastrand::u32(..));
    let pool = sqlx::PgPool::connect(&admin).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&pool)
        .await
        .unwrap();
    let url = format!("{}/{name}", admin.rsplit_once('/').unwrap().0);
    let dir = tempfile::tempdir().unwrap();
    let mut replicas = Vec::new();
    let mut stores = Vec::new();
    for _ in 0..2 {
        let store = PgStore::open(&url).await.unwrap();
        stores.push(store.clone());
        replicas.push(Node::new(config(dir.path(), &url), store).unwrap());
    }
    submissions_through_replicas_are_numbered_once(replicas, 12).await;
    for s in stores {
        s.close().await;
    }
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
    )))
    .execute(&pool)
    .await
    .unwrap();
}
