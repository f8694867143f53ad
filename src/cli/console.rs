//! `lienthong console …`: what an operator needs to configure the web console.

use std::io::BufRead as _;

use clap::Subcommand;

use super::CmdResult;

#[derive(Subcommand)]
pub enum Command {
    /// Read a password on standard input (one line) and print its argon2id hash, for
    /// `[[console.local]] password_hash`. The password itself is never written anywhere.
    HashPassword,
}

pub fn run(c: Command) -> CmdResult {
    match c {
        Command::HashPassword => {
            let mut line = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .map_err(|e| lienthong::Error::io("standard input", e))?;
            let password = line.trim_end_matches(['\n', '\r']);
            if password.chars().count() < 12 {
                return Err(lienthong::error::FormatError::invalid(
                    "password",
                    "shorter than 12 characters: a break-glass password guards the whole node",
                )
                .into());
            }
            let hash = lienthong::console::pages::login::hash_password(password)?;
            println!("{hash}");
            Ok(())
        }
    }
}
