//! `berth htpasswd USER`: prints an htpasswd line (bcrypt) for `[auth]`,
//! reading the password from stdin so it never shows in `ps` or history.

use std::io::BufRead;

/// Flags of `berth htpasswd`.
#[derive(Debug, clap::Args)]
pub struct HtpasswdArgs {
    /// The user name.
    user: String,
}

/// Reads one line (the password) from stdin and prints `user:hash`.
pub fn run(args: HtpasswdArgs) -> Result<(), String> {
    if args.user.is_empty() || args.user.contains(':') {
        return Err("the user name must be non-empty and contain no ':'".into());
    }
    let mut password = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut password)
        .map_err(|e| format!("cannot read the password from stdin: {e}"))?;
    let password = password.trim_end_matches(['\r', '\n']);
    if password.is_empty() {
        return Err("empty password (pipe it on stdin)".into());
    }
    let line = registry::htpasswd_line(&args.user, password).map_err(|e| e.to_string())?;
    println!("{line}");
    Ok(())
}
