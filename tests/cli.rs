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
