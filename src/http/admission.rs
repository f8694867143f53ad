//! Who may hold a connection of a listener: a table of the open connections with a total cap
//! and a cap per source address, where a connection that has not yet *proven* itself can be
//! evicted to make room.
//!
//! A connection is *unproven* from its accept until one whole request has arrived on it (for
//! the peer listener that includes the TLS handshake; for both, the request head and its body).
//! A stranger can make the node hold as many unproven connections as it likes — silent ones,
//! a ClientHello or a request head sent a byte at a time, a body trickled — and it costs it
//! nothing. Refusing the newest connection when the table is full, as a plain cap does, hands
//! the listener to whoever opened connections first. So instead a new connection always gets
//! in while there is an unproven one to evict. Which one goes:
//!
//! 1. one of the source (address) that holds the most unproven connections — a flood comes
//!    from addresses that hold many, a genuine client holds a few at most, so a flood that
//!    re-opens every connection the node closes only ever evicts its own;
//! 2. among those, a *silent* one (not a byte received since its accept) before one that spoke,
//!    then the *least recently active* (whose last byte is oldest), then the oldest. A genuine
//!    client speaks first (its ClientHello, its request) and sends its next bytes within a
//!    round trip, so it is stale connections that go, not a real peer's handshake in progress.
//!
//! A proven connection (its request is being handled, or it waits for the next one, bounded by
//! the header timeout) is never evicted; when every place is proven the newcomer is refused.
//! What this cannot tell apart: an attacker with as many addresses as the listener has places,
//! each holding one connection that speaks as fast as a real client.
//!
//! "Silent" is the kernel's word, not the connection task's: a client's first bytes may wait in
//! the socket while its task has not been polled yet (a busy runtime under a flood), so before a
//! silent connection is evicted its socket is peeked, and one with bytes waiting counts as
//! having spoken.
//!
//! The per-source cap bounds what one address can hold of the table: at its cap, a new
//! connection from that address evicts that address's own least recently active unproven
//! connection (so a client whose earlier attempts stalled is not locked out by them), or is
//! refused if all of its connections are proven. Other sources are not touched.
//!
//! The table is a plain `Vec` under a mutex: it holds at most a few thousand entries and a scan
//! per accept is cheaper than maintaining an ordered index under churn.

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::Notify;

/// What one connection shares with the table: when it last made progress, whether it has
/// proven itself, and how it is told to go.
#[derive(Debug)]
pub struct ConnState {
    /// Milliseconds since the table's epoch at the last byte read (or the accept).
    last_active_ms: AtomicU64,
    /// Whether any byte has been received.
    spoke: AtomicBool,
    proven: AtomicBool,
    evicted: Notify,
    epoch: Instant,
}

impl ConnState {
    /// Records that bytes arrived now.
    pub fn touch(&self) {
        self.last_active_ms
            .store(ms_since(self.epoch), Ordering::Relaxed);
        self.spoke.store(true, Ordering::Relaxed);
    }

    /// The connection delivered a whole request: it is no longer evictable.
    pub fn prove(&self) {
        self.proven.store(true, Ordering::Relaxed);
    }

    pub fn is_proven(&self) -> bool {
        self.proven.load(Ordering::Relaxed)
    }

    /// Resolves once the table evicted this connection (at once if it already has).
    pub async fn evicted(&self) {
        self.evicted.notified().await;
    }
}

fn ms_since(epoch: Instant) -> u64 {
    u64::try_from(epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
}

struct Entry {
    id: u64,
    source: IpAddr,
    state: Arc<ConnState>,
    /// The connection's socket, to peek at (`None`: taken at its state's word).
    socket: Option<RawSocket>,
}

/// A socket's descriptor, only ever peeked at (`recv` with `MSG_PEEK | MSG_DONTWAIT`).
#[cfg(unix)]
type RawSocket = std::os::fd::RawFd;
#[cfg(not(unix))]
type RawSocket = ();

/// Whether bytes wait to be read on `socket` (never consumes them).
#[cfg(unix)]
fn has_bytes_waiting(socket: RawSocket) -> bool {
    let mut byte = 0u8;
    // SAFETY: `recv` writes at most one byte into `byte`, which lives across the call. The
    // descriptor belongs to a connection in the table; should it have been closed and reused
    // meanwhile, the peek reads (and consumes) nothing of the other socket either.
    let n = unsafe {
        libc::recv(
            socket,
            (&mut byte as *mut u8).cast(),
            1,
            libc::MSG_PEEK | libc::MSG_DONTWAIT,
        )
    };
    n > 0
}

#[cfg(not(unix))]
fn has_bytes_waiting(_: RawSocket) -> bool {
    false
}

struct Table {
    next_id: u64,
    entries: Vec<Entry>,
}

/// The connection table of one listener.
pub struct Admission {
    max_connections: usize,
    max_per_source: usize,
    epoch: Instant,
    table: Mutex<Table>,
}

/// Why a connection was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The table is full and every connection in it has proven itself.
    Full,
    /// The source holds its cap of connections and all of them have proven themselves.
    SourceFull,
}

/// A connection's place in the table; dropping it frees the place.
pub struct Ticket {
    id: u64,
    state: Arc<ConnState>,
    admission: Arc<Admission>,
}

impl Ticket {
    pub fn state(&self) -> &Arc<ConnState> {
        &self.state
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut t = self.admission.lock();
        if let Some(i) = t.entries.iter().position(|e| e.id == self.id) {
            t.entries.swap_remove(i);
        }
    }
}

/// What [`Admission::admit`] did to make room, for the log and the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admitted {
    /// There was room.
    Room,
    /// An unproven connection of the same source was evicted (the source was at its cap).
    EvictedSameSource(IpAddr),
    /// The least recently active unproven connection of the table was evicted (it was full).
    Evicted(IpAddr),
}

impl Admission {
    /// A table of at most `max_connections`, at most `max_per_source` from one address (both at
    /// least 1).
    pub fn new(max_connections: usize, max_per_source: usize) -> Arc<Admission> {
        Arc::new(Admission {
            max_connections: max_connections.max(1),
            max_per_source: max_per_source.max(1),
            epoch: Instant::now(),
            table: Mutex::new(Table {
                next_id: 0,
                entries: Vec::new(),
            }),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        // The table stays consistent whatever panicked while holding it (each change is one
        // push or one swap_remove).
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Connections held now.
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Admits a connection from `source`, evicting an unproven one if the table or the source
    /// is at its cap.
    pub fn admit(self: &Arc<Self>, source: IpAddr) -> Result<(Ticket, Admitted), Refused> {
        self.admit_socket(source, None)
    }

    /// [`Admission::admit`] for a TCP connection: its socket is peeked at before it would be
    /// evicted as silent.
    pub fn admit_tcp(
        self: &Arc<Self>,
        source: IpAddr,
        tcp: &tokio::net::TcpStream,
    ) -> Result<(Ticket, Admitted), Refused> {
        #[cfg(unix)]
        let socket = Some(std::os::fd::AsRawFd::as_raw_fd(tcp));
        #[cfg(not(unix))]
        let socket = {
            let _ = tcp;
            None
        };
        self.admit_socket(source, socket)
    }

    fn admit_socket(
        self: &Arc<Self>,
        source: IpAddr,
        socket: Option<RawSocket>,
    ) -> Result<(Ticket, Admitted), Refused> {
        let now = ms_since(self.epoch);
        let mut t = self.lock();
        let from_source = t.entries.iter().filter(|e| e.source == source).count();
        let mut admitted = Admitted::Room;
        if from_source >= self.max_per_source {
            let i = least_active_unproven(&t.entries, |e| e.source == source)
                .ok_or(Refused::SourceFull)?;
            evict(&mut t.entries, i);
            admitted = Admitted::EvictedSameSource(source);
        } else if t.entries.len() >= self.max_connections {
            let crowded = most_unproven(&t.entries);
            let i = least_active_unproven(&t.entries, |e| crowded.contains(&e.source))
                .ok_or(Refused::Full)?;
            let victim = t.entries[i].source;
            evict(&mut t.entries, i);
            admitted = Admitted::Evicted(victim);
        }
        let id = t.next_id;
        t.next_id += 1;
        let state = Arc::new(ConnState {
            last_active_ms: AtomicU64::new(now),
            spoke: AtomicBool::new(false),
            proven: AtomicBool::new(false),
            evicted: Notify::new(),
            epoch: self.epoch,
        });
        t.entries.push(Entry {
            id,
            source,
            state: state.clone(),
            socket,
        });
        drop(t);
        Ok((
            Ticket {
                id,
                state,
                admission: self.clone(),
            },
            admitted,
        ))
    }
}

/// The sources holding the most unproven connections (several on a tie; none if every
/// connection is proven).
fn most_unproven(entries: &[Entry]) -> Vec<IpAddr> {
    let mut counts: std::collections::HashMap<IpAddr, usize> = std::collections::HashMap::new();
    for e in entries.iter().filter(|e| !e.state.is_proven()) {
        *counts.entry(e.source).or_insert(0) += 1;
    }
    let most = counts.values().copied().max().unwrap_or(0);
    counts
        .into_iter()
        .filter(|(_, n)| *n == most)
        .map(|(source, _)| source)
        .collect()
}

/// The unproven entry among those `which` selects that goes first: a silent one before one
/// that spoke, then the least recently active, then the oldest.
/// A silent one whose socket holds bytes its task has not read yet counts as having spoken
/// now.
fn least_active_unproven(entries: &[Entry], which: impl Fn(&Entry) -> bool) -> Option<usize> {
    loop {
        let (i, e) = entries
            .iter()
            .enumerate()
            .filter(|(_, e)| which(e) && !e.state.is_proven())
            .min_by_key(|(_, e)| {
                (
                    e.state.spoke.load(Ordering::Relaxed),
                    e.state.last_active_ms.load(Ordering::Relaxed),
                    e.id,
                )
            })?;
        let silent = !e.state.spoke.load(Ordering::Relaxed);
        match e.socket {
            // Each turn marks one more entry as having spoken: at most one turn per entry.
            Some(socket) if silent && has_bytes_waiting(socket) => e.state.touch(),
            _ => return Some(i),
        }
    }
}

/// Removes entry `i` (its place is free at once) and tells its connection to go.
fn evict(entries: &mut Vec<Entry>, i: usize) {
    let e = entries.swap_remove(i);
    // `notify_one` keeps a permit if the connection is not waiting yet: it cannot miss it.
    e.state.evicted.notify_one();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// A full table evicts the least recently active unproven connection, never a proven one,
    /// and refuses only when all are proven.
    #[test]
    fn a_full_table_evicts_the_least_recently_active_unproven_connection() {
        let pause = || std::thread::sleep(std::time::Duration::from_millis(5));
        let a = Admission::new(3, 3);
        let (t1, _) = a.admit(ip("127.0.0.2")).unwrap();
        let (t2, _) = a.admit(ip("127.0.0.3")).unwrap();
        let (t3, _) = a.admit(ip("127.0.0.4")).unwrap();
        // t1 is the oldest, but it sent a byte; t2 is then the oldest silent one.
        pause();
        t1.state().touch();
        let (t4, how) = a.admit(ip("127.0.0.1")).unwrap();
        assert_eq!(how, Admitted::Evicted(ip("127.0.0.3")));
        assert_eq!(a.len(), 3);
        drop(t2); // its task ends later: dropping an evicted ticket changes nothing
        assert_eq!(a.len(), 3);
        // With no silent one left, the least recently active goes: t3 spoke before the others.
        t3.state().touch();
        pause();
        t4.state().touch();
        t1.state().touch();
        let (t5, how) = a.admit(ip("127.0.0.6")).unwrap();
        assert_eq!(how, Admitted::Evicted(ip("127.0.0.4")));
        drop(t3);
        // All proven: the newcomer is refused, until one goes.
        for t in [&t1, &t4, &t5] {
            t.state().prove();
        }
        assert_eq!(a.admit(ip("127.0.0.5")).err(), Some(Refused::Full));
        drop(t5);
        assert!(a.admit(ip("127.0.0.5")).is_ok());
    }

    /// A source at its cap evicts its own oldest unproven connection, not another source's.
    #[test]
    fn a_source_at_its_cap_makes_room_among_its_own_connections() {
        let a = Admission::new(10, 2);
        let (_other, _) = a.admit(ip("10.0.0.9")).unwrap();
        let (s1, _) = a.admit(ip("10.0.0.1")).unwrap();
        let (s2, _) = a.admit(ip("10.0.0.1")).unwrap();
        let (_s3, how) = a.admit(ip("10.0.0.1")).unwrap();
        assert_eq!(how, Admitted::EvictedSameSource(ip("10.0.0.1")));
        assert_eq!(a.len(), 3);
        // s1 (the oldest) was told to go.
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        rt.block_on(async {
            tokio::time::timeout(std::time::Duration::from_secs(5), s1.state().evicted())
                .await
                .expect("the oldest connection of the source was not evicted");
        });
        s2.state().prove();
        // The remaining ones: s2 proven, s3 unproven → s3 goes; then both proven → refused.
        let (s4, how) = a.admit(ip("10.0.0.1")).unwrap();
        assert_eq!(how, Admitted::EvictedSameSource(ip("10.0.0.1")));
        s4.state().prove();
        assert_eq!(a.admit(ip("10.0.0.1")).err(), Some(Refused::SourceFull));
        // Another source still gets in.
        assert!(a.admit(ip("10.0.0.2")).is_ok());
    }

    /// A connection whose task has not read its first bytes yet is not taken for silent: its
    /// socket is peeked at, and the truly silent one goes.
    #[tokio::test]
    async fn bytes_waiting_in_the_socket_count_as_speaking() {
        use tokio::io::AsyncWriteExt;
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let at = l.local_addr().unwrap();
        let mut talker = tokio::net::TcpStream::connect(at).await.unwrap();
        let (first, _) = l.accept().await.unwrap();
        let _silent_client = tokio::net::TcpStream::connect(at).await.unwrap();
        let (second, _) = l.accept().await.unwrap();
        talker.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let a = Admission::new(2, 2);
        // The first is the oldest and its state says silent, but its socket holds a request.
        let (t1, _) = a.admit_tcp(ip("127.0.0.2"), &first).unwrap();
        let (_t2, _) = a.admit_tcp(ip("127.0.0.3"), &second).unwrap();
        let (_t3, how) = a.admit(ip("127.0.0.4")).unwrap();
        assert_eq!(how, Admitted::Evicted(ip("127.0.0.3")));
        assert!(t1.state().spoke.load(Ordering::Relaxed));
    }

    /// A full table evicts from the source holding the most unproven connections, even when
    /// another source's connection is older and silent.
    #[test]
    fn the_most_crowded_source_makes_room() {
        let a = Admission::new(4, 4);
        let (_genuine, _) = a.admit(ip("127.0.0.1")).unwrap();
        let (_f1, _) = a.admit(ip("127.0.0.2")).unwrap();
        let (_f2, _) = a.admit(ip("127.0.0.2")).unwrap();
        let (_f3, _) = a.admit(ip("127.0.0.2")).unwrap();
        let mut flood = Vec::new();
        for _ in 0..10 {
            // The flood re-opens what is closed: it only ever closes its own.
            let (f, how) = a.admit(ip("127.0.0.2")).unwrap();
            assert_eq!(how, Admitted::Evicted(ip("127.0.0.2")));
            flood.push(f);
        }
        let (_g2, how) = a.admit(ip("127.0.0.1")).unwrap();
        assert_eq!(how, Admitted::Evicted(ip("127.0.0.2")));
    }
}
