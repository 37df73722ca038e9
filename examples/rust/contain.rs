//! Contain one account with the library: lock, reset with forced change, require MFA.
//!
//! ```sh
//! cargo run -p cadenas --example contain -- /tmp/cadenas-lab/openldap/cadenas.toml user0100 /tmp/user0100.pw
//! ```
//!
//! The new password goes to a new 0600 file, never to stdout.

use std::io::Write;

use cadenas::{Config, Directory, UserRef};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, config, user, password_file] = args.as_slice() else {
        return Err("usage: contain CONFIG USER PASSWORD_FILE".into());
    };
    let cfg = Config::from_file(config.as_ref())?;
    let dir = Directory::connect(&cfg.directory).await?;
    let user = dir.find_user(&UserRef::parse(user)?).await?;

    // Create the hand-over file first: never set a password nobody can read.
    let mut out = cadenas::secret::create_private_file(password_file.as_ref())?;
    let password = cfg.password.generate()?;
    for change in [
        dir.lock(&user).await?,
        dir.reset_password(&user, &password, true).await?,
        dir.require_mfa(&user).await?,
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
