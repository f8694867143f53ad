//! `lienthong serve --config FILE`: runs the node — clerk API, peer endpoint, operations
//! endpoints, the outbox worker and, with `[mail]`, the mail bridge's tasks (the mailbox
//! reader with `[mail.imap]`, the relay's reachability check with `[mail.smtp]`, the
//! certificate-expiry notifications) — until SIGINT or SIGTERM.
//!
//! Start-up checks everything before it creates anything: load and check the configuration and
//! every file it names (keys, certificates, CRLs, the store's folder: `CONFIG_INVALID` at the
//! key's `FILE:LINE:COL`), the peers' certificate checks and the TLS identity, bind
//! `node.peer_listen` (the mutual-TLS peer endpoint, logged) and `node.listen` (port 0 picks a
//! free port; a port in use is `CONFIG_INVALID` at its key), and only then open the store
//! `node.store` names. A `sqlite://` store is locked first (`<db>.lock`, held for the node's
//! lifetime: a second node on the same store is refused, `STORE_UNAVAILABLE`), opened (or
//! created), its orphan package files removed and its leases taken back (both only under the
//! lock). A `postgres://` store is shared by replicas: no lock, no take-back (expired leases are
//! claimed by any replica), `[node.postgres]` sizes the pool; its URL is logged without the
//! password. Then it prints
//! exactly one line `listening on ADDR` (the plain clerk listener; scripts and tests read it) on
//! stdout; with `--ready-file FILE`, both bound addresses are written to FILE as well (the peer
//! listener's is only logged otherwise). `node.dev_plain_http` is logged as an error-level
//! warning at every start. Logs are JSON lines on stderr,
//! filtered by `RUST_LOG` (default `info`); tokens and keys are never logged.
//!
//! Shutdown: on SIGINT/SIGTERM stop accepting connections, let the requests in flight finish,
//! tell the outbox worker to stop (it finishes or releases what it holds) and the mailbox
//! reader (it finishes the mail it is taking in) and wait for both, close the store, exit 0. A configuration, store or bind problem exits 3.

use std::path::PathBuf;

use lienthong::config::Config;
use lienthong::node::service::Node;
use lienthong::store::{AnyStore, Backend, NodeLock};
use lienthong::{Code, Error};
use tokio::sync::watch;

use super::{CmdResult, Failure};

#[derive(clap::Args)]
pub struct Args {
    /// The node's configuration file (TOML).
    #[arg(long, env = "LIENTHONG_CONFIG")]
    config: PathBuf,
    /// Once both listeners are bound, write their addresses to this file (`listen=ADDR` and,
    /// with a peer listener, `peer_listen=ADDR`, one a line; written whole, then renamed into
    /// place), so that a script or test can bind port 0 and read the ports back.
    #[arg(long)]
    ready_file: Option<PathBuf>,
}

pub fn run(args: Args) -> CmdResult {
    init_logs();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Local(Error::io("(tokio runtime)", e)))?;
    rt.block_on(serve(args))
}

fn init_logs() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // Fails only if a subscriber is already set (never, in the binary).
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

async fn serve(args: Args) -> CmdResult {
    // Everything is checked before anything is created: a start that fails (a missing
    // certificate, a port in use, a second node on the store) leaves no store behind and
    // touches no other node's. First the configuration and every file it names (keys,
    // certificates, CRLs, the store's folder)...
    let config = Config::load(&args.config).map_err(Failure::Local)?;
    // ...every peer's TLS client and the TLS identity (the worker builds its own clients)...
    lienthong::transport::peer::PeerClient::new(&config, config.retry.push_timeout)
        .map_err(|e| Failure::Local(config.problem("peer", e.message)))?;
    let peer_tls = match (&config.node.peer_listen, config.tls.is_some()) {
        (Some(_), true) => {
            Some(lienthong::transport::tls::PeerTlsServer::new(&config).map_err(Failure::Local)?)
        }
        _ => None,
    };
    // ...both listeners...
    let peer = match (&config.node.peer_listen, peer_tls) {
        (Some(at), Some(tls)) => {
            let l = tokio::net::TcpListener::bind(at).await.map_err(|e| {
                Failure::Local(config.problem("node.peer_listen", format!("{at}: {e}")))
            })?;
            Some((l, tls))
        }
        _ => None,
    };
    let listen = config.node.listen.clone();
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .map_err(|e| Failure::Local(config.problem("node.listen", format!("{listen}: {e}"))))?;
    let addr = listener
        .local_addr()
        .map_err(|e| Failure::Local(Error::io(format!("listen {listen}"), e)))?;
    let peer_at = match &peer {
        Some((l, _)) => Some(
            l.local_addr()
                .map_err(|e| Failure::Local(Error::io("peer_listen", e)))?,
        ),
        None => None,
    };
    // ...and only then the store, by its URL. SQLite: one node per store, locked until the
    // process ends (what follows — leases taken back, files removed — is only right for the
    // store's one node, and both demand the lock; store/sqlite/lock.rs). PostgreSQL: replicas
    // share it, so there is no lock, and only the leases of this host's dead processes are
    // taken back (node/lease_owner.rs; other replicas' expire and are claimed by any replica),
    // and no files (large packages are chunks in the database).
    let url = config.node.store.clone();
    let backend = Backend::of(&url)
        .map_err(|e| Failure::Local(config.problem("node.store", e.to_string())))?;
    let lock = match backend {
        Backend::Sqlite => NodeLock::acquire(&url).map_err(Failure::Local)?,
        Backend::Postgres => None,
    };
    let store = AnyStore::open_with(&url, &config.store_options())
        .await
        .map_err(Failure::Local)?;
    tracing::info!(store = %Backend::shown(&url), backend = backend.as_str(), "store open");
    if let (Some(held), AnyStore::Sqlite(sqlite)) = (&lock, &store) {
        // Before anything is served: files of writes a crash cut short (store/sqlite/files.rs).
        sqlite
            .remove_orphan_package_files(held)
            .await
            .map_err(Failure::Local)?;
        // And the leases of deliveries the previous incarnation died holding: without this
        // each would wait out `retry.lease` before it is tried again.
        let taken = sqlite
            .take_back_leases(held, "node:start", lienthong::node::service::now_ms())
            .await
            .map_err(Failure::Local)?;
        if taken > 0 {
            tracing::warn!(
                deliveries = taken,
                "took back the leases of deliveries an earlier run of the node was sending"
            );
        }
    }
    if let AnyStore::Postgres(pg) = &store {
        let me = lienthong::node::lease_owner::LeaseOwner::of_this_process(&config.node.name);
        let taken = pg
            .take_back_leases(
                |owner| me.is_dead_here(owner),
                "node:start",
                lienthong::node::service::now_ms(),
            )
            .await
            .map_err(Failure::Local)?;
        if taken > 0 {
            tracing::warn!(
                deliveries = taken,
                "took back the leases of deliveries a dead process of this host was sending"
            );
        }
    }
    let name = config.node.name.clone();
    let node = Node::new(config, store.clone()).map_err(Failure::Local)?;
    let now = lienthong::node::service::now_ms() / 1000;
    for c in lienthong::node::expiry::report(
        &node.trust,
        &node.keys,
        node.tls_certificate.as_deref(),
        now,
    )
    .iter()
    .filter(|c| c.warning)
    {
        if c.days_left < 0 {
            tracing::error!(role = c.role, subject = %c.subject, agency = ?c.agency, "certificate has expired");
        } else {
            tracing::warn!(role = c.role, subject = %c.subject, agency = ?c.agency, days_left = c.days_left, "certificate expires soon");
        }
    }
    if node.config.node.dev_plain_http {
        tracing::error!(
            "DEVELOPMENT MODE: node.dev_plain_http = true — peers may be reached over plain HTTP \
             and the plain listener accepts pushes naming their peer in a header; never in production"
        );
    }
    if let Some(at) = peer_at {
        tracing::info!(%at, "peer endpoint (mutual TLS) listening");
    }

    if let Some(file) = &args.ready_file {
        write_ready_file(file, addr, peer_at).map_err(Failure::Local)?;
    }

    let grace = node.config.node.shutdown_grace;
    let (stop, stopped) = watch::channel(false);
    let worker = lienthong::node::outbox::spawn(node.clone(), stopped.clone());
    // The mail bridge: the mailbox reader ([mail.imap]), the relay's reachability for /readyz
    // ([mail.smtp]) and the agencies' certificate-expiry notifications.
    let reader = lienthong::mail::inbound::spawn(node.clone(), stopped.clone());
    let relay_check = node.mail.clone().map(|channel| {
        lienthong::mail::outbound::spawn_relay_check(
            channel,
            lienthong::mail::outbound::RELAY_CHECK_EVERY,
            stopped.clone(),
        )
    });
    let expiry_watch = node.config.mail.as_ref().map(|_| {
        lienthong::mail::notify::spawn_cert_expiry_watch(
            node.clone(),
            std::time::Duration::from_secs(6 * 3600),
            stopped.clone(),
        )
    });
    // Cached CRLs are fetched again before their nextUpdate; the task ends with the process.
    let refresh = node
        .revocation
        .spawn_refresh(node.config.revocation.refresh_every);
    let mut server = tokio::spawn(lienthong::http::serve_all(listener, peer, node, stopped));

    tracing::info!(node = %name, %addr, "listening");
    outln!("listening on {addr}");

    wait_for_signal().await;
    tracing::info!("shutting down: finishing requests in flight");
    let _ = stop.send(true);
    let served = match tokio::time::timeout(grace, &mut server).await {
        Ok(joined) => joined,
        Err(_) => {
            // What is still in flight has not been answered, so nothing acknowledged is lost:
            // its client sees the connection close and asks again.
            tracing::warn!(
                grace_s = grace.as_secs_f64(),
                "requests still in flight after node.shutdown_grace; closing their connections"
            );
            server.abort();
            Ok(Ok(()))
        }
    };
    refresh.abort();
    if let Err(e) = worker.await {
        tracing::error!(error = %e, "outbox worker ended abnormally");
    }
    if let Some(reader) = reader
        && let Err(e) = reader.await
    {
        tracing::error!(error = %e, "mailbox reader ended abnormally");
    }
    for task in [relay_check, expiry_watch].into_iter().flatten() {
        task.abort();
    }
    store.close().await;
    drop(lock);
    match served {
        Ok(Ok(())) => {
            tracing::info!("stopped");
            Ok(())
        }
        Ok(Err(e)) => Err(Failure::Local(Error::io(format!("serving {addr}"), e))),
        Err(e) => Err(Failure::Local(Error::store(
            Code::Io,
            format!("server task: {e}"),
        ))),
    }
}

/// Resolves on SIGINT or SIGTERM.
async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM; only SIGINT stops the node");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Writes the bound addresses to `file`: to a temporary file beside it first, renamed into place,
/// so a reader never sees half of it.
fn write_ready_file(
    file: &std::path::Path,
    listen: std::net::SocketAddr,
    peer_listen: Option<std::net::SocketAddr>,
) -> Result<(), Error> {
    let mut text = format!("listen={listen}\n");
    if let Some(at) = peer_listen {
        text.push_str(&format!("peer_listen={at}\n"));
    }
    let mut tmp = file.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, text).map_err(|e| Error::io(tmp.display().to_string(), e))?;
    std::fs::rename(&tmp, file).map_err(|e| Error::io(file.display().to_string(), e))
}
