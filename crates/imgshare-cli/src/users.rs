//! `imgshare users`: edits the built-in identity's users file (every change an atomic rewrite).

use std::io::BufRead as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::{Args, Subcommand};
use imgshare_identity::{HashStrength, UsersFile};

#[derive(Args)]
pub(crate) struct UsersArgs {
    /// The users file (.toml or .json); created by `add` if missing.
    #[arg(long, default_value = "imgshare-users.toml")]
    users: PathBuf,
    #[command(subcommand)]
    command: UsersCommand,
}

#[derive(Subcommand)]
pub(crate) enum UsersCommand {
    /// Add a user (and its account if new); prints its new API key once.
    Add {
        /// The user name (the `username` of the credentials).
        name: String,
        /// The account (tenant) id the user belongs to, e.g. 111111.
        #[arg(long)]
        account: String,
        /// A role, e.g. cloudImages:admin (repeatable).
        #[arg(long = "role")]
        roles: Vec<String>,
        /// `RAX-AUTH:defaultRegion` (default: the server's first region).
        #[arg(long)]
        default_region: Option<String>,
        /// Also set a password, read from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List users (names, ids, accounts, roles; never secrets).
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Remove a user (its account stays).
    Remove {
        /// The user name.
        name: String,
    },
    /// Replace a user's API key with a new one, printed once.
    ResetKey {
        /// The user name.
        name: String,
    },
    /// Refuse a user's authentications (403 userDisabled) until enabled again.
    Disable {
        /// The user name.
        name: String,
    },
    /// Allow a disabled user again.
    Enable {
        /// The user name.
        name: String,
    },
}

fn load(path: &Path) -> anyhow::Result<UsersFile> {
    UsersFile::load(path).with_context(|| format!("reading {}", path.display()))
}

fn save(file: &UsersFile, path: &Path) -> anyhow::Result<()> {
    file.save(path)
        .with_context(|| format!("writing {}", path.display()))
}

fn show_key(name: &str, key: &str) {
    println!("API key of {name} (shown only now; the file keeps its hash): {key}");
}

pub(crate) fn run(args: &UsersArgs) -> anyhow::Result<()> {
    let path = &args.users;
    match &args.command {
        UsersCommand::Add {
            name,
            account,
            roles,
            default_region,
            password_stdin,
        } => {
            let mut file = UsersFile::load_or_default(path)
                .with_context(|| format!("reading {}", path.display()))?;
            let password = if *password_stdin {
                let mut line = String::new();
                std::io::stdin()
                    .lock()
                    .read_line(&mut line)
                    .context("reading the password from standard input")?;
                let line = line.trim_end_matches(['\r', '\n']).to_owned();
                anyhow::ensure!(!line.is_empty(), "the password on standard input is empty");
                Some(line)
            } else {
                None
            };
            let key = file.add_user(
                name,
                account,
                roles.clone(),
                default_region.clone(),
                None,
                password.as_deref(),
                HashStrength::Standard,
            )?;
            save(&file, path)?;
            println!(
                "added user {name} to account {account} in {}",
                path.display()
            );
            show_key(name, &key);
        }
        UsersCommand::List { json } => {
            let list = load(path)?.list();
            if *json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                println!(
                    "{:<20} {:<10} {:<12} {:<8} {:<12} roles",
                    "name", "id", "account", "enabled", "secrets"
                );
                for user in list {
                    let secrets = match (user.has_api_key, user.has_password) {
                        (true, true) => "key+password",
                        (true, false) => "key",
                        (false, true) => "password",
                        (false, false) => "none",
                    };
                    println!(
                        "{:<20} {:<10} {:<12} {:<8} {:<12} {}",
                        user.name,
                        user.id,
                        user.account,
                        if user.enabled { "yes" } else { "no" },
                        secrets,
                        user.roles.join(",")
                    );
                }
            }
        }
        UsersCommand::Remove { name } => {
            let mut file = load(path)?;
            file.remove_user(name)?;
            save(&file, path)?;
            println!("removed user {name}");
        }
        UsersCommand::ResetKey { name } => {
            let mut file = load(path)?;
            let key = file.reset_key(name, HashStrength::Standard)?;
            save(&file, path)?;
            show_key(name, &key);
        }
        UsersCommand::Disable { name } | UsersCommand::Enable { name } => {
            let enabled = matches!(args.command, UsersCommand::Enable { .. });
            let mut file = load(path)?;
            file.set_enabled(name, enabled)?;
            save(&file, path)?;
            println!(
                "user {name} {}",
                if enabled { "enabled" } else { "disabled" }
            );
        }
    }
    Ok(())
}
