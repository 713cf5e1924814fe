// SPDX-License-Identifier: GPL-2.0

//! A read-only per-namespace `/proc/net` file showing a handler's text.

use core::ffi::{c_int, c_void};
use core::fmt;
use core::marker::PhantomData;
use core::ptr::NonNull;

use kernel::error::{code::EINVAL, code::ENOMEM, from_result, Result};
use kernel::str::CStr;
use kernel::sync::Arc;

use crate::bindings as b;
use crate::net::pernet::Namespace;
use crate::net::Net;

/// What a proc file shows.
pub(crate) trait ProcFileHandler: Send + Sync {
    /// Writes the file's contents.
    fn show(&self, out: &mut SeqFile) -> fmt::Result;
}

/// The `seq_file` being filled by a read.
///
/// # Invariants
///
/// `self.seq` is the live seq_file of the running `show` call.
pub(crate) struct SeqFile {
    seq: NonNull<b::seq_file>,
    /// The buffer is full: the seq_file core will call `show` again with one twice the size.
    overflowed: bool,
}

impl fmt::Write for SeqFile {
    /// Fails once the buffer is full, so that `show` stops writing what would be thrown away
    /// (a listing of 2^20 servers would otherwise be formatted whole for each of ~16 buffer
    /// sizes).
    fn write_str(&mut self, s: &str) -> fmt::Result {
        // SAFETY: `self.seq` is live (type invariant).
        if unsafe { b::seq_write(self.seq.as_ptr(), s.as_ptr().cast(), s.len()) } != 0 {
            self.overflowed = true;
            return Err(fmt::Error);
        }
        Ok(())
    }
}

unsafe extern "C" fn show<H: ProcFileHandler>(m: *mut b::seq_file, _v: *mut c_void) -> c_int {
    from_result(|| {
        let seq = NonNull::new(m).ok_or(EINVAL)?;
        // SAFETY: the file's proc data is the `H` its `ProcEntry` holds; the entry waits for
        // running callbacks before it releases it (`remove_proc_entry`).
        let handler = unsafe { &*b::ipvs_gue_seq_pde_data(m).cast::<H>() };
        // INVARIANT: `seq` is the seq_file of this `show` call.
        let mut out = SeqFile { seq, overflowed: false };
        match handler.show(&mut out) {
            // A full buffer is not an error: the core sees the overflow and retries.
            Err(_) if !out.overflowed => Err(EINVAL),
            _ => Ok(0),
        }
    })
}

/// A namespace's `/proc/net/<name>` backed by `H`; removed on drop.
///
/// # Invariants
///
/// The entry exists in `parent` (the namespace's `/proc/net`) with `handler` as its data until
/// drop; the namespace lives for `'ns`, which `self` cannot outlive.
pub(crate) struct ProcEntry<'ns, H: ProcFileHandler> {
    parent: NonNull<b::proc_dir_entry>,
    name: &'static CStr,
    /// The callbacks' state, kept alive until the entry is gone.
    _handler: Arc<H>,
    _ns: PhantomData<&'ns Net>,
}

// SAFETY: the entry is only touched by the proc core and by `drop`, from any thread; `H` is
// `Send + Sync`.
unsafe impl<H: ProcFileHandler> Send for ProcEntry<'_, H> {}
// SAFETY: `&ProcEntry` gives no access to anything.
unsafe impl<H: ProcFileHandler> Sync for ProcEntry<'_, H> {}

impl<'ns, H: ProcFileHandler> ProcEntry<'ns, H> {
    /// Creates `name` in the namespace's `/proc/net`, mode 0444: everyone reads; with no
    /// write handler, even root's writes fail (`proc_simple_write`: `EACCES`).
    pub(crate) fn create(ns: &Namespace<'ns>, name: &'static CStr, handler: Arc<H>) -> Result<Self> {
        let parent = NonNull::new(ns.net().proc_dir()).ok_or(ENOMEM)?;
        let data: *mut c_void = core::ptr::from_ref::<H>(&handler).cast_mut().cast();
        // SAFETY: `parent` is the live namespace's /proc/net; the name is a static C string;
        // the callback matches the prototype proc_create_net_single expects; `data` lives
        // until the entry is removed.
        let pde = unsafe {
            b::proc_create_net_single(name.as_char_ptr().cast(), 0o444, parent.as_ptr(), Some(show::<H>), data)
        };
        if pde.is_null() {
            return Err(ENOMEM);
        }
        // INVARIANT: created just above with `handler` as data; `ns` lives for `'ns`.
        Ok(Self { parent, name, _handler: handler, _ns: PhantomData })
    }
}

impl<H: ProcFileHandler> Drop for ProcEntry<'_, H> {
    fn drop(&mut self) {
        // SAFETY: the entry exists (type invariant). Removal waits for running readers, so no
        // callback uses the handler after this.
        unsafe { b::remove_proc_entry(self.name.as_char_ptr().cast(), self.parent.as_ptr()) };
    }
}
