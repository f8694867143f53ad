//! `lienthong extract`: the attached files, unzipped, into a folder. It does not verify the
//! package: run `lienthong verify` first when the files are to be relied on.
//!
//! What each file is is decided by its content, not its labels (`edxml::attachment`): a
//! one-file wrapper is unzipped, a `.zip` or a `.docx` sent as it is stays as it is. Where the
//! package's labels disagree, the reader's warnings say so: on stderr (`warning: …`), or as
//! `warnings` with `--json`.
//!
//! Names come from the package and are untrusted: each is made safe by
//! [`lienthong::edxml::file_name`] (no path, no control or bidirectional characters, no name
//! Windows reserves, at most 255 bytes, collisions numbered) and every rename is reported. A
//! file that cannot be written does not stop the others: all are tried, then the command fails.

use std::path::PathBuf;

use lienthong::Error;
use lienthong::edxml::file_name::SafeNames;
use lienthong::edxml::{self, Package, ReadOptions};
use serde::Serialize;

use super::{CmdResult, Failure, read_file, write_file};

#[derive(clap::Args)]
pub struct Args {
    /// The package.
    input: PathBuf,
    /// The folder to write into (created if missing).
    #[arg(short = 'd', long = "dir")]
    dir: PathBuf,
    /// One JSON object on stdout: the files written, each with its original name when renamed.
    #[arg(long)]
    pub json: bool,
}

/// One attachment as extracted.
#[derive(Serialize)]
struct Extracted {
    /// The file written (folder and safe name).
    path: String,
    /// The safe name it was written under.
    name: String,
    /// The name in the package, when it differs from `name`.
    #[serde(skip_serializing_if = "Option::is_none")]
    renamed_from: Option<String>,
    content_type: String,
    size: usize,
    /// Why the file could not be written (the others still are).
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

pub fn run(a: Args) -> CmdResult {
    let bytes = read_file("", &a.input)?;
    let package = edxml::read(&bytes, &ReadOptions::default())?;
    let Package::Document(doc) = package else {
        if a.json {
            outln!("{}", serde_json::json!({ "ok": true, "files": [] }));
        } else {
            outln!("a status package has no attachments");
        }
        return Ok(());
    };
    if !a.json {
        for w in &doc.warnings {
            let kind = serde_json::to_value(w.kind).unwrap_or_default();
            eprintln!(
                "warning ({}): {}: {}",
                kind.as_str().unwrap_or("?"),
                w.path,
                shown(&w.message)
            );
        }
    }
    std::fs::create_dir_all(&a.dir).map_err(|e| Error::io(a.dir.display().to_string(), e))?;
    let mut names = SafeNames::new();
    let mut first_error = None;
    let mut files = Vec::with_capacity(doc.attachments.len());
    for f in &doc.attachments {
        let name = names.name(&f.name);
        let path = a.dir.join(&name);
        let error = match write_file("--dir", &path, &f.data) {
            Ok(()) => None,
            Err(e) => {
                let text = format!("{}: {e}", e.code());
                first_error.get_or_insert(e);
                Some(text)
            }
        };
        let x = Extracted {
            path: path.display().to_string(),
            renamed_from: (name != f.name).then(|| f.name.clone()),
            name,
            content_type: f.content_type.clone(),
            size: f.data.len(),
            error,
        };
        if !a.json {
            print_line(&x);
        }
        files.push(x);
    }
    if a.json {
        let renamed = files.iter().filter(|f| f.renamed_from.is_some()).count();
        let mut v = serde_json::json!({
            "ok": first_error.is_none(),
            "files": files,
            "renamed": renamed,
            "warnings": doc.warnings,
        });
        if let Some(e) = &first_error {
            v["code"] = serde_json::json!(e.code());
            v["message"] = serde_json::json!(e.to_string());
        }
        outln!("{v}");
        if first_error.is_some() {
            return Err(Failure::ReportedLocal);
        }
    }
    match first_error {
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
}

/// `path<TAB>type<TAB>N bytes`, then `<TAB>renamed from "…"` (escaped, so a bidirectional
/// override in the original shows as `\u{202e}` instead of reordering the terminal line), or
/// the error on stderr.
fn print_line(x: &Extracted) {
    if let Some(e) = &x.error {
        eprintln!("{}: not written: {e}", x.path);
        return;
    }
    let mut line = format!("{}\t{}\t{} bytes", x.path, x.content_type, x.size);
    if let Some(orig) = &x.renamed_from {
        line.push_str(&format!("\trenamed from \"{}\"", orig.escape_debug()));
    }
    outln!("{line}");
}

/// `text` with control and bidirectional characters written as `\u{…}` (a package's text must
/// not reorder or rewrite the terminal line), everything else as it is.
fn shown(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}') {
                c.escape_unicode().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}
