//! The mailbox the node reads (`[mail.imap]`): async-imap over a tokio-rustls stream (IMAPS,
//! or STARTTLS — required when configured), addressed by UID only.
//!
//! One [`Mailbox`] is one logged-in session with one selected folder. Every command has the
//! configured timeout; when a command fails in a way that leaves the session in an unknown
//! state (a timeout, a broken connection, a reply that does not parse), the `Mailbox` is spent:
//! the error says so ([`ImapError::reconnect`]) and later calls fail at once. Reconnecting,
//! with backoff, is the caller's (`mail::inbound`).

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use async_imap::extensions::idle::IdleResponse;
use async_imap::imap_proto::{MailboxDatum, Response, Status};
use async_imap::types::{Fetch, UnsolicitedResponse};
use async_imap::{Client, Session};
use futures_util::TryStreamExt as _;
use rustls::RootCertStore;
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use super::smtp::{clean, has_tls_cause};
use crate::config::{ImapConfig, MailTls};

/// The server could not be reached, the connection broke or a command timed out.
pub const IMAP_UNREACHABLE: &str = "IMAP_UNREACHABLE";
/// TLS could not be set up (no STARTTLS offered when required, a certificate not trusted).
pub const IMAP_TLS: &str = "IMAP_TLS";
/// The server refused the configured user and password.
pub const IMAP_AUTH: &str = "IMAP_AUTH";
/// The server answered `NO`/`BAD` to a command, or something this client cannot read.
pub const IMAP_PROTOCOL: &str = "IMAP_PROTOCOL";
/// A mail larger than the caller's limit: refused without reading it.
pub const IMAP_TOO_LARGE: &str = "IMAP_TOO_LARGE";

/// Why an IMAP operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ImapError {
    /// One of [`IMAP_UNREACHABLE`], [`IMAP_TLS`], [`IMAP_AUTH`], [`IMAP_PROTOCOL`],
    /// [`IMAP_TOO_LARGE`].
    pub code: &'static str,
    /// What happened, naming the server (`host:port`), the folder or UID and the server's
    /// text (control characters removed); never a password.
    pub message: String,
    /// `true` when this `Mailbox` is spent and only a new connection (after a pause) can help;
    /// `false` when the session is still usable (a refused mail, a command the server
    /// answered `NO` to) — the caller may go on with the next mail.
    pub reconnect: bool,
}

/// What `SELECT` says of the folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FolderState {
    /// UIDs are only comparable within one UIDVALIDITY: when it changes, the checkpoint does
    /// not apply any more.
    pub uidvalidity: u32,
    /// The UID the next mail will get (a lower bound; 0 when the server did not say).
    pub uidnext: u32,
    /// Mails in the folder.
    pub exists: u32,
}

/// How [`Mailbox::idle_or_sleep`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// The server reported new mail (`EXISTS` during IDLE).
    NewMail,
    /// The time was up (or the server has no IDLE and the pause is over): read the folder.
    Timeout,
}

/// A logged-in session with (after [`Mailbox::select`]) one selected folder.
pub struct Mailbox {
    /// `None` once the session is spent (see [`ImapError::reconnect`]).
    session: Option<Session<MailStream>>,
    /// `host:port`, for messages.
    name: String,
    timeout: Duration,
    idle: bool,
    move_ext: bool,
    uidplus: bool,
    selected: Option<String>,
}

impl std::fmt::Debug for Mailbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailbox")
            .field("server", &self.name)
            .field("selected", &self.selected)
            .field("idle", &self.idle)
            .field("move", &self.move_ext)
            .finish_non_exhaustive()
    }
}

impl Mailbox {
    /// Connects (IMAPS, STARTTLS, or plain in development), checks the server's certificate
    /// against the configured CA files (else the system's roots), and logs in.
    pub async fn connect(config: &ImapConfig) -> Result<Mailbox, ImapError> {
        let name = format!("{}:{}", config.host, config.port);
        let t = config.timeout;
        let unreachable = |m: String| ImapError::new(IMAP_UNREACHABLE, m, true);
        let tcp = time(t, &name, "connect", async {
            TcpStream::connect((config.host.as_str(), config.port)).await
        })
        .await?
        .map_err(|e| unreachable(format!("IMAP server {name}: cannot connect: {e}")))?;
        let _ = tcp.set_nodelay(true);
        let stream = match config.tls {
            MailTls::Implicit => {
                let tls = handshake(config, &name, tcp).await?;
                let mut client = Client::new(MailStream::Tls(Box::new(tls)));
                greeting(&mut client, &name, t).await?;
                client
            }
            MailTls::Starttls => {
                let mut plain = Client::new(tcp);
                greeting(&mut plain, &name, t).await?;
                time(
                    t,
                    &name,
                    "STARTTLS",
                    plain.run_command_and_check_ok("STARTTLS", None),
                )
                .await?
                .map_err(|e| {
                    ImapError::new(
                        IMAP_TLS,
                        format!(
                            "IMAP server {name}: STARTTLS refused ({}); the configuration \
                                 requires it",
                            clean(&e.to_string())
                        ),
                        true,
                    )
                })?;
                // Whatever the server sent after its OK is dropped with the plain client: a
                // response injected before the handshake must not be read as if protected.
                let tls = handshake(config, &name, plain.into_inner()).await?;
                Client::new(MailStream::Tls(Box::new(tls)))
            }
            MailTls::None => {
                let mut client = Client::new(MailStream::Plain(tcp));
                greeting(&mut client, &name, t).await?;
                client
            }
        };
        let mut session = time(
            t,
            &name,
            "LOGIN",
            stream.login(&config.user, config.password.expose()),
        )
        .await?
        .map_err(|(e, _)| match e {
            async_imap::error::Error::No(text) | async_imap::error::Error::Bad(text) => {
                ImapError::new(
                    IMAP_AUTH,
                    format!(
                        "IMAP server {name}: login as {} refused: {}",
                        clean(&config.user),
                        clean(&text)
                    ),
                    true,
                )
            }
            other => from_imap(&name, "LOGIN", other),
        })?;
        let caps = time(t, &name, "CAPABILITY", session.capabilities())
            .await?
            .map_err(|e| from_imap(&name, "CAPABILITY", e))?;
        Ok(Mailbox {
            idle: caps.has_str("IDLE"),
            move_ext: caps.has_str("MOVE"),
            uidplus: caps.has_str("UIDPLUS"),
            session: Some(session),
            name,
            timeout: t,
            selected: None,
        })
    }

    /// Creates each folder that does not exist yet (`Processed`, `Quarantine`).
    pub async fn ensure_folders(&mut self, folders: &[&str]) -> Result<(), ImapError> {
        let (t, name) = (self.timeout, self.name.clone());
        let session = self.session()?;
        let listed = time(t, &name, "LIST", async {
            session
                .list(Some(""), Some("*"))
                .await?
                .try_collect::<Vec<_>>()
                .await
        })
        .await;
        let listed = self.settle(listed, "LIST")?;
        let existing: Vec<String> = listed.iter().map(|n| n.name().to_owned()).collect();
        for folder in folders {
            if existing.iter().any(|e| e == folder) {
                continue;
            }
            let session = self.session()?;
            let r = time(t, &name, "CREATE", session.create(folder)).await;
            self.settle(r, &format!("CREATE {folder:?}"))?;
        }
        Ok(())
    }

    /// Selects `folder` (read-write) and says its UIDVALIDITY, UIDNEXT and size.
    pub async fn select(&mut self, folder: &str) -> Result<FolderState, ImapError> {
        let (t, name) = (self.timeout, self.name.clone());
        let session = self.session()?;
        let r = time(t, &name, "SELECT", session.select(folder)).await;
        let mailbox = self.settle(r, &format!("SELECT {folder:?}"))?;
        let Some(uidvalidity) = mailbox.uid_validity else {
            return Err(ImapError::new(
                IMAP_PROTOCOL,
                format!("IMAP server {name}: folder {folder:?} has no UIDVALIDITY"),
                true,
            ));
        };
        self.selected = Some(folder.to_owned());
        Ok(FolderState {
            uidvalidity,
            uidnext: mailbox.uid_next.unwrap_or(0),
            exists: mailbox.exists,
        })
    }

    /// The mails of the selected folder with a UID above `last_uid`, in UID order, each with
    /// its size as the server reports it (`RFC822.SIZE`).
    pub async fn list_after(&mut self, last_uid: u32) -> Result<Vec<(u32, u64)>, ImapError> {
        self.selected()?;
        let Some(first) = last_uid.checked_add(1) else {
            return Ok(Vec::new());
        };
        let (t, name) = (self.timeout, self.name.clone());
        let session = self.session()?;
        let r = time(t, &name, "UID FETCH", async {
            session
                .uid_fetch(format!("{first}:*"), "(UID RFC822.SIZE)")
                .await?
                .try_collect::<Vec<_>>()
                .await
        })
        .await;
        let fetched = self.settle(r, "UID FETCH (UID RFC822.SIZE)")?;
        let mut out = Vec::with_capacity(fetched.len());
        for f in fetched {
            let (Some(uid), Some(size)) = (f.uid, f.size) else {
                return Err(ImapError::new(
                    IMAP_PROTOCOL,
                    format!(
                        "IMAP server {name}: a FETCH answer without UID or RFC822.SIZE \
                         (message {})",
                        f.message
                    ),
                    true,
                ));
            };
            // "n:*" always includes the folder's last mail, even when its UID is below n.
            if uid > last_uid {
                out.push((uid, u64::from(size)));
            }
        }
        out.sort_unstable();
        out.dedup_by_key(|(uid, _)| *uid);
        Ok(out)
    }

    /// The whole mail `uid` (`BODY.PEEK[]`: not marked seen), or [`IMAP_TOO_LARGE`] when it
    /// holds more than `max_bytes` (never more than `max_bytes + 1` bytes are read).
    pub async fn fetch(&mut self, uid: u32, max_bytes: u64) -> Result<Vec<u8>, ImapError> {
        self.selected()?;
        let max_bytes = max_bytes.min(u64::from(u32::MAX - 1));
        let too_large = |what: String| {
            ImapError::new(
                IMAP_TOO_LARGE,
                format!("mail {uid}: {what}, more than the limit of {max_bytes} bytes"),
                false,
            )
        };
        // What the server says first, so a large mail is refused without reading any of it...
        let size = self.fetch_one(uid, "(UID RFC822.SIZE)").await?.size;
        if let Some(size) = size
            && u64::from(size) > max_bytes
        {
            return Err(too_large(format!("{size} bytes")));
        }
        // ...then at most one byte more than allowed, whatever the size said.
        let query = format!("(UID BODY.PEEK[]<0.{}>)", max_bytes + 1);
        let f = self.fetch_one(uid, &query).await?;
        let Some(body) = f.body() else {
            return Err(self.missing(uid, "BODY[]"));
        };
        if body.len() as u64 > max_bytes {
            return Err(too_large("it holds more".to_owned()));
        }
        Ok(body.to_vec())
    }

    /// The header section of mail `uid`, at most `max_bytes` of it (a longer header is cut,
    /// not refused: this is what a quarantined mail is described from).
    pub async fn fetch_header(&mut self, uid: u32, max_bytes: u64) -> Result<Vec<u8>, ImapError> {
        self.selected()?;
        let max_bytes = max_bytes.min(u64::from(u32::MAX));
        let query = format!("(UID BODY.PEEK[HEADER]<0.{max_bytes}>)");
        let f = self.fetch_one(uid, &query).await?;
        match f.header() {
            Some(h) => Ok(h[..h.len().min(max_bytes as usize)].to_vec()),
            None => Err(self.missing(uid, "BODY[HEADER]")),
        }
    }

    /// Moves mail `uid` of the selected folder to `folder` (`UID MOVE`, or `UID COPY` +
    /// `\Deleted` + `UID EXPUNGE` on a server without MOVE). Moving a mail that is no longer
    /// there is not an error (a move that was done before a crash).
    pub async fn move_to(&mut self, uid: u32, folder: &str) -> Result<(), ImapError> {
        self.selected()?;
        let (t, name) = (self.timeout, self.name.clone());
        let what = format!("move of mail {uid} to {folder:?}");
        if self.move_ext {
            let session = self.session()?;
            let r = time(
                t,
                &name,
                "UID MOVE",
                session.uid_mv(uid.to_string(), folder),
            )
            .await;
            return self.settle(r, &what);
        }
        let session = self.session()?;
        let r = time(
            t,
            &name,
            "UID COPY",
            session.uid_copy(uid.to_string(), folder),
        )
        .await;
        self.settle(r, &what)?;
        let session = self.session()?;
        let r = time(t, &name, "UID STORE", async {
            session
                .uid_store(uid.to_string(), "+FLAGS.SILENT (\\Deleted)")
                .await?
                .try_collect::<Vec<_>>()
                .await
        })
        .await;
        self.settle(r, &what)?;
        let uidplus = self.uidplus;
        let session = self.session()?;
        let r = time(t, &name, "EXPUNGE", async {
            if uidplus {
                session
                    .uid_expunge(uid.to_string())
                    .await?
                    .try_collect::<Vec<_>>()
                    .await
            } else {
                // Without UIDPLUS every \Deleted mail of the folder goes; the bridge's folder
                // holds no other mail it marked so.
                session.expunge().await?.try_collect::<Vec<_>>().await
            }
        })
        .await;
        self.settle(r, &what)?;
        Ok(())
    }

    /// Waits for new mail in the selected folder: IDLE when the server offers it (returns on
    /// `EXISTS` or after `timeout`), else sleeps `timeout`.
    pub async fn idle_or_sleep(&mut self, timeout: Duration) -> Result<Wake, ImapError> {
        self.selected()?;
        // An EXISTS that came with an earlier command's answer would not be repeated in IDLE.
        let mut seen = false;
        if let Some(session) = &self.session {
            while let Ok(u) = session.unsolicited_responses.try_recv() {
                seen |= matches!(u, UnsolicitedResponse::Exists(_));
            }
        }
        if seen {
            return Ok(Wake::NewMail);
        }
        if !self.idle {
            tokio::time::sleep(timeout).await;
            return Ok(Wake::Timeout);
        }
        let (t, name) = (self.timeout, self.name.clone());
        let session = self.session.take().ok_or_else(|| self.spent())?;
        let mut handle = session.idle();
        match time(t, &name, "IDLE", handle.init()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(from_imap(&name, "IDLE", e).spent()),
            Err(e) => return Err(e),
        }
        let deadline = tokio::time::Instant::now() + timeout;
        let mut wake = Wake::Timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                break;
            }
            let (wait, _stop) = handle.wait_with_timeout(left);
            // The crate's timeout restarts at every server line (keepalives included): the
            // deadline is ours.
            let r = match tokio::time::timeout(left, wait).await {
                Ok(r) => r,
                Err(_) => break,
            };
            match r {
                Ok(IdleResponse::NewData(data)) => {
                    if matches!(
                        data.parsed(),
                        Response::MailboxData(MailboxDatum::Exists(_))
                    ) {
                        wake = Wake::NewMail;
                        break;
                    }
                }
                Ok(IdleResponse::Timeout) => break,
                Ok(IdleResponse::ManualInterrupt) => {
                    return Err(ImapError::new(
                        IMAP_UNREACHABLE,
                        format!("IMAP server {name}: the connection closed during IDLE"),
                        true,
                    ));
                }
                Err(e) => return Err(from_imap(&name, "IDLE", e).spent()),
            }
        }
        match time(t, &name, "DONE", handle.done()).await {
            Ok(Ok(session)) => {
                self.session = Some(session);
                Ok(wake)
            }
            Ok(Err(e)) => Err(from_imap(&name, "IDLE DONE", e).spent()),
            Err(e) => Err(e),
        }
    }

    /// Whether the server offers IDLE.
    pub fn has_idle(&self) -> bool {
        self.idle
    }

    /// Whether the server offers MOVE (else a move is COPY, `\Deleted`, EXPUNGE).
    pub fn has_move(&self) -> bool {
        self.move_ext
    }

    /// Ends the session politely (`LOGOUT`); errors are of no interest to the caller.
    pub async fn logout(mut self) {
        if let Some(mut session) = self.session.take() {
            let _ = tokio::time::timeout(self.timeout, session.logout()).await;
        }
    }

    fn session(&mut self) -> Result<&mut Session<MailStream>, ImapError> {
        match self.session.as_mut() {
            Some(s) => Ok(s),
            None => Err(ImapError::new(
                IMAP_UNREACHABLE,
                format!(
                    "IMAP server {}: the session was lost by an earlier error; connect again",
                    self.name
                ),
                true,
            )),
        }
    }

    fn spent(&self) -> ImapError {
        ImapError::new(
            IMAP_UNREACHABLE,
            format!(
                "IMAP server {}: the session was lost by an earlier error; connect again",
                self.name
            ),
            true,
        )
    }

    fn selected(&self) -> Result<(), ImapError> {
        if self.selected.is_none() {
            return Err(ImapError::new(
                IMAP_PROTOCOL,
                format!("IMAP server {}: no folder selected", self.name),
                false,
            ));
        }
        Ok(())
    }

    /// The result of a timed command: an error that leaves the session unusable spends it.
    fn settle<T>(
        &mut self,
        r: Result<async_imap::error::Result<T>, ImapError>,
        what: &str,
    ) -> Result<T, ImapError> {
        let r = match r {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(from_imap(&self.name, what, e)),
            Err(e) => Err(e),
        };
        if let Err(e) = &r
            && e.reconnect
        {
            self.session = None;
        }
        r
    }

    /// `UID FETCH uid query`, exactly one answer for that UID.
    async fn fetch_one(&mut self, uid: u32, query: &str) -> Result<Fetch, ImapError> {
        let (t, name) = (self.timeout, self.name.clone());
        let session = self.session()?;
        let r = time(t, &name, "UID FETCH", async {
            session
                .uid_fetch(uid.to_string(), query)
                .await?
                .try_collect::<Vec<_>>()
                .await
        })
        .await;
        let fetched = self.settle(r, &format!("UID FETCH {uid} {query}"))?;
        fetched
            .into_iter()
            .find(|f| f.uid == Some(uid))
            .ok_or_else(|| {
                ImapError::new(
                    IMAP_PROTOCOL,
                    format!(
                        "IMAP server {name}: mail {uid} is not in {:?} (any more)",
                        self.selected.as_deref().unwrap_or("")
                    ),
                    false,
                )
            })
    }

    fn missing(&self, uid: u32, part: &str) -> ImapError {
        ImapError::new(
            IMAP_PROTOCOL,
            format!(
                "IMAP server {}: the answer for mail {uid} has no {part}",
                self.name
            ),
            true,
        )
    }
}

impl ImapError {
    fn new(code: &'static str, message: String, reconnect: bool) -> ImapError {
        ImapError {
            code,
            message,
            reconnect,
        }
    }

    /// The same error where the session did not survive it (IDLE gives the session up).
    fn spent(self) -> ImapError {
        ImapError {
            reconnect: true,
            ..self
        }
    }
}

/// `fut` within `t`; a timeout leaves the session in an unknown state (the answer may still
/// come), so it is a reason to reconnect.
async fn time<F: std::future::Future>(
    t: Duration,
    name: &str,
    what: &str,
    fut: F,
) -> Result<F::Output, ImapError> {
    tokio::time::timeout(t, fut).await.map_err(|_| {
        ImapError::new(
            IMAP_UNREACHABLE,
            format!("IMAP server {name}: no answer to {what} within {t:?}"),
            true,
        )
    })
}

/// async-imap's error in our terms. A `NO` leaves the session usable; anything else does not.
fn from_imap(name: &str, what: &str, e: async_imap::error::Error) -> ImapError {
    use async_imap::error::Error as E;
    let text = clean(&e.to_string());
    match e {
        E::No(_) => ImapError::new(
            IMAP_PROTOCOL,
            format!("IMAP server {name}: {what} refused: {text}"),
            false,
        ),
        E::Io(io) if has_tls_cause(&io) => ImapError::new(
            IMAP_TLS,
            format!("IMAP server {name}: {what}: {}", clean(&io.to_string())),
            true,
        ),
        E::Io(_) | E::ConnectionLost => ImapError::new(
            IMAP_UNREACHABLE,
            format!("IMAP server {name}: {what}: {text}"),
            true,
        ),
        _ => ImapError::new(
            IMAP_PROTOCOL,
            format!("IMAP server {name}: {what}: {text}"),
            true,
        ),
    }
}

/// Reads the server's greeting: it must be `* OK`.
async fn greeting<T>(client: &mut Client<T>, name: &str, t: Duration) -> Result<(), ImapError>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + std::fmt::Debug + Send,
{
    let r = time(t, name, "the greeting", client.read_response()).await?;
    match r {
        Ok(Some(data)) => match data.parsed() {
            Response::Data {
                status: Status::Ok, ..
            } => Ok(()),
            other => Err(ImapError::new(
                IMAP_UNREACHABLE,
                format!(
                    "IMAP server {name}: greeting is not OK: {}",
                    clean(&format!("{other:?}"))
                ),
                true,
            )),
        },
        Ok(None) => Err(ImapError::new(
            IMAP_UNREACHABLE,
            format!("IMAP server {name}: closed the connection before its greeting"),
            true,
        )),
        Err(e) => Err(ImapError::new(
            if has_tls_cause(&e) {
                IMAP_TLS
            } else {
                IMAP_UNREACHABLE
            },
            format!("IMAP server {name}: no greeting: {}", clean(&e.to_string())),
            true,
        )),
    }
}

async fn handshake(
    config: &ImapConfig,
    name: &str,
    tcp: TcpStream,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, ImapError> {
    let tls_error = |m: String| ImapError::new(IMAP_TLS, format!("IMAP server {name}: {m}"), true);
    let client = client_config(config).map_err(|e| tls_error(e.to_string()))?;
    let server_name = ServerName::try_from(config.host.clone())
        .map_err(|_| tls_error(format!("{:?} is not a host name", config.host)))?;
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
    time(config.timeout, name, "the TLS handshake", async {
        connector.connect(server_name, tcp).await
    })
    .await?
    .map_err(|e| {
        let code = if has_tls_cause(&e) {
            IMAP_TLS
        } else {
            IMAP_UNREACHABLE
        };
        ImapError::new(
            code,
            format!(
                "IMAP server {name}: TLS handshake failed: {}",
                clean(&e.to_string())
            ),
            true,
        )
    })
}

/// The roots: the configured CA files, else the system's.
fn client_config(config: &ImapConfig) -> Result<rustls::ClientConfig, String> {
    let mut roots = RootCertStore::empty();
    if config.ca.is_empty() {
        let found = rustls_native_certs::load_native_certs();
        let (added, _) = roots.add_parsable_certificates(found.certs);
        if added == 0 {
            return Err("no system CA certificates found; set mail.imap.ca".to_owned());
        }
    } else {
        for ca in &config.ca {
            for der in crate::transport::tls::certs_from(ca).map_err(|e| e.to_string())? {
                roots
                    .add(der)
                    .map_err(|e| format!("{}: {e}", ca.display()))?;
            }
        }
    }
    Ok(
        rustls::ClientConfig::builder_with_provider(crate::transport::tls::provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

/// The connection under the IMAP session: TLS (IMAPS or after STARTTLS), or plain in
/// development.
#[derive(Debug)]
enum MailStream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl AsyncRead for MailStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            MailStream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            MailStream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for MailStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            MailStream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            MailStream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            MailStream::Plain(s) => Pin::new(s).poll_flush(cx),
            MailStream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            MailStream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            MailStream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}
