//! `cadenas completions SHELL` and `cadenas man --output DIR`: what a package installs, made
//! from the command's own definition (so they cannot drift from it).

use std::path::Path;

use clap::CommandFactory;
use clap_complete::Shell;

use crate::exit::Exit;
use crate::Cli;

/// Prints the completion script for `shell` on stdout.
pub fn completions(shell: Shell) -> Exit {
    let mut cmd = Cli::command();
    clap_complete::generate(shell, &mut cmd, "cadenas", &mut std::io::stdout());
    Exit::Done
}

/// Writes `cadenas.1` and one `cadenas-COMMAND.1` per command (and sub-command) into `dir`.
pub fn man(dir: &Path) -> Result<Exit, cadenas::Error> {
    let io =
        |e: std::io::Error| cadenas::Error::new(cadenas::ErrorKind::Io, format!("{}: {e}", dir.display()));
    std::fs::create_dir_all(dir).map_err(io)?;
    let cmd = Cli::command();
    let mut pages = vec![(String::from("cadenas"), cmd.clone())];
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("cadenas-{}", sub.get_name());
        for subsub in sub.get_subcommands().filter(|s| !s.is_hide_set()) {
            let n = format!("{name}-{}", subsub.get_name());
            pages.push((n.clone(), subsub.clone().name(n)));
        }
        pages.push((name.clone(), sub.clone().name(name)));
    }
    for (name, page) in pages {
        let mut out = Vec::new();
        clap_mangen::Man::new(page).render(&mut out).map_err(io)?;
        std::fs::write(dir.join(format!("{name}.1")), out).map_err(io)?;
    }
    Ok(Exit::Done)
}
