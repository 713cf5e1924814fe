// SPDX-License-Identifier: GPL-2.0

//! Per-CPU arrays (`alloc_percpu`): one copy of an array for every possible CPU, so that
//! CPUs update their own copy without sharing cache lines.

use core::marker::PhantomData;
use core::ptr::NonNull;

use kernel::error::{code::EINVAL, code::ENOMEM, Result};
use kernel::page::PAGE_SIZE;

use crate::bindings as b;

/// Most bytes one per-CPU allocation may have (`PCPU_MIN_UNIT_SIZE`, include/linux/percpu.h):
/// larger requests fail with a warning.
pub(crate) const MAX_BYTES: usize = 32 << 10;

/// `len` values of `T` for each possible CPU.
///
/// # Invariants
///
/// `ptr` is a per-CPU allocation of `len` initialised `T`s per possible CPU, owned by `self`.
pub(crate) struct PerCpuArray<T> {
    ptr: NonNull<T>,
    len: usize,
    _owns: PhantomData<T>,
}

// SAFETY: every CPU's copy is reached only through `&self` as `&[T]`, which `T: Sync` makes
// safe to share; the values move with `self` only when `T: Send`.
unsafe impl<T: Send + Sync> Send for PerCpuArray<T> {}
// SAFETY: as above.
unsafe impl<T: Sync> Sync for PerCpuArray<T> {}

/// The possible CPUs, in order (`for_each_possible_cpu`).
fn possible_cpus() -> impl Iterator<Item = i32> {
    // SAFETY: reads the possible-CPU mask, which is fixed after boot.
    let next = |cpu: i32| Some(unsafe { b::ipvs_gue_next_possible_cpu(cpu) }).filter(|&next| next >= 0);
    core::iter::successors(next(-1), move |&cpu| next(cpu))
}

impl<T> PerCpuArray<T> {
    /// `len` values made by `init`, on every possible CPU. Sleeps (GFP_KERNEL_ACCOUNT: charged
    /// to the caller's memory cgroup, as configuration memory a user namespace's owner may ask
    /// for). Fails with `EINVAL` if one CPU's array would exceed [`MAX_BYTES`].
    pub(crate) fn new(len: usize, init: impl Fn() -> T) -> Result<Self> {
        const { assert!(core::mem::align_of::<T>() <= PAGE_SIZE, "pcpu_alloc refuses alignments above PAGE_SIZE") };
        let bytes = len.checked_mul(core::mem::size_of::<T>()).ok_or(EINVAL)?;
        if bytes == 0 || bytes > MAX_BYTES {
            return Err(EINVAL);
        }
        // SAFETY: a size between 1 and PCPU_MIN_UNIT_SIZE and a power-of-two alignment of at
        // most PAGE_SIZE (asserted above).
        let raw = unsafe { b::ipvs_gue_alloc_percpu(bytes, core::mem::align_of::<T>()) };
        let ptr = NonNull::new(raw.cast::<T>()).ok_or(ENOMEM)?;
        for cpu in possible_cpus() {
            // SAFETY: `ptr` is a live per-CPU allocation and `cpu` a possible CPU.
            let copy = unsafe { b::ipvs_gue_per_cpu_ptr(ptr.as_ptr().cast(), cpu) }.cast::<T>();
            for index in 0..len {
                // SAFETY: `copy` is this CPU's `bytes`-long, `T`-aligned area; `index < len`.
                // Nothing else can see it yet.
                unsafe { copy.add(index).write(init()) };
            }
        }
        // INVARIANT: allocated above, every CPU's `len` values written.
        Ok(Self { ptr, len, _owns: PhantomData })
    }

    /// This CPU's array. The caller may be preempted and migrate while it uses the array, so
    /// `T` must tolerate updates from a CPU that is not its owner (e.g. atomics).
    pub(crate) fn this_cpu(&self) -> &[T] {
        // SAFETY: `self.ptr` is a live per-CPU allocation (type invariant); `raw_cpu_ptr` is
        // valid in any context, preemptible included.
        let copy = unsafe { b::ipvs_gue_raw_cpu_ptr(self.ptr.as_ptr().cast()) }.cast::<T>();
        // SAFETY: every possible CPU's copy holds `len` initialised values (type invariant),
        // shared for the lifetime of `&self`.
        unsafe { core::slice::from_raw_parts(copy, self.len) }
    }

    /// Every possible CPU's array.
    pub(crate) fn each_cpu(&self) -> impl Iterator<Item = &[T]> {
        possible_cpus().map(move |cpu| {
            // SAFETY: a live per-CPU allocation and a possible CPU.
            let copy = unsafe { b::ipvs_gue_per_cpu_ptr(self.ptr.as_ptr().cast(), cpu) }.cast::<T>();
            // SAFETY: as in `this_cpu`.
            unsafe { core::slice::from_raw_parts(copy.cast_const(), self.len) }
        })
    }
}

impl<T> Drop for PerCpuArray<T> {
    fn drop(&mut self) {
        for cpu in possible_cpus() {
            // SAFETY: a live per-CPU allocation and a possible CPU.
            let copy = unsafe { b::ipvs_gue_per_cpu_ptr(self.ptr.as_ptr().cast(), cpu) }.cast::<T>();
            // SAFETY: the copy holds `len` initialised values that nothing borrows (`&mut self`);
            // each is dropped once.
            unsafe { core::ptr::drop_in_place(core::ptr::slice_from_raw_parts_mut(copy, self.len)) };
        }
        // SAFETY: allocated by `ipvs_gue_alloc_percpu`, freed once.
        unsafe { b::free_percpu(self.ptr.as_ptr().cast()) };
    }
}
