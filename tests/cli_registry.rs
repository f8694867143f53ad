//! `lienthong registry …` as an operator runs it: the real binary on a node configuration's
//! store — import (all or nothing, errors with their position), list, show, add, remove — and the
//! audit chain verifying afterwards.

mod common;

use std::path::Path;

use common::nodes::*;
use common::*;

/// The name of the user this test runs as, as `id -un` gives it.
fn os_user() -> String {
    let o = std::process::Command::new("id")
        .arg("-un")
        .output()
        .unwrap();
    assert!(o.status.success());
    String::from_utf8(o.stdout).unwrap().trim().to_owned()
}

fn registry(config: &Path, args: &[&str]) -> std::process::Output {
    bin()
        .arg("registry")
        .args(args)
        .arg("--config")
        .arg(config)
        .env("USER", "ops")
        .output()
        .unwrap()
}

#[test]
fn registry_commands_on_the_node_store() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let store = format!("sqlite://{}", d.join("node.db").display());
    let config = d.join("node.toml");
    std::fs::write(
        &config,
        node_table("nghean", "127.0.0.1:0", &store) + &nghean_agencies(),
    )
    .unwrap();
    // A new store's registry is empty, and `list` says so (as `admin registry list` does).
    let o = registry(&config, &["list"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "the registry is empty\n");

    let stttt_fp = cert_fingerprint(&pki("stttt-gialai.cert.pem"));
    let issuing_fp = cert_fingerprint(&pki("issuing-ca.cert.pem"));

    // A file whose second agency names a certificate issued to another agency: refused whole.
    let file = d.join("registry.toml");
    let good_agency = format!(
        "[[agency]]\ncode = \"{STTTT}\"\nname = \"Sở TT&TT\"\n[[agency.rule]]\nkind = \"certificate\"\npath = \"{}\"\n",
        pki("stttt-gialai.cert.pem").display()
    );
    std::fs::write(
        &file,
        good_agency.clone()
            + &format!(
                "[[agency]]\ncode = \"{SONV}\"\n[[agency.rule]]\nkind = \"certificate\"\npath = \"{}\"\n",
                pki("ubnd-gialai.cert.pem").display()
            ),
    )
    .unwrap();
    let o = registry(&config, &["import", file.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.starts_with("SENDER_NOT_AUTHORISED: ")
            && err.contains("agency[1].rule[0].path")
            && err.contains(UBND_GL),
        "{err}"
    );
    let o = registry(&config, &["list"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "the registry is empty\n",
        "a refused import wrote something"
    );

    // A TOML mistake: the line and column of the table it is in.
    std::fs::write(
        &file,
        format!(
            "[[agency]]\ncode = \"{SONV}\"\n[[agency.rule]]\nkind = \"fingerprint\"\nsha = \"ab\"\n"
        ),
    )
    .unwrap();
    let o = registry(&config, &["import", file.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("line 3, column 1") && err.contains("unknown field `sha`"),
        "{err}"
    );

    // The good file, plus a subject rule by issuer certificate file.
    std::fs::write(
        &file,
        good_agency
            + &format!(
                "[[agency]]\ncode = \"{SONV}\"\nname = \"Sở Nội vụ\"\n[[agency.rule]]\nkind = \"subject\"\nissuer_certificate = \"{}\"\nattribute = \"serialNumber\"\nvalue = \"{SONV}\"\n",
                pki("chain.pem").display()
            ),
    )
    .unwrap();
    let o = registry(&config, &["import", file.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        stdout(&o).trim(),
        "imported 2 agencies: 2 added, 0 replaced, 0 removed"
    );
    let o = registry(&config, &["show", STTTT, "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["rules"][0]["sha256"], stttt_fp.as_str());
    // The actor is the OS user the process runs as, never `$USER` (set to "ops" here).
    let me = os_user();
    assert_eq!(v["added_by"], format!("admin:{me}"));
    // Times as the admin API gives them: RFC 3339 UTC.
    let added_at = v["added_at"].as_str().unwrap();
    assert!(
        added_at.len() >= 20 && added_at.as_bytes()[10] == b'T' && added_at.ends_with('Z'),
        "{v}"
    );
    let o = registry(&config, &["list"]);
    let out = stdout(&o);
    assert!(
        out.contains(&format!("issuer_sha256 {issuing_fp}")),
        "{out}"
    );

    // add: a certificate of another agency is refused; by fingerprint it is appended.
    let o = registry(
        &config,
        &[
            "add",
            UBND_GL,
            "--cert",
            pki("stttt-gialai.cert.pem").to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).starts_with("SENDER_NOT_AUTHORISED: --cert"),
        "{}",
        stderr(&o)
    );
    let ubnd_fp = cert_fingerprint(&pki("ubnd-gialai.cert.pem"));
    let o = registry(&config, &["add", UBND_GL, "--fingerprint", &ubnd_fp]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o).trim(), format!("added {UBND_GL}: 1 rule(s)"));

    // remove one rule, then entries; an absent one is NOT_FOUND.
    let o = registry(&config, &["remove", SONV]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = registry(&config, &["remove", UBND_GL, "--fingerprint", &ubnd_fp]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = registry(&config, &["show", UBND_GL]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).starts_with("NOT_FOUND: "), "{}", stderr(&o));
    let o = registry(&config, &["list", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["items"].as_array().unwrap().len(), 1);

    // Every change is in the audit chain, which verifies.
    let o = bin()
        .args(["audit", "verify", "--store", &store])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).starts_with("audit chain OK: 6 records"),
        "{}",
        stdout(&o)
    );
    // No package stored: the size hashed is said in bytes, not rounded up to "1 MB".
    assert!(
        stdout(&o).contains("(0 bytes of packages hashed)"),
        "{}",
        stdout(&o)
    );

    // `--actor` names who a change is for; the OS user is kept. The audit record says both.
    let o = registry(
        &config,
        &["import", file.to_str().unwrap(), "--actor", "Nguyễn Văn A"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let o = bin()
        .args(["audit", "export", "--store", &store, "--format", "jsonl"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let last: serde_json::Value = serde_json::from_str(stdout(&o).lines().last().unwrap()).unwrap();
    assert_eq!(
        last["actor"],
        format!("admin:{me} as Nguyễn Văn A"),
        "{last}"
    );
    let o = registry(&config, &["remove", STTTT, "--actor", " "]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).starts_with("VALUE_INVALID: --actor"),
        "{}",
        stderr(&o)
    );

    // A configuration that cannot be read is a local problem: exit 3.
    let o = registry(&d.join("missing.toml"), &["list"]);
    assert_eq!(o.status.code(), Some(3));
}
