//! The PostgreSQL store's documents, numbering and packages: what only PostgreSQL has (chunked
//! packages and the cache they are streamed from, two replicas on one database) and the ports'
//! main paths. The whole store suite runs on PostgreSQL too (`LIENTHONG_TEST_BACKEND=postgres`
//! with `tests/store_sqlite.rs`); these need `LIENTHONG_TEST_POSTGRES` (an admin URL, e.g.
//! `postgres://postgres@127.0.0.1:5432/test`) and say loudly that they were skipped without it.

use std::sync::atomic::{AtomicU32, Ordering};

use lienthong::Code;
use lienthong::store::{
    DocumentMeta, InboxFilter, IngestOutcome, NewDelivery, NewIncoming, NewOutgoing, Numbering,
    OutgoingFilter, Page, PgOptions, PgStore, Receipt, SignedPackage, Store,
};
use serde_json::json;
use sqlx::PgPool;

const GIALAI_STTTT: &str = "000.00.05.H21";
const GIALAI_UBND: &str = "000.00.00.H21";
const GIALAI_SOYT: &str = "000.00.11.H21";
const NGHEAN_UBND: &str = "000.00.00.H41";
const NOW: i64 = 1_795_600_800_000;
const MIB: usize = 1024 * 1024;

/// A new database of its own on the test server, dropped by [`Db::drop_db`].
struct Db {
    url: String,
    name: String,
    admin: String,
    raw: PgPool,
    cache: tempfile::TempDir,
}

static N: AtomicU32 = AtomicU32::new(0);

async fn db(test: &str) -> Option<Db> {
    let Ok(admin) = std::env::var("LIENTHONG_TEST_POSTGRES") else {
        eprintln!("SKIPPED (no PostgreSQL): {test} — set LIENTHONG_TEST_POSTGRES");
        return None;
    };
    let name = format!(
        "lt_t_msg_{}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed),
        fastrand::u32(..)
    );
    let pool = PgPool::connect(&admin).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let base = admin.rsplit_once('/').unwrap().0;
    let url = format!("{base}/{name}");
    let raw = PgPool::connect(&url).await.unwrap();
    Some(Db {
        url,
        name,
        admin,
        raw,
        cache: tempfile::tempdir().unwrap(),
    })
}

impl Db {
    async fn store(&self) -> PgStore {
        PgStore::open_with(
            &self.url,
            &PgOptions {
                cache_dir: Some(self.cache.path().to_owned()),
                ..PgOptions::default()
            },
        )
        .await
        .unwrap()
    }

    async fn count(&self, sql: &str) -> i64 {
        sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
            .fetch_one(&self.raw)
            .await
            .unwrap()
    }

    async fn drop_db(self, stores: &[&PgStore]) {
        for s in stores {
            s.close().await;
        }
        self.raw.close().await;
        let pool = PgPool::connect(&self.admin).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        )))
        .execute(&pool)
        .await
        .unwrap();
    }
}

fn package(text: &str) -> SignedPackage {
    SignedPackage {
        bytes: format!("<edXML>{text}</edXML>").into_bytes(),
        signer_subject: Some("CN=Sở Thông tin và Truyền thông tỉnh Gia Lai".into()),
        signer_fingerprint: Some("ab".repeat(32)),
        header_json: json!({ "subject": text }).to_string(),
        signed_content: None,
        channel: None,
    }
}

fn meta(sender: &str, number: &str, notation: &str) -> DocumentMeta {
    DocumentMeta {
        sender: sender.into(),
        document_id: format!("{sender},2026/11/25,{number}/{notation}"),
        business_type: 0,
        code_number: number.into(),
        code_notation: notation.into(),
        code_year: 2026,
        subject: "V/v thử nghiệm liên thông".into(),
    }
}

fn outgoing(number: &str, numbering: Numbering) -> NewOutgoing {
    NewOutgoing {
        document: meta(GIALAI_STTTT, number, "STTTT-CĐS"),
        package: package(&format!("số {number}")),
        deliveries: vec![NewDelivery {
            recipient: NGHEAN_UBND.into(),
            route: "peer:nghean".into(),
        }],
        idempotency_key: None,
        request: None,
        actor: format!("clerk:{GIALAI_STTTT}:lan"),
        numbering,
        from_draft: None,
    }
}

fn incoming(number: &str, text: &str) -> NewIncoming {
    NewIncoming {
        revocation: Vec::new(),
        document: meta(NGHEAN_UBND, number, "UBND-VX"),
        package: package(text),
        local_recipients: vec![GIALAI_UBND.into(), GIALAI_SOYT.into()],
        peer: Some("nghean".into()),
        receipts: [GIALAI_UBND, GIALAI_SOYT]
            .iter()
            .map(|r| format!("receipt for {text} from {r}").into_bytes())
            .collect(),
        actor: "peer:nghean".into(),
        received_sha256: None,
    }
}

/// Bytes that do not repeat, so a chunk out of place changes the hash.
fn noise(len: usize) -> Vec<u8> {
    let mut v = vec![0u8; len];
    fastrand::Rng::with_seed(17).fill(&mut v);
    v
}

#[tokio::test]
async fn documents_are_numbered_submitted_and_listed() {
    let Some(db) = db("documents_are_numbered_submitted_and_listed").await else {
        return;
    };
    let store = db.store().await;
    assert_eq!(store.last_number(GIALAI_STTTT, 2026).await.unwrap(), 0);
    // The first number of a year is 1: 2 is refused as the next, nothing written.
    let e = store
        .submit_outgoing(outgoing("2", Numbering::Next), NOW)
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::StoreUnavailable);
    assert!(
        e.to_string()
            .contains("is no longer the next of the sequence"),
        "{e}"
    );
    let first = store
        .submit_outgoing(outgoing("1", Numbering::Next), NOW)
        .await
        .unwrap();
    assert!(!first.existing);
    assert_eq!(store.last_number(GIALAI_STTTT, 2026).await.unwrap(), 1);
    // A typed number moves the sequence past it; the same số again is NUMBER_TAKEN.
    store
        .submit_outgoing(outgoing("05", Numbering::Given), NOW)
        .await
        .unwrap();
    assert_eq!(store.last_number(GIALAI_STTTT, 2026).await.unwrap(), 5);
    let e = store
        .submit_outgoing(outgoing("5", Numbering::Given), NOW)
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NumberTaken, "{e}");
    assert_eq!(store.last_number(GIALAI_STTTT, 2026).await.unwrap(), 5);
    // An idempotency key answers the first submission again.
    let keyed = || NewOutgoing {
        idempotency_key: Some("k-1".into()),
        ..outgoing("6", Numbering::Next)
    };
    let a = store.submit_outgoing(keyed(), NOW).await.unwrap();
    let b = store.submit_outgoing(keyed(), NOW).await.unwrap();
    assert_eq!((a.message_id, b.existing), (b.message_id, true));
    assert_eq!(a.deliveries, b.deliveries);

    let page = |limit, before| OutgoingFilter {
        since: None,
        until: None,
        page: Page { limit, before },
        ..Default::default()
    };
    let listed = store
        .list_outgoing(GIALAI_STTTT, &page(2, None))
        .await
        .unwrap();
    let ids: Vec<i64> = listed.iter().map(|o| o.message.id).collect();
    assert_eq!(ids.len(), 2);
    assert!(ids[0] > ids[1], "newest first: {ids:?}");
    let rest = store
        .list_outgoing(GIALAI_STTTT, &page(10, Some(ids[1])))
        .await
        .unwrap();
    assert_eq!(rest.len(), 1);
    let item = store
        .outgoing_item(GIALAI_STTTT, first.message_id)
        .await
        .unwrap();
    assert_eq!(item.message.code_number.as_deref(), Some("01"));
    assert_eq!(
        store
            .package_bytes(GIALAI_STTTT, first.message_id)
            .await
            .unwrap(),
        package("số 1").bytes
    );
    assert_eq!(
        store
            .package_bytes(GIALAI_UBND, first.message_id)
            .await
            .unwrap_err()
            .code(),
        Code::NotFound
    );
    assert_eq!(
        store.verify_audit().await.unwrap().unwrap().records,
        3,
        "one record per document stored"
    );
    db.drop_db(&[&store]).await;
}

#[tokio::test]
async fn a_document_received_twice_is_stored_once_and_answered_with_its_receipts() {
    let Some(db) = db("a_document_received_twice_is_stored_once").await else {
        return;
    };
    let store = db.store().await;
    let first = store
        .ingest_incoming(incoming("12", "công văn"), NOW)
        .await
        .unwrap();
    let IngestOutcome::Inserted { message_id } = first else {
        panic!("{first:?}")
    };
    let again = store
        .ingest_incoming(incoming("12", "công văn"), NOW + 1)
        .await
        .unwrap();
    let receipts: Vec<Receipt> = [GIALAI_UBND, GIALAI_SOYT]
        .iter()
        .map(|r| Receipt {
            recipient: (*r).into(),
            bytes: format!("receipt for công văn from {r}").into_bytes(),
        })
        .collect();
    assert_eq!(
        again,
        IngestOutcome::Duplicate {
            message_id,
            receipts
        }
    );
    let e = store
        .ingest_incoming(incoming("12", "khác"), NOW + 2)
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::DuplicateConflict, "{e}");
    assert_eq!(db.count("SELECT count(*) FROM messages").await, 1);
    assert_eq!(db.count("SELECT count(*) FROM inbox").await, 2);

    let filter = |status| InboxFilter {
        status,
        revoked: None,
        since: None,
        until: None,
        page: Page {
            limit: 10,
            before: None,
        },
        awaiting: false,
    };
    let inbox = store.list_inbox(GIALAI_SOYT, &filter(None)).await.unwrap();
    assert_eq!(inbox.len(), 1);
    assert_eq!(inbox[0].message.id, message_id);
    assert_eq!(
        store
            .list_inbox(GIALAI_SOYT, &filter(Some(0)))
            .await
            .unwrap()
            .len(),
        1,
        "0: no status yet"
    );
    assert!(
        store
            .list_inbox(GIALAI_SOYT, &filter(Some(3)))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store
            .inbox_item(GIALAI_UBND, message_id)
            .await
            .unwrap()
            .recipient,
        GIALAI_UBND
    );
    assert_eq!(
        store.package_bytes(GIALAI_UBND, message_id).await.unwrap(),
        package("công văn").bytes
    );
    let found = store
        .find_documents(
            lienthong::store::Direction::In,
            NGHEAN_UBND,
            &meta(NGHEAN_UBND, "12", "UBND-VX").document_id,
        )
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    db.drop_db(&[&store]).await;
}

/// A package of a chunk or more is stored as chunks (its row's bytes empty), read back whole,
/// streamed through the cache (reused the second time), and a damaged chunk is STORE_CORRUPT.
#[tokio::test]
async fn large_packages_are_chunked_and_streamed_through_the_cache() {
    let Some(db) = db("large_packages_are_chunked_and_streamed_through_the_cache").await else {
        return;
    };
    let store = db.store().await;
    let bytes = noise(2 * MIB + 123);
    let mut new = outgoing("1", Numbering::Next);
    new.package.bytes = bytes.clone();
    let sent = store.submit_outgoing(new, NOW).await.unwrap();
    let id = sent.message_id;
    assert_eq!(
        db.count(&format!(
            "SELECT count(*) FROM package_chunks WHERE message_id = {id}"
        ))
        .await,
        3
    );
    assert_eq!(
        db.count(&format!(
            "SELECT octet_length(bytes)::BIGINT FROM messages WHERE id = {id}"
        ))
        .await,
        0
    );
    assert_eq!(store.message_bytes(id).await.unwrap(), bytes);
    assert_eq!(store.package_bytes(GIALAI_STTTT, id).await.unwrap(), bytes);
    let file = store
        .message_file(id)
        .await
        .unwrap()
        .expect("a cached file");
    assert!(file.path.starts_with(db.cache.path()));
    assert_eq!(std::fs::read(&file.path).unwrap(), bytes);
    assert_eq!(file.sha256, store.message(id).await.unwrap().sha256);
    // Reused: the same file, not written again (a marker byte written into it stays).
    let mut marked = bytes.clone();
    marked[0] ^= 1;
    std::fs::write(&file.path, &marked).unwrap();
    let again = store.message_file(id).await.unwrap().unwrap();
    assert_eq!(again.path, file.path);
    assert_eq!(std::fs::read(&again.path).unwrap(), marked);
    // A file of the wrong size is written again.
    std::fs::write(&file.path, b"short").unwrap();
    let again = store.message_file(id).await.unwrap().unwrap();
    assert_eq!(std::fs::read(&again.path).unwrap(), bytes);
    std::fs::remove_file(&again.path).unwrap();
    // A small package is not a file.
    let small = store
        .submit_outgoing(outgoing("2", Numbering::Next), NOW)
        .await
        .unwrap();
    assert!(
        store
            .message_file(small.message_id)
            .await
            .unwrap()
            .is_none()
    );
    // A chunk changed in the database: never handed on.
    sqlx::query("ALTER TABLE package_chunks DISABLE TRIGGER package_chunks_immutable")
        .execute(&db.raw)
        .await
        .unwrap();
    sqlx::query(
        "UPDATE package_chunks SET bytes = set_byte(bytes, 7, get_byte(bytes, 7) # 1)
         WHERE message_id = $1 AND n = 1",
    )
    .bind(id)
    .execute(&db.raw)
    .await
    .unwrap();
    let e = store.message_bytes(id).await.unwrap_err();
    assert_eq!(e.code(), Code::StoreCorrupt, "{e}");
    let e = store.message_file(id).await.unwrap_err();
    assert_eq!(e.code(), Code::StoreCorrupt, "{e}");
    let left: Vec<_> = std::fs::read_dir(db.cache.path()).unwrap().collect();
    assert!(left.is_empty(), "no temporary file left: {left:?}");
    sqlx::query("DELETE FROM package_chunks WHERE message_id = $1 AND n = 2")
        .bind(id)
        .execute(&db.raw)
        .await
        .unwrap();
    let e = store.message_bytes(id).await.unwrap_err();
    assert_eq!(e.code(), Code::StoreCorrupt, "{e}");
    assert!(e.to_string().contains("missing"), "{e}");

    // Received large packages are chunked too.
    let mut big = incoming("7", "lớn");
    big.package.bytes = noise(MIB);
    let IngestOutcome::Inserted { message_id } =
        store.ingest_incoming(big.clone(), NOW).await.unwrap()
    else {
        panic!("not inserted")
    };
    assert_eq!(
        store.message_bytes(message_id).await.unwrap(),
        big.package.bytes
    );
    assert!(matches!(
        store.ingest_incoming(big, NOW).await.unwrap(),
        IngestOutcome::Duplicate { .. }
    ));
    db.drop_db(&[&store]).await;
}

/// Two replicas on one database: the number one took is refused to the other (with the words
/// the node renumbers on), and one package pushed to both at once is stored once, both
/// answering with the same receipts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_share_the_numbering_and_the_deduplication() {
    let Some(db) = db("two_replicas_share_the_numbering_and_the_deduplication").await else {
        return;
    };
    let a = db.store().await;
    let b = db.store().await;
    a.submit_outgoing(outgoing("1", Numbering::Next), NOW)
        .await
        .unwrap();
    let e = b
        .submit_outgoing(outgoing("1", Numbering::Next), NOW)
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::StoreUnavailable);
    assert!(lienthong::node::numbering::sequence_moved(&e), "{e}");
    assert_eq!(b.last_number(GIALAI_STTTT, 2026).await.unwrap(), 1);
    b.submit_outgoing(outgoing("2", Numbering::Next), NOW)
        .await
        .unwrap();

    for round in 0..20 {
        let number = format!("{}", 100 + round);
        let (x, y) = tokio::join!(
            a.ingest_incoming(incoming(&number, "cùng lúc"), NOW),
            b.ingest_incoming(incoming(&number, "cùng lúc"), NOW),
        );
        let (x, y) = (x.unwrap(), y.unwrap());
        let ids = |o: &IngestOutcome| match o {
            IngestOutcome::Inserted { message_id } => (*message_id, true),
            IngestOutcome::Duplicate {
                message_id,
                receipts,
            } => {
                assert_eq!(receipts.len(), 2);
                (*message_id, false)
            }
        };
        let (x, y) = (ids(&x), ids(&y));
        assert_eq!(x.0, y.0, "round {round}: one message");
        assert!(x.1 != y.1, "round {round}: one inserted, one repeat");
    }
    assert_eq!(
        db.count("SELECT count(*) FROM messages WHERE direction = 'in'")
            .await,
        20
    );
    let verdict = a.verify_audit().await.unwrap().unwrap();
    assert_eq!(verdict.records, 22);
    db.drop_db(&[&a, &b]).await;
}
