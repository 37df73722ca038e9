//! Contain one account with the library's building blocks: lock, reset with forced change,
//! require MFA (the MFA group, and any enrolment dropped). `cadenas::incident::Responder`
//! does all of it — journaled, resumable, for thousands — in one call.
//!
//! ```sh
//! cargo run -p cadenas --example contain -- /tmp/cadenas-lab/openldap/cadenas.toml user0100 /tmp/user0100.pw
//! ```
//!
//! The new password goes to a new 0600 file, never to stdout.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::sync::Arc;

use cadenas::directory::{Directory, UserRef};
use cadenas::mfa::Mfa;
use cadenas::Config;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, config, user, password_file] = args.as_slice() else {
        return Err("usage: contain CONFIG USER PASSWORD_FILE".into());
    };
    let cfg = Config::from_file(config.as_ref())?;
    let mfa = Arc::new(Mfa::open(
        cfg.mfa.as_ref().ok_or("the config has no [mfa]")?,
        true,
    )?);
    let dir = Directory::connect(&cfg.directory).await?;
    let user = dir.find_user(&UserRef::parse(user)?).await?;

    // Create the hand-over file first (new, owner-only): never set a password nobody can read.
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(password_file)?;
    let password = cfg.password.generate()?;
    for change in [
        dir.lock(&user).await?,
        dir.reset_password(&user, &password, true).await?,
        cadenas::auth::require_mfa(&dir, &mfa, &user).await?,
    ] {
        println!(
            "{:?}: {:?}  before={:?} after={:?}",
            change.action, change.outcome, change.before, change.after
        );
    }
    writeln!(out, "{}", password.expose_secret())?;
    println!("hand-over file: {password_file}");
    Ok(())
}
