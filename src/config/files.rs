//! Every file the configuration names, checked when it is loaded: that it is there, readable and
//! holds what its key says (PEM certificates, a private key that belongs to its certificate, CRLs,
//! a folder for the store), and that each `[[revocation.anchor]]` names an anchor those files hold. Without this a missing certificate surfaced at serve time under one
//! of four codes and without the key that named it; now it is a `CONFIG_INVALID` at its key
//! (`config.rs` places the key in the file).

use std::path::Path;
use std::str::FromStr;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::Config;

/// The key a problem is about (a path as in `span.rs`) and what is wrong.
pub(super) type Problem = (String, String);

/// Checks every named file of `c`, stopping at the first problem.
pub(super) fn check(c: &Config) -> Result<(), Problem> {
    let shown = |p: &Path| -> String {
        p.strip_prefix(&c.base_dir)
            .unwrap_or(p)
            .display()
            .to_string()
    };
    let at = |key: String, p: &Path, problem: String| (key, format!("{}: {problem}", shown(p)));

    store_folder(&c.node.store)
        .map_err(|(p, problem)| ("node.store".to_owned(), format!("{}: {problem}", shown(&p))))?;

    let mut trusted = crate::pki::TrustStore::new();
    for (i, p) in c.node.trust.iter().enumerate() {
        let key = format!("node.trust[{i}]");
        std::fs::metadata(p).map_err(|e| at(key.clone(), p, io_problem(&e)))?;
        trusted.merge(crate::pki::TrustStore::from_path(p).map_err(|e| {
            let text = e.to_string().replace(&p.display().to_string(), &shown(p));
            (key, text)
        })?);
    }
    anchor_policies_name_anchors(c, &trusted)?;
    for (i, p) in c.node.intermediates.iter().enumerate() {
        let key = format!("node.intermediates[{i}]");
        let pem = read(p).map_err(|e| at(key.clone(), p, e))?;
        certificates(&pem).map_err(|e| at(key.clone(), p, e))?;
        crate::pki::TrustStore::new()
            .add_intermediates_pem(&pem)
            .map_err(|e| at(key, p, e.problem))?;
    }

    for (i, a) in c.agencies.iter().enumerate() {
        let key = |k: &str| format!("agency[{i}].{k}");
        let key_pem = read(&a.key).map_err(|e| at(key("key"), &a.key, e))?;
        let cert_pem = read(&a.cert).map_err(|e| at(key("cert"), &a.cert, e))?;
        certificates(&cert_pem).map_err(|e| at(key("cert"), &a.cert, e))?;
        let chain_pem = match &a.chain {
            Some(p) => {
                let pem = read(p).map_err(|e| at(key("chain"), p, e))?;
                certificates(&pem).map_err(|e| at(key("chain"), p, e))?;
                Some(pem)
            }
            None => None,
        };
        crate::signer::KeyFileSigner::from_pem(&key_pem, &cert_pem, chain_pem.as_deref()).map_err(
            |e| match e {
                crate::Error::Key { what, problem } if what == "certificate" => {
                    at(key("cert"), &a.cert, problem)
                }
                crate::Error::Key { what, problem } if what == "chain" => match &a.chain {
                    Some(p) => at(key("chain"), p, problem),
                    None => (key("chain"), problem),
                },
                other => at(key("key"), &a.key, key_problem(other)),
            },
        )?;
    }

    if let Some(t) = &c.tls {
        let cert_pem = read(&t.cert).map_err(|e| at("tls.cert".into(), &t.cert, e))?;
        let mut chain = certificates(&cert_pem).map_err(|e| at("tls.cert".into(), &t.cert, e))?;
        if let Some(p) = &t.chain {
            let pem = read(p).map_err(|e| at("tls.chain".into(), p, e))?;
            chain.extend(certificates(&pem).map_err(|e| at("tls.chain".into(), p, e))?);
        }
        let key_pem = read(&t.key).map_err(|e| at("tls.key".into(), &t.key, e))?;
        let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| {
            at(
                "tls.key".into(),
                &t.key,
                format!("not a PEM private key: {e}"),
            )
        })?;
        rustls::sign::CertifiedKey::from_der(chain, key, &crate::transport::tls::provider())
            .map_err(|e| {
                let problem = match e {
                    rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch) => {
                        "does not belong to the certificate of tls.cert".to_owned()
                    }
                    other => format!("unusable with tls.cert: {other}"),
                };
                at("tls.key".into(), &t.key, problem)
            })?;
    }

    for (i, peer) in c.peers.iter().enumerate() {
        for (j, p) in peer.tls.ca.iter().enumerate() {
            let key = format!("peer[{i}].ca[{j}]");
            let pem = read(p).map_err(|e| at(key.clone(), p, e))?;
            certificates(&pem).map_err(|e| at(key, p, e))?;
        }
    }

    if let Some(m) = &c.mail {
        let smtp = m.smtp.as_ref().map(|s| ("smtp", &s.ca));
        let imap = m.imap.as_ref().map(|i| ("imap", &i.ca));
        for (side, cas) in smtp.into_iter().chain(imap) {
            for (j, p) in cas.iter().enumerate() {
                let key = format!("mail.{side}.ca[{j}]");
                let pem = read(p).map_err(|e| at(key.clone(), p, e))?;
                certificates(&pem).map_err(|e| at(key, p, e))?;
            }
        }
    }

    for (i, p) in c.revocation.crl_files.iter().enumerate() {
        let key = format!("revocation.crl_files[{i}]");
        let bytes = read(p).map_err(|e| at(key.clone(), p, e))?;
        crate::revocation::crl_sources(&bytes, &shown(p)).map_err(|e| (key, e.to_string()))?;
    }
    Ok(())
}

/// A `[[revocation.anchor]]` whose subject names no trust anchor would never apply: a typo
/// would leave a `require` policy unenforced without a word. Each must name one of the anchors
/// `node.trust` loaded (in either RDN order, as [`crate::pki::same_name`] compares them); the
/// refusal lists the anchors in the form `lienthong inspect` prints, to copy from.
fn anchor_policies_name_anchors(
    c: &Config,
    trusted: &crate::pki::TrustStore,
) -> Result<(), Problem> {
    for (i, a) in c.revocation.anchors.iter().enumerate() {
        if trusted
            .anchor_subjects()
            .any(|s| crate::pki::same_name(&a.subject, s))
        {
            continue;
        }
        let known: Vec<String> = trusted
            .anchor_subjects()
            .map(|s| format!("{s:?}"))
            .collect();
        let known = if known.is_empty() {
            "node.trust holds none".to_owned()
        } else {
            format!("those of node.trust are {}", known.join("; "))
        };
        return Err((
            format!("revocation.anchor[{i}].subject"),
            format!(
                "{:?} is not the subject of a trust anchor; {known}",
                a.subject
            ),
        ));
    }
    Ok(())
}

/// The folder a SQLite store is created in must be there (SQLite creates the file, never its
/// folder). In-memory stores have none.
fn store_folder(url: &str) -> Result<(), (std::path::PathBuf, String)> {
    // A PostgreSQL store is a server's: nothing to check on this machine before it is opened.
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(());
    }
    if url.contains(":memory:") || url.contains("mode=memory") {
        return Ok(());
    }
    let Ok(options) = sqlx::sqlite::SqliteConnectOptions::from_str(url) else {
        return Err((url.into(), "not a store URL (sqlite://PATH)".into()));
    };
    let db = options.get_filename();
    let folder = match db.parent() {
        Some(f) if !f.as_os_str().is_empty() => f,
        _ => return Ok(()),
    };
    match std::fs::metadata(folder) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err((folder.into(), "not a folder".into())),
        Err(e) => Err((
            folder.into(),
            format!(
                "{} (the store's folder must exist; it is not created)",
                io_problem(&e)
            ),
        )),
    }
}

fn read(p: &Path) -> Result<Vec<u8>, String> {
    if p.is_dir() {
        return Err("is a folder, not a file".into());
    }
    std::fs::read(p).map_err(|e| io_problem(&e))
}

fn io_problem(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => e.to_string(),
    }
}

/// The PEM certificates of `pem`: at least one, each a parsable X.509 certificate.
fn certificates(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("not PEM certificates: {e}"))?;
    if certs.is_empty() {
        return Err("holds no PEM certificate (-----BEGIN CERTIFICATE-----)".into());
    }
    for (i, c) in certs.iter().enumerate() {
        x509_parser::parse_x509_certificate(c)
            .map_err(|e| format!("certificate {} does not parse: {e}", i + 1))?;
    }
    Ok(certs)
}

fn key_problem(e: crate::Error) -> String {
    match e {
        crate::Error::Key { problem, .. } => problem,
        other => other.to_string(),
    }
}
