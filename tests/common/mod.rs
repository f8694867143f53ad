//! Shared helpers for the integration tests: the test PKI, external tools, hand-written packages.
#![allow(dead_code)] // each test binary uses a different subset

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use base64::Engine as _;

pub mod console;
pub mod corpus;
pub mod mail;
pub mod nodes;
pub mod oidc;
pub mod openapi;
pub mod store;
pub mod testca;
pub mod timed;

pub const EDXML_NS: &str = "http://www.mic.gov.vn/TBT/QCVN_102_2016";

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The names of the files in `dir`, sorted.
pub fn file_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// A file of the test PKI: committed (`certs/test-only/`), or, for the identities whose fault is
/// a date (`expired`, `not-yet-valid`), issued at test time ([`timed`]).
pub fn pki(name: &str) -> PathBuf {
    if timed::is_timed(name) {
        return timed::path(name);
    }
    root().join("certs/test-only").join(name)
}

/// The `lienthong` binary built for this test run.
pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_lienthong"))
}

/// An external tool the tests compare against. Missing is a failure, never a skip: the test
/// command (`scripts/test.sh`) installs it.
pub fn tool(name: &str, package: &str) -> Command {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file()))
        .unwrap_or(false);
    assert!(
        found,
        "{name} is not installed: run scripts/test.sh, or apt-get install {package}"
    );
    Command::new(name)
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs `lienthong verify --trust <test root> file` and returns (success, first stderr/stdout line).
pub fn lienthong_verify(file: &Path, extra: &[&str]) -> (bool, String) {
    let o = bin()
        .arg("verify")
        .arg("--trust")
        .arg(pki("root-ca.cert.pem"))
        .args(extra)
        .arg(file)
        .output()
        .expect("run lienthong");
    let line = if o.status.success() {
        stdout(&o)
    } else {
        stderr(&o)
    };
    (
        o.status.success(),
        line.lines().next().unwrap_or("").to_owned(),
    )
}

/// Runs `lienthong sign` with the given test identity (`stttt-gialai`, …), chain included.
pub fn lienthong_sign(input: &Path, output: &Path, who: &str) {
    let o = bin()
        .arg("sign")
        .arg("--key")
        .arg(pki(&format!("{who}.key.pem")))
        .arg("--cert")
        .arg(pki(&format!("{who}.cert.pem")))
        .arg("--chain")
        .arg(pki("chain.pem"))
        .arg(input)
        .arg("-o")
        .arg(output)
        .output()
        .expect("run lienthong sign");
    assert!(o.status.success(), "lienthong sign failed: {}", stderr(&o));
}

/// Runs `xmlsec1 --verify` trusting only the test root; returns (success, output).
pub fn xmlsec_verify(file: &Path, extra: &[&str]) -> (bool, String) {
    let o = tool("xmlsec1", "xmlsec1")
        .arg("--verify")
        .arg("--trusted-pem")
        .arg(pki("root-ca.cert.pem"))
        .args(extra)
        .arg(file)
        .output()
        .expect("run xmlsec1");
    (o.status.success(), format!("{}{}", stdout(&o), stderr(&o)))
}

/// A file to attach: name, MIME type, content.
pub struct File<'a> {
    pub name: &'a str,
    pub mime: &'a str,
    pub data: &'a [u8],
}

/// Knobs for a hand-written package, so tests can vary the XML without the writer normalising it.
pub struct Shape<'a> {
    /// Text before `<edXML` (XML declaration, BOM, comments).
    pub prolog: &'a str,
    /// Prefix for edXML elements (`""` for the default namespace).
    pub prefix: &'a str,
    /// Extra content placed just inside `MessageHeader` (comments, CDATA, …).
    pub extra_header: &'a str,
    pub subject: &'a str,
    pub files: &'a [File<'a>],
    /// Line end between elements (`"\n"` or `"\r\n"`).
    pub eol: &'a str,
    /// Declare the namespace on the envelope rather than the root.
    pub ns_on_envelope: bool,
}

impl Default for Shape<'_> {
    fn default() -> Self {
        Shape {
            prolog: "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n",
            prefix: "",
            extra_header: "",
            subject: "V/v triển khai Nền tảng tích hợp, chia sẻ dữ liệu tỉnh Gia Lai",
            files: &[],
            eol: "\n",
            ns_on_envelope: false,
        }
    }
}

/// Writes an unsigned document package by hand (not with the library's writer).
pub fn package(s: &Shape) -> String {
    let p = if s.prefix.is_empty() {
        String::new()
    } else {
        format!("{}:", s.prefix)
    };
    let decl = if s.prefix.is_empty() {
        format!("xmlns=\"{EDXML_NS}\"")
    } else {
        format!("xmlns:{}=\"{EDXML_NS}\"", s.prefix)
    };
    let (root_decl, env_decl) = if s.ns_on_envelope {
        (String::new(), format!(" {decl}"))
    } else {
        (format!(" {decl}"), String::new())
    };
    let n = s.eol;
    let mut x = String::new();
    x.push_str(s.prolog);
    // With the namespace on the envelope the root would be outside it; declare it on the root too
    // under another prefix so the root stays edXML.
    if s.ns_on_envelope {
        x.push_str(&format!("<r:edXML xmlns:r=\"{EDXML_NS}\">{n}"));
    } else {
        x.push_str(&format!("<{p}edXML{root_decl}>{n}"));
    }
    let org = |tag: &str, id: &str, name: &str| {
        format!(
            "<{p}{tag}><{p}OrganId>{id}</{p}OrganId><{p}OrganName>{name}</{p}OrganName></{p}{tag}>"
        )
    };
    x.push_str(&format!(
        "<{p}edXMLEnvelope{env_decl}>{n}<{p}edXMLHeader>{n}<{p}MessageHeader>{n}"
    ));
    x.push_str(s.extra_header);
    x.push_str(&org(
        "From",
        "000.00.05.H21",
        "Sở Thông tin và Truyền thông tỉnh Gia Lai",
    ));
    x.push_str(n);
    x.push_str(&org("To", "000.00.00.H41", "Ủy ban nhân dân tỉnh Nghệ An"));
    x.push_str(n);
    x.push_str(&format!(
        "<{p}DocumentId>000.00.05.H21,2026/11/25,125/STTTT-CĐS</{p}DocumentId>{n}\
         <{p}Code><{p}CodeNumber>125</{p}CodeNumber><{p}CodeNotation>STTTT-CĐS</{p}CodeNotation></{p}Code>{n}\
         <{p}PromulgationInfo><{p}Place>Gia Lai</{p}Place><{p}PromulgationDate>2026/11/25</{p}PromulgationDate></{p}PromulgationInfo>{n}\
         <{p}DocumentType><{p}Type>1</{p}Type><{p}TypeName>Công văn</{p}TypeName></{p}DocumentType>{n}\
         <{p}Subject>{}</{p}Subject>{n}\
         <{p}SignerInfo><{p}Competence>KT. GIÁM ĐỐC</{p}Competence><{p}Position>Phó Giám đốc</{p}Position><{p}FullName>Nguyễn Văn Ánh</{p}FullName></{p}SignerInfo>{n}",
        s.subject
    ));
    x.push_str(&format!("</{p}MessageHeader>{n}</{p}edXMLHeader>{n}<{p}edXMLBody>{n}<{p}edXMLManifest version=\"1.0\">{n}"));
    for (i, f) in s.files.iter().enumerate() {
        x.push_str(&format!(
            "<{p}Reference><{p}ContentId>cid:00000000-0000-4000-8000-{i:012}</{p}ContentId><{p}ContentType>{}</{p}ContentType><{p}Description>{}</{p}Description><{p}AttachmentName>{}</{p}AttachmentName></{p}Reference>{n}",
            f.mime, f.name, f.name
        ));
    }
    x.push_str(&format!(
        "</{p}edXMLManifest>{n}</{p}edXMLBody>{n}</{p}edXMLEnvelope>{n}"
    ));
    if !s.files.is_empty() {
        x.push_str(&format!("<{p}AttachmentEncoded{env_decl}>{n}"));
        for (i, f) in s.files.iter().enumerate() {
            let b64 = base64::engine::general_purpose::STANDARD.encode(f.data);
            x.push_str(&format!(
                "<{p}Attachment><{p}ContentId>cid:00000000-0000-4000-8000-{i:012}</{p}ContentId><{p}AttachmentName>{}</{p}AttachmentName><{p}Description>{}</{p}Description><{p}ContentType>{}</{p}ContentType><{p}ContentTransferEncoded>{b64}</{p}ContentTransferEncoded></{p}Attachment>{n}",
                f.name, f.name, f.mime
            ));
        }
        x.push_str(&format!("</{p}AttachmentEncoded>{n}"));
    }
    if s.ns_on_envelope {
        x.push_str("</r:edXML>\n");
    } else {
        x.push_str(&format!("</{p}edXML>\n"));
    }
    x
}
