//! The command line as scripts use it: build, sign, verify, inspect, extract, answer.

mod common;

use common::*;

#[test]
fn a_dispatch_and_its_answer_through_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let pdf = d.join("Công văn 125.pdf");
    std::fs::write(&pdf, b"%PDF-1.4 hello").unwrap();
    let txt = d.join("Phụ lục.txt");
    std::fs::write(&txt, "Danh sách đơn vị".as_bytes()).unwrap();

    let o = bin()
        .args([
            "package",
            "new",
            "--from",
            "000.00.05.H21",
            "--from-name",
            "Sở Thông tin và Truyền thông tỉnh Gia Lai",
        ])
        .args([
            "--to",
            "000.00.00.H41,000.00.04.H21",
            "--to-name",
            "Ủy ban nhân dân tỉnh Nghệ An",
        ])
        .args([
            "--number",
            "5",
            "--notation",
            "STTTT-CĐS",
            "--subject",
            "V/v thử nghiệm",
        ])
        .args([
            "--type-name",
            "Công văn",
            "--signer",
            "Nguyễn Văn Ánh",
            "--date",
            "2026/11/25",
            "--priority",
            "1",
        ])
        .arg("--attach")
        .arg(&pdf)
        .arg("--attach")
        .arg(&txt)
        .arg("-o")
        .arg(d.join("p.edxml"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));

    lienthong_sign(&d.join("p.edxml"), &d.join("s.edxml"), "stttt-gialai");
    let (ok, line) = lienthong_verify(&d.join("s.edxml"), &[]);
    assert!(ok, "{line}");
    assert!(
        line.starts_with("OK: signed by CN=Sở Thông tin và Truyền thông tỉnh Gia Lai"),
        "{line}"
    );

    // inspect --json: the header as written, the files, the claimed signer (not verified).
    let o = bin()
        .args(["inspect", "--json"])
        .arg(d.join("s.edxml"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let doc = &v["package"];
    let text = v.to_string();
    assert!(
        text.contains("000.00.05.H21,2026/11/25,05/STTTT-CĐS"),
        "{text}"
    );
    assert!(text.contains("V/v thử nghiệm"), "{text}");
    assert_eq!(v["signature"]["present"], true);
    assert_eq!(v["signature"]["verified"], false);
    assert!(doc.to_string().contains("\"size\":14"), "{doc}");

    // extract: the files, unzipped, byte for byte.
    let out = d.join("out");
    let o = bin()
        .arg("extract")
        .arg(d.join("s.edxml"))
        .arg("-d")
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        std::fs::read(out.join("Công văn 125.pdf")).unwrap(),
        b"%PDF-1.4 hello"
    );
    assert_eq!(
        std::fs::read(out.join("Phụ lục.txt")).unwrap(),
        "Danh sách đơn vị".as_bytes()
    );

    // status new: 03 from Nghệ An, signed by Nghệ An, verifies; 07 is refused.
    let o = bin()
        .args([
            "status",
            "new",
            "--code",
            "03",
            "--from",
            "000.00.00.H41",
            "--description",
            "Đã vào sổ",
        ])
        .arg("--for")
        .arg(d.join("s.edxml"))
        .arg("-o")
        .arg(d.join("st.edxml"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    lienthong_sign(
        &d.join("st.edxml"),
        &d.join("st.signed.edxml"),
        "ubnd-nghean",
    );
    let (ok, line) = lienthong_verify(&d.join("st.signed.edxml"), &[]);
    assert!(ok && line.contains("status 03"), "{line}");
    let (ok, out) = xmlsec_verify(&d.join("st.signed.edxml"), &[]);
    assert!(ok, "{out}");

    let o = bin()
        .args(["status", "new", "--code", "07", "--from", "000.00.00.H41"])
        .arg("--for")
        .arg(d.join("s.edxml"))
        .arg("-o")
        .arg(d.join("st7.edxml"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).starts_with("STATUS_CODE_UNKNOWN: "),
        "{}",
        stderr(&o)
    );
    assert!(!d.join("st7.edxml").exists());

    // 02 needs a reason.
    let o = bin()
        .args(["status", "new", "--code", "02", "--from", "000.00.00.H41"])
        .arg("--for")
        .arg(d.join("s.edxml"))
        .arg("-o")
        .arg(d.join("st2.edxml"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).starts_with("ELEMENT_MISSING: "),
        "{}",
        stderr(&o)
    );
}

#[test]
fn refusals_and_local_problems_have_distinct_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // A malformed sender code is refused (1) with its code.
    let o = bin()
        .args([
            "package",
            "new",
            "--from",
            "H21",
            "--to",
            "000.00.00.H41",
            "--number",
            "1",
        ])
        .args(["--notation", "UBND-VP", "--subject", "x", "-o"])
        .arg(d.join("p.edxml"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).starts_with("ORGAN_ID_INVALID: "),
        "{}",
        stderr(&o)
    );
    // A missing input file is a local problem (3).
    let (ok, _) = lienthong_verify(&d.join("missing.edxml"), &[]);
    assert!(!ok);
    let o = bin()
        .arg("verify")
        .arg("--trust")
        .arg(pki("root-ca.cert.pem"))
        .arg(d.join("missing.edxml"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(3));
    assert!(stderr(&o).starts_with("IO: "), "{}", stderr(&o));
    // A key that does not belong to the certificate is refused before anything is signed.
    let o = bin()
        .arg("sign")
        .arg("--key")
        .arg(pki("ubnd-nghean.key.pem"))
        .arg("--cert")
        .arg(pki("stttt-gialai.cert.pem"))
        .arg(d.join("missing.edxml"))
        .arg("-o")
        .arg(d.join("x.edxml"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(3));
    assert!(stderr(&o).starts_with("KEY_INVALID: "), "{}", stderr(&o));
}

/// `sign` refuses a certificate recipients would refuse: expired, a CA, the wrong key usage or
/// extended key usage, and a key under 2048 bits. Each is a local problem (3, `KEY_INVALID`)
/// naming the certificate and the fault, and no output is written; the good identity signs the
/// same input.
#[test]
fn sign_refuses_a_certificate_recipients_would_refuse() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("p.edxml"), package(&Shape::default())).unwrap();
    let sign = |key: &std::path::Path, cert: &std::path::Path, out: &str| {
        bin()
            .arg("sign")
            .arg("--key")
            .arg(key)
            .arg("--cert")
            .arg(cert)
            .arg("--chain")
            .arg(pki("chain.pem"))
            .arg(d.join("p.edxml"))
            .arg("-o")
            .arg(d.join(out))
            .output()
            .unwrap()
    };
    let ca = common::testca::TestCa::new();
    ca.leaf_with_key_bits("small-key", 1024);
    let refusals = [
        (
            "expired",
            pki("expired.key.pem"),
            pki("expired.cert.pem"),
            "expired",
        ),
        (
            "CA",
            pki("ca-as-signer.key.pem"),
            pki("ca-as-signer.cert.pem"),
            "CA",
        ),
        (
            "key usage",
            pki("wrong-key-usage.key.pem"),
            pki("wrong-key-usage.cert.pem"),
            "Key Encipherment",
        ),
        (
            "EKU",
            pki("wrong-eku.key.pem"),
            pki("wrong-eku.cert.pem"),
            "serverAuth",
        ),
        (
            "RSA-1024",
            ca.path("small-key.key.pem"),
            ca.path("small-key.cert.pem"),
            "under 2048 bits",
        ),
    ];
    for (i, (what, key, cert, says)) in refusals.iter().enumerate() {
        let out = format!("refused{i}.edxml");
        let o = sign(key, cert, &out);
        assert_eq!(o.status.code(), Some(3), "{what}: {}", stderr(&o));
        let e = stderr(&o);
        assert!(e.starts_with("KEY_INVALID: "), "{what}: {e}");
        assert!(e.contains(says), "{what}: {says:?} not in {e}");
        assert!(
            !d.join(&out).exists(),
            "{what}: a signed package was written"
        );
    }
    let o = sign(
        &pki("stttt-gialai.key.pem"),
        &pki("stttt-gialai.cert.pem"),
        "ok.edxml",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(lienthong_verify(&d.join("ok.edxml"), &[]).0);
}

/// Attachment names from a package are untrusted: one longer than any file system allows, one
/// with a bidirectional override hiding its extension, a Windows device name, a path, and two
/// that collide. Every file is written, under a safe name, and every rename is reported.
#[test]
fn extract_writes_every_file_under_a_safe_name_and_reports_renames() {
    use lienthong::edxml::{Attachment, file_name::MAX_NAME_BYTES, samples};
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let long = format!("{}.pdf", "Báo cáo tổng kết năm ".repeat(30));
    let names = [
        long.clone(),
        "invoice\u{202E}fdp.exe".to_owned(),
        "CON.txt".to_owned(),
        "../../escape.txt".to_owned(),
        "Phụ lục.txt".to_owned(),
        "phụ lục.TXT".to_owned(),
        "after.txt".to_owned(),
    ];
    // Our writer refuses such names (it never emits them): written under placeholders, which
    // are then replaced in the text, as another sender would have written them.
    let placeholder = |i: usize| format!("PLACEHOLDER-{i}.txt");
    let mut doc = samples::new_document();
    doc.attachments = (0..names.len())
        .map(|i| {
            Attachment::new(
                placeholder(i),
                "text/plain",
                "",
                format!("file {i}").into_bytes(),
            )
        })
        .collect();
    let mut text = String::from_utf8(lienthong::edxml::write_document(&doc).unwrap()).unwrap();
    for (i, n) in names.iter().enumerate() {
        text = text.replace(&placeholder(i), n);
    }
    std::fs::write(d.join("p.edxml"), text).unwrap();

    let out = d.join("out");
    let o = bin()
        .args(["extract", "--json"])
        .arg(d.join("p.edxml"))
        .arg("-d")
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let files = v["files"].as_array().unwrap();
    assert_eq!(files.len(), names.len(), "{v}");
    for (i, f) in files.iter().enumerate() {
        let name = f["name"].as_str().unwrap();
        assert!(name.len() <= MAX_NAME_BYTES, "{name}");
        assert_eq!(
            std::fs::read(out.join(name)).unwrap(),
            format!("file {i}").into_bytes(),
            "{name}"
        );
        let renamed = f.get("renamed_from").and_then(|r| r.as_str());
        assert_eq!(renamed.is_some(), name != names[i], "{f}");
        if let Some(r) = renamed {
            assert_eq!(r, names[i]);
        }
    }
    let name = |i: usize| files[i]["name"].as_str().unwrap().to_owned();
    assert!(name(0).ends_with(".pdf") && name(0).starts_with("Báo cáo"));
    assert_eq!(name(1), "invoicefdp.exe");
    assert_eq!(name(2), "_CON.txt");
    assert_eq!(name(3), "escape.txt");
    assert_eq!(name(4), "Phụ lục.txt");
    assert_eq!(name(5), "phụ lục (2).TXT");
    assert_eq!(name(6), "after.txt");
    assert_eq!(v["renamed"], 5, "{v}");
    // Nothing else in the folder: no temporary file left behind, nothing written outside it.
    assert_eq!(file_names(&out).len(), names.len());
    assert!(!d.join("escape.txt").exists());

    // The text form: one line per file, renames escaped so no override reaches the terminal.
    let o = bin()
        .arg("extract")
        .arg(d.join("p.edxml"))
        .arg("-d")
        .arg(d.join("out2"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert_eq!(text.lines().count(), names.len(), "{text}");
    assert!(!text.contains('\u{202E}'), "{text}");
    assert!(
        text.contains(
            "invoicefdp.exe\ttext/plain\t6 bytes\trenamed from \"invoice\\u{202e}fdp.exe\""
        ),
        "{text}"
    );
}

/// A file that cannot be written does not stop the others: every other file is written, the
/// failure is reported (exit 3, `IO`) and no temporary file is left behind.
#[test]
fn extract_writes_the_other_files_when_one_cannot_be_written() {
    use lienthong::edxml::{Attachment, samples};
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut doc = samples::new_document();
    doc.attachments = ["a.txt", "blocked.txt", "c.txt"]
        .iter()
        .map(|n| Attachment::new(*n, "text/plain", "", n.as_bytes().to_vec()))
        .collect();
    std::fs::write(
        d.join("p.edxml"),
        lienthong::edxml::write_document(&doc).unwrap(),
    )
    .unwrap();
    let out = d.join("out");
    // A folder where `blocked.txt` would go: the rename onto it fails.
    std::fs::create_dir_all(out.join("blocked.txt/inside")).unwrap();
    let o = bin()
        .args(["extract", "--json"])
        .arg(d.join("p.edxml"))
        .arg("-d")
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(3), "{}{}", stdout(&o), stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["ok"], false, "{v}");
    assert_eq!(v["code"], "IO", "{v}");
    assert!(v["files"][1]["error"].is_string(), "{v}");
    assert_eq!(std::fs::read(out.join("a.txt")).unwrap(), b"a.txt");
    assert_eq!(std::fs::read(out.join("c.txt")).unwrap(), b"c.txt");
    assert_eq!(file_names(&out), ["a.txt", "blocked.txt", "c.txt"]);
}

/// `package new` never writes a package that makes a receiver write outside its folder or
/// overwrite a file: a name with a trailing dot (`evil.zip.`: unzipped by a receiver, whose
/// archive holds `../../escape.txt`) and two files a receiver would save as one (`x.pdf` from
/// one folder, `X.PDF` from another) are refused (1, `VALUE_INVALID`), nothing written.
#[test]
fn package_new_refuses_names_that_harm_a_receiver() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let evil = d.join("evil.zip.");
    std::fs::write(
        &evil,
        lienthong::edxml::attachment::zip_single("../../escape.txt", b"x").unwrap(),
    )
    .unwrap();
    for sub in ["a", "b"] {
        std::fs::create_dir(d.join(sub)).unwrap();
    }
    std::fs::write(d.join("a/x.pdf"), b"%PDF-1.4 a").unwrap();
    std::fs::write(d.join("b/X.PDF"), b"%PDF-1.4 b").unwrap();
    let cases = [
        (vec![evil], "Reference[1]/AttachmentName"),
        (
            vec![d.join("a/x.pdf"), d.join("b/X.PDF")],
            "Reference[2]/AttachmentName",
        ),
    ];
    for (files, at) in cases {
        let out = d.join("p.edxml");
        let mut cmd = bin();
        cmd.args([
            "package",
            "new",
            "--from",
            "000.00.05.H21",
            "--to",
            "000.00.00.H41",
        ])
        .args([
            "--number",
            "5",
            "--notation",
            "STTTT-CĐS",
            "--subject",
            "V/v thử",
        ]);
        for f in &files {
            cmd.arg("--attach").arg(f);
        }
        let o = cmd.arg("-o").arg(&out).output().unwrap();
        assert_eq!(o.status.code(), Some(1), "{files:?}: {}", stderr(&o));
        assert!(stderr(&o).starts_with("VALUE_INVALID: "), "{}", stderr(&o));
        assert!(stderr(&o).contains(at), "{}", stderr(&o));
        assert!(!out.exists());
    }
}

/// `package new` names the flag behind a header element it could not write, and every file
/// named on the command line that cannot be read or written by its flag (or as the path typed),
/// in both languages, never with the administrator's generic text.
#[test]
fn local_failures_name_the_flag_the_user_typed() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let new = |extra: &[&str], out: &std::path::Path| {
        bin()
            .args([
                "package",
                "new",
                "--from",
                "000.00.05.H21",
                "--to",
                "000.00.00.H41",
            ])
            .args(["--number", "1", "--notation", "UBND-VP", "--subject", "x"])
            .args(extra)
            .arg("-o")
            .arg(out)
            .output()
            .unwrap()
    };
    let out = d.join("p.edxml");
    for (extra, flag) in [
        (&["--from-name", ""][..], "--from-name"),
        (&["--to-name", ""][..], "--to-name[1]"),
        (&["--type-name", ""][..], "--type-name"),
    ] {
        let o = new(extra, &out);
        assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
        let err = stderr(&o);
        assert!(
            err.starts_with(&format!("ELEMENT_MISSING: {flag}: missing")),
            "{err}"
        );
        assert!(err.contains(&format!("Thiếu “{flag}”")), "{err}");
        assert!(!err.contains("edXMLEnvelope"), "{err}");
    }

    let cases: [(&[&str], &std::path::Path, &str, &str); 4] = [
        (
            &["--attach", "/nonexistent"],
            &out,
            "IO: --attach /nonexistent: no such file",
            "không tìm thấy tệp; kiểm tra lại đường dẫn",
        ),
        (
            &[],
            std::path::Path::new("/nonexistent/p.edxml"),
            "IO: --output /nonexistent/p.edxml: cannot write: its folder does not exist",
            "thư mục chứa nó không tồn tại",
        ),
        (&[], d, "cannot write: is a folder", "đây là một thư mục"),
        (
            &["--attach", "/"],
            &out,
            "IO: --attach /: is a folder",
            "đây là một thư mục",
        ),
    ];
    for (extra, out, en, vi) in cases {
        let o = new(extra, out);
        assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
        let err = stderr(&o);
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(lines.len(), 2, "{err}");
        assert!(lines[0].contains(en), "{err}");
        assert!(lines[1].contains(vi), "{err}");
        assert!(!err.contains("quản trị viên"), "{err}");
    }

    // An input file named by its path, as typed; with --json, the Vietnamese too.
    let missing = d.join("missing.edxml");
    let o = bin().arg("inspect").arg(&missing).output().unwrap();
    assert_eq!(o.status.code(), Some(3));
    assert!(
        stderr(&o).starts_with(&format!("IO: {}: no such file", missing.display())),
        "{}",
        stderr(&o)
    );
    let o = bin()
        .arg("verify")
        .arg("--json")
        .arg("--trust")
        .arg(pki("root-ca.cert.pem"))
        .arg(&missing)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(3));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["code"], "IO", "{v}");
    assert!(
        v["message_vi"]
            .as_str()
            .unwrap()
            .contains("không tìm thấy tệp"),
        "{v}"
    );
}

/// A command line clap refuses is JSON on stdout when `--json` is among the arguments (exit 2);
/// without it clap's text on stderr; help and version print as usual (exit 0).
#[test]
fn usage_errors_are_json_with_json() {
    let o = bin()
        .args([
            "sent", "list", "--json", "--node", "notaurl", "--token", "t",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert_eq!(stderr(&o), "");
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["ok"], false, "{v}");
    assert_eq!(v["code"], "USAGE", "{v}");
    assert!(v["http_status"].is_null(), "{v}");
    assert!(v["message"].as_str().unwrap().contains("notaurl"), "{v}");
    assert_eq!(stdout(&o).lines().count(), 1);

    let o = bin()
        .args(["sent", "list", "--node", "notaurl", "--token", "t"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(stdout(&o), "");
    assert!(stderr(&o).starts_with("error: "), "{}", stderr(&o));

    let o = bin()
        .args(["sent", "list", "--json", "--help"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("Usage:"), "{}", stdout(&o));
    let o = bin().arg("--version").output().unwrap();
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).starts_with("lienthong "), "{}", stdout(&o));
}

/// `lienthong verify x.edxml | head -1`: a reader that stops early closes the pipe; the command
/// ends quietly (status 0, nothing on stderr) instead of panicking on the broken pipe.
#[test]
fn a_closed_stdout_ends_a_command_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let o = bin()
        .args([
            "package",
            "new",
            "--from",
            "000.00.05.H21",
            "--to",
            "000.00.00.H41",
        ])
        .args([
            "--number",
            "7",
            "--notation",
            "STTTT-CĐS",
            "--subject",
            "V/v ống dẫn",
        ])
        .args(["--signer", "Nguyễn Văn Ánh", "-o"])
        .arg(d.join("p.edxml"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    lienthong_sign(&d.join("p.edxml"), &d.join("s.edxml"), "stttt-gialai");
    let root = pki("root-ca.cert.pem");
    let root = root.to_str().unwrap();
    let verify = ["verify", "--trust", root];
    let verify_json = ["verify", "--json", "--trust", root];
    for args in [&verify[..], &["inspect"][..], &verify_json[..]] {
        let mut child = bin()
            .args(args)
            .arg(d.join("s.edxml"))
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // The reader goes away before the command writes its answer.
        drop(child.stdout.take());
        let o = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert!(o.status.success(), "{args:?}: {:?} {err}", o.status);
    }
}
