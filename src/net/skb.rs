// SPDX-License-Identifier: GPL-2.0

//! Safe views of `struct sk_buff`.
//!
//! [`SkBuff`] is a packet borrowed from the stack (netfilter owns it); [`OwnedSkb`] is one this
//! module has taken over and must either hand to the stack or free; [`PrivateSkb`] is an owned
//! packet whose data is not shared with a clone, the only kind whose bytes may be written.
//! Every raw access to an sk_buff in the module happens in this file.

use core::ptr::NonNull;

use kernel::types::Opaque;

use crate::bindings as b;
use crate::gue_core::addr::{Family, InetAddr};
use crate::gue_core::headers::{Ipv4Header, Ipv6Header};
use crate::net::route::{OutputRoute, RouteKind};
use crate::net::Net;

/// `skb->ip_summed`, as `include/linux/skbuff.h` defines it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum ChecksumState {
    /// `CHECKSUM_NONE`: nothing known about the checksum.
    None,
    /// `CHECKSUM_UNNECESSARY`: already verified.
    Unnecessary,
    /// `CHECKSUM_COMPLETE`: `skb->csum` holds the full checksum.
    Complete,
    /// `CHECKSUM_PARTIAL`: to be filled in at `csum_start + csum_offset`.
    Partial,
}

/// A packet owned by the networking stack, borrowed for the duration of a hook call.
///
/// # Invariants
///
/// `self.0` is a valid `sk_buff`; while a `&mut SkBuff` lives nobody else modifies it. It is
/// `Opaque` because C code (the kernel functions we call) changes it behind Rust's references.
/// Methods taking `&mut self` write only the `struct sk_buff` (and, after unsharing, its
/// shared info), never packet bytes, which clones may share: those need a [`PrivateSkb`].
#[repr(transparent)]
pub(crate) struct SkBuff(Opaque<b::sk_buff>);

impl SkBuff {
    /// Borrows a raw `sk_buff` for reading.
    ///
    /// # Safety
    ///
    /// `ptr` must point to a valid `sk_buff` that stays valid for `'a`.
    pub(crate) unsafe fn from_raw<'a>(ptr: *mut b::sk_buff) -> &'a SkBuff {
        // SAFETY: `SkBuff` is `repr(transparent)` over `Opaque<sk_buff>`, itself transparent
        // over `sk_buff`; validity is guaranteed by the caller.
        unsafe { &*ptr.cast::<SkBuff>() }
    }

    /// Borrows a raw `sk_buff` exclusively.
    ///
    /// # Safety
    ///
    /// `ptr` must point to a valid `sk_buff` exclusively available to the caller for `'a`.
    unsafe fn from_raw_mut<'a>(ptr: *mut b::sk_buff) -> &'a mut SkBuff {
        // SAFETY: as `from_raw`; exclusivity is guaranteed by the caller.
        unsafe { &mut *ptr.cast::<SkBuff>() }
    }

    pub(crate) fn as_raw(&self) -> *mut b::sk_buff {
        self.0.get()
    }

    /// Total length: linear part plus paged fragments.
    pub(crate) fn len(&self) -> u32 {
        // SAFETY: `self` is a valid sk_buff by the type invariant.
        unsafe { (*self.as_raw()).len }
    }

    /// Length of the linear part (`skb_headlen`).
    fn headlen(&self) -> u32 {
        // SAFETY: `self` is a valid sk_buff by the type invariant.
        unsafe { b::skb_headlen(self.as_raw()) }
    }

    /// Start of the packet data (`skb->data`).
    fn data(&self) -> *mut u8 {
        // SAFETY: `self` is a valid sk_buff by the type invariant.
        unsafe { (*self.as_raw()).data }
    }

    /// Whether IPVS produced this packet (`skb->ipvs_property`).
    pub(crate) fn ipvs_property(&self) -> bool {
        // SAFETY: `self` is a valid sk_buff by the type invariant.
        unsafe { b::ipvs_gue_skb_ipvs_property(self.as_raw()) }
    }

    /// Whether this is an outer packet [`PrivateSkb::send`] is sending on this CPU right now,
    /// passing LOCAL_OUT again: the one thing that tells it from a packet IPVS sent, since
    /// IPVS's packets can carry every flag and header ours do.
    pub(crate) fn is_own_output(&self) -> bool {
        // SAFETY: compares a per-CPU pointer with `self`'s address; nothing is dereferenced.
        unsafe { b::ipvs_gue_is_own_output(self.as_raw()) }
    }

    /// Whether this is a GSO super-packet that will be segmented before transmission.
    pub(crate) fn is_gso(&self) -> bool {
        // SAFETY: `self` is a valid sk_buff by the type invariant.
        unsafe { b::skb_is_gso(self.as_raw()) }
    }

    /// Number of segments of a GSO packet, 1 otherwise.
    pub(crate) fn gso_segs(&self) -> u16 {
        // SAFETY: `self` is a valid sk_buff by the type invariant.
        let segs = unsafe { b::ipvs_gue_skb_gso_segs(self.as_raw()) };
        segs.max(1)
    }

    /// Whether every segment of this GSO packet fits in `mtu` at the network layer.
    pub(crate) fn gso_fits_mtu(&self, mtu: u32) -> bool {
        // SAFETY: `self` is a valid GSO sk_buff by the type invariant.
        unsafe { b::skb_gso_validate_network_len(self.as_raw(), mtu) }
    }

    pub(crate) fn checksum_state(&self) -> ChecksumState {
        // SAFETY: `self` is a valid sk_buff by the type invariant.
        match unsafe { b::ipvs_gue_skb_ip_summed(self.as_raw()) } {
            b::CHECKSUM_UNNECESSARY => ChecksumState::Unnecessary,
            b::CHECKSUM_COMPLETE => ChecksumState::Complete,
            b::CHECKSUM_PARTIAL => ChecksumState::Partial,
            _ => ChecksumState::None,
        }
    }

    pub(crate) fn set_checksum_state(&mut self, state: ChecksumState) {
        let raw = match state {
            ChecksumState::None => b::CHECKSUM_NONE,
            ChecksumState::Unnecessary => b::CHECKSUM_UNNECESSARY,
            ChecksumState::Complete => b::CHECKSUM_COMPLETE,
            ChecksumState::Partial => b::CHECKSUM_PARTIAL,
        };
        // SAFETY: `self` is a valid, exclusively borrowed sk_buff.
        unsafe { b::ipvs_gue_skb_set_ip_summed(self.as_raw(), raw) }
    }

    /// Offset of `csum_start` from `skb->data` (`skb_checksum_start_offset`).
    pub(crate) fn checksum_start_offset(&self) -> i32 {
        // SAFETY: `self` is a valid sk_buff by the type invariant.
        unsafe { b::skb_checksum_start_offset(self.as_raw()) }
    }

    pub(crate) fn checksum_offset(&self) -> u16 {
        // SAFETY: `self` is a valid sk_buff by the type invariant.
        unsafe { b::ipvs_gue_skb_csum_offset(self.as_raw()) }
    }

    /// Asks the device (or `skb_checksum_help`) to checksum from `start` (relative to
    /// `skb->data`) and store the result at `start + offset`. `None` if `csum_start`, a
    /// 16-bit offset from `skb->head`, cannot express `start`.
    pub(crate) fn request_checksum(&mut self, start: usize, offset: u16) -> Option<()> {
        let from_head = u16::try_from(self.headroom() + start).ok()?;
        // SAFETY: `self` is a valid, exclusively borrowed sk_buff.
        unsafe { b::ipvs_gue_skb_set_csum_start_offset(self.as_raw(), from_head, offset) };
        self.set_checksum_state(ChecksumState::Partial);
        Some(())
    }

    /// Copies `N` bytes at `offset` from `skb->data` into `buf`, from the linear part or the
    /// fragments (`skb_header_pointer`). `None` if the packet is shorter.
    pub(crate) fn read_bytes<const N: usize>(&self, offset: usize) -> Option<[u8; N]> {
        let mut buf = [0u8; N];
        // Only a whole field counts: a packet that ends inside it has none.
        if self.read_prefix(offset, &mut buf)?.len() < N {
            return None;
        }
        Some(buf)
    }

    /// Copies the bytes from `offset` to the end of the packet, at most `buf.len()` of them,
    /// into `buf`; the copied part, or `None` if the packet ends before `offset`.
    pub(crate) fn read_prefix<'b>(&self, offset: usize, buf: &'b mut [u8]) -> Option<&'b [u8]> {
        let available = (self.len() as usize).checked_sub(offset)?;
        let len = available.min(buf.len());
        let (offset, len_c) = (i32::try_from(offset).ok()?, i32::try_from(len).ok()?);
        // SAFETY: `self` is valid; `buf` has room for `len` bytes; the returned pointer is
        // null, `buf`, or `len` readable bytes inside the skb's linear area.
        let p = unsafe { b::skb_header_pointer(self.as_raw(), offset, len_c, buf.as_mut_ptr().cast()) };
        if p.is_null() {
            return None;
        }
        if p.cast::<u8>() != buf.as_mut_ptr() {
            // SAFETY: `p` points to `len` readable bytes (see above) that do not overlap `buf`.
            unsafe { core::ptr::copy_nonoverlapping(p.cast::<u8>(), buf.as_mut_ptr(), len) };
        }
        buf.get(..len)
    }

    pub(crate) fn headroom(&self) -> usize {
        // SAFETY: `self` is a valid sk_buff by the type invariant.
        unsafe { b::skb_headroom(self.as_raw()) as usize }
    }

    pub(crate) fn is_cloned(&self) -> bool {
        // SAFETY: `self` is a valid sk_buff by the type invariant.
        unsafe { b::skb_cloned(self.as_raw()) != 0 }
    }

    pub(crate) fn network_offset(&self) -> i32 {
        // SAFETY: `self` is a valid sk_buff by the type invariant.
        unsafe { b::skb_network_offset(self.as_raw()) }
    }

    pub(crate) fn transport_offset(&self) -> i32 {
        // SAFETY: `self` is a valid sk_buff by the type invariant.
        unsafe { b::skb_transport_offset(self.as_raw()) }
    }

    #[cfg(reproduce_inner_mac_bug)]
    pub(crate) fn mac_offset(&self) -> i32 {
        // SAFETY: `self` is a valid sk_buff by the type invariant.
        unsafe { b::skb_mac_offset(self.as_raw()) }
    }

    #[cfg(not(reproduce_inner_mac_bug))]
    pub(crate) fn inner_network_offset(&self) -> i32 {
        // SAFETY: `self` is a valid sk_buff by the type invariant.
        unsafe { b::skb_inner_network_offset(self.as_raw()) }
    }

    /// Sets a header offset the stack reads, relative to `skb->data`; `None` (nothing set)
    /// unless it lies in the buffer, between `skb->head` and the end of the linear part.
    pub(crate) fn set_header_offsets(&mut self, header: Header, offset: i32) -> Option<()> {
        let headroom = i32::try_from(self.headroom()).ok()?;
        let headlen = i32::try_from(self.headlen()).ok()?;
        if offset < -headroom || offset > headlen {
            return None;
        }
        let skb = self.as_raw();
        // SAFETY: `self` is a valid, exclusively borrowed sk_buff; the setters only store
        // `data - head + offset`, inside the buffer (checked above), into the header fields.
        unsafe {
            match header {
                Header::Transport => b::skb_set_transport_header(skb, offset),
                Header::InnerMac => b::skb_set_inner_mac_header(skb, offset),
                Header::InnerNetwork => b::skb_set_inner_network_header(skb, offset),
                Header::InnerTransport => b::skb_set_inner_transport_header(skb, offset),
            }
        }
        Some(())
    }

    pub(crate) fn encapsulation(&self) -> bool {
        // SAFETY: `self` is a valid sk_buff by the type invariant.
        unsafe { b::ipvs_gue_skb_encapsulation(self.as_raw()) }
    }

    pub(crate) fn set_encapsulation(&mut self, on: bool) {
        // SAFETY: `self` is a valid, exclusively borrowed sk_buff.
        unsafe { b::ipvs_gue_skb_set_encapsulation(self.as_raw(), on) }
    }

    /// Records the tunnelled protocol for GSO (`skb_set_inner_ipproto`).
    pub(crate) fn set_inner_ipproto(&mut self, proto: u8) {
        // SAFETY: `self` is a valid, exclusively borrowed sk_buff.
        unsafe { b::ipvs_gue_skb_set_inner_ipproto(self.as_raw(), proto) }
    }

    /// Adds GSO type bits, first making the shared info private (`skb_header_unclone`).
    pub(crate) fn add_gso_type(&mut self, bits: u32) -> Result<(), ()> {
        // SAFETY: `self` is a valid, exclusively borrowed sk_buff.
        if unsafe { b::ipvs_gue_skb_header_unclone(self.as_raw()) } != 0 {
            return Err(());
        }
        // SAFETY: as above; the shared info is now private to this sk_buff.
        unsafe { b::ipvs_gue_skb_add_gso_type(self.as_raw(), bits) };
        Ok(())
    }

    /// The flow hash (`skb_get_hash`), computing it from the headers if needed.
    pub(crate) fn flow_hash(&mut self) -> u32 {
        // SAFETY: `self` is a valid, exclusively borrowed sk_buff.
        unsafe { b::skb_get_hash(self.as_raw()) }
    }

    /// The largest fragment a reassembled packet of `family` arrived in
    /// (`IPCB`/`IP6CB(skb)->frag_max_size`, set by netfilter defragmentation), 0 if none.
    fn frag_max_size(&self, family: Family) -> u16 {
        // SAFETY: `self` is a valid sk_buff whose control block the IP layer of `family` owns.
        unsafe { b::ipvs_gue_skb_frag_max_size(self.as_raw(), family == Family::V6) }
    }

    /// Attaches `route`, a referenced route (a lookup's), as the packet's route, replacing
    /// the current one. (A borrowed route is attached only by `PrivateSkb::send`.)
    fn set_route(&mut self, route: OutputRoute<'static>) {
        // SAFETY: `self` is valid and exclusively borrowed. A `'static` route is a referenced
        // one: a borrowed route lives no longer than the `RcuReadGuard` it borrows.
        unsafe { route.attach(self.as_raw()) };
    }

    pub(crate) fn set_ignore_df(&mut self) {
        // SAFETY: `self` is a valid, exclusively borrowed sk_buff.
        unsafe { b::ipvs_gue_skb_set_ignore_df(self.as_raw()) }
    }

    /// Releases state tied to the inner packet before it leaves as tunnel payload, as
    /// `ip_vs_tunnel_xmit_prepare` does: conntrack reference, receive checksum, timestamp.
    pub(crate) fn prepare_tunnel_xmit(&mut self) {
        let skb = self.as_raw();
        // SAFETY: `self` is a valid, exclusively borrowed sk_buff.
        unsafe {
            b::ipvs_gue_skb_set_ipvs_property(skb);
            b::nf_reset_ct(skb);
            b::skb_forward_csum(skb);
            // A forwarded packet's receive timestamp means nothing on output; a local
            // socket's departure time (no `dev`) is kept for pacing.
            if b::ipvs_gue_skb_from_device(skb) {
                b::skb_clear_tstamp(skb);
            }
        }
    }

    /// Detaches a socket that early demux attached on receive (`ip_vs_drop_early_demux_sk`).
    pub(crate) fn drop_early_demux_socket(&mut self) {
        // SAFETY: `self` is a valid, exclusively borrowed sk_buff. A packet with a device came
        // from the receive path; its socket is only an early-demux hint.
        unsafe {
            if b::ipvs_gue_skb_from_device(self.as_raw()) {
                b::skb_orphan(self.as_raw());
            }
        }
    }
}

/// Which header offset [`SkBuff::set_header_offsets`] sets.
#[derive(Clone, Copy)]
pub(crate) enum Header {
    Transport,
    InnerMac,
    InnerNetwork,
    InnerTransport,
}

/// A packet this module owns: freed as dropped (`kfree_skb`) unless handed on.
///
/// # Invariants
///
/// `self.skb` is a valid `sk_buff` of IP family `self.family` (its control block is that
/// family's IP layer's), owned by this value.
pub(crate) struct OwnedSkb {
    skb: NonNull<b::sk_buff>,
    family: Family,
}

impl OwnedSkb {
    /// Takes ownership of a raw `sk_buff`.
    ///
    /// # Safety
    ///
    /// `ptr` must be a valid `family` `sk_buff` whose ownership passes to the returned value.
    pub(crate) unsafe fn from_raw(ptr: NonNull<b::sk_buff>, family: Family) -> Self {
        // INVARIANT: guaranteed by the caller.
        Self { skb: ptr, family }
    }

    fn into_raw(self) -> *mut b::sk_buff {
        let ptr = self.skb.as_ptr();
        core::mem::forget(self);
        ptr
    }

    /// The packet's IP family.
    pub(crate) fn family(&self) -> Family {
        self.family
    }

    /// The largest fragment this packet arrived in, if netfilter reassembled it
    /// (`IPCB`/`IP6CB(skb)->frag_max_size`), else 0.
    pub(crate) fn largest_fragment(&self) -> u16 {
        self.frag_max_size(self.family)
    }

    /// Resets `skb->cb`, where the inner packet's IP layer kept its per-packet state, for the
    /// `outer` family's output path. The largest received fragment size carries over (as the
    /// C path's partial `memset` leaves it), so a reassembled packet leaves in fragments no
    /// larger than it came in; except from IPv4 into IPv6, where `ip6_fragment` would refuse
    /// an outer packet whose inner fragments exceed its MTU, and where C writes nothing.
    pub(crate) fn reset_control_block(&mut self, outer: Family) {
        let carried = match (self.family, outer) {
            (Family::V4, Family::V6) => 0,
            (inner, _) => self.frag_max_size(inner),
        };
        let skb = self.skb.as_ptr();
        // SAFETY: `skb` is valid and exclusively owned; `cb` is plain bytes, which the output
        // path of `outer` reads as its `IPCB`/`IP6CB`.
        unsafe {
            (*skb).cb = [0; 48];
            b::ipvs_gue_skb_set_frag_max_size(skb, outer == Family::V6, carried);
        }
    }

    /// Answers the sender that this packet is too big for `mtu`: ICMP "fragmentation needed"
    /// (IPv4) or ICMPv6 "packet too big". (The caller then drops the packet.)
    pub(crate) fn send_packet_too_big(&mut self, net: &Net, mtu: u32) {
        match self.family {
            Family::V4 => self.send_icmp(net, b::ICMP_DEST_UNREACH, b::ICMP_FRAG_NEEDED, mtu),
            Family::V6 => self.send_icmpv6(net, b::ICMPV6_PKT_TOOBIG, 0, mtu),
        }
    }

    /// Answers the sender that the tunnel endpoint is unreachable, as the C path's
    /// `dst_link_failure` does: ICMP host unreachable / ICMPv6 address unreachable. (The caller
    /// then drops the packet.)
    pub(crate) fn send_unreachable(&mut self, net: &Net) {
        match self.family {
            Family::V4 => self.send_icmp(net, b::ICMP_DEST_UNREACH, b::ICMP_HOST_UNREACH, 0),
            Family::V6 => self.send_icmpv6(net, b::ICMPV6_DEST_UNREACH, b::ICMPV6_ADDR_UNREACH, 0),
        }
    }

    /// Sends an ICMP error (`icmp_type`, `code`, `info`) back to the sender of this IPv4 packet,
    /// from the address it was sent to (the virtual service), as the C path does: there the
    /// packet still has its input route, which is local, so `icmp_send` answers from the
    /// destination. Here IPVS has attached its direct-routing output route; put the local
    /// route back first. (The packet is dropped afterwards.)
    fn send_icmp(&mut self, net: &Net, icmp_type: u32, code: u32, info: u32) {
        if let Some(ip) = self.read_bytes::<20>(0) {
            let destination = InetAddr::v4([ip[16], ip[17], ip[18], ip[19]]);
            if let Ok(route) = OutputRoute::lookup(net, &destination) {
                if route.kind() == RouteKind::Local {
                    self.set_route(route);
                }
            }
        }
        // SAFETY: `self` is a valid IPv4 sk_buff (type invariant, called for `Family::V4`
        // only) with a route; `icmp_send` only reads it.
        unsafe {
            b::icmp_send(
                self.skb.as_ptr(),
                icmp_type as i32,
                code as i32,
                info.to_be(),
            )
        }
    }

    /// Sends an ICMPv6 error (`icmp_type`, `code`, `info`) back to the sender of this IPv6 packet.
    /// `icmpv6_send` ignores packets without a device; a locally sent one has none, so give it
    /// the namespace's loopback device, as the C path does. (The packet is dropped afterwards.)
    fn send_icmpv6(&mut self, net: &Net, icmp_type: u32, code: u32, info: u32) {
        let skb = self.skb.as_ptr();
        // SAFETY: `skb` is a valid, exclusively owned IPv6 sk_buff (type invariant, called for
        // `Family::V6` only); the loopback device lives as long as the namespace;
        // `icmpv6_send` only reads the packet.
        unsafe {
            if !b::ipvs_gue_skb_from_device(skb) {
                b::ipvs_gue_skb_set_dev(skb, (*net.as_raw()).loopback_dev);
            }
            b::icmpv6_send(skb, icmp_type as u8, code as u8, info)
        }
    }

    /// Returns this packet with at least `headroom` bytes of headroom and data not shared
    /// with a clone: itself if it has both, else a copy (`skb_realloc_headroom`) that keeps
    /// the sending socket (`skb_set_owner_w`, as the C path does), so a local sender's write
    /// memory accounting and TCP Small Queues backpressure still see the packet.
    pub(crate) fn into_private(self, headroom: usize) -> Result<PrivateSkb, ()> {
        if self.headroom() >= headroom && !self.is_cloned() {
            // INVARIANT: not cloned, so its data is ours alone.
            return Ok(PrivateSkb(self));
        }
        let headroom = u32::try_from(headroom).map_err(|_| ())?;
        // SAFETY: `self` is valid; `skb_realloc_headroom` does not consume it.
        let copy = unsafe { b::ipvs_gue_skb_realloc_headroom(self.skb.as_ptr(), headroom) };
        let copy = NonNull::new(copy).ok_or(())?;
        // SAFETY: `copy` is a new sk_buff we own; the original's socket is alive while the
        // original holds its write-memory charge, which we release only below.
        unsafe {
            let sk = b::ipvs_gue_skb_sk(self.skb.as_ptr());
            if !sk.is_null() {
                b::skb_set_owner_w(copy.as_ptr(), sk);
            }
        }
        let family = self.family;
        // The original is released as consumed, not dropped: its contents live on in `copy`.
        // SAFETY: we own `self` and nobody uses it after this.
        unsafe { b::consume_skb(self.into_raw()) };
        // SAFETY: `skb_realloc_headroom` returned a new sk_buff of the same family, owned now.
        // INVARIANT: a fresh copy's data is private.
        Ok(PrivateSkb(unsafe { Self::from_raw(copy, family) }))
    }
}

impl core::ops::Deref for OwnedSkb {
    type Target = SkBuff;

    fn deref(&self) -> &SkBuff {
        // SAFETY: `self.skb` is valid and owned by `self` (type invariant).
        unsafe { SkBuff::from_raw(self.skb.as_ptr()) }
    }
}

impl core::ops::DerefMut for OwnedSkb {
    fn deref_mut(&mut self) -> &mut SkBuff {
        // SAFETY: `self.skb` is valid and exclusively owned by `self` (type invariant).
        unsafe { SkBuff::from_raw_mut(self.skb.as_ptr()) }
    }
}

/// An owned packet whose data (head) is not shared with any clone: its bytes may be written.
///
/// # Invariants
///
/// `skb_cloned(self.0)` is false.
pub(crate) struct PrivateSkb(OwnedSkb);

impl PrivateSkb {
    /// Prepends `len` bytes (`skb_push`) and returns them, or `None` without touching the
    /// packet when the headroom is too small (where `skb_push` would panic).
    pub(crate) fn push(&mut self, len: usize) -> Option<&mut [u8]> {
        if len > self.headroom() {
            return None;
        }
        // SAFETY: the headroom check above makes `skb_push` succeed; it returns the new
        // `skb->data`, followed by at least `len` linear bytes, private to this sk_buff
        // (type invariant).
        unsafe {
            let data = b::skb_push(self.as_raw(), len as u32);
            Some(core::slice::from_raw_parts_mut(data.cast::<u8>(), len))
        }
    }


    /// The linear bytes from `offset` (relative to `skb->data`) to the end of the linear part.
    pub(crate) fn linear_mut(&mut self, offset: usize) -> Option<&mut [u8]> {
        let headlen = self.headlen() as usize;
        let len = headlen.checked_sub(offset)?;
        // SAFETY: `data + offset .. data + headlen` is inside the linear area, private to this
        // sk_buff (type invariant) and exclusively borrowed.
        Some(unsafe { core::slice::from_raw_parts_mut(self.data().add(offset), len) })
    }

    /// Pushes the IPv4 header `header` and makes it the network header; a packet that may be
    /// fragmented gets a fresh identification (`__ip_select_ident` over its segments), as
    /// `ip_select_ident` gives it; DF packets keep ID 0.
    pub(crate) fn push_ipv4_header(&mut self, net: &Net, header: &Ipv4Header) -> Option<()> {
        let buf = self.push(Ipv4Header::LEN)?;
        header.encode(buf).ok()?;
        self.reset_network_header();
        if !header.dont_fragment {
            let segs = i32::from(self.gso_segs());
            // SAFETY: a complete IPv4 header was just written at `skb->data`, in the private
            // linear area; the function hashes its addresses and stores the ID field.
            unsafe { b::__ip_select_ident(net.as_raw(), self.data().cast::<b::iphdr>(), segs) };
        }
        Some(())
    }

    /// See [`OwnedSkb::reset_control_block`].
    pub(crate) fn reset_control_block(&mut self, outer: Family) {
        self.0.reset_control_block(outer);
    }

    /// Pushes the IPv6 header `header` and makes it the network header.
    pub(crate) fn push_ipv6_header(&mut self, header: &Ipv6Header) -> Option<()> {
        let buf = self.push(Ipv6Header::LEN)?;
        header.encode(buf).ok()?;
        self.reset_network_header();
        Some(())
    }

    /// `skb_reset_network_header`: the network header starts at `skb->data`.
    fn reset_network_header(&mut self) {
        // SAFETY: `self` is a valid, exclusively owned sk_buff; offset 0 is `skb->data`.
        unsafe { b::skb_set_network_header(self.as_raw(), 0) };
    }

    /// Sends the packet by `route` for the socket that sent it: `ip_local_out` or
    /// `ip6_local_out` by the route's family. `Err` (the packet is dropped) unless its network
    /// header, at `skb->data`, holds a whole header of that family, as the output path
    /// rewrites its length fields.
    pub(crate) fn send(self, net: &Net, route: OutputRoute<'_>) -> Result<(), ()> {
        let family = route.family();
        let header_len = match family {
            Family::V4 => Ipv4Header::LEN,
            Family::V6 => Ipv6Header::LEN,
        };
        if self.network_offset() != 0 || (self.headlen() as usize) < header_len {
            return Err(());
        }
        let skb = self.0.into_raw();
        // SAFETY: `skb` is valid and ours. It is sent below, within the read-side section a
        // borrowed route lives for (`route`'s lifetime, which this call cannot outlive).
        unsafe { route.attach(skb) };
        // Marks the packet as ours while it passes LOCAL_OUT (`is_own_output`), as
        // `nf_dup_ipv4` marks its copies: with bottom halves off nothing else runs on this CPU
        // until the mark is undone, so a match can only be this packet re-entering.
        // SAFETY: called in process or softirq context (a netfilter hook); re-enabled below.
        unsafe { b::local_bh_disable() };
        // SAFETY: stores a pointer value in this CPU's slot; the previous value (an outer
        // packet of a nested send, or null) is put back below.
        let previous = unsafe { b::ipvs_gue_swap_own_output(skb) };
        // SAFETY: `net` is live; the packet (ownership passes to the stack) carries a route of
        // `family` and a header of that family at its network header (checked above); `sk` is
        // the packet's own socket (or null), alive while the packet holds it.
        unsafe {
            match family {
                Family::V4 => b::ip_local_out(net.as_raw(), b::ipvs_gue_skb_sk(skb), skb),
                Family::V6 => b::ip6_local_out(net.as_raw(), b::ipvs_gue_skb_sk(skb), skb),
            }
        };
        // SAFETY: as above; `skb` (maybe freed by now) is no longer referenced.
        unsafe { b::ipvs_gue_swap_own_output(previous) };
        // SAFETY: disabled above, on this CPU (it could not migrate meanwhile).
        unsafe { b::local_bh_enable() };
        Ok(())
    }
}

impl core::ops::Deref for PrivateSkb {
    type Target = SkBuff;

    fn deref(&self) -> &SkBuff {
        &self.0
    }
}

impl core::ops::DerefMut for PrivateSkb {
    fn deref_mut(&mut self) -> &mut SkBuff {
        &mut self.0
    }
}

impl Drop for OwnedSkb {
    fn drop(&mut self) {
        // A packet dropped on an error path: account it as a drop, like the C path's kfree_skb.
        // SAFETY: `self.skb` is valid and owned (type invariant); nobody uses it afterwards.
        unsafe { b::kfree_skb(self.skb.as_ptr()) }
    }
}
