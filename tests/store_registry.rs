//! The agency registry in the store (the run's backend, `common::store`): set, replace, list, look up by fingerprint, remove,
//! import all or nothing — each change with its audit records in the same transaction, a refused
//! one with none, and the chain verifying throughout.

mod common;

use lienthong::Code;
use lienthong::pki::binding::{Attribute, Rule};
use lienthong::store::{AnyStore, AuditQuery, ImportOutcome, NewRegistryEntry, Store};

/// A code with no registry entry.
const OTHER: &str = "000.00.00.H99";
const STTTT: &str = "000.00.05.H21";
const SONV: &str = "000.00.04.H21";
const UBND: &str = "000.00.00.H21";
/// 2026-11-25 10:00:00 UTC.
const NOW: i64 = 1_795_600_800_000;
const FP_A: &str = "ae967e485fc737bbae3da3576eb6eafd30ac0af8c41018bb0fd94f94e9eecbaf";
const FP_B: &str = "0fef55a16b4b11cf31f5802e4493f0d0a8e2f6e51c49ae2865111b978e2a1378";

fn fp(sha256: &str) -> Rule {
    Rule::Fingerprint {
        sha256: sha256.to_owned(),
        note: None,
    }
}

fn entry(code: &str, rules: Vec<Rule>) -> NewRegistryEntry {
    NewRegistryEntry {
        code: code.to_owned(),
        name: format!("agency {code}"),
        rules,
    }
}

async fn actions(store: &AnyStore) -> Vec<(String, String, String)> {
    store
        .audit_records(&AuditQuery {
            limit: 10_000,
            ..AuditQuery::default()
        })
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.actor, r.action, r.entity_id))
        .collect()
}

async fn chain_ok(store: &AnyStore) {
    let v = store.verify_audit().await.unwrap();
    assert!(v.is_ok(), "{v:?}");
    // And the registry is what the records say (`audit verify`'s cross-check).
    let report = store.verify_store().await.unwrap().unwrap();
    assert!(report.is_clean(), "{:#?}", report.differences);
}

#[tokio::test]
async fn set_replace_list_lookup_and_remove_are_audited() {
    let db = common::store::fresh_db().await;
    let (url, store) = (db.url.clone(), db.store.clone());

    // Fingerprints are normalised (upper case, colons).
    let colons: String = FP_A
        .to_uppercase()
        .as_bytes()
        .chunks(2)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect::<Vec<_>>()
        .join(":");
    let (e, created) = store
        .registry_set(entry(STTTT, vec![fp(&colons)]), "admin:test", NOW)
        .await
        .unwrap();
    assert!(created);
    assert_eq!(e.rules, [fp(FP_A)]);
    assert_eq!((e.added_by.as_str(), e.added_at), ("admin:test", NOW));

    let subject = Rule::Subject {
        issuer_sha256: None,
        issuer: Some("CN=Lienthong TEST Issuing CA, O=Lienthong TEST PKI, C=VN".into()),
        attribute: Attribute::SerialNumber,
        value: STTTT.into(),
        note: Some("renewals".into()),
    };
    let (e, created) = store
        .registry_set(
            entry(STTTT, vec![fp(FP_B), subject.clone()]),
            "admin:other",
            NOW + 1,
        )
        .await
        .unwrap();
    assert!(!created);
    assert_eq!(e.rules, [fp(FP_B), subject]);
    assert_eq!((e.added_by.as_str(), e.added_at), ("admin:test", NOW));
    assert_eq!(
        (e.updated_by.as_str(), e.updated_at),
        ("admin:other", NOW + 1)
    );

    store
        .registry_set(entry(SONV, vec![fp(FP_B)]), "admin:test", NOW + 2)
        .await
        .unwrap();
    // What binding reads in one statement: the rules of the `From` code, and the other codes
    // naming the certificate.
    let stranger = store.registry_binding(OTHER, FP_B).await.unwrap();
    assert!(stranger.rules.is_empty());
    assert_eq!(stranger.fingerprint_registered_for, [SONV, STTTT]);
    let sonv = store.registry_binding(SONV, FP_B).await.unwrap();
    assert_eq!(sonv.rules, vec![fp(FP_B)]);
    assert_eq!(sonv.fingerprint_registered_for, [STTTT]);
    assert!(
        store
            .registry_binding(OTHER, FP_A)
            .await
            .unwrap()
            .fingerprint_registered_for
            .is_empty()
    );
    let codes: Vec<String> = store
        .registry_list()
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.code)
        .collect();
    assert_eq!(codes, [SONV, STTTT]);

    // Refused writes leave nothing, not even an audit record.
    let before = actions(&store).await;
    for (bad, what) in [
        (entry(UBND, vec![]), "rules"),
        (entry(UBND, vec![fp("abc")]), "rules[0].sha256"),
        (entry("", vec![fp(FP_A)]), "code"),
        (entry(UBND, vec![fp(FP_A), fp(FP_A)]), "rules[1]"),
        (
            entry(
                UBND,
                vec![Rule::Subject {
                    issuer_sha256: Some(FP_A.into()),
                    issuer: Some("CN=x".into()),
                    attribute: Attribute::CN,
                    value: "x".into(),
                    note: None,
                }],
            ),
            "rules[0]",
        ),
    ] {
        let e = store
            .registry_set(bad, "admin:test", NOW + 3)
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::ValueInvalid, "{e}");
        assert!(e.to_string().contains(what), "{what}: {e}");
    }
    let e = store
        .registry_remove(UBND, "admin:test", NOW + 3)
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    assert_eq!(actions(&store).await, before);

    store
        .registry_remove(SONV, "admin:test", NOW + 4)
        .await
        .unwrap();
    assert!(store.registry_entry(SONV).await.unwrap().is_none());
    assert_eq!(
        store
            .registry_binding(OTHER, FP_B)
            .await
            .unwrap()
            .fingerprint_registered_for,
        [STTTT]
    );

    let t = |a: &str, e: &str| ("admin:test".to_owned(), a.to_owned(), e.to_owned());
    assert_eq!(
        actions(&store).await,
        [
            t("registry.set", STTTT),
            ("admin:other".into(), "registry.set".into(), STTTT.into()),
            t("registry.set", SONV),
            t("registry.remove", SONV),
        ]
    );
    // The audit detail says which certificates were allowed.
    let records = store
        .audit_records(&AuditQuery {
            limit: 10,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert!(records[1].detail.contains(FP_B), "{}", records[1].detail);
    chain_ok(&store).await;

    // Survives reopening (it is in the file, not in memory).
    store.close().await;
    let store = common::store::open(&url).await;
    assert_eq!(store.registry_list().await.unwrap().len(), 1);
}

#[tokio::test]
async fn import_is_one_transaction_all_or_nothing() {
    let store = common::store::fresh().await;
    store
        .registry_set(entry(UBND, vec![fp(FP_A)]), "admin:test", NOW)
        .await
        .unwrap();
    let before = actions(&store).await;

    // The third entry is bad: nothing of the first two is written.
    let e = store
        .registry_import(
            vec![
                entry(STTTT, vec![fp(FP_A)]),
                entry(SONV, vec![fp(FP_B)]),
                entry(UBND, vec![fp("not hex")]),
            ],
            true,
            "admin:test",
            NOW + 1,
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::ValueInvalid);
    assert!(e.to_string().contains("agency[2].rules[0].sha256"), "{e}");
    // A code listed twice names both positions.
    let e = store
        .registry_import(
            vec![
                entry(STTTT, vec![fp(FP_A)]),
                entry(SONV, vec![fp(FP_B)]),
                entry(STTTT, vec![fp(FP_B)]),
            ],
            false,
            "admin:test",
            NOW + 1,
        )
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains("agency[2].code") && e.to_string().contains("agency[0]"),
        "{e}"
    );
    assert_eq!(actions(&store).await, before);
    let codes: Vec<String> = store
        .registry_list()
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.code)
        .collect();
    assert_eq!(codes, [UBND]);

    // A good one: one add, one replace; then replace_all removes what is not listed.
    let o = store
        .registry_import(
            vec![entry(STTTT, vec![fp(FP_A)]), entry(UBND, vec![fp(FP_B)])],
            false,
            "admin:test",
            NOW + 2,
        )
        .await
        .unwrap();
    assert_eq!(
        o,
        ImportOutcome {
            added: 1,
            replaced: 1,
            removed: 0
        }
    );
    let o = store
        .registry_import(
            vec![entry(SONV, vec![fp(FP_B)])],
            true,
            "admin:test",
            NOW + 3,
        )
        .await
        .unwrap();
    assert_eq!(
        o,
        ImportOutcome {
            added: 1,
            replaced: 0,
            removed: 2
        }
    );
    let codes: Vec<String> = store
        .registry_list()
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.code)
        .collect();
    assert_eq!(codes, [SONV]);
    let after: Vec<String> = actions(&store).await[before.len()..]
        .iter()
        .map(|(_, a, e)| format!("{a} {e}"))
        .collect();
    assert_eq!(
        after,
        [
            format!("registry.set {STTTT}"),
            format!("registry.set {UBND}"),
            "registry.import *".to_owned(),
            format!("registry.remove {UBND}"),
            format!("registry.remove {STTTT}"),
            format!("registry.set {SONV}"),
            "registry.import *".to_owned(),
        ]
    );
    chain_ok(&store).await;
}

fn named(code: &str, name: &str) -> NewRegistryEntry {
    NewRegistryEntry {
        code: code.to_owned(),
        name: name.to_owned(),
        rules: vec![fp(FP_A)],
    }
}

fn codes(hits: &[lienthong::store::RegistryName]) -> Vec<&str> {
    hits.iter().map(|h| h.code.as_str()).collect()
}

#[tokio::test]
async fn search_finds_codes_and_names_without_diacritics_case_or_nfc() {
    use unicode_normalization::UnicodeNormalization as _;
    let store = common::store::fresh().await;
    store
        .registry_import(
            vec![
                named(UBND, "Ủy ban nhân dân tỉnh Gia Lai"),
                named(STTTT, "Sở Thông tin và Truyền thông  tỉnh Gia Lai"),
                named(SONV, "Sở Nội vụ tỉnh Gia Lái"),
                named("000.00.00.H40", "Ủy ban nhân dân tỉnh Nghệ An"),
                named("000.00.12.H40", "Phòng 100% Đất đai_huyện"),
                named("000.00.01.H21", "Văn phòng Sở Y tế"),
            ],
            false,
            "admin:test",
            NOW,
        )
        .await
        .unwrap();

    // A name typed without diacritics or capitals finds both spellings; by code after that.
    let hits = store.registry_search("gia lai", 20).await.unwrap();
    assert_eq!(codes(&hits), [UBND, SONV, STTTT], "{hits:?}");
    assert_eq!(hits[2].name, "Sở Thông tin và Truyền thông  tỉnh Gia Lai");
    // Typed in NFD, with capitals and doubled spaces, the same; runs of space are one.
    let nfd: String = "GIA   LÁI".nfd().collect();
    assert_eq!(
        codes(&store.registry_search(&nfd, 20).await.unwrap()),
        [UBND, SONV, STTTT]
    );
    assert_eq!(
        codes(&store.registry_search("thong  tin va", 20).await.unwrap()),
        [STTTT]
    );
    // đ folds to d.
    assert_eq!(
        codes(&store.registry_search("dat dai", 20).await.unwrap()),
        ["000.00.12.H40"]
    );
    // Names beginning with the query before those containing it.
    let hits = store.registry_search("so", 20).await.unwrap();
    assert_eq!(codes(&hits), [SONV, STTTT, "000.00.01.H21"], "{hits:?}");

    // Codes: a part, any case; a code in full first, then those beginning with it.
    assert_eq!(
        codes(&store.registry_search("h40", 20).await.unwrap()),
        ["000.00.00.H40", "000.00.12.H40"]
    );
    assert_eq!(
        codes(&store.registry_search("000.00.0", 20).await.unwrap()),
        [UBND, "000.00.00.H40", "000.00.01.H21", SONV, STTTT]
    );
    assert_eq!(
        codes(&store.registry_search(SONV, 20).await.unwrap())[0],
        SONV
    );

    // LIKE's wildcards are text, not patterns.
    assert_eq!(
        codes(&store.registry_search("100%", 20).await.unwrap()),
        ["000.00.12.H40"]
    );
    assert_eq!(
        codes(&store.registry_search("%", 20).await.unwrap()),
        ["000.00.12.H40"]
    );
    assert_eq!(
        codes(&store.registry_search("dai_h", 20).await.unwrap()),
        ["000.00.12.H40"]
    );
    assert_eq!(
        codes(&store.registry_search("_", 20).await.unwrap()),
        ["000.00.12.H40"]
    );
    // Limited; nothing for a query that folds to nothing.
    assert_eq!(store.registry_search("000", 2).await.unwrap().len(), 2);
    assert!(store.registry_search("  ", 20).await.unwrap().is_empty());
    assert!(
        store
            .registry_search("quang ninh", 20)
            .await
            .unwrap()
            .is_empty()
    );

    // A renamed entry is found by its new name only.
    store
        .registry_set(named(SONV, "Sở Nội vụ tỉnh Kon Tum"), "admin:test", NOW + 1)
        .await
        .unwrap();
    assert_eq!(
        codes(&store.registry_search("gia lai", 20).await.unwrap()),
        [UBND, STTTT]
    );
    assert_eq!(
        codes(&store.registry_search("kon tum", 20).await.unwrap()),
        [SONV]
    );
    chain_ok(&store).await;
}

/// Runs `sql` on the store at `url` outside the store: rows as an older version left them.
async fn raw(url: &str, sql: &'static str) {
    use sqlx::Connection as _;
    if url.starts_with("postgres") {
        let mut c = sqlx::PgConnection::connect(url).await.unwrap();
        sqlx::raw_sql(sql).execute(&mut c).await.unwrap();
    } else {
        let mut c = sqlx::SqliteConnection::connect(url).await.unwrap();
        sqlx::raw_sql(sql).execute(&mut c).await.unwrap();
    }
}

/// `n` registry rows written as before the folded column (`search_folded` NULL), Vietnamese
/// names with diacritics, one in a thousand in Gia Lai; in one transaction.
async fn insert_unfolded(url: &str, n: u32) {
    use sqlx::Connection as _;
    const PLACES: [&str; 6] = [
        "Nghệ An",
        "Đắk Lắk",
        "Quảng Ngãi",
        "Thừa Thiên Huế",
        "Bình Định",
        "Lâm Đồng",
    ];
    const KINDS: [&str; 4] = [
        "Ủy ban nhân dân xã",
        "Trường Tiểu học",
        "Trạm Y tế phường",
        "Phòng Giáo dục huyện",
    ];
    let rows: Vec<(String, String)> = (0..n)
        .map(|i| {
            let place = if i % 1000 == 7 {
                "Gia Lai"
            } else {
                PLACES[(i % 6) as usize]
            };
            (
                format!(
                    "{:03}.{:02}.{:02}.H{:02}",
                    i / 10_000,
                    (i / 100) % 100,
                    i % 100,
                    30 + i % 7
                ),
                format!("{} số {i} tỉnh {place}", KINDS[(i % 4) as usize]),
            )
        })
        .collect();
    if url.starts_with("postgres") {
        let mut c = sqlx::PgConnection::connect(url).await.unwrap();
        let (codes, names): (Vec<String>, Vec<String>) = rows.into_iter().unzip();
        sqlx::query(
            "INSERT INTO agency_registry (code, name, added_by, added_at, updated_by, updated_at)
             SELECT c, n, 'seed', 0, 'seed', 0 FROM UNNEST($1::text[], $2::text[]) AS v (c, n)",
        )
        .bind(&codes)
        .bind(&names)
        .execute(&mut c)
        .await
        .unwrap();
    } else {
        let mut c = sqlx::SqliteConnection::connect(url).await.unwrap();
        let mut tx = c.begin().await.unwrap();
        for (code, name) in &rows {
            sqlx::query(
                "INSERT INTO agency_registry (code, name, added_by, added_at, updated_by, updated_at)
                 VALUES (?, ?, 'seed', 0, 'seed', 0)",
            )
            .bind(code)
            .bind(name)
            .execute(&mut *tx)
            .await
            .unwrap();
        }
        tx.commit().await.unwrap();
    }
}

#[tokio::test]
async fn rows_without_a_folded_name_are_filled_when_the_store_opens() {
    let db = common::store::fresh_db().await;
    let url = db.url.clone();
    db.store
        .registry_set(named(SONV, "Sở Nội vụ tỉnh Gia Lái"), "admin:test", NOW)
        .await
        .unwrap();
    insert_unfolded(&url, 3).await;
    raw(&url, "UPDATE agency_registry SET search_folded = NULL").await;
    // Until filled, such a row is not found at all.
    for q in ["truong tieu hoc", "01.h31", "gia lai"] {
        assert!(
            db.store.registry_search(q, 20).await.unwrap().is_empty(),
            "{q}"
        );
    }
    drop(db.store);
    let store = common::store::open(&url).await;
    assert_eq!(
        codes(&store.registry_search("gia lai", 20).await.unwrap()),
        [SONV]
    );
    assert_eq!(
        codes(&store.registry_search("truong tieu hoc", 20).await.unwrap()),
        ["000.00.01.H31"]
    );
    assert_eq!(
        codes(
            &store
                .registry_search("uy ban nhan dan xa", 20)
                .await
                .unwrap()
        ),
        ["000.00.00.H30"]
    );
    assert_eq!(
        codes(&store.registry_search("01.h31", 20).await.unwrap()),
        ["000.00.01.H31"]
    );
    drop(db.dir);
}

/// A province's registry: 100,000 entries written as an older version left them, filled when
/// the store opens, then searched by name and by code. Prints the times (the README's figure);
/// fails only when a search takes over a second (a search that reads every row's rules, or
/// folds in SQL row by row, would).
#[tokio::test]
async fn search_over_100_000_entries_is_fast() {
    const N: u32 = 100_000;
    let db = common::store::fresh_db().await;
    let url = db.url.clone();
    insert_unfolded(&url, N).await;
    drop(db.store);
    let t = std::time::Instant::now();
    let store = common::store::open(&url).await;
    let fill = t.elapsed();
    let backend = if url.starts_with("postgres") {
        "postgres"
    } else {
        "sqlite"
    };
    for (query, want) in [
        ("gia lai", 20usize),
        ("tram y te phuong so 5006 tinh", 1),
        ("000.05", 20),
        ("h36", 20),
        ("khong co dau", 0),
    ] {
        let hits = store.registry_search(query, 20).await.unwrap();
        assert_eq!(hits.len(), want, "{query}: {hits:?}");
        let t = std::time::Instant::now();
        const RUNS: u32 = 5;
        for _ in 0..RUNS {
            store.registry_search(query, 20).await.unwrap();
        }
        let each = t.elapsed() / RUNS;
        eprintln!("registry_search({query:?}) over {N} entries on {backend}: {each:?}");
        assert!(
            each < std::time::Duration::from_secs(1),
            "{query}: {each:?}"
        );
    }
    assert!(
        store.registry_search("gia lai", 20).await.unwrap()[0]
            .name
            .ends_with("tỉnh Gia Lai")
    );
    eprintln!("filling {N} folded names when the store opened on {backend}: {fill:?}");
    drop(db.dir);
}
