//! Console sessions: a random id in an `HttpOnly` cookie, the person and a CSRF token kept on
//! the server (in memory: a restart signs everybody out, and each replica keeps its own — put
//! the console behind a load balancer with sticky sessions, or sign in again after a switch).
//!
//! A session ends when it is unused for `console.idle_timeout`, at `console.max_age` after
//! sign-in whatever its use, or at logout. Ids are 256 random bits from aws-lc-rs; the map is
//! keyed by their SHA-256, so the ids themselves are nowhere but in the browsers' cookies.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use aws_lc_rs::constant_time::verify_slices_are_equal;
use aws_lc_rs::digest::{SHA256, digest};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::access::Principal;

/// The session cookie's name (not `op_…`: an identity provider on the same host may use those).
pub const COOKIE: &str = "lt_console";
/// Most sessions kept at once: a flood of sign-ins cannot grow the map without bound (the
/// oldest are dropped first).
const MAX_SESSIONS: usize = 10_000;

/// A live session as a handler sees it.
#[derive(Debug, Clone)]
pub struct Session {
    pub principal: Principal,
    /// The token every form of this session carries (`_csrf`).
    pub csrf: String,
    /// The provider's ID token, for RP-initiated logout (`id_token_hint`).
    pub id_token: Option<String>,
}

struct Entry {
    session: Session,
    created: Instant,
    last_seen: Instant,
}

/// The sessions of this node process.
pub struct Sessions {
    map: Mutex<HashMap<[u8; 32], Entry>>,
    idle: Duration,
    max_age: Duration,
}

impl Sessions {
    pub fn new(idle: Duration, max_age: Duration) -> Sessions {
        Sessions {
            map: Mutex::new(HashMap::new()),
            idle,
            max_age,
        }
    }

    /// Starts a session for `principal`; returns the cookie value.
    pub fn create(&self, principal: Principal, id_token: Option<String>) -> String {
        let id = random_token();
        let now = Instant::now();
        let entry = Entry {
            session: Session {
                principal,
                csrf: random_token(),
                id_token,
            },
            created: now,
            last_seen: now,
        };
        let mut map = self.lock();
        self.sweep(&mut map, now);
        if map.len() >= MAX_SESSIONS
            && let Some(oldest) = map.iter().min_by_key(|(_, e)| e.created).map(|(k, _)| *k)
        {
            map.remove(&oldest);
        }
        map.insert(key(&id), entry);
        id
    }

    /// The live session of cookie value `id`, touched; `None` if unknown or expired (an expired
    /// one is removed).
    pub fn get(&self, id: &str) -> Option<Session> {
        let now = Instant::now();
        let k = key(id);
        let mut map = self.lock();
        let live = map.get(&k).map(|e| self.live(e, now))?;
        if !live {
            map.remove(&k);
            return None;
        }
        let e = map.get_mut(&k)?;
        e.last_seen = now;
        Some(e.session.clone())
    }

    /// Ends the session of cookie value `id`; returns it if it was live.
    pub fn end(&self, id: &str) -> Option<Session> {
        self.lock().remove(&key(id)).map(|e| e.session)
    }

    fn live(&self, e: &Entry, now: Instant) -> bool {
        now.duration_since(e.last_seen) < self.idle && now.duration_since(e.created) < self.max_age
    }

    fn sweep(&self, map: &mut HashMap<[u8; 32], Entry>, now: Instant) {
        map.retain(|_, e| self.live(e, now));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Entry>> {
        // A panic while holding the lock leaves a map that is still consistent (every
        // operation is one insert or remove): keep serving.
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Whether `given` is the session's CSRF token (constant time).
pub fn csrf_matches(session: &Session, given: &str) -> bool {
    verify_slices_are_equal(session.csrf.as_bytes(), given.as_bytes()).is_ok()
}

/// 256 random bits, base64url.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    // aws-lc-rs's system random never fails on a supported platform; if it did, an all-zero
    // token would be guessable, so stop rather than hand one out.
    if aws_lc_rs::rand::fill(&mut bytes).is_err() {
        panic!("the system's random number generator failed");
    }
    URL_SAFE_NO_PAD.encode(bytes)
}

fn key(id: &str) -> [u8; 32] {
    let d = digest(&SHA256, id.as_bytes());
    let mut k = [0u8; 32];
    k.copy_from_slice(d.as_ref());
    k
}

/// The `Set-Cookie` value that carries session `id`.
pub fn cookie(id: &str, secure: bool) -> String {
    format!(
        "{COOKIE}={id}; Path=/console; HttpOnly; SameSite=Lax{}",
        if secure { "; Secure" } else { "" }
    )
}

/// The `Set-Cookie` value that removes the session cookie.
pub fn cookie_removed(secure: bool) -> String {
    format!(
        "{COOKIE}=; Path=/console; HttpOnly; SameSite=Lax; Max-Age=0{}",
        if secure { "; Secure" } else { "" }
    )
}

/// The value of cookie `name` in a `Cookie` header.
pub fn cookie_value<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').find_map(|pair| {
        let (k, v) = pair.trim().split_once('=')?;
        (k == name).then_some(v)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Role;
    use crate::console::access::Via;

    fn someone() -> Principal {
        Principal {
            subject: "a".into(),
            name: "Nguyễn Văn A".into(),
            role: Role::Auditor,
            agency: None,
            via: Via::Local,
        }
    }

    #[test]
    fn a_session_lives_until_idle_or_ended() {
        let s = Sessions::new(Duration::from_millis(200), Duration::from_secs(60));
        let id = s.create(someone(), None);
        assert_eq!(s.get(&id).map(|x| x.principal), Some(someone()));
        assert!(s.get("not-a-session").is_none());
        std::thread::sleep(Duration::from_millis(250));
        assert!(s.get(&id).is_none(), "idle too long");
        let id = s.create(someone(), None);
        assert!(s.end(&id).is_some());
        assert!(s.get(&id).is_none(), "ended");
    }

    #[test]
    fn a_session_ends_at_its_max_age_even_in_use() {
        let s = Sessions::new(Duration::from_secs(60), Duration::from_millis(200));
        let id = s.create(someone(), None);
        for _ in 0..3 {
            std::thread::sleep(Duration::from_millis(50));
            assert!(s.get(&id).is_some());
        }
        std::thread::sleep(Duration::from_millis(100));
        assert!(s.get(&id).is_none());
    }

    #[test]
    fn csrf_tokens_are_per_session_and_compared_whole() {
        let s = Sessions::new(Duration::from_secs(60), Duration::from_secs(60));
        let a = s.get(&s.create(someone(), None)).expect("a");
        let b = s.get(&s.create(someone(), None)).expect("b");
        assert_ne!(a.csrf, b.csrf);
        assert!(csrf_matches(&a, &a.csrf));
        assert!(!csrf_matches(&a, &b.csrf));
        assert!(!csrf_matches(&a, &a.csrf[..10]));
        assert!(!csrf_matches(&a, ""));
    }

    #[test]
    fn cookies_are_read_by_name() {
        assert_eq!(
            cookie_value("a=1; lt_console=xyz; b=2", COOKIE),
            Some("xyz")
        );
        assert_eq!(cookie_value("op_session=1", COOKIE), None);
        assert!(cookie("x", true).ends_with("; Secure"));
        assert!(!cookie("x", false).contains("Secure"));
    }
}
