//! Giving the heap back to the system after large packages.
//!
//! glibc's allocator raises its mmap threshold after the first large buffers are freed, so the
//! buffers of later packages of a few MiB come from the heap, and when they are freed the heap
//! keeps their pages: after a burst of 50 concurrent 1 MiB documents, a 100 MB document that
//! followed peaked 66–110 MiB higher on the sender than the same document alone (307–352
//! against 242 MiB; with the trim 265–275). `malloc_trim` returns the free pages of every
//! arena. Trimming while large packages keep coming costs more than it saves (the next package
//! faults the same pages in again: about 10 % of 1 MB throughput when trimming after every
//! package), so the trim runs once the node has had no large package in hand for a moment.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

/// A package this large (bytes) is worth a trim; the same size from which the store keeps a
/// package in a file rather than in its row.
pub const LARGE_PACKAGE: usize = 1024 * 1024;

/// How long the node must have had no large package in hand before it trims.
const SETTLE: Duration = Duration::from_millis(100);

/// Large packages in hand now.
static IN_HAND: AtomicUsize = AtomicUsize::new(0);

/// Trims run so far (for the tests).
static TRIMS: AtomicU64 = AtomicU64::new(0);

/// Held for as long as the buffers of a package live (the request body, the attachments, the
/// composed package). When the last large package in hand is dropped, a trim is scheduled; it
/// runs if no large package has come meanwhile. Small packages are not counted.
#[derive(Debug)]
#[must_use = "the package counts as in hand only while this is held"]
pub struct InHand {
    large: bool,
}

impl InHand {
    /// A package of `size` bytes is in hand.
    pub fn new(size: usize) -> InHand {
        let large = size >= LARGE_PACKAGE;
        if large {
            IN_HAND.fetch_add(1, Ordering::AcqRel);
        }
        InHand { large }
    }
}

impl Drop for InHand {
    fn drop(&mut self) {
        if self.large && IN_HAND.fetch_sub(1, Ordering::AcqRel) == 1 {
            schedule_trim();
        }
    }
}

fn schedule_trim() {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    runtime.spawn(async {
        tokio::time::sleep(SETTLE).await;
        // Another large package came meanwhile: its end schedules the trim.
        if IN_HAND.load(Ordering::Acquire) == 0 {
            let _ = tokio::task::spawn_blocking(trim).await;
        }
    });
}

/// Returns the free pages of the allocator's arenas to the system.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn trim() {
    TRIMS.fetch_add(1, Ordering::AcqRel);
    // SAFETY: `malloc_trim` takes no pointers and may be called from any thread at any time;
    // it only releases memory the allocator holds free.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Other allocators (musl, macOS) give memory back on their own terms.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim() {
    TRIMS.fetch_add(1, Ordering::AcqRel);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Trims after the settling time has passed on the (paused) clock and any trim it started
    /// has finished. The clock decides when; the real-time wait only bounds a trim already
    /// started on a blocking thread.
    async fn trims_after_settling(expected: u64) -> u64 {
        tokio::time::sleep(SETTLE * 3).await;
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while TRIMS.load(Ordering::Acquire) < expected && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
            tokio::task::yield_now().await;
        }
        TRIMS.load(Ordering::Acquire)
    }

    /// Small packages never trim; large ones trim once the last of them is dropped, not before.
    #[tokio::test(start_paused = true)]
    async fn trims_once_no_large_package_is_in_hand() {
        let before = TRIMS.load(Ordering::Acquire);
        let small = InHand::new(LARGE_PACKAGE - 1);
        drop(small);
        assert_eq!(trims_after_settling(before).await, before);

        let a = InHand::new(LARGE_PACKAGE);
        let b = InHand::new(100 * LARGE_PACKAGE);
        drop(a);
        assert_eq!(trims_after_settling(before).await, before);
        drop(b);
        assert_eq!(trims_after_settling(before + 1).await, before + 1);
    }
}
