//! Who may hold a connection of a listener: a table of the open connections with a total cap
//! and a cap per source address, where a connection that has not yet *proven* itself can be
//! evicted to make room.
//!
//! A connection is *unproven* from its accept until it proves itself ([`super::conn::Proof`]):
//! on the peer listener one whole request from a certificate that identified a configured peer,
//! on the clerk listener a request whose credentials the API accepted.
//! A stranger can make the node hold as many unproven connections as it likes — silent ones,
//! a ClientHello or a request head sent a byte at a time, a body trickled — and it costs it
//! nothing. Refusing the newest connection when the table is full, as a plain cap does, hands
//! the listener to whoever opened connections first. So instead, when the table is full:
//!
//! - a connection is *stale* when it is unproven and has not sent a byte for 2 s, or has not
//!   delivered a request head 2 s after its accept (a TLS handshake or a head sent a byte at a
//!   time), or its request body has been arriving for 2 s at less than 1 KiB/s on average:
//!   silent and trickling connections are, a genuine client's are not — it speaks first (its
//!   ClientHello, its request), completes its handshake and head within a few round trips and
//!   uploads at network speed, however many connections it opens at once;
//! - a new connection from a source (address) that holds few stale connections — fewer than
//!   half as many as the most crowded source — gets in, and a stale connection of the most
//!   crowded source is evicted to make room: a *silent* one (not a byte received since its
//!   accept) before one that spoke, then the *least recently active* (whose last byte is
//!   oldest), then the oldest;
//! - a new connection from a crowded source (half the top count or more) is refused at once:
//!   making room for it would only evict the flood's own connections for the flood's new ones,
//!   a churn that costs the node an accept, a task and, on the peer listener, a TLS handshake
//!   per turn. Refused is cheap: accepted and closed, nothing read.
//!
//! A proven connection (its request is being handled, or it waits for the next one, bounded by
//! the header timeout) is never evicted, nor one that is not stale; when no place is stale the
//! newcomer is refused.
//! What this cannot tell apart: an attacker with as many addresses as the listener has places,
//! each holding one connection that speaks as fast as a real client.
//!
//! "Silent" is the kernel's word, not the connection task's: a client's first bytes may wait in
//! the socket while its task has not been polled yet (a busy runtime under a flood), so before a
//! silent connection is evicted its socket is peeked, and one with bytes waiting counts as
//! having spoken.
//!
//! The per-source cap bounds what one address can hold of the table, proven or not: beyond it,
//! its new connections are refused. Other sources are not touched.
//!
//! The table is a plain `Vec` under a mutex: it holds at most a few thousand entries and a scan
//! per accept is cheaper than maintaining an ordered index under churn.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::Notify;

/// What one connection shares with the table: when it last made progress, whether it has
/// proven itself, and how it is told to go.
#[derive(Debug)]
pub struct ConnState {
    /// Milliseconds since the table's epoch at the accept.
    accepted_ms: u64,
    /// Milliseconds since the table's epoch at the last byte read (or the accept).
    last_active_ms: AtomicU64,
    /// Whether any byte has been received.
    spoke: AtomicBool,
    /// Bytes read from the socket so far (TLS records included).
    bytes: AtomicU64,
    /// When the current request's head arrived (ms since the epoch + 1; 0: none yet), and
    /// `bytes` then: the body's rate is measured from there.
    request_ms: AtomicU64,
    request_bytes: AtomicU64,
    proven: AtomicBool,
    evicted: Notify,
    epoch: Instant,
}

impl ConnState {
    /// Records that `n` bytes arrived now.
    pub fn read(&self, n: usize) {
        self.bytes.fetch_add(n as u64, Ordering::Relaxed);
        self.touch();
    }

    fn touch(&self) {
        self.last_active_ms
            .store(ms_since(self.epoch), Ordering::Relaxed);
        self.spoke.store(true, Ordering::Relaxed);
    }

    /// A request head has arrived (its body, if any, follows).
    pub fn request_started(&self) {
        self.request_bytes
            .store(self.bytes.load(Ordering::Relaxed), Ordering::Relaxed);
        self.request_ms
            .store(ms_since(self.epoch).saturating_add(1), Ordering::Relaxed);
    }

    /// Whether this connection may be evicted at `now`: it has not proven itself, and it has
    /// been silent for `after` ms, or has not delivered a request head `after` ms after its
    /// accept (a handshake or head trickled), or its request body has been arriving for `after`
    /// ms at less than [`MIN_BODY_RATE`] on average.
    fn is_stale(&self, now: u64, after: u64) -> bool {
        if self.is_proven() {
            return false;
        }
        if now.saturating_sub(self.last_active_ms.load(Ordering::Relaxed)) >= after {
            return true;
        }
        match self.request_ms.load(Ordering::Relaxed) {
            0 => now.saturating_sub(self.accepted_ms) >= after,
            at => {
                let elapsed = now.saturating_sub(at - 1);
                let body = self.bytes.load(Ordering::Relaxed)
                    - self
                        .request_bytes
                        .load(Ordering::Relaxed)
                        .min(self.bytes.load(Ordering::Relaxed));
                elapsed >= after && body.saturating_mul(1000) < MIN_BODY_RATE * elapsed
            }
        }
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
    /// Stale connections by source as counted at a time (ms since the epoch): a flood is
    /// refused thousands of times a second, and counting scans the whole table, so a count
    /// serves for [`COUNTS_FOR_MS`]. Evicting takes the victim from a fresh scan.
    counts: Option<(u64, HashMap<IpAddr, usize>)>,
}

/// How long a count of stale connections by source is used for refusing crowded sources.
const COUNTS_FOR_MS: u64 = 50;

/// The connection table of one listener.
pub struct Admission {
    max_connections: usize,
    max_per_source: usize,
    /// [`STALE_AFTER_MS`], but for tests of the order of eviction.
    stale_after_ms: u64,
    epoch: Instant,
    table: Mutex<Table>,
}

/// Why a connection was not admitted (it is closed at once, before any TLS or HTTP).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The table is full and every connection in it has proven itself.
    Full,
    /// The source holds its cap of connections.
    SourceFull,
    /// The table is full and the source holds at least half as many unproven connections as
    /// the most crowded one.
    Crowded,
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
    /// The table was full: an unproven connection from this (the most crowded) source was
    /// evicted.
    Evicted(IpAddr),
}

impl Admission {
    /// A table of at most `max_connections`, at most `max_per_source` from one address (both at
    /// least 1).
    pub fn new(max_connections: usize, max_per_source: usize) -> Arc<Admission> {
        Arc::new(Admission {
            max_connections: max_connections.max(1),
            max_per_source: max_per_source.max(1),
            stale_after_ms: STALE_AFTER_MS,
            epoch: Instant::now(),
            table: Mutex::new(Table {
                next_id: 0,
                entries: Vec::new(),
                counts: None,
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
        if from_source >= self.max_per_source {
            return Err(Refused::SourceFull);
        }
        let mut admitted = Admitted::Room;
        if t.entries.len() >= self.max_connections {
            let stale = self.stale_after_ms;
            // Kept with the time it was counted at: re-stamping it on every refusal would keep
            // a count from before the flood went stale for as long as the flood lasts.
            let (counted_at, counts) = match t.counts.take() {
                Some((at, c)) if now.saturating_sub(at) < COUNTS_FOR_MS => (at, c),
                _ => (now, stale_counts(&t.entries, now, stale)),
            };
            let top = counts.values().copied().max().unwrap_or(0);
            let own = counts.get(&source).copied().unwrap_or(0);
            let refused = if top == 0 {
                // Every place is proven or in progress right now: nothing to take from anyone.
                Some(Refused::Full)
            } else if own * 2 >= top {
                // A source holding half as many stale connections as the most crowded one, or
                // more, is (part of) the flood: making room for it would only churn its own.
                Some(Refused::Crowded)
            } else {
                None
            };
            if let Some(why) = refused {
                t.counts = Some((counted_at, counts));
                return Err(why);
            }
            // Room is made: the next decision counts afresh.
            let counts = stale_counts(&t.entries, now, stale);
            let top = counts.values().copied().max().unwrap_or(0);
            let i = least_active_unproven(&t.entries, |e| {
                counts.get(&e.source) == Some(&top) && is_stale(e, now, stale)
            })
            .ok_or(Refused::Full)?;
            let victim = t.entries[i].source;
            evict(&mut t.entries, i);
            admitted = Admitted::Evicted(victim);
        }
        let id = t.next_id;
        t.next_id += 1;
        let state = Arc::new(ConnState {
            accepted_ms: now,
            last_active_ms: AtomicU64::new(now),
            spoke: AtomicBool::new(false),
            bytes: AtomicU64::new(0),
            request_ms: AtomicU64::new(0),
            request_bytes: AtomicU64::new(0),
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

/// How long an unproven connection may go without a byte, or without a request head since
/// its accept, before it counts as *stale*: a genuine client speaks at once and completes its
/// handshake and head within a few round trips.
const STALE_AFTER_MS: u64 = 2_000;

/// Bytes per second below which a request body that has been arriving for
/// [`STALE_AFTER_MS`] makes its connection stale: a byte a second is a trickle, not an upload.
pub const MIN_BODY_RATE: u64 = 1024;

fn is_stale(e: &Entry, now: u64, after: u64) -> bool {
    e.state.is_stale(now, after)
}

/// Stale connections by source (sources with none are absent).
fn stale_counts(entries: &[Entry], now: u64, after: u64) -> HashMap<IpAddr, usize> {
    let mut counts = HashMap::new();
    for e in entries.iter().filter(|e| is_stale(e, now, after)) {
        *counts.entry(e.source).or_insert(0) += 1;
    }
    counts
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

    /// A table where every unproven connection is stale at once, to test the order of eviction
    /// without waiting.
    fn table(max: usize, per_source: usize) -> Arc<Admission> {
        let mut a = Admission::new(max, per_source);
        Arc::get_mut(&mut a).unwrap().stale_after_ms = 0;
        a
    }

    /// Connections that spoke within the last two seconds are never taken: a full table of
    /// them refuses the newcomer (a genuine client's burst of handshakes is safe).
    #[test]
    fn fresh_connections_are_not_evicted() {
        let a = Admission::new(2, 2);
        let (_t1, _) = a.admit(ip("127.0.0.2")).unwrap();
        let (_t2, _) = a.admit(ip("127.0.0.3")).unwrap();
        assert_eq!(a.admit(ip("127.0.0.1")).err(), Some(Refused::Full));
    }

    /// A full table evicts for a newcomer from an uncrowded source: silent before spoken,
    /// then the least recently active; never a proven one; refuses when all are proven.
    #[test]
    fn a_full_table_evicts_the_least_recently_active_unproven_connection() {
        let pause = || std::thread::sleep(std::time::Duration::from_millis(5));
        let a = table(3, 3);
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

    /// A source at its cap is refused; other sources still get in.
    #[test]
    fn a_source_at_its_cap_is_refused_and_others_are_not() {
        let a = table(10, 2);
        let (_s1, _) = a.admit(ip("10.0.0.1")).unwrap();
        let (s2, _) = a.admit(ip("10.0.0.1")).unwrap();
        assert_eq!(a.admit(ip("10.0.0.1")).err(), Some(Refused::SourceFull));
        assert!(a.admit(ip("10.0.0.2")).is_ok());
        drop(s2);
        assert!(a.admit(ip("10.0.0.1")).is_ok());
    }

    /// A full table makes room for an uncrowded source by evicting from the most crowded one
    /// (even when another source's connection is older and silent), and refuses the crowded
    /// source's own newcomers instead of churning its connections.
    #[tokio::test]
    async fn the_most_crowded_source_makes_room_and_cannot_churn() {
        let a = table(5, 5);
        let (_other, _) = a.admit(ip("127.0.0.9")).unwrap();
        let mut flood = Vec::new();
        for _ in 0..4 {
            flood.push(a.admit(ip("127.0.0.2")).unwrap().0);
        }
        for _ in 0..10 {
            assert_eq!(a.admit(ip("127.0.0.2")).err(), Some(Refused::Crowded));
        }
        let (_genuine, how) = a.admit(ip("127.0.0.1")).unwrap();
        assert_eq!(how, Admitted::Evicted(ip("127.0.0.2")));
        // The flood's oldest was told to go.
        tokio::time::timeout(
            std::time::Duration::from_secs(5),
            flood[0].state().evicted(),
        )
        .await
        .expect("the flood's oldest connection was not evicted");
        // Another genuine newcomer: the flood (3) is still the most crowded.
        let (_g2, how) = a.admit(ip("127.0.0.3")).unwrap();
        assert_eq!(how, Admitted::Evicted(ip("127.0.0.2")));
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
        let a = table(2, 2);
        // The first is the oldest and its state says silent, but its socket holds a request.
        let (t1, _) = a.admit_tcp(ip("127.0.0.2"), &first).unwrap();
        let (_t2, _) = a.admit_tcp(ip("127.0.0.3"), &second).unwrap();
        let (_t3, how) = a.admit(ip("127.0.0.4")).unwrap();
        assert_eq!(how, Admitted::Evicted(ip("127.0.0.3")));
        assert!(t1.state().spoke.load(Ordering::Relaxed));
    }

    /// Trickling does not keep a connection fresh: no request head 2 s (here 50 ms) after the
    /// accept, or a body slower than MIN_BODY_RATE, is stale however recent its last byte.
    #[test]
    fn trickled_handshakes_heads_and_bodies_go_stale() {
        let mut a = Admission::new(10, 10);
        Arc::get_mut(&mut a).unwrap().stale_after_ms = 50;
        let (head, _) = a.admit(ip("127.0.0.2")).unwrap();
        let (slow_body, _) = a.admit(ip("127.0.0.3")).unwrap();
        let (upload, _) = a.admit(ip("127.0.0.4")).unwrap();
        for t in [&slow_body, &upload] {
            t.state().read(300);
            t.state().request_started();
        }
        for _ in 0..8 {
            std::thread::sleep(std::time::Duration::from_millis(10));
            head.state().read(1);
            slow_body.state().read(1);
            upload.state().read(10_000);
        }
        let now = ms_since(a.epoch);
        assert!(head.state().is_stale(now, 50), "a head trickled for 80 ms");
        assert!(slow_body.state().is_stale(now, 50), "a body at ~100 B/s");
        assert!(!upload.state().is_stale(now, 50), "a body at ~1 MB/s");
        upload.state().prove();
        assert!(
            !upload.state().is_stale(now + 10_000, 50),
            "a proven connection"
        );
    }

    /// The count used to refuse expires even while refusals go on without a pause: a flood
    /// refused every few milliseconds must not keep a count from before it went stale.
    #[test]
    fn the_count_of_stale_connections_expires_under_continuous_refusals() {
        let mut a = Admission::new(2, 10);
        Arc::get_mut(&mut a).unwrap().stale_after_ms = 100;
        let (_f1, _) = a.admit(ip("127.0.0.2")).unwrap();
        let (_f2, _) = a.admit(ip("127.0.0.2")).unwrap();
        let started = Instant::now();
        while started.elapsed() < std::time::Duration::from_millis(300) {
            assert!(a.admit(ip("127.0.0.2")).is_err());
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        let (_genuine, how) = a.admit(ip("127.0.0.1")).unwrap();
        assert_eq!(how, Admitted::Evicted(ip("127.0.0.2")));
    }
}
