//! Large packages as files beside the database instead of BLOBs.
//!
//! A package of [`FILE_THRESHOLD`] bytes or more is written to its own file in the folder
//! `<database>.packages/` and its `messages` row names the file (`file`, with an empty `bytes`).
//! Small packages stay in SQLite, where they are cheapest. Why: a BLOB is copied on its way in
//! (the driver's argument, then SQLite's bind) and on its way out (SQLite's buffer, then the
//! driver's `Vec`), so a 130 MB package cost the node three or four copies of itself in memory;
//! a file is written from, and read into, one buffer.
//!
//! Durability keeps invariant 1 (nothing is acknowledged before it is committed): the file is
//! written under a temporary name, synced, renamed and its folder synced *before* the
//! transaction whose row names it is queued, so a committed row always has its file. A crash (or
//! a refused write) between the two leaves a file no row names: [`PackageFiles::clean`] removes
//! those when the node starts, before it serves (`SqliteStore::remove_orphan_package_files`;
//! never from another process, which could take a file of a write still in flight for an
//! orphan). A row never points at a missing file.

use std::collections::HashSet;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{Code, Error, Result};
use crate::store::{PackageFile, SignedPackage};

/// Packages of this size or more are kept as files.
pub const FILE_THRESHOLD: usize = 1024 * 1024;

/// The suffix of a package file; `.tmp` is added while it is written.
const SUFFIX: &str = ".edxml";
const TMP: &str = ".tmp";

/// The folder of package files of one database.
#[derive(Debug, Clone)]
pub struct PackageFiles {
    dir: Arc<PathBuf>,
}

fn unavailable(what: String, e: std::io::Error) -> Error {
    Error::store(Code::StoreUnavailable, format!("{what}: {e}"))
}

impl PackageFiles {
    /// The folder beside the database file `db`: `<db>.packages`.
    pub fn beside(db: &Path) -> PackageFiles {
        let mut name = db.as_os_str().to_owned();
        name.push(".packages");
        PackageFiles {
            dir: Arc::new(PathBuf::from(name)),
        }
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes `package`'s bytes to a new file, durably, when they are large enough to be kept as
    /// a file; the file's name is what the row stores. `None`: they stay a BLOB. The bytes stay
    /// in `package` (the row still records their size and hash).
    pub async fn spill(&self, package: &mut SignedPackage) -> Result<Option<String>> {
        if package.bytes.len() < FILE_THRESHOLD {
            return Ok(None);
        }
        let name = format!("{}{SUFFIX}", uuid::Uuid::new_v4().simple());
        let dir = self.dir.clone();
        let bytes = std::mem::take(&mut package.bytes);
        let (bytes, written) = tokio::task::spawn_blocking(move || {
            let r = write_durably(&dir, &name, &bytes).map(|()| name);
            (bytes, r)
        })
        .await
        .map_err(|e| Error::store(Code::StoreUnavailable, format!("writing a package: {e}")))?;
        package.bytes = bytes;
        if written.is_ok() {
            crate::fault::crash(crate::fault::Point::PackageSynced);
        }
        written.map(Some)
    }

    /// The bytes of the package file `name`, checked against `sha256` (lowercase hex, as its row
    /// holds it): a file changed or damaged on disk is `STORE_CORRUPT`, never handed on as the
    /// package. Read and hashed on a blocking thread (a large file takes tens of milliseconds).
    pub async fn read(&self, name: &str, sha256: &str) -> Result<Vec<u8>> {
        let file = PackageFile {
            path: self.path(name)?,
            sha256: sha256.to_owned(),
        };
        tokio::task::spawn_blocking(move || {
            let bytes = std::fs::read(&file.path)
                .map_err(|e| unavailable(format!("reading {}", file.path.display()), e))?;
            file.check(&super::sha256_hex(&bytes))?;
            Ok(bytes)
        })
        .await
        .map_err(|e| Error::store(Code::StoreUnavailable, format!("reading a package: {e}")))?
    }

    /// The SHA-256 (lowercase hex) of the package file `name`, read in 1 MiB chunks on a
    /// blocking thread (never whole in memory); `Err` says why it cannot be read. For the
    /// cross-check of `audit verify`, which reports rather than refuses.
    pub async fn sha256_of(&self, name: &str) -> std::result::Result<String, String> {
        let path = self.path(name).map_err(|e| e.to_string())?;
        tokio::task::spawn_blocking(move || {
            use std::io::Read as _;
            let what = |e: std::io::Error| format!("{}: {e}", path.display());
            let mut f = std::fs::File::open(&path).map_err(what)?;
            let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
            let mut buf = vec![0u8; 1024 * 1024];
            loop {
                let n = f.read(&mut buf).map_err(what)?;
                if n == 0 {
                    break;
                }
                ctx.update(&buf[..n]);
            }
            Ok(hex::encode(ctx.finish()))
        })
        .await
        .map_err(|e| format!("reading a package: {e}"))?
    }

    /// Removes the file `name` of a write that did not commit (best effort: what is left is an
    /// orphan, removed at the next start).
    pub async fn discard(&self, name: &str) {
        if let Ok(path) = self.path(name)
            && let Err(e) = tokio::fs::remove_file(&path).await
        {
            tracing::warn!(file = %path.display(), error = %e, "cannot remove an unused package file");
        }
    }

    /// Creates the folder if needed and removes every file in it that `referenced` does not name
    /// (packages written for a transaction that never committed, half-written temporary files).
    /// Returns how many were removed. Run when the node starts, before anything writes.
    pub fn clean(&self, referenced: &HashSet<String>) -> Result<usize> {
        let dir = self.dir.as_path();
        std::fs::create_dir_all(dir)
            .map_err(|e| unavailable(format!("creating {}", dir.display()), e))?;
        let entries = std::fs::read_dir(dir)
            .map_err(|e| unavailable(format!("listing {}", dir.display()), e))?;
        let mut removed = 0;
        for entry in entries {
            let entry = entry.map_err(|e| unavailable(format!("listing {}", dir.display()), e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let ours = name.ends_with(SUFFIX) || name.ends_with(TMP);
            if !ours || referenced.contains(&name) {
                continue;
            }
            let path = entry.path();
            std::fs::remove_file(&path)
                .map_err(|e| unavailable(format!("removing {}", path.display()), e))?;
            tracing::info!(file = %path.display(), "removed a package file no message names");
            removed += 1;
        }
        Ok(removed)
    }

    /// The path of `name`, which must be a plain file name this module made.
    pub fn path(&self, name: &str) -> Result<PathBuf> {
        let plain = name.ends_with(SUFFIX)
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
            && !name.starts_with('.');
        if !plain {
            return Err(Error::store(
                Code::StoreUnavailable,
                format!("the store names a package file {name:?} it cannot have written"),
            ));
        }
        Ok(self.dir.join(name))
    }
}

/// `dir/name.tmp` written and synced, renamed to `dir/name`, and `dir` synced, so that once this
/// returns the file survives a crash under its final name.
fn write_durably(dir: &Path, name: &str, bytes: &[u8]) -> Result<()> {
    let tmp = dir.join(format!("{name}{TMP}"));
    let path = dir.join(name);
    let io = |what: &str, p: &Path, e| unavailable(format!("{what} {}", p.display()), e);
    std::fs::create_dir_all(dir).map_err(|e| io("creating", dir, e))?;
    let mut f = std::fs::File::create(&tmp).map_err(|e| io("creating", &tmp, e))?;
    f.write_all(bytes).map_err(|e| io("writing", &tmp, e))?;
    f.sync_all().map_err(|e| io("syncing", &tmp, e))?;
    drop(f);
    std::fs::rename(&tmp, &path).map_err(|e| io("renaming", &tmp, e))?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io("syncing", dir, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn package(len: usize) -> SignedPackage {
        SignedPackage {
            bytes: vec![7u8; len],
            signer_subject: None,
            signer_fingerprint: None,
            header_json: "{}".into(),
            signed_content: None,
            channel: None,
        }
    }

    use super::super::sha256_hex as sha;

    #[tokio::test]
    async fn large_packages_become_files_small_ones_do_not() {
        let tmp = tempfile::tempdir().unwrap();
        let files = PackageFiles::beside(&tmp.path().join("node.db"));
        assert_eq!(files.dir(), tmp.path().join("node.db.packages"));
        let mut small = package(FILE_THRESHOLD - 1);
        assert_eq!(files.spill(&mut small).await.unwrap(), None);
        let mut large = package(FILE_THRESHOLD);
        let name = files.spill(&mut large).await.unwrap().unwrap();
        assert_eq!(
            large.bytes.len(),
            FILE_THRESHOLD,
            "the bytes stay with the caller"
        );
        let hash = sha(&large.bytes);
        assert_eq!(files.read(&name, &hash).await.unwrap(), large.bytes);
        // No temporary file is left behind.
        let left: Vec<_> = std::fs::read_dir(files.dir()).unwrap().collect();
        assert_eq!(left.len(), 1);
        for bad in ["../node.db", "x", "a/b.edxml", ".edxml"] {
            assert!(files.read(bad, &hash).await.is_err(), "{bad}");
        }
    }

    /// A file that no longer has the SHA-256 its row records is never read back as the package:
    /// one byte changed, a byte cut off the end or added to it.
    #[tokio::test]
    async fn a_changed_file_is_store_corrupt() {
        let tmp = tempfile::tempdir().unwrap();
        let files = PackageFiles::beside(&tmp.path().join("node.db"));
        let mut large = package(FILE_THRESHOLD);
        let name = files.spill(&mut large).await.unwrap().unwrap();
        let hash = sha(&large.bytes);
        let path = files.path(&name).unwrap();
        let mut flipped = large.bytes.clone();
        flipped[FILE_THRESHOLD / 2] ^= 1;
        let mut longer = large.bytes.clone();
        longer.push(b'\n');
        for changed in [flipped, large.bytes[..FILE_THRESHOLD - 1].to_vec(), longer] {
            std::fs::write(&path, &changed).unwrap();
            let e = files.read(&name, &hash).await.unwrap_err();
            assert_eq!(e.code(), Code::StoreCorrupt, "{e}");
            assert!(e.to_string().contains(&hash), "{e}");
        }
        std::fs::write(&path, &large.bytes).unwrap();
        assert_eq!(files.read(&name, &hash).await.unwrap(), large.bytes);
    }

    #[tokio::test]
    async fn clean_removes_what_no_row_names() {
        let tmp = tempfile::tempdir().unwrap();
        let files = PackageFiles::beside(&tmp.path().join("node.db"));
        let kept = files
            .spill(&mut package(FILE_THRESHOLD))
            .await
            .unwrap()
            .unwrap();
        let orphan = files
            .spill(&mut package(FILE_THRESHOLD))
            .await
            .unwrap()
            .unwrap();
        std::fs::write(files.dir().join("half.edxml.tmp"), b"x").unwrap();
        std::fs::write(files.dir().join("README"), b"not ours").unwrap();
        let referenced = HashSet::from([kept.clone()]);
        assert_eq!(files.clean(&referenced).unwrap(), 2);
        let hash = sha(&package(FILE_THRESHOLD).bytes);
        assert!(files.read(&kept, &hash).await.is_ok());
        assert!(files.read(&orphan, &hash).await.is_err());
        assert!(files.dir().join("README").exists());
        assert_eq!(files.clean(&referenced).unwrap(), 0);
    }
}
