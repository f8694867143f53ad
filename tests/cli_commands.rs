//! The clerk follow-ups (`revoke`, `update`, `replace`), the admin commands (`admin deliveries
//! …`, `admin registry …`), `completions` and `man`: the real binary against a real node on
//! loopback (its peer down, so deliveries stay pending), checked through the node's API.

mod common;

use std::process::Output;

use common::nodes::*;
use common::*;
use lienthong::store::{DeliveryError, Store};
use serde_json::Value;
use tokio::net::TcpListener;

const TOK_OPS: &str = "tok-ops-0123456789abcdef";

/// Runs `lienthong ARGS…` off the runtime's threads (the node answers on them meanwhile).
async fn run(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        let mut c = bin();
        for v in ["LIENTHONG_NODE", "LIENTHONG_TOKEN", "LIENTHONG_ADMIN_TOKEN"] {
            c.env_remove(v);
        }
        c.args(&args).output().unwrap()
    })
    .await
    .unwrap()
}

fn args(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| (*s).to_owned()).collect()
}

/// `lienthong ARGS… --node BASE --token TOKEN`, which must succeed.
async fn ok(node: &TestNode, token: &str, a: &[&str]) -> String {
    let mut v = args(a);
    v.extend(args(&["--node", &node.base, "--token", token]));
    let o = run(v).await;
    assert_eq!(
        o.status.code(),
        Some(0),
        "{a:?}: {}{}",
        stdout(&o),
        stderr(&o)
    );
    stdout(&o)
}

/// As [`ok`], with `--json`: the node's answer.
async fn ok_json(node: &TestNode, token: &str, a: &[&str]) -> Value {
    let mut v = a.to_vec();
    v.push("--json");
    let out = ok(node, token, &v).await;
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{a:?}: {e}: {out}"))
}

/// Gia Lai with an operator token; Nghệ An (its peer) is never up and no worker runs, so every
/// delivery stays where the test puts it.
async fn gialai() -> TestNode {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let na = format!("http://{}", reserve_port());
    start(l, |d| {
        config_text("gialai", d, &gialai_departments(), ("nghean", &na, NGHEAN))
            + &admin_token("ops-1", TOK_OPS)
    })
    .await
}

/// Sends a dispatch from Sở TT&TT to Nghệ An through the API: its id and delivery id.
async fn send(http: &ApiClient, node: &TestNode, subject: &str) -> (i64, i64) {
    let r = http
        .post(node.url("/api/v1/documents"))
        .bearer_auth(TOK_STTTT)
        .multipart(submission(&metadata(&[NGHEAN], subject), true))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 202);
    let v = json_of(r).await;
    (
        v["id"].as_i64().unwrap(),
        v["deliveries"][0]["delivery_id"].as_i64().unwrap(),
    )
}

/// The sent document `id` as the clerk API shows it.
async fn document(http: &ApiClient, node: &TestNode, id: i64) -> Value {
    let r = http
        .get(node.url(&format!("/api/v1/documents/{id}")))
        .bearer_auth(TOK_STTTT)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    json_of(r).await
}

#[tokio::test(flavor = "multi_thread")]
async fn revoke_update_and_replace_send_follow_ups_of_the_same_document() {
    let gl = gialai().await;
    let http = ApiClient::new();
    let dir = tempfile::tempdir().unwrap();
    let pdf = dir.path().join("phụ lục.pdf");
    std::fs::write(&pdf, PDF).unwrap();

    // revoke: a business-type-1 package with the original's DocumentId, to its recipient.
    let (original, _) = send(&http, &gl, "V/v thu hồi bằng dòng lệnh").await;
    let doc = document(&http, &gl, original).await;
    let id = original.to_string();
    let out = ok(
        &gl,
        TOK_STTTT,
        &["revoke", &id, "--reason", "Ban hành nhầm"],
    )
    .await;
    assert!(
        out.starts_with(&format!("Đã gửi yêu cầu thu hồi văn bản {original} (id "))
            && out.contains(doc["document_id"].as_str().unwrap())
            && out.trim_end().ends_with(&format!("tới {NGHEAN}.")),
        "{out}"
    );
    let list = json_of(
        http.get(gl.url("/api/v1/documents"))
            .bearer_auth(TOK_STTTT)
            .send()
            .await
            .unwrap(),
    )
    .await;
    let revocation = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["business_type"] == 1)
        .unwrap_or_else(|| panic!("no revocation among the sent documents: {list}"));
    assert_eq!(
        revocation["document_id"], doc["document_id"],
        "{revocation}"
    );
    assert_eq!(revocation["deliveries"][0]["recipient"], NGHEAN);
    // A second revocation is refused by the node: its code and message, exit 1.
    let o = run(args(&[
        "revoke",
        &id,
        "--reason",
        "lần hai",
        "--node",
        &gl.base,
        "--token",
        TOK_STTTT,
    ]))
    .await;
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(
        stderr(&o).starts_with("FOLLOW_UP_EXISTS: "),
        "{}",
        stderr(&o)
    );

    // update, with a file (multipart): a business-type-2 package with the new subject.
    let (original, _) = send(&http, &gl, "V/v cập nhật bằng dòng lệnh").await;
    let id = original.to_string();
    let v = ok_json(
        &gl,
        TOK_STTTT,
        &[
            "update",
            &id,
            "--reason",
            "Sửa trích yếu",
            "--subject",
            "V/v cập nhật (đã sửa)",
            "--attach",
            pdf.to_str().unwrap(),
        ],
    )
    .await;
    let update = document(&http, &gl, v["id"].as_i64().unwrap()).await;
    assert_eq!(update["business_type"], 2, "{update}");
    assert_eq!(update["subject"], "V/v cập nhật (đã sửa)", "{update}");
    assert_eq!(
        update["document_id"],
        document(&http, &gl, original).await["document_id"]
    );

    // A refusal of the update names the flag typed before the node's field.
    let o = run(args(&[
        "update",
        &id,
        "--reason",
        "Sửa",
        "--subject",
        "dòng một\ndòng hai",
        "--node",
        &gl.base,
        "--token",
        TOK_STTTT,
    ]))
    .await;
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains(": --subject \"dòng một\\ndòng hai\": update.subject"),
        "{err}"
    );

    // update without files: a JSON body; a new recipient list.
    let (original, _) = send(&http, &gl, "V/v cập nhật nơi nhận").await;
    let id = original.to_string();
    let to = format!("{NGHEAN},{SONV}");
    let out = ok(
        &gl,
        TOK_STTTT,
        &["update", &id, "--reason", "Thêm nơi nhận", "--to", &to],
    )
    .await;
    assert!(
        out.starts_with(&format!("Đã gửi bản cập nhật văn bản {original} (id "))
            && out.contains(SONV),
        "{out}"
    );

    // replace: a new document (business type 3) in place of the old one.
    let (original, _) = send(&http, &gl, "V/v thay thế bằng dòng lệnh").await;
    let id = original.to_string();
    let v = ok_json(
        &gl,
        TOK_STTTT,
        &[
            "replace",
            &id,
            "--reason",
            "Thay bằng văn bản mới",
            "--to",
            NGHEAN,
            "--notation",
            "STTTT-CĐS",
            "--subject",
            "V/v thay thế (văn bản mới)",
            "--signer",
            "Nguyễn Văn An",
            "--attach",
            pdf.to_str().unwrap(),
        ],
    )
    .await;
    let replacement = document(&http, &gl, v["id"].as_i64().unwrap()).await;
    assert_eq!(replacement["business_type"], 3, "{replacement}");
    assert_eq!(replacement["subject"], "V/v thay thế (văn bản mới)");
    assert_eq!(replacement["deliveries"][0]["recipient"], NGHEAN);
    gl.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn admin_deliveries_list_show_cancel_and_retry() {
    let gl = gialai().await;
    let http = ApiClient::new();
    let (_, first) = send(&http, &gl, "V/v gửi rồi hủy").await;
    let (_, second) = send(&http, &gl, "V/v gửi lại").await;

    // Both pending (the peer is down), newest first; a clerk token is refused.
    let out = ok(
        &gl,
        TOK_OPS,
        &[
            "admin",
            "deliveries",
            "list",
            "--state",
            "queued",
            "--recipient",
            NGHEAN,
        ],
    )
    .await;
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with("ID") && lines[0].contains("STATE"),
        "{out}"
    );
    assert_eq!(lines.len(), 3, "{out}");
    assert!(lines[1].starts_with(&format!("{second} ")), "{out}");
    assert!(
        lines[2].starts_with(&format!("{first} ")) && lines[2].contains("queued"),
        "{out}"
    );
    // One per page, every page followed: both.
    let all = ok_json(
        &gl,
        TOK_OPS,
        &["admin", "deliveries", "list", "--per-page", "1", "--all"],
    )
    .await;
    let ids: Vec<i64> = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["delivery_id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, [second, first], "{all}");
    let o = run(args(&[
        "admin",
        "deliveries",
        "list",
        "--node",
        &gl.base,
        "--token",
        TOK_STTTT,
    ]))
    .await;
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).starts_with("UNAUTHENTICATED: "),
        "{}",
        stderr(&o)
    );

    // cancel: queued → cancelled.
    let out = ok(
        &gl,
        TOK_OPS,
        &[
            "admin",
            "deliveries",
            "cancel",
            &first.to_string(),
            "--reason",
            "Gửi nhầm nơi nhận",
        ],
    )
    .await;
    assert_eq!(out.trim(), format!("delivery {first}: cancelled"));

    // An attempt at the down peer fails (as the outbox records it): retry makes it queued again.
    let now = lienthong::node::service::now_ms();
    let claimed = gl
        .store()
        .claim_due(now, 10, "outbox:test", 60_000)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].lease.delivery_id, second);
    let unreachable = DeliveryError {
        code: "PEER_UNREACHABLE".into(),
        message: "connection refused".into(),
    };
    gl.store()
        .mark_failed(claimed[0].lease, unreachable, now + 1)
        .await
        .unwrap();
    let out = ok(
        &gl,
        TOK_OPS,
        &["admin", "deliveries", "show", &second.to_string()],
    )
    .await;
    assert!(
        out.contains("state         failed")
            && out.contains("last error    PEER_UNREACHABLE: connection refused"),
        "{out}"
    );
    // …and its attempt, in a table.
    let attempt = out
        .lines()
        .skip_while(|l| !l.starts_with("#"))
        .nth(1)
        .unwrap_or_else(|| panic!("no attempt table: {out}"));
    assert!(
        attempt.starts_with("1 ") && attempt.contains("PEER_UNREACHABLE"),
        "{out}"
    );
    let out = ok(
        &gl,
        TOK_OPS,
        &["admin", "deliveries", "retry", &second.to_string()],
    )
    .await;
    assert_eq!(out.trim(), format!("delivery {second}: queued"));
    let v = ok_json(
        &gl,
        TOK_OPS,
        &["admin", "deliveries", "show", &second.to_string()],
    )
    .await;
    assert_eq!(v["state"], "queued", "{v}");
    assert_eq!(v["attempt_log"].as_array().unwrap().len(), 1, "{v}");
    // Retrying a cancelled one is refused by the node.
    let o = run(args(&[
        "admin",
        "deliveries",
        "retry",
        &first.to_string(),
        "--node",
        &gl.base,
        "--token",
        TOK_OPS,
    ]))
    .await;
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).starts_with("INVALID_TRANSITION: "),
        "{}",
        stderr(&o)
    );
    gl.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn admin_registry_set_list_show_remove_and_import() {
    let gl = gialai().await;
    let fp = cert_fingerprint(&pki("stttt-gialai.cert.pem"));
    let cert = pki("stttt-gialai.cert.pem");

    let out = ok(
        &gl,
        TOK_OPS,
        &[
            "admin",
            "registry",
            "set",
            STTTT,
            "--name",
            "Sở Thông tin và Truyền thông tỉnh Gia Lai",
            "--cert",
            cert.to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(out.trim(), format!("added {STTTT}: 1 rule(s)"));
    let out = ok(&gl, TOK_OPS, &["admin", "registry", "list"]).await;
    assert!(out.lines().next().unwrap().starts_with("CODE"), "{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with(STTTT) && l.contains("Sở Thông tin")),
        "{out}"
    );
    let out = ok(&gl, TOK_OPS, &["admin", "registry", "show", STTTT]).await;
    assert!(out.contains(&format!("fingerprint {fp}")), "{out}");
    // Set again: the entry's rules are replaced, not added to.
    let out = ok(
        &gl,
        TOK_OPS,
        &["admin", "registry", "set", STTTT, "--fingerprint", &fp],
    )
    .await;
    assert_eq!(out.trim(), format!("replaced {STTTT}: 1 rule(s)"));
    let out = ok(&gl, TOK_OPS, &["admin", "registry", "remove", STTTT]).await;
    assert_eq!(out.trim(), format!("removed {STTTT}"));
    let v = ok_json(&gl, TOK_OPS, &["admin", "registry", "list"]).await;
    assert_eq!(v["items"], serde_json::json!([]), "{v}");
    let o = run(args(&[
        "admin", "registry", "show", STTTT, "--node", &gl.base, "--token", TOK_OPS,
    ]))
    .await;
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).starts_with("NOT_FOUND: "), "{}", stderr(&o));

    // import: the TOML file `lienthong registry import` reads, its certificate sent as a
    // fingerprint.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("registry.toml");
    std::fs::write(
        &file,
        format!(
            "[[agency]]\ncode = \"{STTTT}\"\nname = \"Sở TT&TT\"\n[[agency.rule]]\nkind = \"certificate\"\npath = \"{}\"\n",
            cert.display()
        ),
    )
    .unwrap();
    let out = ok(
        &gl,
        TOK_OPS,
        &["admin", "registry", "import", file.to_str().unwrap()],
    )
    .await;
    assert_eq!(
        out.trim(),
        "imported 1 agencies: 1 added, 0 replaced, 0 removed"
    );
    let v = ok_json(&gl, TOK_OPS, &["admin", "registry", "show", STTTT]).await;
    assert_eq!(v["rules"][0]["sha256"], fp.as_str(), "{v}");
    gl.shutdown().await;
}

/// `lienthong completions bash | head -1`: the reader is gone before the writer is done. Here its
/// end of the pipe is closed before the binary starts, so every write meets a broken pipe.
#[test]
fn completions_and_manual_pages_to_a_closed_pipe_end_quietly() {
    for args in [&["completions", "bash"][..], &["man"][..]] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let o = bin()
            .args(args)
            .stdout(writer)
            .stderr(std::process::Stdio::piped())
            .output()
            .unwrap();
        let err = stderr(&o);
        assert!(
            !err.contains("panicked") && !err.contains("backtrace"),
            "{args:?}: {err}"
        );
        assert_eq!(o.status.code(), Some(0), "{args:?}: {err}");
    }
}

#[test]
fn completions_and_manual_pages_are_generated_from_the_command_tree() {
    let o = bin().args(["completions", "bash"]).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let bash = stdout(&o);
    assert!(bash.contains("send") && bash.contains("admin") && bash.contains("revoke"));
    for shell in ["zsh", "fish", "elvish", "powershell"] {
        let o = bin().args(["completions", shell]).output().unwrap();
        assert_eq!(o.status.code(), Some(0), "{shell}: {}", stderr(&o));
        assert!(stdout(&o).contains("deliveries"), "{shell}");
    }
    let o = bin().args(["completions", "tcsh"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));

    let o = bin().arg("man").output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let page = stdout(&o);
    assert!(page.contains(".TH lienthong 1"), "{page}");
    assert!(page.contains("completions"), "{page}");

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("man1");
    let o = bin().arg("man").arg("--out").arg(&out).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let names = file_names(&out);
    for page in [
        "lienthong.1",
        "lienthong-send.1",
        "lienthong-revoke.1",
        "lienthong-admin.1",
        "lienthong-admin-deliveries-retry.1",
        "lienthong-admin-registry-import.1",
    ] {
        assert!(names.iter().any(|n| n == page), "{page} not in {names:?}");
        let text = std::fs::read_to_string(out.join(page)).unwrap();
        assert!(
            text.starts_with(".ie") || text.contains(".TH "),
            "{page}: {text}"
        );
    }
    // Each page written is named on stdout, one a line.
    assert_eq!(stdout(&o).lines().count(), names.len());
}
