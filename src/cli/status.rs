//! `lienthong status new`.

use std::path::PathBuf;

use lienthong::edxml::{
    self, OrganId, Organization, Package, ReadOptions, StatusCode, StatusPackage,
};
use lienthong::error::{Code, FormatError};
use time::OffsetDateTime;

use super::{CmdResult, read_file, write_file};

#[derive(clap::Subcommand)]
pub enum Command {
    /// Build a status package answering a received document (unsigned; sign it with `lienthong sign`).
    New(NewArgs),
}

#[derive(clap::Args)]
pub struct NewArgs {
    /// Status code: 01 arrived, 02 rejected, 03 registered, 04 assigned, 05 in progress,
    /// 06 finished, 13 take-back request, 15 take-back accepted, 16 take-back refused.
    #[arg(long)]
    code: String,
    /// The agency reporting the status (strict shape).
    #[arg(long)]
    from: String,
    /// Its name (OrganName); defaults to the code.
    #[arg(long)]
    from_name: Option<String>,
    /// The document package the status is about.
    #[arg(long = "for")]
    for_: PathBuf,
    /// Reason or note (required for 02 and 16).
    #[arg(long, default_value = "")]
    description: String,
    /// Where to write the status package.
    #[arg(short = 'o', long = "output")]
    output: PathBuf,
}

pub fn run(c: Command) -> CmdResult {
    match c {
        Command::New(a) => new(a),
    }
}

fn new(a: NewArgs) -> CmdResult {
    let code = StatusCode::parse_assigned(&a.code)?;
    if matches!(code, StatusCode::Rejected | StatusCode::TakeBackRefused)
        && a.description.trim().is_empty()
    {
        return Err(FormatError::new(
            Code::ElementMissing,
            "--description",
            format!("status {code} needs a reason"),
        )
        .into());
    }
    let from = OrganId::parse_strict(&a.from)?;
    let name = a.from_name.clone().unwrap_or_else(|| a.from.clone());
    let bytes = read_file("--for", &a.for_)?;
    let Package::Document(doc) = edxml::read(&bytes, &ReadOptions::default())? else {
        return Err(FormatError::new(
            Code::ValueInvalid,
            "--for",
            "a status answers a document package, not a status",
        )
        .into());
    };
    let now = edxml::vietnam_time(OffsetDateTime::now_utc());
    let status = StatusPackage::for_document(
        &doc,
        Organization::new(from, name),
        code,
        a.description.clone(),
        now,
    );
    write_file("--output", &a.output, &edxml::write_status(&status)?)?;
    Ok(())
}
