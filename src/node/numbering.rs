//! Handing out số: which number a submission is signed with, so that the register never has a
//! gap and one typo cannot use up a year.
//!
//! The number is inside the signed package, so it must be chosen before signing; but it is
//! *taken* only by the store transaction that stores the document (`Numbering::Next`: the
//! sequence moves from n−1 to n there, or the write fails and nothing is written). A
//! submission refused anywhere before that commit — by validation, signing, the store, or a
//! crash — leaves the sequence as it was.
//!
//! To let submissions of one agency overlap, each agency and year has a [`Book`] that remembers
//! the next number to hand out beyond what the store has committed. Its lock is held only to
//! choose a number; the package is then signed and written (a large one to its file, synced)
//! in parallel with the others, and each write waits for its **turn** — the write numbered
//! before it being queued — before it is queued itself, so writes reach the store's writer in
//! number order. A write that fails, or a submission that fails before its write is queued,
//! makes the book give its number back or forget (the next submission asks the store); a
//! submission numbered after it then fails cleanly (the sequence no longer stands one below its
//! number) with `STORE_UNAVAILABLE`: nothing stored, submit again. Only a failure after the
//! number was chosen does that — the whole submission is checked before (`node::validate`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

use crate::error::{Code, Error, FormatError};

/// How far above the sequence's next number a clerk may type a số without confirming it
/// (`confirm_number`). Clerks type a number that was reserved on paper a few days ago; a number
/// thousands above the sequence is almost always a typo, and every number below it is then
/// unusable by the sequence for the rest of the year.
pub const UNCONFIRMED_SLACK: u32 = 100;

/// What a store's refusal says when a submission's số is no longer the next of its sequence
/// (`STORE_UNAVAILABLE`: nothing was stored). Both stores say it; with one node it means a
/// submission numbered before this one stored nothing, with replicas also that another replica
/// took the number.
pub const SEQUENCE_MOVED: &str = "is no longer the next of the sequence";

/// Whether `e` is the store's refusal of a number that is no longer the next of its sequence
/// ([`SEQUENCE_MOVED`]), which renumbering and submitting again cures — unlike the store being
/// unavailable, which has the same code.
pub fn sequence_moved(e: &Error) -> bool {
    e.code() == Code::StoreUnavailable && e.to_string().contains(SEQUENCE_MOVED)
}

/// A book, shared by the submissions of its agency and year.
pub type SharedBook = Arc<tokio::sync::Mutex<Book>>;

/// The per-agency, per-year books of this node.
#[derive(Debug, Default)]
pub struct Books {
    books: Mutex<HashMap<(String, i32), SharedBook>>,
}

/// One agency's sequence for one year, as this node is handing it out.
#[derive(Debug, Default)]
pub struct Book {
    /// The next number to hand out, counting submissions under way; `None`: ask the store (at
    /// start, and after a write of this book failed or stored nothing).
    next: Option<u32>,
    /// Resolves when the last submission that took a turn has queued its write (or given up).
    tail: Option<oneshot::Receiver<()>>,
}

/// A submission's place in the order of its book's writes. [`Turn::split`] gives the wait for
/// the one before to have queued its write, and this one's release: dropped once this one's
/// write is queued (or the submission gave up), it lets the next one go.
#[derive(Debug)]
pub struct Turn {
    before: Option<oneshot::Receiver<()>>,
    done: oneshot::Sender<()>,
}

impl Turn {
    /// Splits into the wait for the submission before and this one's release (drop it when
    /// this one's write is queued, or on giving up).
    pub fn split(
        self,
    ) -> (
        impl std::future::Future<Output = ()> + Send + 'static,
        impl Send,
    ) {
        let before = self.before;
        let wait = async move {
            if let Some(b) = before {
                // An error only means the one before gave up: the turn is ours either way.
                let _ = b.await;
            }
        };
        (wait, self.done)
    }
}

impl Books {
    /// The book of `agency` for `year` (created empty on first use).
    pub fn book(&self, agency: &str, year: i32) -> SharedBook {
        let mut books = self.books.lock().unwrap_or_else(|p| p.into_inner());
        books.entry((agency.to_owned(), year)).or_default().clone()
    }
}

impl Book {
    /// The number the next submission gets: the remembered one, or `last` (the store's, which
    /// `last` is asked for only when nothing is remembered) plus one.
    pub async fn next<F>(&mut self, last: F) -> Result<u32, Error>
    where
        F: std::future::Future<Output = Result<u32, Error>>,
    {
        if let Some(n) = self.next {
            return Ok(n);
        }
        let last = last.await?;
        let next = last.checked_add(1).ok_or_else(|| {
            Error::store(
                Code::ValueInvalid,
                format!("the sequence is exhausted for the year (its last số is {last})"),
            )
        })?;
        self.next = Some(next);
        Ok(next)
    }

    /// A submission goes ahead with `number`: later ones get numbers after it (a typed number
    /// below the sequence changes nothing); its [`Turn`] comes after every earlier one's.
    pub fn take(&mut self, number: u32) -> Turn {
        if self.next.is_none_or(|n| number >= n) {
            self.next = number.checked_add(1);
        }
        let (done, after) = oneshot::channel();
        Turn {
            before: self.tail.replace(after),
            done,
        }
    }

    /// The submission numbered `number` gave up before its write was queued: the number is
    /// handed out again if no later one was, else the store is asked next time.
    pub fn give_back(&mut self, number: u32) {
        if self.next == number.checked_add(1) {
            self.next = Some(number);
        } else {
            self.next = None;
        }
    }

    /// A write of this book failed or stored nothing: ask the store next time.
    pub fn forget(&mut self) {
        self.next = None;
    }
}

/// Refuses a typed số far above `next` (the number the sequence would give) unless the clerk
/// confirmed it, and 0.
pub fn check_typed(number: u32, next: u32, confirmed: bool) -> Result<(), Error> {
    if number == 0 {
        return Err(FormatError::invalid("metadata.number", "must be 1 or more").into());
    }
    if number > next.saturating_add(UNCONFIRMED_SLACK) && !confirmed {
        return Err(Error::store(
            Code::NumberUnconfirmed,
            format!(
                "metadata.number: {number} is more than {UNCONFIRMED_SLACK} above the next số \
                 of the sequence ({next}); every number below it would be skipped for the rest \
                 of the year. Check it, or send \"confirm_number\": true if it is right"
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_book_remembers_what_was_queued_and_forgets_on_failure() {
        let mut b = Book::default();
        assert_eq!(b.next(async { Ok(41) }).await.unwrap(), 42);
        let _t = b.take(42);
        assert_eq!(
            b.next(async { panic!("not asked while it remembers") })
                .await
                .unwrap(),
            43
        );
        let _t = b.take(10); // a typed number below: nothing changes
        assert_eq!(b.next(async { Ok(0) }).await.unwrap(), 43);
        let _t = b.take(43);
        b.give_back(43); // nobody took 44: 43 is handed out again
        assert_eq!(b.next(async { Ok(0) }).await.unwrap(), 43);
        let _t = b.take(43);
        let _t = b.take(44);
        b.give_back(43); // 44 is under way: ask the store
        assert_eq!(b.next(async { Ok(42) }).await.unwrap(), 43);
        b.forget();
        assert_eq!(b.next(async { Ok(42) }).await.unwrap(), 43);
        b.forget();
        let e = b.next(async { Ok(u32::MAX) }).await.unwrap_err();
        assert!(e.to_string().contains("exhausted"), "{e}");
    }

    #[tokio::test]
    async fn turns_come_in_the_order_numbers_were_taken_and_a_dropped_one_passes_its_turn() {
        let mut b = Book::default();
        let (first_wait, first_done) = b.take(1).split();
        let (second_wait, second_done) = b.take(2).split();
        let (third_wait, _third_done) = b.take(3).split();
        first_wait.await; // nobody before
        let mut second_wait = Box::pin(second_wait);
        assert!(
            futures_poll_once(second_wait.as_mut()).await.is_none(),
            "the second waits for the first"
        );
        drop(first_done);
        second_wait.await;
        drop(second_done); // gave up: the third goes on
        third_wait.await;
    }

    /// Polls once: `Some` if it is ready.
    async fn futures_poll_once<F: std::future::Future + Unpin>(f: F) -> Option<F::Output> {
        let mut f = f;
        std::future::poll_fn(|cx| {
            std::task::Poll::Ready(match std::pin::Pin::new(&mut f).poll(cx) {
                std::task::Poll::Ready(v) => Some(v),
                std::task::Poll::Pending => None,
            })
        })
        .await
    }

    #[test]
    fn a_typed_number_far_above_needs_confirming() {
        assert!(check_typed(7, 5, false).is_ok());
        assert!(check_typed(3, 5, false).is_ok(), "below: the store decides");
        assert!(check_typed(5 + UNCONFIRMED_SLACK, 5, false).is_ok());
        let e = check_typed(u32::MAX, 5, false).unwrap_err();
        assert_eq!(e.code(), Code::NumberUnconfirmed);
        assert!(check_typed(u32::MAX, 5, true).is_ok());
        assert_eq!(
            check_typed(0, 5, true).unwrap_err().code(),
            Code::ValueInvalid
        );
    }
}
