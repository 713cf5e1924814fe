// SPDX-License-Identifier: GPL-2.0

//! RCU: a read-side guard and a pointer whose value readers use without locks.

use core::marker::PhantomData;
use core::sync::atomic::{AtomicPtr, Ordering};

use kernel::alloc::KBox;
use kernel::prelude::*;
use kernel::sync::lock::{mutex::MutexBackend, Guard};
use kernel::sync::Mutex;

use crate::bindings as b;

/// An RCU read-side critical section (`rcu_read_lock` .. `rcu_read_unlock`).
pub(crate) struct RcuReadGuard(PhantomData<*mut ()>);

impl RcuReadGuard {
    pub(crate) fn new() -> Self {
        // SAFETY: always allowed; balanced by `Drop` on the same CPU context (the guard is
        // neither `Send` nor `Sync`).
        unsafe { b::ipvs_gue_rcu_read_lock() };
        Self(PhantomData)
    }
}

impl Drop for RcuReadGuard {
    fn drop(&mut self) {
        // SAFETY: pairs with the `rcu_read_lock` in `new`.
        unsafe { b::ipvs_gue_rcu_read_unlock() };
    }
}

/// Waits until every RCU reader that may have seen an old value has finished.
fn synchronize_rcu() {
    // SAFETY: called from process context only (writers of `RcuBox` run there).
    unsafe { b::synchronize_rcu() };
}

/// A point in RCU time: [`GracePeriodStamp::wait`] returns once a full grace period has
/// elapsed since it was taken, at once if one already has (`get_state_synchronize_rcu` ..
/// `cond_synchronize_rcu`). Teardowns stamped together then share one grace period.
pub(crate) struct GracePeriodStamp(core::ffi::c_ulong);

impl GracePeriodStamp {
    pub(crate) fn now() -> Self {
        // SAFETY: only reads RCU's grace-period counter; callable from any context.
        Self(unsafe { b::get_state_synchronize_rcu() })
    }

    /// Sleeps (process context only) until every RCU read-side section that was running when
    /// `self` was taken has ended.
    pub(crate) fn wait(&self) {
        // SAFETY: `self.0` came from `get_state_synchronize_rcu`; callers run in process
        // context (netns exit, module unload, registration error paths).
        unsafe { b::cond_synchronize_rcu(self.0) };
    }
}

/// A heap value published with RCU, and the lock its writers take. Readers dereference the
/// value lock-free inside a read-side critical section; a writer holds the lock, under which
/// the value cannot change, so it reads it without one (`rcu_dereference_protected`), and
/// swaps in a new value, freeing the old one after a grace period.
#[pin_data]
pub(crate) struct RcuBox<T, W> {
    current: Owned<T>,
    #[pin]
    writer: Mutex<W>,
}

/// The published pointer.
///
/// # Invariants
///
/// The pointer always comes from `KBox::into_raw` and is owned by `self`.
struct Owned<T>(AtomicPtr<T>);

// SAFETY: readers on any CPU only get `&T`; the value moves between threads on replacement.
unsafe impl<T: Send + Sync> Sync for Owned<T> {}
// SAFETY: as above.
unsafe impl<T: Send + Sync> Send for Owned<T> {}

impl<T> Drop for Owned<T> {
    fn drop(&mut self) {
        // `&mut self` proves no borrow remains: readers reach the value only through the state
        // that owns `self`, and the hook registration and the files release that state only
        // once their callbacks can no longer run.
        // SAFETY: the pointer came from `KBox::into_raw` (type invariant) and is freed once.
        drop(unsafe { KBox::from_raw(*self.0.get_mut()) });
    }
}

impl<T, W> RcuBox<T, W> {
    /// Publishes `value`; `writer` is the writers' lock and what it guards.
    pub(crate) fn new(value: KBox<T>, writer: impl PinInit<Mutex<W>>) -> impl PinInit<Self> {
        // INVARIANT: the pointer comes from `KBox::into_raw` and only `current` holds it.
        pin_init!(Self { current: Owned(AtomicPtr::new(KBox::into_raw(value))), writer <- writer })
    }

    /// The current value, valid while both `self` and the read-side section live.
    pub(crate) fn read<'a>(&'a self, _guard: &'a RcuReadGuard) -> &'a T {
        // Acquire pairs with the Release in `publish` (rcu_dereference/rcu_assign_pointer).
        let ptr = self.current.0.load(Ordering::Acquire);
        // SAFETY: `ptr` is a live `KBox` allocation (type invariant of `Owned`); a replaced
        // value is freed only after a grace period, which cannot end while `_guard` exists.
        unsafe { &*ptr }
    }

    /// Takes the writers' lock. Sleeps.
    pub(crate) fn write(&self) -> RcuWriter<'_, T, W> {
        RcuWriter { current: &self.current, state: self.writer.lock() }
    }
}

/// A writer of an [`RcuBox`]: holds its lock, and gives access to what the lock guards.
pub(crate) struct RcuWriter<'a, T, W> {
    current: &'a Owned<T>,
    state: Guard<'a, W, MutexBackend>,
}

impl<T, W> RcuWriter<'_, T, W> {
    /// The current value. Writers alone replace it, under the lock `self` holds, so it stays
    /// valid until `self` publishes another (which needs `&mut self`).
    pub(crate) fn current(&self) -> &T {
        let ptr = self.current.0.load(Ordering::Relaxed);
        // SAFETY: a live `KBox` allocation (type invariant of `Owned`); only `publish`, which
        // needs the lock `self` holds and `&mut self`, frees it.
        unsafe { &*ptr }
    }

    /// Publishes `value` and frees the previous one once no reader can still see it. Returns
    /// only after a full grace period (callers rely on it: no reader of the version before
    /// `value` remains once it returns; `call_rcu` or `kvfree_rcu` would not give that).
    /// Sleeps: process context only, and never inside a read-side section of the caller's own
    /// (the types cannot rule that out; `synchronize_rcu` then reports "Illegal
    /// synchronize_rcu() in RCU read-side critical section" under lockdep, as in C).
    pub(crate) fn publish(&mut self, value: KBox<T>) {
        // INVARIANT: the new pointer comes from `KBox::into_raw`; the old one is freed below.
        let old = self.current.0.swap(KBox::into_raw(value), Ordering::AcqRel);
        synchronize_rcu();
        // SAFETY: `old` came from `KBox::into_raw` (type invariant); the swap made it
        // unreachable and the grace period ended every read-side section that saw it. No
        // `&T` from `current` remains: they borrow `self`, which `&mut self` excludes.
        drop(unsafe { KBox::from_raw(old) });
    }
}

impl<T, W> core::ops::Deref for RcuWriter<'_, T, W> {
    type Target = W;

    fn deref(&self) -> &W {
        &self.state
    }
}

impl<T, W> core::ops::DerefMut for RcuWriter<'_, T, W> {
    fn deref_mut(&mut self) -> &mut W {
        &mut self.state
    }
}

/// Waits, when dropped, for every RCU callback queued so far (`rcu_barrier`): the module's
/// last field, so that no callback of its own (freeing a route cache entry) runs after its
/// code is gone.
pub(crate) struct CallbackBarrier(());

impl CallbackBarrier {
    pub(crate) fn new() -> Self {
        Self(())
    }
}

impl Drop for CallbackBarrier {
    fn drop(&mut self) {
        // SAFETY: process context (module unload); waits for callbacks queued before it.
        unsafe { b::rcu_barrier() };
    }
}
