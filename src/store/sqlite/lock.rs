//! One node per SQLite store: the exclusive lock a serving node holds for its whole life.
//!
//! At start the node takes back every delivery lease it finds and removes package files no row
//! names (`mod.rs`): both are right only if no other node process works on the same store. The
//! lock makes that true instead of assumed. It is an advisory `flock`-style lock on a file beside
//! the database (`<db>.lock`, holding the owner's process id for the error message), taken
//! before the store is opened and released by the operating system when the process ends, however
//! it ends — a crashed node never leaves a stale lock. Read-only users of the store (`audit
//! verify`, the CLI's registry commands) do not take it: SQLite itself keeps them consistent.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use sqlx::sqlite::SqliteConnectOptions;

use crate::error::{Code, Error, Result};

/// The held lock; dropping it (or the process ending) releases it.
#[derive(Debug)]
pub struct NodeLock {
    _file: File,
    path: PathBuf,
    db: PathBuf,
}

impl NodeLock {
    /// Locks the store at `url` for this process, or says which process holds it. `None` for an
    /// in-memory store (private to its process).
    pub fn acquire(url: &str) -> Result<Option<NodeLock>> {
        if super::is_in_memory(url) {
            return Ok(None);
        }
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| Error::store(Code::ValueInvalid, format!("store URL {url:?}: {e}")))?;
        let db = options.get_filename();
        let path = lock_path(db);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| Error::io(path.display().to_string(), e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                let who = if holder.is_empty() {
                    "another process".to_owned()
                } else {
                    format!("process {holder}")
                };
                return Err(Error::store(
                    Code::StoreUnavailable,
                    format!(
                        "the store {} is in use by another lienthong node ({who} holds {}): \
                         stop that node first, or give this one its own store",
                        db.display(),
                        path.display()
                    ),
                ));
            }
            Err(TryLockError::Error(e)) => {
                return Err(Error::io(path.display().to_string(), e));
            }
        }
        // Ours now: record who holds it (for the next one's message). Best effort.
        let _ = file.set_len(0);
        let _ = file.seek(SeekFrom::Start(0));
        let _ = writeln!(file, "{}", std::process::id());
        let _ = file.sync_all();
        Ok(Some(NodeLock {
            _file: file,
            path,
            db: db.to_path_buf(),
        }))
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The database file this lock is for: what start-up work that is only right for the
    /// store's one node (`SqliteStore::remove_orphan_package_files`, `take_back_leases`) checks
    /// its proof of holding the lock against.
    pub fn database(&self) -> &Path {
        &self.db
    }
}

fn lock_path(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_and_the_lock_is_free_once_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("node.db").display());
        let first = NodeLock::acquire(&url)
            .unwrap()
            .expect("a file store is locked");
        assert!(first.path().ends_with("node.db.lock"));
        let e = NodeLock::acquire(&url).expect_err("a second node is refused");
        assert_eq!(e.code(), Code::StoreUnavailable);
        let text = e.to_string();
        assert!(text.contains("in use by another lienthong node"), "{text}");
        assert!(
            text.contains(&format!("process {}", std::process::id())),
            "{text}"
        );
        drop(first);
        assert!(NodeLock::acquire(&url).unwrap().is_some());
        assert!(NodeLock::acquire("sqlite::memory:").unwrap().is_none());
    }
}
