//! What every export goes through: the panic boundary, the handle registry, C strings in and
//! caller buffers out. The only module with raw-pointer reads and writes besides the
//! callbacks.

use std::any::TypeId;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::ffi::{c_char, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Mutex, PoisonError};

use crate::result::cadenas_result;

/// A failed call: the result code and, for `cadenas_last_error_message`, the details.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) code: cadenas_result,
    pub(crate) message: String,
}

impl Failure {
    pub(crate) fn new(code: cadenas_result, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    pub(crate) fn null(what: &str) -> Self {
        Self::new(cadenas_result::NullPointer, format!("{what} is NULL"))
    }
}

impl From<core_api::Error> for Failure {
    fn from(e: core_api::Error) -> Self {
        // The core's errors never carry a secret (its own rule); the text is safe to give out.
        Self::new(cadenas_result::of_kind(e.kind()), e.to_string())
    }
}

pub(crate) type Outcome = Result<(), Failure>;

thread_local! {
    static LAST_ERROR: RefCell<String> = const { RefCell::new(String::new()) };
}

/// The details of the last failed call on this thread (empty if none failed yet).
pub(crate) fn last_error() -> String {
    LAST_ERROR.with(|l| l.borrow().clone())
}

/// The panic boundary every export passes through: runs `f`, turns a failure into its code
/// (remembering the details for this thread) and a panic into `CADENAS_RESULT_PANIC`.
pub(crate) fn guard(f: impl FnOnce() -> Outcome) -> cadenas_result {
    let failure = match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => return cadenas_result::Ok,
        Ok(Err(failure)) => failure,
        Err(_) => Failure::new(
            cadenas_result::Panic,
            "a bug inside libcadenas was caught at the C boundary",
        ),
    };
    let code = failure.code;
    LAST_ERROR.with(|l| *l.borrow_mut() = failure.message);
    code
}

/// [`guard`] for the functions with no result code (accessors and `free`): a panic gives
/// `default`.
pub(crate) fn guard_value<T>(default: T, f: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or(default)
}

/// Addresses of the live handles and the Rust type behind each. Lets a freed handle, or a
/// handle of another type, be refused instead of read (a double free is a no-op).
static LIVE: Mutex<BTreeMap<usize, TypeId>> = Mutex::new(BTreeMap::new());

fn live() -> std::sync::MutexGuard<'static, BTreeMap<usize, TypeId>> {
    LIVE.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Moves `value` to the heap and registers it; the pointer is the C handle `H`.
pub(crate) fn export<T: Send + Sync + 'static, H>(value: T) -> *mut H {
    let p = Box::into_raw(Box::new(value));
    live().insert(p as usize, TypeId::of::<T>());
    p.cast()
}

/// Refuses a NULL pointer argument. Output pointers are checked before any work is done: a
/// containment must not run for a caller who could not receive its report.
pub(crate) fn not_null<T>(p: *const T, what: &str) -> Outcome {
    if p.is_null() {
        return Err(Failure::null(what));
    }
    Ok(())
}

/// Hands `value` to the caller as a new handle in `*out` (checked for NULL first, so that
/// nothing is made for a caller who could not receive it).
pub(crate) fn hand_out<T: Send + Sync + 'static, H>(out: *mut *mut H, value: T, what: &str) -> Outcome {
    not_null(out, what)?;
    write_out(out, export::<T, H>(value), what)
}

/// The value behind a handle made by [`export::<T>`](export) and not yet freed.
pub(crate) fn borrow<'a, T: Send + Sync + 'static, H>(h: *const H, what: &str) -> Result<&'a T, Failure> {
    not_null(h, what)?;
    if live().get(&(h as usize)) != Some(&TypeId::of::<T>()) {
        return Err(Failure::new(
            cadenas_result::InvalidHandle,
            format!("{what} is not a live handle of its type (freed already?)"),
        ));
    }
    // SAFETY: the registry holds exactly the addresses `export::<T>` returned and `release`
    // has not yet removed, so `h` points to a live `T` made by `Box::into_raw`. Only shared
    // references are handed out (mutation goes through the `T`'s own locks); the C contract
    // (cadenas.h) forbids freeing a handle while another call uses it.
    Ok(unsafe { &*h.cast::<T>() })
}

/// Frees a handle made by [`export::<T>`](export): NULL, a handle freed already and a handle
/// of another type are ignored.
pub(crate) fn release<T: Send + Sync + 'static, H>(h: *mut H) {
    if h.is_null() {
        return;
    }
    let owned = {
        let mut live = live();
        match live.get(&(h as usize)) {
            Some(t) if *t == TypeId::of::<T>() => {
                live.remove(&(h as usize));
                if live.is_empty() {
                    // Frees the map's last node: nothing of the registry is left allocated
                    // while no handle is live (a PAM host may unload the library then).
                    *live = BTreeMap::new();
                }
                true
            }
            _ => false,
        }
    };
    if owned {
        // SAFETY: the registry said `h` is a live `T` from `Box::into_raw` and we removed it
        // under the lock, so no other `release` can free it again; we own it now.
        drop(unsafe { Box::from_raw(h.cast::<T>()) });
    }
}

/// A required C string argument, as UTF-8.
pub(crate) fn text<'a>(p: *const c_char, what: &str) -> Result<&'a str, Failure> {
    not_null(p, what)?;
    // SAFETY: the caller passes a NUL-terminated string valid for the duration of the call
    // (the contract of every `const char *` parameter in cadenas.h).
    let s = unsafe { CStr::from_ptr(p) };
    s.to_str()
        .map_err(|_| Failure::new(cadenas_result::InvalidUtf8, format!("{what} is not valid UTF-8")))
}

/// An optional C string argument (NULL: absent).
pub(crate) fn opt_text<'a>(p: *const c_char, what: &str) -> Result<Option<&'a str>, Failure> {
    if p.is_null() {
        Ok(None)
    } else {
        text(p, what).map(Some)
    }
}

/// A list of `n` C strings.
pub(crate) fn texts(list: *const *const c_char, n: usize, what: &str) -> Result<Vec<String>, Failure> {
    if n == 0 {
        return Ok(Vec::new());
    }
    not_null(list, what)?;
    // SAFETY: the caller passes an array of `n` pointers (the contract of every
    // `const char *const *` + count pair in cadenas.h); each is checked by `text`.
    let items = unsafe { std::slice::from_raw_parts(list, n) };
    items
        .iter()
        .enumerate()
        .map(|(i, p)| text(*p, &format!("{what}[{i}]")).map(str::to_owned))
        .collect()
}

/// Writes an output pointer (checked for NULL).
pub(crate) fn write_out<T>(out: *mut T, value: T, what: &str) -> Outcome {
    not_null(out, what)?;
    // SAFETY: `out` is non-NULL and, by the C contract, points to writable storage for a `T`.
    unsafe { out.write(value) };
    Ok(())
}

/// Copies `bytes` and a terminating NUL into the caller's buffer `buf` of `len` bytes and
/// sets `*out_n` to `bytes.len()`. A buffer too small gets nothing and
/// `CADENAS_RESULT_BUFFER_TOO_SMALL`, with `*out_n` set to the length needed (without the NUL):
/// pass `buf = NULL, len = 0` to ask for it.
pub(crate) fn copy_out(bytes: &[u8], buf: *mut c_char, len: usize, out_n: *mut usize) -> Outcome {
    not_null(out_n, "out_n")?;
    if bytes.contains(&0) {
        return Err(Failure::new(
            cadenas_result::Internal,
            "the text holds a NUL byte and cannot be a C string",
        ));
    }
    if buf.is_null() && len > 0 {
        // a length for no buffer is a mistake, not a size query (NULL, 0)
        return Err(Failure::new(
            cadenas_result::NullPointer,
            format!("buf is NULL but len is {len}: pass NULL and 0 to ask for the length"),
        ));
    }
    // SAFETY: `out_n` is non-NULL and points to a `size_t` (C contract).
    unsafe { out_n.write(bytes.len()) };
    if buf.is_null() || len < bytes.len() + 1 {
        return Err(Failure::new(
            cadenas_result::BufferTooSmall,
            format!(
                "the buffer needs {} bytes (text and NUL), {len} given",
                bytes.len() + 1
            ),
        ));
    }
    // SAFETY: `buf` is non-NULL and points to `len` writable bytes (C contract); we write
    // `bytes.len() + 1 <= len` of them. The source is Rust memory, so they cannot overlap.
    unsafe {
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), buf.cast::<u8>(), bytes.len());
        buf.add(bytes.len()).write(0);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_freed_handle_is_refused_and_freeing_it_again_is_a_no_op() {
        let h: *mut u8 = export(String::from("x"));
        assert_eq!(borrow::<String, u8>(h, "h").expect("live").as_str(), "x");
        assert!(borrow::<u32, u8>(h, "h").is_err(), "another type is refused");
        release::<u32, u8>(h); // wrong type: ignored, still live
        assert!(borrow::<String, u8>(h, "h").is_ok());
        release::<String, u8>(h);
        let e = borrow::<String, u8>(h, "h").expect_err("freed");
        assert_eq!(e.code, cadenas_result::InvalidHandle);
        release::<String, u8>(h); // twice: ignored
        release::<String, u8>(std::ptr::null_mut());
    }

    #[test]
    fn too_small_buffers_get_nothing_but_the_length_needed() {
        let mut n = 0usize;
        let e = copy_out(b"abc", std::ptr::null_mut(), 0, &mut n).expect_err("size query");
        assert_eq!((e.code, n), (cadenas_result::BufferTooSmall, 3));
        let mut buf = [b'z' as c_char; 3];
        assert!(copy_out(b"abc", buf.as_mut_ptr(), 3, &mut n).is_err());
        assert_eq!(buf, [b'z' as c_char; 3], "nothing written");
        let mut buf = [0 as c_char; 4];
        copy_out(b"abc", buf.as_mut_ptr(), 4, &mut n).expect("fits");
        assert_eq!(&buf, &[b'a' as c_char, b'b' as c_char, b'c' as c_char, 0]);
    }

    #[test]
    fn a_panic_is_a_result_code_with_a_message() {
        assert_eq!(guard(|| panic!("boom")), cadenas_result::Panic);
        assert!(last_error().contains("caught"));
    }
}
