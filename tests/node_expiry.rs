//! Certificate expiry: the node refuses to sign with an expired agency certificate, and reports
//! every anchor, agency and node TLS certificate with the days left (warning within 60 days).

mod common;

use common::*;
use lienthong::Code;
use lienthong::config::Config;
use lienthong::edxml::OrganId;
use lienthong::node::compose::Submission;
use lienthong::node::expiry::{self, WARN_DAYS};
use lienthong::node::service::{Node, now_ms};

#[tokio::test]
async fn an_expired_agency_certificate_signs_nothing_and_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki("");
    let pki = pki.display();
    let text = format!(
        r#"
[node]
name = "gialai"
listen = "127.0.0.1:0"
store = "sqlite://{db}"
trust = ["{pki}/root-ca.cert.pem"]
[tls]
cert = "{pki}/node-gialai.cert.pem"
key = "{pki}/node-gialai.key.pem"
[[agency]]
code = "000.00.05.H21"
name = "Sở Thông tin và Truyền thông tỉnh Gia Lai"
key = "{pki}/stttt-gialai.key.pem"
cert = "{pki}/stttt-gialai.cert.pem"
[[agency]]
code = "000.00.09.H21"
name = "Đơn vị có chứng thư hết hạn"
key = "{expired_key}"
cert = "{expired_cert}"
"#,
        db = dir.path().join("node.db").display(),
        expired_key = common::pki("expired.key.pem").display(),
        expired_cert = common::pki("expired.cert.pem").display(),
    );
    let mut config = Config::from_toml(&text, dir.path(), &|_| None).unwrap();
    let store = common::store::node_store(&mut config).await;
    let node = Node::new(config, store).unwrap();

    let sub: Submission = serde_json::from_str(
        r#"{"recipients": ["000.00.05.H21"], "notation": "X-VP", "subject": "V/v thử"}"#,
    )
    .unwrap();
    let expired = OrganId::parse_strict("000.00.09.H21").unwrap();
    let e = node
        .submit(&expired, "idesk", &sub, vec![], None)
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::KeyInvalid, "{e}");
    assert!(e.to_string().contains("expired"), "{e}");

    let report = expiry::report(
        &node.trust,
        &node.keys,
        node.tls_certificate.as_deref(),
        now_ms() / 1000,
    );
    assert_eq!(report.len(), 4, "{report:?}");
    let tls = report.iter().find(|c| c.role == "node").unwrap();
    assert!(
        tls.subject.contains("gialai.node.lienthong.test"),
        "{tls:?}"
    );
    assert!(!tls.warning, "{tls:?}");
    let old = report
        .iter()
        .find(|c| c.agency.as_deref() == Some("000.00.09.H21"))
        .unwrap();
    assert!(old.warning && old.days_left < 0, "{old:?}");
    let good = report
        .iter()
        .find(|c| c.agency.as_deref() == Some("000.00.05.H21"))
        .unwrap();
    assert!(!good.warning && good.days_left > WARN_DAYS, "{good:?}");
    let anchor = report.iter().find(|c| c.role == "anchor").unwrap();
    // One form for names everywhere (admin API, metrics, verify, inspect): RFC 4514 order.
    assert_eq!(
        anchor.subject, "CN=Lienthong TEST Root CA, O=Lienthong TEST PKI, C=VN",
        "{anchor:?}"
    );
    assert!(
        tls.subject.starts_with("CN=") && tls.subject.ends_with("C=VN"),
        "{tls:?}"
    );
    // Soonest first.
    assert_eq!(report[0].agency.as_deref(), Some("000.00.09.H21"));
    // Sixty days before the good one expires, it is flagged too.
    let later = good.not_after - (WARN_DAYS - 1) * 86_400;
    let flagged = expiry::report(
        &node.trust,
        &node.keys,
        node.tls_certificate.as_deref(),
        later,
    );
    assert!(
        flagged
            .iter()
            .find(|c| c.agency.as_deref() == Some("000.00.05.H21"))
            .unwrap()
            .warning
    );
}
