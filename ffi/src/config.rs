//! `cadenas_config`: a parsed, checked configuration, from which every other handle is made.

use std::ffi::c_char;
use std::path::Path;

use core_api::Config;

use crate::boundary::{borrow, guard, guard_value, hand_out, not_null, opt_text, release, text, Failure};
use crate::result::cadenas_result;

/// A configuration (the TOML file the CLI reads), parsed and checked once.
pub struct cadenas_config {
    _private: [u8; 0],
}

pub(crate) fn config_ref<'a>(cfg: *const cadenas_config) -> Result<&'a Config, Failure> {
    borrow::<Config, _>(cfg, "config")
}

/// Reads and checks the configuration file at `path`. On success `*config_out` is a new
/// handle, to free with `cadenas_config_free()`.
#[unsafe(no_mangle)]
pub extern "C" fn cadenas_config_from_file(
    path: *const c_char,
    config_out: *mut *mut cadenas_config,
) -> cadenas_result {
    guard(|| {
        not_null(config_out, "config_out")?;
        let path = text(path, "path")?;
        let cfg = Config::from_file(Path::new(path))?;
        hand_out(config_out, cfg, "config_out")
    })
}

/// Parses and checks configuration text; relative paths in it are taken from `base_dir`
/// (NULL: the current directory).
#[unsafe(no_mangle)]
pub extern "C" fn cadenas_config_from_toml(
    toml: *const c_char,
    base_dir: *const c_char,
    config_out: *mut *mut cadenas_config,
) -> cadenas_result {
    guard(|| {
        not_null(config_out, "config_out")?;
        let toml = text(toml, "toml")?;
        let base = opt_text(base_dir, "base_dir")?.unwrap_or(".");
        let cfg = Config::from_toml_str(toml, Path::new(base))?;
        hand_out(config_out, cfg, "config_out")
    })
}

/// Frees a configuration (NULL and a handle freed already are ignored). Handles made from it
/// keep their own copy.
#[unsafe(no_mangle)]
pub extern "C" fn cadenas_config_free(config: *mut cadenas_config) {
    guard_value((), || release::<Config, _>(config));
}
