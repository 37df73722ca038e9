//! Gives libcadenas.so its soname (libcadenas.so.0: the C ABI's major version).
fn main() {
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libcadenas.so.0");
}
