// SPDX-License-Identifier: GPL-2.0

//! Generic netlink: a family whose operations run with the requesting namespace's state.
//!
//! A [`Family`] is a per-namespace subsystem ([`PernetState`]) that also answers requests: its
//! [`Registration`] registers the subsystem first and the family second, and unregisters them
//! in the opposite order, so every callback finds the state of its namespace. Requests are
//! validated by the kernel's own parser against the [`AttrPolicy`] tables before a callback
//! runs; callbacks read attributes, answer with a reply or a dump, report errors with an extack
//! message naming the attribute, and announce changes to the family's multicast groups.
//!
//! C header: `include/net/genetlink.h`.

use core::ffi::{c_int, c_long};
use core::marker::PhantomData;
use core::ptr::NonNull;

use kernel::alloc::{flags::GFP_KERNEL, KBox, KVec};
use kernel::error::{
    code::{EINVAL, ENOMEM},
    from_result, to_result, Error, Result,
};
use kernel::str::CStr;
use kernel::types::Opaque;
use kernel::ThisModule;

use crate::bindings as b;
use crate::net::pernet::{self, PernetState, Subsystem};
use crate::net::Net;

/// How the kernel validates one attribute of a request (one `struct nla_policy`). A request
/// carrying an attribute its operation does not list is refused ("Unsupported attribute"):
/// every operation is validated strictly.
#[derive(Clone, Copy)]
pub(crate) enum AttrPolicy {
    /// Not accepted in this request.
    Unsupported,
    /// A `u8` at most `max` (`NLA_POLICY_MAX(NLA_U8, max)`).
    U8 { max: u8 },
    /// A `u16` at least `min` (`NLA_POLICY_MIN(NLA_U16, min)`).
    U16 { min: u16 },
    /// Bytes, `min_len..=max_len` of them (`NLA_POLICY_RANGE(NLA_BINARY, min, max)`).
    Binary { min_len: u16, max_len: u16 },
    /// Attributes nested inside, validated by the given table (`NLA_POLICY_NESTED`).
    Nested(&'static [AttrPolicy]),
}

/// What an operation does for its command.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum OperationKind {
    /// One request, answered by `doit` (and an ack or a reply).
    Do,
    /// A listing in as many messages as it takes, by repeated `dumpit` calls.
    Dump,
}

/// One operation of a family (a `struct genl_split_ops`).
pub(crate) struct Operation {
    pub(crate) cmd: u8,
    pub(crate) kind: OperationKind,
    /// Whether it needs `CAP_NET_ADMIN` over the namespace's user namespace
    /// (`GENL_UNS_ADMIN_PERM`).
    pub(crate) admin: bool,
    /// The request's attributes, indexed by type (entry 0 is unused); empty when the request
    /// takes none.
    pub(crate) request: &'static [AttrPolicy],
}

/// A per-namespace subsystem with a generic netlink family.
pub(crate) trait Family: PernetState {
    /// The family's name (at most 15 bytes).
    const NAME: &'static CStr;
    const VERSION: u32;
    /// Sorted by command, a command's `Do` before its `Dump`.
    const OPERATIONS: &'static [Operation];
    /// Multicast groups, addressed by index in [`Request::notify`].
    const MULTICAST_GROUPS: &'static [&'static CStr];
    /// Handles a `Do` request in the requester's namespace.
    fn doit(state: &Self::State<'_>, request: &Request<'_>) -> Result;
    /// Adds the next messages of a `Dump` in the requester's namespace.
    fn dumpit(state: &Self::State<'_>, dump: &mut Dump<'_>) -> Result;
}

/// `EMSGSIZE`: the message is full.
fn message_full() -> Error {
    Error::from_errno(-(b::EMSGSIZE as c_int))
}

/// Bytes of one attribute header (`struct nlattr`), and the alignment of attributes.
const NLA_HDRLEN: usize = 4;
const NLA_ALIGNTO: usize = 4;

/// A validated attribute of a request.
#[derive(Clone, Copy)]
pub(crate) struct Attr<'a> {
    header: &'a [u8],
    ty: u16,
    payload: &'a [u8],
}

impl<'a> Attr<'a> {
    /// Its type, without the nested and byte-order flags.
    pub(crate) fn ty(&self) -> u16 {
        self.ty
    }

    pub(crate) fn bytes(&self) -> &'a [u8] {
        self.payload
    }

    /// The attributes nested in this one.
    pub(crate) fn nested(&self) -> Attrs<'a> {
        Attrs { rest: self.payload }
    }

    fn as_ptr(&self) -> *const b::nlattr {
        self.header.as_ptr().cast()
    }
}

/// A run of attributes, in message order (repeated types included).
#[derive(Clone)]
pub(crate) struct Attrs<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Attrs<'a> {
    type Item = Attr<'a>;

    fn next(&mut self) -> Option<Attr<'a>> {
        let header = self.rest.get(..NLA_HDRLEN)?;
        let len = usize::from(u16::from_ne_bytes([header[0], header[1]]));
        let ty = u16::from_ne_bytes([header[2], header[3]]) & b::NLA_TYPE_MASK as u16;
        // The kernel validated the message (`nla_ok`); a malformed tail ends the walk.
        let whole = self.rest.get(..len).filter(|_| len >= NLA_HDRLEN)?;
        let aligned = len.next_multiple_of(NLA_ALIGNTO).min(self.rest.len());
        self.rest = &self.rest[aligned..];
        Some(Attr { header: whole, ty, payload: &whole[NLA_HDRLEN..] })
    }
}

/// An attribute being written into a message: the failure of any `put` (the message is full)
/// is `EMSGSIZE`.
///
/// # Invariants
///
/// `skb` is a message under construction, owned by the caller for `'a`.
pub(crate) struct Message<'a> {
    skb: NonNull<b::sk_buff>,
    _skb: PhantomData<&'a mut b::sk_buff>,
}

impl Message<'_> {
    fn put(&mut self, ty: u16, bytes: &[u8]) -> Result {
        let len = c_int::try_from(bytes.len()).map_err(|_| message_full())?;
        // SAFETY: `skb` is a live message (type invariant); `nla_put` copies `len` readable
        // bytes, or fails without writing when they do not fit.
        to_result(unsafe { b::nla_put(self.skb.as_ptr(), c_int::from(ty), len, bytes.as_ptr().cast()) })
    }

    pub(crate) fn put_u8(&mut self, ty: u16, value: u8) -> Result {
        self.put(ty, &[value])
    }

    pub(crate) fn put_u16(&mut self, ty: u16, value: u16) -> Result {
        self.put(ty, &value.to_ne_bytes())
    }

    pub(crate) fn put_u32(&mut self, ty: u16, value: u32) -> Result {
        self.put(ty, &value.to_ne_bytes())
    }

    pub(crate) fn put_bytes(&mut self, ty: u16, value: &[u8]) -> Result {
        self.put(ty, value)
    }

    /// A variable-width unsigned integer (`NLA_UINT`: 4 bytes when the value fits, else 8).
    pub(crate) fn put_uint(&mut self, ty: u16, value: u64) -> Result {
        // SAFETY: `skb` is a live message (type invariant).
        to_result(unsafe { b::nla_put_uint(self.skb.as_ptr(), c_int::from(ty), value) })
    }

    /// A nested attribute holding what `fill` writes; removed again if `fill` fails.
    pub(crate) fn put_nested(&mut self, ty: u16, fill: impl FnOnce(&mut Self) -> Result) -> Result {
        // SAFETY: `skb` is a live message (type invariant).
        let start = unsafe { b::nla_nest_start(self.skb.as_ptr(), c_int::from(ty)) };
        if start.is_null() {
            return Err(message_full());
        }
        let filled = fill(self);
        // SAFETY: `start` was returned by `nla_nest_start` on this message and nothing was
        // removed since, so it still points into the message.
        unsafe {
            match filled {
                Ok(()) => {
                    b::nla_nest_end(self.skb.as_ptr(), start);
                }
                Err(_) => b::nla_nest_cancel(self.skb.as_ptr(), start),
            }
        }
        filled
    }
}

/// Extended-ack messages are cut to the kernel's buffer for formatted ones.
const EXTACK_MESSAGE_MAX: usize = b::NETLINK_MAX_FMTMSG_LEN as usize - 1;

/// A `Do` request being handled.
///
/// # Invariants
///
/// `info` is the live `genl_info` of the running `doit` call, whose message the kernel has
/// validated against the operation's policy (every operation has one: see `register`).
pub(crate) struct Request<'a> {
    info: NonNull<b::genl_info>,
    net: &'a Net,
}

impl<'a> Request<'a> {
    pub(crate) fn cmd(&self) -> u8 {
        // SAFETY: `info` is live (type invariant); `genlhdr` points into the request.
        unsafe { (*(*self.info.as_ptr()).genlhdr).cmd }
    }

    /// Every top-level attribute of the request, in order; repeated types appear each time.
    pub(crate) fn attrs(&self) -> Attrs<'a> {
        // SAFETY: `info` is live (type invariant); the generic netlink payload follows the
        // header for `genlmsg_len` bytes of the request (its length checked by generic
        // netlink), which outlives `'a`.
        let rest = unsafe {
            let header = (*self.info.as_ptr()).genlhdr;
            let len = usize::try_from(b::genlmsg_len(header)).unwrap_or(0);
            core::slice::from_raw_parts(b::genlmsg_data(header).cast::<u8>(), len)
        };
        Attrs { rest }
    }

    /// The request's attribute of type `ty` (its last occurrence).
    pub(crate) fn attr(&self, ty: u16) -> Option<Attr<'a>> {
        self.attrs().filter(|attr| attr.ty() == ty).last()
    }

    /// Reports `error` to the requester with `message` (cut to 79 bytes) and, if given, the
    /// attribute at fault; returns `error` for the callback to return.
    pub(crate) fn fail(&self, error: Error, attr: Option<&Attr<'_>>, message: &str) -> Error {
        let len = message.len().min(EXTACK_MESSAGE_MAX);
        let bad = attr.map_or(core::ptr::null(), Attr::as_ptr);
        // SAFETY: `info` is live (type invariant) and its extack, if any, belongs to this
        // request; the message is read for `len` bytes and copied; `bad` is null or points
        // into the request.
        unsafe { b::ipvs_gue_extack_set((*self.info.as_ptr()).extack, bad, message.as_ptr().cast(), len) };
        error
    }

    /// Reports that the request lacks attribute `ty` (`EINVAL`, with the kernel's
    /// missing-attribute marker), inside `nest` if given.
    pub(crate) fn missing(&self, nest: Option<&Attr<'_>>, ty: u16, message: &str) -> Error {
        let nest = nest.map_or(core::ptr::null(), Attr::as_ptr);
        // SAFETY: `info` is live (type invariant); `nest` is null or points into the request;
        // the message is copied as in `fail`.
        unsafe {
            b::ipvs_gue_extack_missing(
                (*self.info.as_ptr()).extack,
                nest,
                c_int::from(ty),
                message.as_ptr().cast(),
                message.len().min(EXTACK_MESSAGE_MAX),
            )
        };
        EINVAL
    }

    fn family(&self) -> *const b::genl_family {
        // SAFETY: `info` is live (type invariant).
        unsafe { (*self.info.as_ptr()).family }
    }

    /// Answers the request with one message of command `cmd`, filled by `fill`.
    pub(crate) fn reply(&self, cmd: u8, fill: impl FnOnce(&mut Message<'_>) -> Result) -> Result {
        self.prepare_reply(cmd)?.send(fill)
    }

    /// Allocates the reply of command `cmd` now, to be filled and sent once a change is made:
    /// a change then never stands unanswered for want of memory.
    pub(crate) fn prepare_reply(&self, cmd: u8) -> Result<Reply<'_>> {
        let skb = OwnedMessage::new()?;
        // SAFETY: `skb` is a fresh message; `info` is live (type invariant) and names the
        // requester and the registered family.
        let header = unsafe { b::genlmsg_put_reply(skb.0.as_ptr(), self.info.as_ptr(), self.family(), 0, cmd) };
        let header = NonNull::new(header).ok_or_else(message_full)?;
        // INVARIANT: `header` was just put into `skb`.
        Ok(Reply { skb, header, request: self })
    }

    /// Sends one message of command `cmd`, filled by `fill`, to the listeners of multicast
    /// group `group` in the requester's namespace. Nothing is built without listeners.
    pub(crate) fn notify(&self, group: u32, cmd: u8, fill: impl FnOnce(&mut Message<'_>) -> Result) -> Result {
        let (family, net) = (self.family(), self.net.as_raw());
        // SAFETY: `info` names the registered family (`Request` invariant).
        if group >= u32::from(unsafe { (*family).n_mcgrps }) {
            // The callees would WARN, and `genlmsg_multicast_netns` would not free the message.
            return Err(EINVAL);
        }
        // SAFETY: the family is registered, `net` is live, `group` is one of its groups.
        if unsafe { b::genl_has_listeners(family, net, group) } <= 0 {
            return Ok(());
        }
        let skb = OwnedMessage::new()?;
        // SAFETY: `skb` is a fresh message; the family is registered.
        let header = unsafe { b::genlmsg_put(skb.0.as_ptr(), 0, 0, family, 0, cmd) };
        if header.is_null() {
            return Err(message_full());
        }
        // INVARIANT: `skb` is owned here until it is sent or freed.
        fill(&mut Message { skb: skb.0, _skb: PhantomData })?;
        let skb = skb.finish(header);
        // SAFETY: `skb` is a complete message whose ownership the callee takes; `net` is live.
        let sent = unsafe { b::genlmsg_multicast_netns(family, net, skb, 0, group, kernel::bindings::GFP_KERNEL) };
        // ESRCH: the last listener left meanwhile.
        match sent {
            0 => Ok(()),
            e if e == -(b::ESRCH as c_int) => Ok(()),
            e => Err(Error::from_errno(e)),
        }
    }
}

/// A message being built for `reply` or `notify`, freed unless sent.
struct OwnedMessage(NonNull<b::sk_buff>);

impl OwnedMessage {
    fn new() -> Result<Self> {
        // SAFETY: allocates a message of the kernel's default size; any context that may sleep.
        let skb = unsafe { b::genlmsg_new(b::ipvs_gue_genlmsg_default_size(), kernel::bindings::GFP_KERNEL) };
        NonNull::new(skb).map(Self).ok_or(ENOMEM)
    }

    /// Closes the message whose generic netlink header is `header` and hands it over.
    fn finish(self, header: *mut core::ffi::c_void) -> *mut b::sk_buff {
        let skb = core::mem::ManuallyDrop::new(self).0.as_ptr();
        // SAFETY: `header` was put into this message by `genlmsg_put`.
        unsafe { b::genlmsg_end(skb, header) };
        skb
    }
}

impl Drop for OwnedMessage {
    fn drop(&mut self) {
        // SAFETY: the message is owned by `self` and was never sent.
        unsafe { b::nlmsg_free(self.0.as_ptr()) };
    }
}

/// A reply being prepared ([`Request::prepare_reply`]).
///
/// # Invariants
///
/// `header` is the generic netlink header `genlmsg_put_reply` put into `skb`.
pub(crate) struct Reply<'a> {
    skb: OwnedMessage,
    header: NonNull<core::ffi::c_void>,
    request: &'a Request<'a>,
}

impl Reply<'_> {
    /// Fills the reply with `fill` and sends it to the requester.
    pub(crate) fn send(self, fill: impl FnOnce(&mut Message<'_>) -> Result) -> Result {
        // INVARIANT: `skb` is owned here until it is sent or freed.
        fill(&mut Message { skb: self.skb.0, _skb: PhantomData })?;
        let skb = self.skb.finish(self.header.as_ptr());
        // SAFETY: `skb` is a complete message whose ownership `genlmsg_reply` takes; the
        // request's info is live (`Request` invariant).
        to_result(unsafe { b::genlmsg_reply(skb, self.request.info.as_ptr()) })
    }
}

/// A dump in progress: [`Family::dumpit`] adds messages from [`Dump::position`] on, until the
/// buffer is full or the listing ends; the kernel calls it again for the rest.
///
/// # Invariants
///
/// `skb` and `cb` are the live buffer and callback of the running `dumpit` call.
pub(crate) struct Dump<'a> {
    skb: NonNull<b::sk_buff>,
    cb: NonNull<b::netlink_callback>,
    _call: PhantomData<&'a mut b::netlink_callback>,
}

impl Dump<'_> {
    /// Where the listing resumes (0 on the first call).
    pub(crate) fn position(&self) -> usize {
        // SAFETY: `cb` is live (type invariant); `args` is the dump's scratch space, zeroed by
        // the kernel when the dump starts.
        usize::try_from(unsafe { (*self.cb.as_ptr()).__bindgen_anon_1.args[0] }).unwrap_or(0)
    }

    pub(crate) fn set_position(&mut self, position: usize) {
        // SAFETY: as in `position`; only this dump uses its scratch space.
        unsafe { (*self.cb.as_ptr()).__bindgen_anon_1.args[0] = c_long::try_from(position).unwrap_or(c_long::MAX) };
    }

    /// Names the version of the data being listed (never 0): a dump whose messages span two
    /// versions is flagged `NLM_F_DUMP_INTR` so the requester can start again.
    pub(crate) fn set_generation(&mut self, generation: u32) {
        // SAFETY: `cb` is live (type invariant); `seq` is the family's to set.
        unsafe { (*self.cb.as_ptr()).seq = generation };
    }

    /// Adds one message of command `cmd`, filled by `fill`. `Ok(false)`: it did not fit and
    /// was left out; the listing should stop here and resume at this item.
    pub(crate) fn add(&mut self, cmd: u8, fill: impl FnOnce(&mut Message<'_>) -> Result) -> Result<bool> {
        let (skb, cb) = (self.skb.as_ptr(), self.cb.as_ptr());
        // SAFETY: `skb` and `cb` are live (type invariant); the requester's port and sequence
        // number come from the dump request, the family from the dump's info.
        let header = unsafe {
            let portid = b::ipvs_gue_netlink_cb_portid((*cb).skb);
            let seq = (*(*cb).nlh).nlmsg_seq;
            b::genlmsg_put(skb, portid, seq, (*b::genl_info_dump(cb)).family, b::NLM_F_MULTI as c_int, cmd)
        };
        if header.is_null() {
            return if self.len() > 0 { Ok(false) } else { Err(message_full()) };
        }
        // SAFETY: `header` was just put into this dump's buffer.
        unsafe { b::genl_dump_check_consistent(cb, header) };
        // INVARIANT: the dump's buffer, borrowed for the call.
        match fill(&mut Message { skb: self.skb, _skb: PhantomData }) {
            Ok(()) => {
                // SAFETY: `header` starts the last message of the buffer.
                unsafe { b::genlmsg_end(skb, header) };
                Ok(true)
            }
            Err(e) => {
                // SAFETY: as above; cancelling removes the partial message.
                unsafe { b::genlmsg_cancel(skb, header) };
                // A message too big even for an empty buffer would never be listed: fail
                // rather than end the dump early.
                if e == message_full() && self.len() > 0 { Ok(false) } else { Err(e) }
            }
        }
    }

    fn len(&self) -> c_int {
        // SAFETY: `skb` is live (type invariant).
        c_int::try_from(unsafe { (*self.skb.as_ptr()).len }).unwrap_or(c_int::MAX)
    }
}

/// # Safety
///
/// Called by generic netlink with `net` the namespace of a request that is being handled:
/// the requester's user socket holds a reference to it.
unsafe fn state_of<'a, T: Family>(net: &'a Net) -> &'a T::State<'a> {
    // SAFETY: a namespace with a user socket in it has finished its set-up (its `init` for
    // `T` succeeded: the socket could not exist otherwise) and cannot start its teardown while
    // the socket holds it (no kernel code sends this family requests from kernel sockets);
    // `T`'s subsystem is registered, since [`Registration`] unregisters the family, which
    // waits for running `doit` calls and whose dumps pin the module, first.
    unsafe { pernet::state::<T>(net) }
}

unsafe extern "C" fn doit<T: Family>(_skb: *mut b::sk_buff, info: *mut b::genl_info) -> c_int {
    from_result(|| {
        let info = NonNull::new(info).ok_or(EINVAL)?;
        // SAFETY: generic netlink passes the live info of the request; its namespace is the
        // requester's, held by the requester's user socket.
        let net = unsafe { Net::from_raw(b::genl_info_net(info.as_ptr())) };
        // SAFETY: `net` is the namespace of the request being handled.
        let state = unsafe { state_of::<T>(net) };
        // INVARIANT: the info of this call, validated against the operation's policy.
        T::doit(state, &Request { info, net })?;
        Ok(0)
    })
}

unsafe extern "C" fn dumpit<T: Family>(skb: *mut b::sk_buff, cb: *mut b::netlink_callback) -> c_int {
    from_result(|| {
        let (skb, cb) = (NonNull::new(skb).ok_or(EINVAL)?, NonNull::new(cb).ok_or(EINVAL)?);
        // SAFETY: `cb->skb` is the dump request, owned by the namespace's kernel generic
        // netlink socket: its namespace is the requester's. Dump calls run only from the
        // requesting user socket's sendmsg and recvmsg (the dump state lives in that socket),
        // and that socket holds the namespace.
        let net = unsafe { Net::from_raw(b::ipvs_gue_sock_net_of((*cb.as_ptr()).skb)) };
        // SAFETY: `net` is the namespace of the dump being handled.
        let state = unsafe { state_of::<T>(net) };
        // INVARIANT: the buffer and callback of this call.
        let mut dump = Dump { skb, cb, _call: PhantomData };
        T::dumpit(state, &mut dump)?;
        // More to come while the buffer is not empty; an empty one ends the dump.
        Ok(dump.len())
    })
}

/// The request policy of an operation that takes no attributes.
const TAKES_NOTHING: &[AttrPolicy] = &[AttrPolicy::Unsupported, AttrPolicy::Unsupported];

/// The C policy tables of a family, built from its [`AttrPolicy`] tables, each once however
/// often it is used (as the controller then lists it); nested tables are built before the
/// tables that point to them and never move (each is its own allocation).
struct Policies(KVec<(*const AttrPolicy, KVec<b::nla_policy>)>);

impl Policies {
    /// Builds `table` (and what it nests) and returns a pointer to it, valid while `self` lives.
    /// A table has entry 0 (attribute type 0 does not exist) and at least one attribute.
    fn build(&mut self, table: &'static [AttrPolicy]) -> Result<*const b::nla_policy> {
        if table.len() < 2 || !matches!(table[0], AttrPolicy::Unsupported) {
            return Err(EINVAL);
        }
        if let Some((_, built)) = self.0.iter().find(|(from, _)| *from == table.as_ptr()) {
            return Ok(built.as_ptr());
        }
        let mut built = KVec::with_capacity(table.len(), GFP_KERNEL)?;
        for policy in table {
            let mut c = b::nla_policy::default();
            match *policy {
                AttrPolicy::Unsupported => {}
                AttrPolicy::U8 { max } => {
                    c.type_ = b::NLA_U8 as u8;
                    c.validation_type = b::nla_policy_validation_NLA_VALIDATE_MAX as u8;
                    c.__bindgen_anon_1.__bindgen_anon_1.max = i16::from(max);
                }
                AttrPolicy::U16 { min } => {
                    c.type_ = b::NLA_U16 as u8;
                    c.validation_type = b::nla_policy_validation_NLA_VALIDATE_MIN as u8;
                    c.__bindgen_anon_1.__bindgen_anon_1.min = i16::try_from(min).map_err(|_| EINVAL)?;
                }
                AttrPolicy::Binary { min_len, max_len } => {
                    c.type_ = b::NLA_BINARY as u8;
                    c.validation_type = b::nla_policy_validation_NLA_VALIDATE_RANGE as u8;
                    c.__bindgen_anon_1.__bindgen_anon_1.min = i16::try_from(min_len).map_err(|_| EINVAL)?;
                    c.__bindgen_anon_1.__bindgen_anon_1.max = i16::try_from(max_len).map_err(|_| EINVAL)?;
                }
                AttrPolicy::Nested(inner) => {
                    c.type_ = b::NLA_NESTED as u8;
                    c.len = u16::try_from(inner.len().saturating_sub(1)).map_err(|_| EINVAL)?;
                    c.__bindgen_anon_1.nested_policy = self.build(inner)?;
                }
            }
            built.push(c, GFP_KERNEL)?;
        }
        let ptr = built.as_ptr();
        self.0.push((table.as_ptr(), built), GFP_KERNEL)?;
        Ok(ptr)
    }
}

/// A registered [`Family`] and the per-namespace subsystem it serves.
///
/// # Invariants
///
/// `family` is registered with generic netlink until drop, with `ops`, `groups` and
/// `policies` as its tables; `subsystem` is registered for at least as long.
pub(crate) struct Registration<T: Family> {
    family: KBox<Opaque<b::genl_family>>,
    _ops: KVec<b::genl_split_ops>,
    _groups: KVec<b::genl_multicast_group>,
    _policies: Policies,
    // Dropped after `drop` unregistered the family: the callbacks use its per-namespace state.
    _subsystem: Subsystem<T>,
}

// SAFETY: the tables are only read by generic netlink, from any thread; unregistering may run
// on any thread.
unsafe impl<T: Family> Send for Registration<T> {}
// SAFETY: `&Registration` gives no access to anything.
unsafe impl<T: Family> Sync for Registration<T> {}

/// Copies `name` into a fixed C name field (`GENL_NAMSIZ`), refusing names that do not fit.
fn copy_name(field: &mut [core::ffi::c_char], name: &CStr) -> Result {
    let bytes = name.as_bytes_with_nul();
    if bytes.len() > field.len() {
        return Err(EINVAL);
    }
    for (to, &from) in field.iter_mut().zip(bytes) {
        *to = from as core::ffi::c_char;
    }
    Ok(())
}

impl<T: Family> Registration<T> {
    /// Registers `T`'s per-namespace subsystem (creating its state in every namespace), then
    /// its family. Register it last in module init: dumps may start as soon as it returns.
    pub(crate) fn register(module: &'static ThisModule) -> Result<Self> {
        let mut policies = Policies(KVec::new());
        let mut ops = KVec::with_capacity(T::OPERATIONS.len(), GFP_KERNEL)?;
        let mut previous: Option<&Operation> = None;
        for op in T::OPERATIONS {
            // Generic netlink's own checks would WARN; refuse quietly instead: sorted by
            // command, a command's `Do` before its `Dump`, both with the same permission.
            if previous.is_some_and(|p| {
                (p.cmd, p.kind == OperationKind::Dump) >= (op.cmd, op.kind == OperationKind::Dump)
                    || (p.cmd == op.cmd && p.admin != op.admin)
            }) {
                return Err(EINVAL);
            }
            previous = Some(op);
            let mut c = b::genl_split_ops::default();
            c.cmd = op.cmd;
            c.flags = if op.admin { b::GENL_UNS_ADMIN_PERM as u8 } else { 0 };
            match op.kind {
                OperationKind::Do => {
                    c.flags |= b::GENL_CMD_CAP_DO as u8;
                    c.__bindgen_anon_1.__bindgen_anon_1.doit = Some(doit::<T>);
                }
                OperationKind::Dump => {
                    c.flags |= b::GENL_CMD_CAP_DUMP as u8;
                    c.__bindgen_anon_1.__bindgen_anon_2.dumpit = Some(dumpit::<T>);
                }
            }
            // Without a policy generic netlink would not parse the request at all (any
            // attribute would pass): an operation that takes nothing gets one refusing all.
            let request = if op.request.is_empty() { TAKES_NOTHING } else { op.request };
            c.policy = policies.build(request)?;
            c.maxattr = u32::try_from(request.len() - 1).map_err(|_| EINVAL)?;
            ops.push(c, GFP_KERNEL)?;
        }
        let mut groups = KVec::with_capacity(T::MULTICAST_GROUPS.len(), GFP_KERNEL)?;
        for name in T::MULTICAST_GROUPS {
            let mut group = b::genl_multicast_group::default();
            copy_name(&mut group.name, name)?;
            groups.push(group, GFP_KERNEL)?;
        }

        let mut family = b::genl_family::default();
        copy_name(&mut family.name, T::NAME)?;
        family.version = T::VERSION;
        family.set_netnsok(1);
        // Writers serialise on the state's own locks; a large table replacement must not hold
        // up every other family behind genl_mutex.
        family.set_parallel_ops(1);
        family.module = module.as_ptr().cast();
        family.split_ops = ops.as_ptr();
        family.n_split_ops = u8::try_from(ops.len()).map_err(|_| EINVAL)?;
        family.mcgrps = groups.as_ptr();
        family.n_mcgrps = u8::try_from(groups.len()).map_err(|_| EINVAL)?;
        let family = KBox::new(Opaque::new(family), GFP_KERNEL)?;

        let subsystem = Subsystem::<T>::register()?;
        // SAFETY: `family` and the tables it points to are heap memory owned by the
        // registration, which unregisters the family before freeing them.
        to_result(unsafe { b::genl_register_family(family.get()) })?;
        // INVARIANT: registered just above, after the subsystem.
        Ok(Self { family, _ops: ops, _groups: groups, _policies: policies, _subsystem: subsystem })
    }
}

impl<T: Family> Drop for Registration<T> {
    fn drop(&mut self) {
        // SAFETY: registered (type invariant). Unregistering waits for running `doit` calls
        // (it takes `cb_lock` for writing); dumps in progress hold a module reference, so none
        // can run past module unload, the only other time the registration is dropped after
        // a successful `register`.
        unsafe { b::genl_unregister_family(self.family.get()) };
        // The tables are freed, and then the subsystem unregistered, as the fields drop.
    }
}
