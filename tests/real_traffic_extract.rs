//! `lienthong extract` on packages other software wrote (`../shared/real-traffic/`, see its
//! README): every document package gives back the files its sender attached, byte for byte.
//!
//! The expected files come from an independent decoder, Python's `base64` and `zipfile`, with
//! the rule VNPT's and Bkav's readers apply: the attachment is unzipped when its decoded content
//! is a zip of one entry and its name does not end in `.zip`; otherwise it is taken as it is.
//! The corpus is not part of this repository: when it is absent the test says so loudly and
//! passes (there is nothing to check).

use std::path::{Path, PathBuf};
use std::process::Command;

/// Decodes the attachments of the package `argv[1]` into folder `argv[2]` as `0`, `1`, … in
/// manifest order, and prints a JSON list of `{name, unzipped, manifest_zip}`: whether it was
/// unzipped, and whether the manifest called it `application/zip`.
const PYTHON_DECODER: &str = r#"
import base64, io, json, os, re, sys, zipfile
import xml.etree.ElementTree as ET

def local(tag):
    return tag.rsplit('}', 1)[-1]

def child_text(el, name):
    for c in el:
        if local(c.tag) == name:
            return (c.text or '').strip()
    return None

root = ET.parse(sys.argv[1]).getroot()
# The manifest's references (not XML-DSig's `Reference`s in the signature).
refs = [r for m in root.iter() if local(m.tag) == 'edXMLManifest' for r in m if local(r.tag) == 'Reference']
atts = {child_text(e, 'ContentId'): e for e in root.iter() if local(e.tag) == 'Attachment'}
names = []
for i, r in enumerate(refs):
    cid = child_text(r, 'ContentId')
    a = atts[cid]
    name = child_text(r, 'AttachmentName') or child_text(a, 'AttachmentName')
    data = base64.b64decode(re.sub(r'\s', '', child_text(a, 'ContentTransferEncoded')))
    unzipped = False
    if data[:4] == b'PK\x03\x04' and not name.lower().endswith('.zip'):
        z = zipfile.ZipFile(io.BytesIO(data))
        if len(z.infolist()) == 1:
            data = z.read(z.infolist()[0])
            unzipped = True
    manifest_zip = (child_text(r, 'ContentType') or '').lower() == 'application/zip'
    with open(os.path.join(sys.argv[2], str(i)), 'wb') as f:
        f.write(data)
    names.append({'name': name, 'unzipped': unzipped, 'manifest_zip': manifest_zip})
print(json.dumps(names))
"#;

fn corpus() -> Option<PathBuf> {
    let dir = std::env::var_os("LIENTHONG_REAL_TRAFFIC")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/real-traffic"));
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!(
            "\n*** SKIPPED: real-traffic corpus not found at {} (set LIENTHONG_REAL_TRAFFIC) ***\n",
            dir.display()
        );
        None
    }
}

/// The document packages of the corpus: not the statuses, not the template.
fn document_packages(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy().into_owned();
            n.ends_with(".edxml") && !n.contains("-status-") && !n.contains("-template")
        })
        .collect();
    out.sort();
    out
}

fn extract(package: &Path, into: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_lienthong"))
        .arg("extract")
        .arg(package)
        .arg("-d")
        .arg(into)
        .arg("--json")
        .output()
        .unwrap()
}

/// What the independent decoder makes of `package`: one JSON object per file (see
/// [`PYTHON_DECODER`]), and the files in `into`.
fn expected(package: &Path, into: &Path) -> Vec<serde_json::Value> {
    std::fs::create_dir_all(into).unwrap();
    let o = Command::new("python3")
        .arg("-c")
        .arg(PYTHON_DECODER)
        .arg(package)
        .arg(into)
        .output()
        .expect("python3 runs");
    assert!(
        o.status.success(),
        "python3 on {}: {}",
        package.display(),
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).unwrap()
}

#[test]
fn extract_gives_back_what_the_sender_attached() {
    let Some(dir) = corpus() else { return };
    let packages = document_packages(&dir);
    assert!(
        packages.len() >= 6,
        "{} document packages in {}",
        packages.len(),
        dir.display()
    );
    let tmp = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    for (n, package) in packages.iter().enumerate() {
        let label = package.file_name().unwrap().to_string_lossy().into_owned();
        let want_dir = tmp.path().join(format!("want-{n}"));
        let names = expected(package, &want_dir);
        let out_dir = tmp.path().join(format!("got-{n}"));
        let o = extract(package, &out_dir);
        if !o.status.success() {
            failures.push(format!(
                "{label}: extract failed: {}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            ));
            continue;
        }
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let files = v["files"].as_array().unwrap();
        if files.len() != names.len() {
            failures.push(format!(
                "{label}: {} files extracted, {} attached",
                files.len(),
                names.len()
            ));
            continue;
        }
        for (i, (f, want)) in files.iter().zip(&names).enumerate() {
            let name = want["name"].as_str().unwrap();
            let original = f["renamed_from"].as_str().or(f["name"].as_str());
            assert_eq!(original, Some(name), "{label}: file {i}");
            // A zipped file the manifest calls application/zip: the label is flagged.
            if want["unzipped"] == true && want["manifest_zip"] == true {
                let flagged = v["warnings"].as_array().unwrap().iter().any(|w| {
                    w["kind"] == "attachment_label"
                        && w["path"].as_str().unwrap().contains("edXMLManifest")
                });
                assert!(flagged, "{label}: {name}: no attachment_label warning: {v}");
            }
            let got = std::fs::read(f["path"].as_str().unwrap()).unwrap();
            let want = std::fs::read(want_dir.join(i.to_string())).unwrap();
            if got != want {
                let zipped = got.starts_with(b"PK\x03\x04");
                failures.push(format!(
                    "{label}: {name:?}: {} bytes extracted{}, {} attached",
                    got.len(),
                    if zipped { " (still zipped)" } else { "" },
                    want.len()
                ));
            }
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

/// The kit's template is not well-formed: refused with a code, not a crash, nothing written.
#[test]
fn the_template_is_refused_cleanly() {
    let Some(dir) = corpus() else { return };
    let template = dir.join("vpcp-kit-edoc-template.edxml");
    assert!(template.is_file(), "{}", template.display());
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let o = extract(&template, &out);
    assert!(!o.status.success());
    assert_ne!(o.status.code(), Some(101), "a panic");
    let v: serde_json::Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&o.stdout)));
    assert_eq!(v["ok"], false, "{v}");
    assert!(v["code"].as_str().is_some_and(|c| !c.is_empty()), "{v}");
    assert!(
        !out.exists() || std::fs::read_dir(&out).unwrap().next().is_none(),
        "nothing written"
    );
}
