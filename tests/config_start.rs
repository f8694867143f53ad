//! `lienthong serve` checks everything before it creates anything: a configuration problem —
//! a file it names that is missing, a port that is taken, a second node on the store — is one
//! line naming the file, line, column and key, exits 3 and leaves no store behind; the store's
//! lock keeps a second node off a running node's store. Real binary, real files, real ports.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use common::nodes::*;
use common::openapi::ApiClient;
use common::pki;
use rustls_pki_types::pem::PemObject;

/// A development-free node configuration in `dir` (mutual TLS, one peer), its store `node.db`
/// in `dir`, created by `serve` on first start.
fn config(dir: &Path) -> String {
    config_text(
        "gialai",
        dir,
        &gialai_departments(),
        ("nghean", "http://127.0.0.1:9", NGHEAN),
    )
    .replace("?mode=rwc", "")
}

/// `text` with the first line starting `key = ` replaced by `key = value`, and that line's
/// 1-based number.
fn set(text: &str, key: &str, contains: &str, value: &str) -> (String, usize) {
    let mut at = None;
    let lines: Vec<String> = text
        .lines()
        .enumerate()
        .map(|(i, l)| {
            if at.is_none() && l.starts_with(&format!("{key} = ")) && l.contains(contains) {
                at = Some(i + 1);
                format!("{key} = {value}")
            } else {
                l.to_owned()
            }
        })
        .collect();
    let line = at.unwrap_or_else(|| panic!("no `{key} = …{contains}…` line in\n{text}"));
    (lines.join("\n") + "\n", line)
}

fn write(dir: &Path, text: &str) -> PathBuf {
    let file = dir.join("node.toml");
    std::fs::write(&file, text).unwrap();
    file
}

fn serve(file: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_lienthong"));
    c.arg("serve")
        .arg("--config")
        .arg(file)
        .env("RUST_LOG", "warn");
    c
}

/// The names in `dir`, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut n: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    n.sort();
    n
}

/// The one line a failed start prints, from a run that must have exited 3.
fn failed(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(out.stdout.is_empty(), "it never listened: {stderr}");
    stderr
        .lines()
        .rfind(|l| !l.starts_with('{'))
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn a_missing_agency_certificate_is_named_at_its_key_and_nothing_is_created() {
    let dir = tempfile::tempdir().unwrap();
    let (text, line) = set(
        &config(dir.path()),
        "cert",
        "stttt-gialai",
        "\"certs/x.pem\"",
    );
    let file = write(dir.path(), &text);
    let line_out = failed(&serve(&file).output().unwrap());
    assert_eq!(
        line_out,
        format!(
            "CONFIG_INVALID: {}:{line}:8: agency[0].cert: certs/x.pem: no such file",
            file.display()
        )
    );
    assert_eq!(names(dir.path()), ["node.toml"], "no store, no lock");
}

/// Every kind of configuration problem is `CONFIG_INVALID` at `FILE:LINE:COL: KEY`.
#[test]
fn configuration_problems_name_file_line_column_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let base = config(dir.path());
    let cases: Vec<(String, String)> = vec![
        {
            let (t, l) = set(&base, "ca", "root-ca", "[\"nope/root.pem\"]");
            (
                t,
                format!(":{l}:7: peer \"nghean\".ca[0]: nope/root.pem: no such file"),
            )
        },
        {
            // A key that is not the agency's own: named at the key, saying so.
            let other = pki("sonv-gialai.key.pem");
            let (t, l) = set(
                &base,
                "key",
                "stttt-gialai",
                &format!("\"{}\"", other.display()),
            );
            (
                t,
                format!(
                    ":{l}:7: agency[0].key: {}: does not belong to the certificate of \
                     CN=Sở Thông tin và Truyền thông tỉnh Gia Lai, ",
                    other.display()
                ),
            )
        },
        {
            // Not a certificate at all.
            let (t, l) = set(
                &base,
                "cert",
                "stttt-gialai",
                &format!("\"{}\"", pki("stttt-gialai.key.pem").display()),
            );
            (t, format!(":{l}:8: agency[0].cert: "))
        },
        {
            // The TLS key of another node.
            let other = pki("node-nghean.key.pem");
            let (t, l) = set(
                &base,
                "key",
                "node-gialai",
                &format!("\"{}\"", other.display()),
            );
            (
                t,
                format!(
                    ":{l}:7: tls.key: {}: does not belong to the certificate of tls.cert",
                    other.display()
                ),
            )
        },
        {
            let (t, l) = set(&base, "store", "node.db", "\"sqlite://no/such/node.db\"");
            (t, format!(":{l}:9: node.store: no/such: no such file"))
        },
        {
            let t = base.replacen("listen = ", "listne = ", 1);
            let l = t.lines().position(|l| l.starts_with("listne")).unwrap() + 1;
            (t, format!(":{l}:1: node.listne: unknown field `listne`"))
        },
    ];
    for (text, want) in cases {
        let file = write(dir.path(), &text);
        let got = failed(&serve(&file).output().unwrap());
        let prefix = format!("CONFIG_INVALID: {}", file.display());
        assert!(
            got.starts_with(&prefix) && got.contains(&want),
            "want {prefix}…{want}…, got {got}"
        );
        assert_eq!(names(dir.path()), ["node.toml"], "{got}");
    }
    let text = base.replacen("listen = ", "listne = ", 1);
    let file = write(dir.path(), &text);
    let got = failed(&serve(&file).output().unwrap());
    assert!(got.ends_with("(did you mean `listen`?)"), "{got}");
}

/// A `[[revocation.anchor]]` subject that names no trust anchor (a typo) would leave its policy
/// unenforced: refused at the subject, listing the anchors as `inspect` prints them. The same
/// anchor in the certificate's own RDN order is accepted.
#[test]
fn a_revocation_anchor_naming_no_trust_anchor_is_refused_with_the_anchors_listed() {
    let dir = tempfile::tempdir().unwrap();
    let root = "CN=Lienthong TEST Root CA, O=Lienthong TEST PKI, C=VN";
    let with = |subject: &str| {
        config(dir.path())
            + &format!(
                "\n[revocation]\npolicy = \"prefer\"\n\n[[revocation.anchor]]\n\
                 subject = \"{subject}\"\npolicy = \"require\"\n"
            )
    };
    let text = with("CN=Lienthong TEST Rot CA, O=Lienthong TEST PKI, C=VN");
    let line = text
        .lines()
        .position(|l| l.starts_with("subject = "))
        .unwrap()
        + 1;
    let file = write(dir.path(), &text);
    let got = failed(&serve(&file).output().unwrap());
    assert_eq!(
        got,
        format!(
            "CONFIG_INVALID: {}:{line}:11: revocation.anchor[0].subject: \
             \"CN=Lienthong TEST Rot CA, O=Lienthong TEST PKI, C=VN\" is not the subject of a \
             trust anchor; those of node.trust are \"{root}\"",
            file.display()
        )
    );
    assert_eq!(names(dir.path()), ["node.toml"]);

    // Either RDN order names the anchor: the configuration loads.
    let file = write(
        dir.path(),
        &with("C=VN, O=Lienthong TEST PKI, CN=Lienthong TEST Root CA"),
    );
    let config = lienthong::config::Config::load(&file).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        config.revocation.policy_for(root),
        lienthong::pki::RevocationPolicy::Require
    );
}

#[test]
fn a_busy_port_is_named_at_node_listen_and_no_store_is_created() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let at = taken.local_addr().unwrap();
    let (text, line) = set(&config(dir.path()), "listen", "", &format!("\"{at}\""));
    let file = write(dir.path(), &text);
    let got = failed(&serve(&file).output().unwrap());
    let want = format!(
        "CONFIG_INVALID: {}:{line}:10: node.listen: {at}: ",
        file.display()
    );
    assert!(got.starts_with(&want), "want {want}…, got {got}");
    assert_eq!(names(dir.path()), ["node.toml"]);
    drop(taken);
}

/// Stops `child` with SIGTERM and waits for it (it finishes what is in flight first).
fn stop(mut child: Child) {
    let killed = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(killed.success());
    assert_eq!(child.wait().unwrap().code(), Some(0));
}

#[test]
fn a_second_node_on_a_store_exits_3_and_the_first_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), &config(dir.path()));
    let mut first = serve(&file)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(first.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    let before = names(dir.path());

    let got = failed(&serve(&file).output().unwrap());
    assert!(got.starts_with("STORE_UNAVAILABLE: "), "{got}");
    assert!(got.contains("node.db.lock"), "{got}");
    assert!(
        got.contains(&format!("process {} holds", first.id())),
        "{got}"
    );

    // The first still serves, from the same store, untouched.
    assert_eq!(names(dir.path()), before);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let http = ApiClient::new();
        for path in ["/healthz", "/readyz"] {
            let r = http
                .get(format!("http://{addr}{path}"))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status().as_u16(), 200, "{path}");
        }
    });
    stop(first);
}

/// One form for names and times: the admin API's certificate report and `/metrics` name
/// certificates as `verify` and `inspect` do (RFC 4514, `CN=…` first), and give times RFC 3339.
#[tokio::test(flavor = "multi_thread")]
async fn the_admin_api_and_metrics_print_names_and_times_in_the_one_form() {
    const TOK_OPS: &str = "tok-ops-0123456789abcdef";
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gl = start(l, |d| {
        config_text(
            "gialai",
            d,
            &gialai_departments(),
            ("nghean", "http://127.0.0.1:9", NGHEAN),
        ) + &admin_token("ops-1", TOK_OPS)
    })
    .await;
    let http = ApiClient::new();
    let r = http
        .get(gl.url("/admin/v1/certificates"))
        .bearer_auth(TOK_OPS)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let v: serde_json::Value = r.json().await.unwrap();
    let items = v["items"].as_array().unwrap();
    let root = "CN=Lienthong TEST Root CA, O=Lienthong TEST PKI, C=VN";
    assert!(items.iter().any(|c| c["subject"] == root), "{v}");
    let stttt = lienthong::pki::describe(
        &rustls_pki_types::CertificateDer::from_pem_file(pki("stttt-gialai.cert.pem")).unwrap(),
    )
    .unwrap();
    let agency = items
        .iter()
        .find(|c| c["agency"] == STTTT)
        .unwrap_or_else(|| panic!("{v}"));
    assert_eq!(
        agency["subject"],
        stttt.subject.as_str(),
        "as inspect prints it"
    );
    assert_eq!(
        agency["not_after"],
        stttt.not_after.as_str(),
        "RFC 3339 UTC"
    );
    let metrics = http
        .get(gl.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(&format!("subject=\"{root}\"")),
        "{metrics}"
    );
    gl.shutdown().await;
}
