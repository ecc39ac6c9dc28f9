//! Who is woken when the link has something to read.
//!
//! Two parties read the link: the application, while it waits in
//! `poll_recv` with nothing received yet (it reads the link itself, which
//! saves a wake of the driver task and a hand-over per frame), and the
//! driver task the rest of the time (acknowledgements while the
//! application only sends, heartbeats, the peer's farewell). Both poll the
//! link with one waker, [`ReadDispatch`]'s, so the link always holds it;
//! when it fires, it wakes the application if it is waiting on the link,
//! and the driver otherwise.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Wake, Waker};

/// The waker both readers of a link poll it with.
#[derive(Debug, Default)]
pub(crate) struct ReadDispatch {
    /// Set while the application waits for a frame it reads off the link
    /// itself; cleared by the wake that goes to it, and by the application
    /// when it stops waiting (a frame taken, a send).
    app_waiting: AtomicBool,
    /// Set by a wake that went to the application, until the application
    /// comes back to read: if it leaves instead (its receive was given up),
    /// the readiness that wake carried is the driver's to act on, since
    /// the link holds no waker until someone polls it again.
    app_woken: AtomicBool,
    app: Mutex<Option<Waker>>,
    driver: Mutex<Option<Waker>>,
}

fn locked(slot: &Mutex<Option<Waker>>) -> MutexGuard<'_, Option<Waker>> {
    // A waker slot is consistent whatever panicked while it was held.
    slot.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Clears `flag`, with no write when it is clear already.
#[inline]
fn clear(flag: &AtomicBool) {
    if flag.load(Ordering::Relaxed) {
        flag.store(false, Ordering::Release);
    }
}

fn store(slot: &Mutex<Option<Waker>>, waker: &Waker) {
    let mut slot = locked(slot);
    if !slot.as_ref().is_some_and(|w| w.will_wake(waker)) {
        *slot = Some(waker.clone());
    }
}

impl ReadDispatch {
    /// The application waits for the link, with `waker`: call before it
    /// polls the link, so that no readiness between the two is missed.
    pub(crate) fn app_waits(&self, waker: &Waker) {
        store(&self.app, waker);
        self.app_woken.store(false, Ordering::Release);
        self.app_waiting.store(true, Ordering::Release);
    }

    /// The application read the link itself: whatever wake brought it was
    /// used.
    #[inline]
    pub(crate) fn app_read(&self) {
        clear(&self.app_waiting);
        clear(&self.app_woken);
    }

    /// The application no longer waits for the link, and did not read it:
    /// its readiness goes to the driver from now on. `true` when a wake
    /// went to the application that it did not read after (a receive given
    /// up): the caller wakes the driver, which reads the link.
    #[inline]
    #[must_use]
    pub(crate) fn app_leaves(&self) -> bool {
        clear(&self.app_waiting);
        self.app_woken.load(Ordering::Relaxed) && self.app_woken.swap(false, Ordering::AcqRel)
    }

    /// The driver's waker, for readiness while the application does not
    /// wait for the link.
    pub(crate) fn driver_is(&self, waker: &Waker) {
        store(&self.driver, waker);
    }
}

impl Wake for ReadDispatch {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        // Each waker is taken out of its slot before it is woken: the task
        // woken may run at once on another thread and come for the slot.
        if self.app_waiting.swap(false, Ordering::AcqRel) {
            let app = locked(&self.app).take();
            if let Some(w) = app {
                self.app_woken.store(true, Ordering::Release);
                w.wake();
                return;
            }
        }
        let driver = locked(&self.driver).clone();
        if let Some(w) = driver {
            w.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

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

    /// A dispatch with the driver's waker given, the link's waker, and the
    /// application's and the driver's wake counts.
    fn dispatch() -> (Arc<ReadDispatch>, Waker, (Arc<Count>, Waker), Arc<Count>) {
        let dispatch = Arc::new(ReadDispatch::default());
        let link_waker = Waker::from(dispatch.clone());
        let (driver, driver_waker) = counter();
        dispatch.driver_is(&driver_waker);
        (dispatch, link_waker, counter(), driver)
    }

    #[test]
    fn readiness_goes_to_the_waiting_application_once_then_to_the_driver() {
        let (dispatch, link_waker, (app, app_waker), driver) = dispatch();
        dispatch.app_waits(&app_waker);
        link_waker.wake_by_ref();
        assert_eq!(app.0.load(Ordering::SeqCst), 1);
        assert_eq!(driver.0.load(Ordering::SeqCst), 0);

        // The application was woken and has not waited again: the driver
        // gets the next readiness, and keeps getting it.
        link_waker.wake_by_ref();
        link_waker.wake_by_ref();
        assert_eq!(app.0.load(Ordering::SeqCst), 1);
        assert_eq!(driver.0.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn an_application_done_waiting_leaves_readiness_to_the_driver() {
        let (dispatch, link_waker, (app, app_waker), driver) = dispatch();
        dispatch.app_waits(&app_waker);
        assert!(!dispatch.app_leaves(), "no wake went to the application");
        link_waker.wake_by_ref();
        assert_eq!(app.0.load(Ordering::SeqCst), 0);
        assert_eq!(driver.0.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn an_application_that_leaves_after_a_wake_it_did_not_read_says_so_once() {
        let (dispatch, link_waker, (app, app_waker), _driver) = dispatch();
        dispatch.app_waits(&app_waker);
        link_waker.wake_by_ref();
        assert_eq!(app.0.load(Ordering::SeqCst), 1);
        assert!(dispatch.app_leaves(), "the wake it got was not read");
        assert!(!dispatch.app_leaves(), "told once");
        // One that came back and read has nothing to tell.
        dispatch.app_waits(&app_waker);
        link_waker.wake_by_ref();
        dispatch.app_read();
        assert!(!dispatch.app_leaves());
    }
}
