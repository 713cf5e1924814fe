// SPDX-License-Identifier: GPL-2.0

//! `/proc/net/ipvs_gue`: one file per network namespace; reading lists the configuration and
//! counters, writing applies configuration commands.

use core::ffi::{c_char, c_int, c_void};
use core::fmt;
use core::ptr::NonNull;

use kernel::c_str;
use kernel::error::{code::ENOMEM, Result};

use crate::bindings as b;
use crate::net::Net;

/// Implemented by the per-namespace state behind the file.
pub(crate) trait ProcFileHandler {
    /// Writes the file's contents.
    fn show(&self, out: &mut SeqFile) -> fmt::Result;
    /// Applies written text; the error is returned to `write(2)`.
    fn write(&self, input: &[u8]) -> Result;
}

/// The `seq_file` being filled by a read.
pub(crate) struct SeqFile(NonNull<b::seq_file>);

impl fmt::Write for SeqFile {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        // SAFETY: `self.0` is the live seq_file of the running `show` call. On overflow the
        // seq_file core retries `show` with a bigger buffer, so the result needs no handling.
        unsafe { b::seq_write(self.0.as_ptr(), s.as_ptr().cast(), s.len()) };
        Ok(())
    }
}

unsafe extern "C" fn show(m: *mut b::seq_file, _v: *mut c_void) -> c_int {
    let Some(seq) = NonNull::new(m) else {
        return -(b::EINVAL as c_int);
    };
    // SAFETY: a single_open_net seq_file's private data is its namespace, alive while open.
    let net = unsafe { Net::from_raw(b::ipvs_gue_seq_net(m)) };
    let Some(handler) = handler_of(net) else {
        return -(b::EINVAL as c_int);
    };
    match handler.show(&mut SeqFile(seq)) {
        Ok(()) => 0,
        Err(_) => -(b::EINVAL as c_int),
    }
}

unsafe extern "C" fn write(
    file: *mut b::file,
    buf: *mut c_char,
    size: usize,
) -> c_int {
    // SAFETY: proc_simple_write calls us with the open file (whose private data is the
    // single_open_net seq_file) and a kernel copy of the user's `size` bytes.
    let (net, input) = unsafe {
        let seq = (*file).private_data.cast::<b::seq_file>();
        let net = b::ipvs_gue_seq_net(seq);
        if !b::ipvs_gue_file_net_admin(file, net) {
            return -(b::EPERM as c_int);
        }
        (Net::from_raw(net), core::slice::from_raw_parts(buf.cast::<u8>(), size))
    };
    let Some(handler) = handler_of(net) else {
        return -(b::EINVAL as c_int);
    };
    match handler.write(input) {
        Ok(()) => 0,
        Err(e) => e.to_errno(),
    }
}

/// The state behind `net`'s file; `None` while the namespace is being set up or torn down.
fn handler_of(net: &Net) -> Option<&impl ProcFileHandler> {
    crate::net::pernet::slot_of(net).map(crate::netns::NetnsSlot::netns)
}

/// The namespace's `/proc/net/ipvs_gue`, removed on drop.
///
/// # Invariants
///
/// The entry exists in `parent` (a namespace's `/proc/net`) until drop; `parent` outlives `self`.
pub(crate) struct ProcEntry {
    parent: NonNull<b::proc_dir_entry>,
}

// SAFETY: the entry is only touched by the proc core and by `drop`, from any thread.
unsafe impl Send for ProcEntry {}
// SAFETY: `&ProcEntry` gives no access to anything.
unsafe impl Sync for ProcEntry {}

const NAME: &kernel::str::CStr = c_str!("ipvs_gue");

impl ProcEntry {
    /// Creates the file in `net` (mode 0644: everyone reads, writes need `CAP_NET_ADMIN` over
    /// the namespace, checked on every write).
    pub(crate) fn create(net: &Net) -> Result<Self> {
        // The directory lives as long as the namespace, which outlives this entry.
        let parent = NonNull::new(net.proc_dir()).ok_or(ENOMEM)?;
        // SAFETY: `parent` is the live namespace's /proc/net; the name is a static C string;
        // the callbacks match the prototypes proc_create_net_single_write expects.
        let pde = unsafe {
            b::proc_create_net_single_write(
                NAME.as_char_ptr().cast(),
                0o644,
                parent.as_ptr(),
                Some(show),
                Some(write),
                core::ptr::null_mut(),
            )
        };
        if pde.is_null() {
            return Err(ENOMEM);
        }
        Ok(Self { parent })
    }
}

impl Drop for ProcEntry {
    fn drop(&mut self) {
        // SAFETY: the entry exists (type invariant). Removal waits for running readers and
        // writers, so no callback uses the namespace state after this.
        unsafe { b::remove_proc_entry(NAME.as_char_ptr().cast(), self.parent.as_ptr()) };
    }
}
