//! Local files: secrets readable by their owner only; the journal and the MFA store on a
//! writable file system that survives a reboot.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::Check;
use crate::config::Config;
use crate::notify::ChannelConfig;
use crate::session::RevokerConfig;

/// Every secret file the config names, with what it is.
fn secret_files(cfg: &Config) -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    let mut add = |what: &str, p: &Option<PathBuf>| {
        if let Some(p) = p {
            out.push((what.to_owned(), p.clone()));
        }
    };
    add("directory.bind_password_file", &cfg.directory.bind_password_file);
    if let Some(m) = &cfg.mfa {
        add("mfa.key_file", &Some(m.key_file.clone()));
        add("mfa.database_password_file", &m.database_password_file);
    }
    if let Some(j) = &cfg.journal {
        add("journal.key_file", &j.key_file);
        add("journal.database_password_file", &j.database_password_file);
    }
    for r in &cfg.revokers {
        match r {
            RevokerConfig::Dovecot(d) => add(&format!("revoker {}: api_key_file", d.name), &d.api_key_file),
            RevokerConfig::Webhook(w) => add(&format!("revoker {}: secret_file", w.name), &w.secret_file),
            _ => {}
        }
    }
    for n in &cfg.notify {
        match &n.channel {
            ChannelConfig::Smtp(s) => {
                let file = s.login.as_ref().map(|(_, f)| f.clone());
                add(&format!("notify {}: password_file", n.name), &file);
            }
            ChannelConfig::Webhook(w) => add(&format!("notify {}: secret_file", n.name), &w.secret_file),
            _ => {}
        }
    }
    out
}

/// The file system type `path` lives on, from `/proc/self/mountinfo` (the longest mount
/// point that contains it).
fn fs_type(path: &Path) -> Option<String> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let path = path.canonicalize().ok()?;
    let mut best: Option<(usize, String)> = None;
    for line in info.lines() {
        // id parent major:minor root mount-point options [optional...] - fstype source ...
        let fields: Vec<&str> = line.split(' ').collect();
        let (Some(mount), Some(dash)) = (fields.get(4), fields.iter().position(|f| *f == "-")) else {
            continue;
        };
        let mount = mount.replace("\\040", " ");
        if path.starts_with(&mount) && best.as_ref().is_none_or(|(len, _)| mount.len() > *len) {
            if let Some(t) = fields.get(dash + 1) {
                best = Some((mount.len(), (*t).to_owned()));
            }
        }
    }
    best.map(|(_, t)| t)
}

/// Whether a state file's directory takes a new file and keeps it across a reboot.
pub(super) fn durable(what: &str, file: &Path) -> Check {
    let name = format!("{what}: writable and durable");
    let dir = match file.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let probe = dir.join(format!(".cadenas-check-{}", std::process::id()));
    if let Err(e) = std::fs::write(&probe, b"") {
        return Check::fail(
            name,
            format!("cannot create a file in {}: {e}", dir.display()),
            format!(
                "create {} and let the user running cadenas write there",
                dir.display()
            ),
        );
    }
    let _ = std::fs::remove_file(&probe);
    match fs_type(&dir).as_deref() {
        Some(t @ ("tmpfs" | "ramfs")) => Check::fail(
            name,
            format!(
                "{} is on {t}: its records are lost at the next reboot",
                dir.display()
            ),
            "put it on a disk (e.g. /var/lib/cadenas)",
        ),
        Some(t) => Check::ok(name, format!("{} ({t})", file.display())),
        None => Check::warn(
            name,
            format!("{}: the file system could not be read", file.display()),
            "make sure it is not tmpfs",
        ),
    }
}

/// The files' checks.
pub(super) fn checks(cfg: &Config) -> Vec<Check> {
    let mut out = Vec::new();
    for (what, path) in secret_files(cfg) {
        let name = format!("{what}: readable by its owner only");
        out.push(match std::fs::metadata(&path) {
            Ok(m) if m.permissions().mode() & 0o077 == 0 => Check::ok(name, path.display().to_string()),
            Ok(m) => Check::fail(
                name,
                format!(
                    "{} is mode {:o}: others can read it",
                    path.display(),
                    m.permissions().mode() & 0o777
                ),
                format!("chmod 600 {}", path.display()),
            ),
            Err(e) => Check::fail(
                name,
                format!("{}: {e}", path.display()),
                "create it, owner-only (chmod 600)",
            ),
        });
    }
    if let Some(p) = cfg.journal.as_ref().and_then(|j| j.path.as_ref()) {
        out.push(durable("journal", p));
    }
    if let Some(p) = cfg.mfa.as_ref().and_then(|m| m.database.file()) {
        out.push(durable("MFA store", p));
    }
    out
}
