//! `lienthong extract`: the attached files, unzipped, into a folder. It does not verify the
//! package: run `lienthong verify` first when the files are to be relied on.

use std::collections::HashSet;
use std::path::PathBuf;

use lienthong::Error;
use lienthong::edxml::{self, Package, ReadOptions};

use super::{CmdResult, read_file, write_file};

#[derive(clap::Args)]
pub struct Args {
    /// The package.
    input: PathBuf,
    /// The folder to write into (created if missing).
    #[arg(short = 'd', long = "dir")]
    dir: PathBuf,
}

pub fn run(a: Args) -> CmdResult {
    let bytes = read_file(&a.input)?;
    let package = edxml::read(&bytes, &ReadOptions::default())?;
    let Package::Document(doc) = package else {
        println!("a status package has no attachments");
        return Ok(());
    };
    std::fs::create_dir_all(&a.dir).map_err(|e| Error::io(a.dir.display().to_string(), e))?;
    let mut used = HashSet::new();
    for f in &doc.attachments {
        let name = unique(safe_name(&f.name), &mut used);
        let path = a.dir.join(&name);
        write_file(&path, &f.data)?;
        println!(
            "{}\t{}\t{} bytes",
            path.display(),
            f.content_type,
            f.data.len()
        );
    }
    Ok(())
}

/// A file name from a package is untrusted: keep only its last component, never `..` or a
/// hidden or empty name, so extraction cannot write outside the folder.
fn safe_name(name: &str) -> String {
    let last = name.rsplit(['/', '\\']).next().unwrap_or("");
    let cleaned: String = last
        .chars()
        .filter(|c| !c.is_control() && *c != ':')
        .collect();
    let cleaned = cleaned.trim().trim_start_matches('.').to_owned();
    if cleaned.is_empty() {
        "attachment".to_owned()
    } else {
        cleaned
    }
}

fn unique(name: String, used: &mut HashSet<String>) -> String {
    if used.insert(name.clone()) {
        return name;
    }
    let (stem, ext) = match name.rsplit_once('.') {
        Some((s, e)) => (s.to_owned(), format!(".{e}")),
        None => (name.clone(), String::new()),
    };
    (2..)
        .map(|i| format!("{stem} ({i}){ext}"))
        .find(|n| used.insert(n.clone()))
        .unwrap_or(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_cannot_escape_the_folder() {
        assert_eq!(safe_name("../../etc/passwd"), "passwd");
        assert_eq!(safe_name("C:\\Windows\\win.ini"), "win.ini");
        assert_eq!(safe_name(".."), "attachment");
        assert_eq!(safe_name(".bashrc"), "bashrc");
        assert_eq!(safe_name("Công văn 125.pdf"), "Công văn 125.pdf");
        let mut used = HashSet::new();
        assert_eq!(unique("a.pdf".into(), &mut used), "a.pdf");
        assert_eq!(unique("a.pdf".into(), &mut used), "a (2).pdf");
        assert!(!std::path::Path::new(&safe_name("/abs/x")).is_absolute());
    }
}
