//! `lienthong sign`.

use std::path::PathBuf;

use lienthong::dsig;
use lienthong::edxml::xml::Limits;
use lienthong::signer::{KeyFileSigner, Signer as _};

use super::{CmdResult, Failure, read_file, write_file};

#[derive(clap::Args)]
pub struct Args {
    /// The organisation's private key (PEM, PKCS#8 or PKCS#1, RSA).
    #[arg(long)]
    key: PathBuf,
    /// The organisation's certificate (PEM); must match the key.
    #[arg(long)]
    cert: PathBuf,
    /// Intermediate CA certificates (PEM) to send along in KeyInfo.
    #[arg(long)]
    chain: Option<PathBuf>,
    /// The unsigned package.
    input: PathBuf,
    /// Where to write the signed package.
    #[arg(short = 'o', long = "output")]
    output: PathBuf,
}

pub fn run(a: Args) -> CmdResult {
    let signer =
        KeyFileSigner::from_files(&a.key, &a.cert, a.chain.as_deref()).map_err(Failure::Local)?;
    lienthong::pki::check_own_certificate(signer.certificate(), std::time::SystemTime::now())
        .map_err(|e| {
            Failure::Local(lienthong::Error::key(
                a.cert.display().to_string(),
                e.to_string(),
            ))
        })?;
    let bytes = read_file("", &a.input)?;
    let signed = dsig::sign_package(&bytes, &signer, &Limits::default())?;
    write_file("--output", &a.output, &signed)?;
    Ok(())
}
