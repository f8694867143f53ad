//! The clerk API's request parsers: a multipart/form-data body (boundary `lienthong-fuzz`) read
//! by `http::clerk::follow_up_parts` (the `update`/`replace` reader, through axum's `Multipart`
//! as the handler gets it), the `metadata` part by `http::clerk::parse_metadata` as a `Submission`,
//! checked by `node::validate::submission` and composed by `node::compose::compose`.
//!
//! Input: a flag byte (bit 0: a `reason` part is allowed), then the body. Invariant: what the
//! validation and compose accept (the node's checks before a submission is numbered) writes,
//! and reads back under the strict reader without warnings, every file unchanged (the node never
//! numbers and signs a package that the writer or a recipient's reader would refuse or alter).
#![no_main]
use std::path::Path;
use std::sync::OnceLock;

use axum::body::Body;
use axum::extract::{FromRequest, Multipart, Request};
use libfuzzer_sys::fuzz_target;
use lienthong::config::Config;
use lienthong::edxml::{Package, ReadOptions, read, samples, write_document};
use lienthong::http::clerk::{follow_up_parts, parse_metadata};
use lienthong::node::compose::{Submission, compose};
use lienthong::node::validate;
use time::macros::datetime;

/// Two agencies served here (the sender and Nghệ An) and one peer serving all of Hà Nội
/// (`…T00` and below): recipients route locally, to the peer, or nowhere.
const CONFIG: &str = r#"
[node]
name = "fuzz"
listen = "127.0.0.1:0"
store = "sqlite://unused.db"
trust = ["root-ca.cert.pem"]
dev_plain_http = true
[[agency]]
code = "000.00.05.H21"
name = "Sở Thông tin và Truyền thông tỉnh Gia Lai"
key = "stttt-gialai.key.pem"
cert = "stttt-gialai.cert.pem"
[[agency]]
code = "000.00.00.H41"
name = "Ủy ban nhân dân tỉnh Nghệ An"
key = "stttt-gialai.key.pem"
cert = "stttt-gialai.cert.pem"
[[peer]]
name = "hanoi"
url = "https://127.0.0.1:1"
serves = ["000.00.00.T00"]
pin_sha256 = ["0000000000000000000000000000000000000000000000000000000000000000"]
"#;

fn config() -> &'static Config {
    static CONFIG_: OnceLock<Config> = OnceLock::new();
    CONFIG_.get_or_init(|| {
        Config::from_toml(CONFIG, Path::new("/nonexistent"), &|_| None).expect("config parses")
    })
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime")
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, body)) = data.split_first() else {
        return;
    };
    let with_reason = flags & 1 == 1;
    let config = config();
    let req = Request::builder()
        .method("POST")
        .header(
            "content-type",
            "multipart/form-data; boundary=lienthong-fuzz",
        )
        .body(Body::from(body.to_vec()))
        .expect("a request");
    runtime().block_on(async {
        let mp = Multipart::from_request(req, &())
            .await
            .expect("the content type is multipart with a boundary");
        let Ok(parts) = follow_up_parts(mp, &config.limits, with_reason, "files").await else {
            return;
        };
        let Some(meta) = parts.metadata else { return };
        let Ok(sub) = parse_metadata::<Submission>(&meta) else {
            return;
        };
        if validate::submission(&sub, &parts.files, config).is_err() {
            return;
        }
        let number = sub.number.unwrap_or(1);
        let now = datetime!(2026-03-15 09:30:00);
        // Dates are checked by compose (the node runs both before numbering).
        let Ok(doc) = compose(&sub, &samples::sender(), number, parts.files, now, &|_| {
            None
        }) else {
            return;
        };
        let bytes =
            write_document(&doc).unwrap_or_else(|e| panic!("composed but does not write: {e}"));
        let strict = ReadOptions {
            strict: true,
            ..ReadOptions::default()
        };
        let back = read(&bytes, &strict).unwrap_or_else(|e| {
            panic!(
                "written but does not read back: {e}\n{}",
                String::from_utf8_lossy(&bytes)
            )
        });
        let Package::Document(back) = back else {
            panic!("a composed document reads back as a status");
        };
        // The one warning a composed package may carry is the clerk's own choice: no signer
        // named (the reader says so of every such document, whoever wrote it).
        let no_signer = doc.header.signer_info.full_name.trim().is_empty();
        assert!(
            back.warnings.iter().all(|w| no_signer
                && w.kind == lienthong::edxml::WarningKind::EmptyElement
                && w.path.ends_with("/SignerInfo")),
            "the composed package reads with warnings: {:?}",
            back.warnings
        );
        assert_eq!(back.attachments.len(), doc.attachments.len());
        for (sent, got) in doc.attachments.iter().zip(&back.attachments) {
            assert!(sent.data == got.data, "{:?} arrives changed", sent.name);
        }
    });
});
