//! Rate limit on local (break-glass) sign-in: a password guessed at is slowed down per account
//! and across all accounts, without ever locking the real administrator out for long.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failures of one account within [`WINDOW`] before it must wait.
const PER_ACCOUNT: usize = 5;
/// Failures of all accounts together within [`WINDOW`] before everybody must wait.
const OVERALL: usize = 30;
const WINDOW: Duration = Duration::from_secs(15 * 60);

#[derive(Default)]
pub struct LoginLimiter {
    failures: Mutex<HashMap<String, Vec<Instant>>>,
}

impl LoginLimiter {
    /// `Some(wait)` while sign-in for `user` is held back.
    pub fn held(&self, user: &str) -> Option<Duration> {
        let now = Instant::now();
        let mut map = self.lock();
        for v in map.values_mut() {
            v.retain(|t| now.duration_since(*t) < WINDOW);
        }
        map.retain(|_, v| !v.is_empty());
        let wait = |v: &[Instant], n: usize| -> Option<Duration> {
            (v.len() >= n).then(|| {
                let oldest = v.iter().min().copied().unwrap_or(now);
                WINDOW.saturating_sub(now.duration_since(oldest))
            })
        };
        if let Some(w) = map.get(&key(user)).and_then(|v| wait(v, PER_ACCOUNT)) {
            return Some(w);
        }
        let all: Vec<Instant> = map.values().flatten().copied().collect();
        wait(&all, OVERALL)
    }

    pub fn failed(&self, user: &str) {
        self.lock()
            .entry(key(user))
            .or_default()
            .push(Instant::now());
    }

    pub fn succeeded(&self, user: &str) {
        self.lock().remove(&key(user));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<Instant>>> {
        self.failures.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Accounts compared as typed, case-insensitively (so `Admin` and `admin` share a count).
fn key(user: &str) -> String {
    user.trim().to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_account_is_held_after_five_failures_and_freed_by_a_success() {
        let l = LoginLimiter::default();
        for _ in 0..PER_ACCOUNT - 1 {
            l.failed("khancap");
        }
        assert!(l.held("khancap").is_none());
        l.failed("KhanCap");
        let w = l.held("khancap").expect("held");
        assert!(w > Duration::from_secs(14 * 60));
        assert!(l.held("another").is_none(), "per account");
        l.succeeded("khancap");
        assert!(l.held("khancap").is_none());
    }

    #[test]
    fn many_accounts_failing_hold_everybody() {
        let l = LoginLimiter::default();
        for i in 0..OVERALL {
            l.failed(&format!("u{i}"));
        }
        assert!(l.held("someone-else").is_some());
    }
}
