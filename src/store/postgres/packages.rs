//! Packages in the database: inline below [`CHUNK`] bytes, in `package_chunks` rows above, and
//! this replica's local cache of large ones for streaming.
//!
//! Why chunks and not one `BYTEA`: a value is sent and received whole, so a 100 MB package
//! would be held two or three times over by the driver on its way in and out (and PostgreSQL
//! refuses a single value over 1 GB). As rows of [`CHUNK`] bytes:
//!
//! - **Writing** binds each chunk as a slice of the package the caller already holds (the `Vec`
//!   of `NewOutgoing`/`NewIncoming`): one chunk's copy at a time, never the package again. The
//!   chunks are inserted by the statement after the message row's (`package_chunks` refers to
//!   it), in the same write, so there is never a chunk without its row or a row without its
//!   chunks — nothing to clean up after a crash, unlike SQLite's package files.
//! - **Reading** whole ([`read`], for `message_bytes`): one query per chunk into one buffer of
//!   the package's size, checked against the row's SHA-256 (`STORE_CORRUPT`).
//! - **Streaming** ([`message_file`], for a push): the chunks are written one query at a time to
//!   a file in this replica's cache folder ([`Cache`]), hashed on the way; the transport then
//!   streams the file and checks the hash again as it goes.
//!
//! The cache holds copies only: files named by their SHA-256 (so replicas that share a folder
//! by mistake share identical files, no harm done), written under a temporary name, synced and
//! renamed, reused after checking their size. It is kept bounded: files not used for
//! [`MAX_IDLE`] are removed, and beyond [`MAX_TOTAL`] bytes the least recently used go first
//! (never one used in the last [`MIN_KEEP`], which a push may be reading: a push of a large
//! package takes seconds to minutes, and a file removed while open is still read to its end).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use sqlx::PgConnection;
use tokio::io::AsyncWriteExt as _;

use super::{CHUNK, PgStore, db_err, not_found};
use crate::error::{Code, Error, Result};
use crate::store::PackageFile;

/// A cached file not used for this long is removed.
pub(crate) const MAX_IDLE: Duration = Duration::from_secs(3600);
/// The most the cache folder holds before the least recently used files are removed.
pub(crate) const MAX_TOTAL: u64 = 4 * 1024 * 1024 * 1024;
/// A file used this recently is never removed (a push may be reading it).
pub(crate) const MIN_KEEP: Duration = Duration::from_secs(600);
/// The folder is swept at most this often (when a file is added to it).
const SWEEP_EVERY: Duration = Duration::from_secs(60);

const SUFFIX: &str = ".edxml";
const TMP: &str = ".tmp";

/// Whether a package of `len` bytes is stored as chunks.
pub(super) fn is_chunked(len: usize) -> bool {
    len >= CHUNK
}

/// How many chunks a package of `size` bytes has.
fn chunk_count(size: u64) -> u64 {
    size.div_ceil(CHUNK as u64)
}

/// Inserts `bytes` as the chunks of message `message_id`, inside the caller's write (after the
/// message row's insert). Each chunk is bound as a slice of `bytes`: nothing copies the whole
/// package.
pub(super) async fn insert_chunks(
    conn: &mut PgConnection,
    message_id: i64,
    bytes: &[u8],
) -> Result<()> {
    for (n, chunk) in bytes.chunks(CHUNK).enumerate() {
        let n = i32::try_from(n).map_err(|_| {
            Error::store(Code::ValueInvalid, "package: too large to store in chunks")
        })?;
        sqlx::query("INSERT INTO package_chunks (message_id, n, bytes) VALUES ($1, $2, $3)")
            .bind(message_id)
            .bind(n)
            .bind(chunk)
            .execute(&mut *conn)
            .await
            .map_err(db_err)?;
    }
    Ok(())
}

/// Chunk `n` of message `id` (`STORE_CORRUPT` when it is missing or not [`CHUNK`] bytes long,
/// but for the last one).
async fn chunk<'e, E>(conn: E, id: i64, n: u64, size: u64) -> Result<Vec<u8>>
where
    E: sqlx::PgExecutor<'e>,
{
    let index = i32::try_from(n).map_err(|_| corrupt(id, format!("chunk {n}: out of range")))?;
    let bytes: Option<Vec<u8>> =
        sqlx::query_scalar("SELECT bytes FROM package_chunks WHERE message_id = $1 AND n = $2")
            .bind(id)
            .bind(index)
            .fetch_optional(conn)
            .await
            .map_err(db_err)?;
    let bytes = bytes.ok_or_else(|| corrupt(id, format!("chunk {n} of the package is missing")))?;
    let expected = (size - n * CHUNK as u64).min(CHUNK as u64);
    if bytes.len() as u64 != expected {
        return Err(corrupt(
            id,
            format!(
                "chunk {n} of the package has {} bytes, {expected} expected",
                bytes.len()
            ),
        ));
    }
    Ok(bytes)
}

fn corrupt(id: i64, what: String) -> Error {
    Error::store(
        Code::StoreCorrupt,
        format!("message {id}: {what}: it was changed or damaged in the database"),
    )
}

/// The package of row `id` as read with its row — `(bytes, chunked, sha256, size)` — whole:
/// the inline bytes, or its chunks read one query each into one buffer, checked against the
/// row's SHA-256 whatever its size (`STORE_CORRUPT`): bytes edited or damaged in the database
/// are never handed on as the package.
pub(super) async fn read(
    store: &PgStore,
    id: i64,
    (bytes, chunked, sha256, size): (Vec<u8>, bool, String, i64),
) -> Result<Vec<u8>> {
    if !chunked {
        super::check_blob(id, &bytes, &sha256)?;
        return Ok(bytes);
    }
    let size = u64::try_from(size).map_err(|_| corrupt(id, format!("size {size}")))?;
    let capacity = usize::try_from(size).map_err(|_| corrupt(id, format!("size {size}")))?;
    let mut out = Vec::with_capacity(capacity);
    for n in 0..chunk_count(size) {
        out.extend_from_slice(&chunk(store.pool(), id, n, size).await?);
    }
    super::check_blob(id, &out, &sha256)?;
    Ok(out)
}

pub(super) async fn message_bytes(store: &PgStore, id: i64) -> Result<Vec<u8>> {
    let row: (Vec<u8>, bool, String, i64) =
        sqlx::query_as("SELECT bytes, chunked, sha256, size FROM messages WHERE id = $1")
            .bind(id)
            .fetch_optional(store.pool())
            .await
            .map_err(db_err)?
            .ok_or_else(|| not_found(format!("no message {id} on this node")))?;
    read(store, id, row).await
}

/// For a chunked package, a file of this replica's cache holding it (written now if the cache
/// has no complete copy), with the SHA-256 it must have; `None` for an inline one.
pub(super) async fn message_file(store: &PgStore, id: i64) -> Result<Option<PackageFile>> {
    let row: Option<(bool, String, i64)> =
        sqlx::query_as("SELECT chunked, sha256, size FROM messages WHERE id = $1")
            .bind(id)
            .fetch_optional(store.pool())
            .await
            .map_err(db_err)?;
    let Some((chunked, sha256, size)) = row else {
        return Err(not_found(format!("no message {id} on this node")));
    };
    if !chunked {
        return Ok(None);
    }
    let size = u64::try_from(size).map_err(|_| corrupt(id, format!("size {size}")))?;
    let path = store.cache.file(store, id, &sha256, size).await?;
    Ok(Some(PackageFile { path, sha256 }))
}

/// This replica's folder of local copies of large packages (see the module's doc).
#[derive(Debug, Clone)]
pub(crate) struct Cache {
    dir: PathBuf,
    /// When the folder was last swept.
    swept: Arc<Mutex<Option<Instant>>>,
}

fn unavailable(what: String, e: std::io::Error) -> Error {
    Error::store(Code::StoreUnavailable, format!("{what}: {e}"))
}

impl Cache {
    /// The cache in `dir`, or in `lienthong-package-cache` under the system's temporary folder.
    /// The folder is created when the first file is written to it.
    pub(crate) fn new(dir: Option<PathBuf>) -> Result<Cache> {
        let dir = dir.unwrap_or_else(|| std::env::temp_dir().join("lienthong-package-cache"));
        Ok(Cache {
            dir,
            swept: Arc::new(Mutex::new(None)),
        })
    }

    /// The folder.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// The cached copy of message `id`'s chunked package (`sha256`, `size` bytes): an existing
    /// file of that size (marked as used now), or one written from the chunks now.
    async fn file(&self, store: &PgStore, id: i64, sha256: &str, size: u64) -> Result<PathBuf> {
        // The name comes from the row: only a SHA-256 in hex may become a file name.
        if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(corrupt(id, format!("its SHA-256 {sha256:?} is not one")));
        }
        let path = self.dir.join(format!("{sha256}{SUFFIX}"));
        if let Ok(meta) = tokio::fs::metadata(&path).await
            && meta.len() == size
        {
            touch(&path).await;
            return Ok(path);
        }
        tokio::fs::create_dir_all(&self.dir)
            .await
            .map_err(|e| unavailable(format!("creating {}", self.dir.display()), e))?;
        let tmp = self
            .dir
            .join(format!("{sha256}.{}{TMP}", uuid::Uuid::new_v4().simple()));
        let written = write_chunks(store, id, sha256, size, &tmp).await;
        let renamed = match written {
            Ok(()) => tokio::fs::rename(&tmp, &path)
                .await
                .map_err(|e| unavailable(format!("renaming {}", tmp.display()), e)),
            Err(e) => Err(e),
        };
        if let Err(e) = renamed {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(e);
        }
        self.sweep_now_and_then().await;
        Ok(path)
    }

    /// Sweeps the folder unless it was swept in the last [`SWEEP_EVERY`].
    async fn sweep_now_and_then(&self) {
        {
            let mut swept = self.swept.lock().unwrap_or_else(|p| p.into_inner());
            if swept.is_some_and(|at| at.elapsed() < SWEEP_EVERY) {
                return;
            }
            *swept = Some(Instant::now());
        }
        let dir = self.dir.clone();
        let swept = tokio::task::spawn_blocking(move || sweep(&dir, SystemTime::now(), MAX_TOTAL))
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(e.to_string())));
        if let Err(e) = swept {
            tracing::warn!(dir = %self.dir.display(), error = %e, "cannot sweep the package cache");
        }
    }
}

/// Marks `path` as used now (its modification time), so the sweep keeps it.
async fn touch(path: &Path) {
    let path = path.to_owned();
    let _ = tokio::task::spawn_blocking(move || {
        std::fs::File::options()
            .write(true)
            .open(&path)
            .and_then(|f| f.set_modified(SystemTime::now()))
    })
    .await;
}

/// Writes message `id`'s chunks to `tmp`, one query per chunk, hashing them on the way, and
/// syncs it; `STORE_CORRUPT` unless they hash to `sha256`.
async fn write_chunks(store: &PgStore, id: i64, sha256: &str, size: u64, tmp: &Path) -> Result<()> {
    let io = |what: &str, e| unavailable(format!("{what} {}", tmp.display()), e);
    let mut file = tokio::fs::File::create(tmp)
        .await
        .map_err(|e| io("creating", e))?;
    let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    for n in 0..chunk_count(size) {
        let bytes = chunk(store.pool(), id, n, size).await?;
        ctx.update(&bytes);
        file.write_all(&bytes).await.map_err(|e| io("writing", e))?;
    }
    file.sync_all().await.map_err(|e| io("syncing", e))?;
    let actual = hex::encode(ctx.finish());
    if actual != sha256 {
        return Err(Error::store(
            Code::StoreCorrupt,
            format!(
                "message {id}: the package in the database has SHA-256 {actual}, but its row \
                 records {sha256}: it was changed or damaged in the database"
            ),
        ));
    }
    Ok(())
}

/// Removes from `dir` the files not used since [`MAX_IDLE`] before `now` (temporary files of
/// writers that died included), then the least recently used while the files add up to more
/// than `max_total` bytes, never one used in the last [`MIN_KEEP`]. Returns how many were
/// removed. Files of other names are left alone.
fn sweep(dir: &Path, now: SystemTime, max_total: u64) -> std::io::Result<usize> {
    let mut files: Vec<(SystemTime, u64, PathBuf)> = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !(name.ends_with(SUFFIX) || name.ends_with(TMP)) {
            continue;
        }
        let Ok(meta) = entry.metadata() else { continue };
        let used = meta.modified().unwrap_or(now);
        files.push((used, meta.len(), entry.path()));
    }
    let idle = |used: SystemTime| now.duration_since(used).unwrap_or_default();
    let mut removed = 0;
    let mut total: u64 = files.iter().map(|f| f.1).sum();
    // Oldest use first.
    files.sort_by_key(|f| f.0);
    for (used, len, path) in files {
        let stale = idle(used) >= MAX_IDLE;
        let over = total > max_total && idle(used) >= MIN_KEEP;
        if !(stale || over) {
            continue;
        }
        match std::fs::remove_file(&path) {
            Ok(()) => {
                total = total.saturating_sub(len);
                removed += 1;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn aged(dir: &Path, name: &str, len: usize, age: Duration, now: SystemTime) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, vec![1u8; len]).unwrap();
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(now - age)
            .unwrap();
        path
    }

    /// Idle files go, then the least recently used beyond the total, never a recent one nor a
    /// file the cache did not make.
    #[test]
    fn the_sweep_keeps_the_cache_bounded() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let now = SystemTime::now();
        let min = Duration::from_secs(60);
        let idle = aged(
            dir,
            &format!("{}{SUFFIX}", "a".repeat(64)),
            10,
            61 * min,
            now,
        );
        let dead_tmp = aged(
            dir,
            &format!("{}.x{TMP}", "b".repeat(64)),
            10,
            61 * min,
            now,
        );
        let old = aged(
            dir,
            &format!("{}{SUFFIX}", "c".repeat(64)),
            100,
            30 * min,
            now,
        );
        let recent = aged(dir, &format!("{}{SUFFIX}", "d".repeat(64)), 100, min, now);
        let fresh_tmp = aged(dir, &format!("{}.y{TMP}", "e".repeat(64)), 100, min, now);
        let other = aged(dir, "README", 10, 100 * min, now);
        assert_eq!(sweep(dir, now, 150).unwrap(), 3);
        for gone in [&idle, &dead_tmp, &old] {
            assert!(!gone.exists(), "{}", gone.display());
        }
        for kept in [&recent, &fresh_tmp, &other] {
            assert!(kept.exists(), "{}", kept.display());
        }
        // Over the total, but everything left was used within MIN_KEEP.
        assert_eq!(sweep(dir, now, 1).unwrap(), 0);
        assert_eq!(sweep(&dir.join("absent"), now, 1).unwrap(), 0);
    }

    #[test]
    fn packages_of_a_chunk_or_more_are_chunked() {
        assert!(!is_chunked(CHUNK - 1));
        assert!(is_chunked(CHUNK));
        assert_eq!(chunk_count(0), 0);
        assert_eq!(chunk_count(CHUNK as u64), 1);
        assert_eq!(chunk_count(CHUNK as u64 + 1), 2);
    }
}
