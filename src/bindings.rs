// SPDX-License-Identifier: GPL-2.0

//! Raw bindings generated at build time by the module's own bindgen run (see `Kbuild` and
//! `src/bindings/ipvs_gue_bindings.h`). Only the abstraction modules use them.

#![allow(
    non_camel_case_types,
    non_upper_case_globals,
    non_snake_case,
    dead_code,
    improper_ctypes,
    unreachable_pub,
    missing_docs,
    clippy::all,
    unsafe_op_in_unsafe_fn,
    rustdoc::all
)]

// `rust/bindgen_parameters` blocks these so they map to Rust's pointer-sized integers, as the
// kernel crate's own bindings do.
pub type __kernel_size_t = usize;
pub type __kernel_ssize_t = isize;
pub type __kernel_ptrdiff_t = isize;

include!("generated/bindings.rs");
