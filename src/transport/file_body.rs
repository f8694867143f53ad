//! A package the store keeps as a file, as an HTTP body: the push to a peer and the clerk's
//! download both stream it in chunks instead of reading it whole (a 100 MB package would
//! otherwise be in memory once per request), and both check it against the SHA-256 its row
//! records.

use std::sync::{Arc, Mutex};

use crate::store::PackageFile;

/// A file as an HTTP body, read in chunks of [`FileBody::CHUNK`] bytes, with its exact length
/// (so the request carries a `Content-Length`), hashed as it goes and checked before its last
/// chunk is given out.
pub struct FileBody {
    file: tokio::fs::File,
    remaining: u64,
    package: PackageFile,
    sha256: aws_lc_rs::digest::Context,
    /// Where a mismatch is reported to the body's sender
    /// ([`PeerClient::push_file`](super::peer::PeerClient::push_file)).
    corrupt: Arc<Mutex<Option<crate::Error>>>,
}

impl FileBody {
    /// Bytes read (and sent) at a time.
    pub const CHUNK: usize = 256 * 1024;

    /// Opens `file`; a mismatch found while reading is also put in `corrupt`, so the sender of
    /// the body can tell it from a network failure.
    pub async fn open(
        file: &PackageFile,
        corrupt: Arc<Mutex<Option<crate::Error>>>,
    ) -> std::io::Result<FileBody> {
        let f = tokio::fs::File::open(&file.path).await?;
        let remaining = f.metadata().await?.len();
        Ok(FileBody {
            file: f,
            remaining,
            package: file.clone(),
            sha256: aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256),
            corrupt,
        })
    }
}

impl axum::body::HttpBody for FileBody {
    type Data = axum::body::Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        use std::task::Poll;
        use tokio::io::AsyncRead;
        if self.remaining == 0 {
            return Poll::Ready(None);
        }
        let want = usize::try_from(self.remaining).map_or(Self::CHUNK, |r| r.min(Self::CHUNK));
        let mut buf = vec![0u8; want];
        let mut read = tokio::io::ReadBuf::new(&mut buf);
        match std::pin::Pin::new(&mut self.file).poll_read(cx, &mut read) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(e)) => Poll::Ready(Some(Err(e))),
            Poll::Ready(Ok(())) => {
                let n = read.filled().len();
                if n == 0 {
                    // Shorter than when it was opened: a body that stops early is an error, not
                    // a truncated package.
                    return Poll::Ready(Some(Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "the package file is shorter than its length",
                    ))));
                }
                self.remaining -= n as u64;
                buf.truncate(n);
                self.sha256.update(&buf);
                if self.remaining == 0 {
                    let actual = hex::encode(self.sha256.clone().finish());
                    if let Err(e) = self.package.check(&actual) {
                        let message = e.to_string();
                        if let Ok(mut c) = self.corrupt.lock() {
                            *c = Some(e);
                        }
                        return Poll::Ready(Some(Err(std::io::Error::other(message))));
                    }
                }
                Poll::Ready(Some(Ok(hyper::body::Frame::data(buf.into()))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        hyper::body::SizeHint::with_exact(self.remaining)
    }
}

/// Reads `file` through once, in chunks, and checks it against its recorded SHA-256
/// (`STORE_CORRUPT`), before a response that cannot be taken back once its first bytes are sent
/// starts. Constant memory; on a blocking thread.
pub async fn check(file: &PackageFile) -> crate::Result<()> {
    let file = file.clone();
    tokio::task::spawn_blocking(move || {
        use std::io::Read as _;
        let unavailable = |e: std::io::Error| {
            crate::Error::store(
                crate::Code::StoreUnavailable,
                format!("reading {}: {e}", file.path.display()),
            )
        };
        let mut f = std::fs::File::open(&file.path).map_err(unavailable)?;
        let mut sha256 = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
        let mut buf = vec![0u8; FileBody::CHUNK];
        loop {
            let n = f.read(&mut buf).map_err(unavailable)?;
            if n == 0 {
                break;
            }
            sha256.update(&buf[..n]);
        }
        file.check(&hex::encode(sha256.finish()))
    })
    .await
    .map_err(|e| crate::Error::internal("checking a package file", e.to_string()))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_file_body_is_the_file_in_chunks_with_its_length() {
        use axum::body::HttpBody as _;
        use http_body_util::BodyExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.edxml");
        let data: Vec<u8> = (0..FileBody::CHUNK * 2 + 17).map(|i| i as u8).collect();
        std::fs::write(&path, &data).unwrap();
        let file = PackageFile {
            path: path.clone(),
            sha256: hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &data)),
        };
        let corrupt = Arc::new(Mutex::new(None));
        let body = FileBody::open(&file, corrupt.clone()).await.unwrap();
        assert_eq!(body.size_hint().exact(), Some(data.len() as u64));
        let got = body.collect().await.unwrap().to_bytes();
        assert!(got.as_ref() == data.as_slice());
        assert!(corrupt.lock().unwrap().is_none());

        // A file changed on disk: every chunk but the last goes out, then the body fails, so
        // the peer never receives a whole package; the push learns why.
        let mut changed = data.clone();
        changed[FileBody::CHUNK + 5] ^= 0x20;
        std::fs::write(&path, &changed).unwrap();
        let mut body = FileBody::open(&file, corrupt.clone()).await.unwrap();
        let mut sent = 0;
        let failed = loop {
            match body.frame().await {
                Some(Ok(frame)) => sent += frame.into_data().unwrap().len(),
                Some(Err(e)) => break e,
                None => panic!("the whole changed file was sent"),
            }
        };
        assert_eq!(sent, FileBody::CHUNK * 2);
        assert!(
            failed.to_string().contains("changed or damaged"),
            "{failed}"
        );
        let reported = corrupt.lock().unwrap().take().unwrap();
        assert_eq!(reported.code(), crate::Code::StoreCorrupt);

        // A file cut short after it was opened is an error, not a shorter package.
        std::fs::write(&path, &data).unwrap();
        let body = FileBody::open(&file, corrupt.clone()).await.unwrap();
        std::fs::write(&path, &data[..10]).unwrap();
        assert!(body.collect().await.is_err());
    }

    #[tokio::test]
    async fn check_reads_the_file_through_against_its_hash() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.edxml");
        let data: Vec<u8> = (0..FileBody::CHUNK * 3 + 1)
            .map(|i| (i * 7) as u8)
            .collect();
        std::fs::write(&path, &data).unwrap();
        let file = PackageFile {
            path: path.clone(),
            sha256: hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &data)),
        };
        check(&file).await.unwrap();
        std::fs::write(&path, &data[1..]).unwrap();
        assert_eq!(
            check(&file).await.unwrap_err().code(),
            crate::Code::StoreCorrupt
        );
        std::fs::remove_file(&path).unwrap();
        assert_eq!(
            check(&file).await.unwrap_err().code(),
            crate::Code::StoreUnavailable
        );
    }
}
