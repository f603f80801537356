//! The wake-up rule for tasks that share one connection (see [`crate::driver`]).
//!
//! A tokio transport keeps one waker per direction, and the timer one: whichever task polls
//! them last is the one woken. When a reader task drives a write (to flush a pong) or a writer
//! task drives the timer, it would take the other task's place and that task would never be
//! woken (a lost wake-up: the writer of a split stream parked forever on a socket that has
//! drained). So the transport and the timer are always polled with one waker of the
//! connection's own, which wakes every task parked on it, and each task parks itself in its
//! slot here.

use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Wake, Waker};

/// Which side of the connection a task waits on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    /// Waiting for an event (`recv`, `Stream::poll_next`).
    Read = 0,
    /// Waiting for output to be written (`flush_queue`, `Sink`).
    Write = 1,
}

/// The tasks parked on one connection, one slot per side.
#[derive(Debug, Default)]
pub(crate) struct WakeSet {
    parked: Mutex<[Option<Waker>; 2]>,
}

impl WakeSet {
    fn slots(&self) -> std::sync::MutexGuard<'_, [Option<Waker>; 2]> {
        // A panic while holding the lock cannot leave the slots inconsistent.
        self.parked.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Parks the task of `waker` on `side` (replacing an earlier one there).
    pub(crate) fn park(&self, side: Side, waker: &Waker) {
        let mut slots = self.slots();
        match &mut slots[side as usize] {
            Some(w) if w.will_wake(waker) => {}
            slot => *slot = Some(waker.clone()),
        }
    }

    /// Unparks `side`: its task got what it waited for.
    pub(crate) fn unpark(&self, side: Side) {
        self.slots()[side as usize] = None;
    }

    /// Wakes the task parked on the other side of `side`, unless it is the task of `current`
    /// (one task using both sides needs no wake-up: it is running).
    pub(crate) fn wake_other(&self, side: Side, current: &Waker) {
        let other = match side {
            Side::Read => Side::Write,
            Side::Write => Side::Read,
        };
        let parked = {
            let mut slots = self.slots();
            match &slots[other as usize] {
                Some(w) if !w.will_wake(current) => slots[other as usize].take(),
                _ => None,
            }
        };
        if let Some(w) = parked {
            w.wake();
        }
    }
}

impl Wake for WakeSet {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    /// The transport or the timer is ready: every parked task may be able to go on.
    fn wake_by_ref(self: &Arc<Self>) {
        let [read, write] = {
            let mut slots = self.slots();
            [slots[0].take(), slots[1].take()]
        };
        if let Some(w) = read {
            w.wake();
        }
        if let Some(w) = write {
            w.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn counter() -> (Arc<Count>, Waker) {
        let c = Arc::new(Count(AtomicUsize::new(0)));
        (c.clone(), Waker::from(c))
    }

    #[test]
    fn the_shared_waker_wakes_both_sides_once() {
        let set = Arc::new(WakeSet::default());
        let io = Waker::from(set.clone());
        let (r, reader) = counter();
        let (w, writer) = counter();
        set.park(Side::Read, &reader);
        set.park(Side::Write, &writer);
        io.wake_by_ref();
        io.wake_by_ref(); // nobody parked any more
        assert_eq!(r.0.load(Ordering::SeqCst), 1);
        assert_eq!(w.0.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn wake_other_skips_the_running_task_and_unparked_sides() {
        let set = WakeSet::default();
        let (r, reader) = counter();
        let (w, writer) = counter();
        set.park(Side::Read, &reader);
        set.park(Side::Write, &reader);
        set.wake_other(Side::Read, &reader); // the same task on both sides
        assert_eq!(r.0.load(Ordering::SeqCst), 0);
        set.park(Side::Write, &writer);
        set.unpark(Side::Read);
        set.wake_other(Side::Write, &writer); // the reader is not parked
        assert_eq!(r.0.load(Ordering::SeqCst), 0);
        set.wake_other(Side::Read, &reader);
        assert_eq!(w.0.load(Ordering::SeqCst), 1);
    }
}
