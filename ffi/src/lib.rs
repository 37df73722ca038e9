//! libcadenas: the C API of Cadenas, over `cadenas::blocking`. The header `cadenas.h` is
//! generated from this crate by cbindgen (`ffi/cbindgen.toml`) and committed.
//!
//! Conventions (as in rustls-ffi):
//! - every symbol starts with `cadenas_`; a method is `cadenas_<type>_<verb>`;
//! - handles are opaque; `cadenas_<type>_free()` frees one, accepts NULL, and ignores a handle
//!   freed already; a freed handle passed to any other function gets
//!   `CADENAS_RESULT_INVALID_HANDLE`;
//! - every fallible function returns a `cadenas_result`; arguments are object, inputs,
//!   outputs; outputs are written only on success (the one exception: `*out_n` on
//!   `CADENAS_RESULT_BUFFER_TOO_SMALL`, which gives the length needed);
//! - text goes out by being copied into the caller's buffer, NUL-terminated; secrets cross
//!   the boundary only that way, and the Rust copies are zeroized;
//! - no panic crosses the boundary: it becomes `CADENAS_RESULT_PANIC`.
//!
//! Threads: a handle may be used from any thread, one call at a time, and must not be freed
//! while a call uses it. No call leaves a thread or a timer behind: each handle owns a
//! current-thread runtime that runs only inside its calls (a PAM host may `dlclose` the
//! library after `pam_end`). A handle made before `fork()` refuses to work in the child
//! (`CADENAS_RESULT_INVALID_CONTEXT`): make handles after forking. Freeing it in the child is
//! safe and leaves the parent's handle working: the child keeps its copy of the connections
//! and never tears them down (they share the parent's sockets and event queue).
#![allow(non_camel_case_types)]
// C cannot see Rust's `unsafe fn`; every exported function checks its pointers (NULL,
// registry) before use, and documents what the rest of the contract is in cadenas.h.
#![allow(clippy::not_unsafe_ptr_arg_deref)]

mod boundary;
mod config;
mod mfa;
mod report;
mod responder;
mod result;
mod result_values;

use std::ffi::c_char;

pub use config::*;
pub use mfa::*;
pub use report::*;
pub use responder::*;
pub use result::cadenas_result;

use boundary::{copy_out, guard, guard_value};

/// The library's version, a static NUL-terminated string (do not free).
#[unsafe(no_mangle)]
pub extern "C" fn cadenas_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

/// Copies a short English description of `result` (any value, even unknown) into `buf`.
#[unsafe(no_mangle)]
pub extern "C" fn cadenas_result_message(
    result: u32,
    buf: *mut c_char,
    len: usize,
    out_n: *mut usize,
) -> cadenas_result {
    guard(|| {
        let text = cadenas_result::from_code(result).map_or("unknown result", |r| r.describe());
        copy_out(text.as_bytes(), buf, len, out_n)
    })
}

/// Copies the details of the last failed call **on the calling thread** (what, which user,
/// the server's diagnostic; never a secret) into `buf`; empty if no call failed yet.
/// A call of this function that fails does not replace them.
#[unsafe(no_mangle)]
pub extern "C" fn cadenas_last_error_message(
    buf: *mut c_char,
    len: usize,
    out_n: *mut usize,
) -> cadenas_result {
    let text = guard_value(String::new(), boundary::last_error);
    // Not through `guard`: a too-small buffer must not replace the message it asks about.
    guard_value(cadenas_result::Panic, || {
        match copy_out(text.as_bytes(), buf, len, out_n) {
            Ok(()) => cadenas_result::Ok,
            Err(f) => f.code,
        }
    })
}
