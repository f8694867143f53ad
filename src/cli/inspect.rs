//! `lienthong inspect`: what a package says, without deciding whether to believe it.

use std::path::PathBuf;

use lienthong::dsig::verify::claimed_signer;
use lienthong::edxml::xml::{self, Limits};
use lienthong::edxml::{self, Package, ReadOptions};
use lienthong::pki;

use super::{CmdResult, read_file};

#[derive(clap::Args)]
pub struct Args {
    /// Print one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
    /// The package.
    input: PathBuf,
}

pub fn run(a: &Args) -> CmdResult {
    let bytes = read_file(&a.input)?;
    let opts = ReadOptions::default();
    let parsed = xml::parse(&bytes, &Limits::default())?;
    let package = edxml::read_tree(&parsed, &opts)?;
    let signer = match claimed_signer(&parsed) {
        Ok(Some(der)) => Some(pki::describe(&der).map_err(lienthong::Error::from)?),
        Ok(None) => None,
        Err(e) => return Err(e.into()),
    };
    if a.json {
        let v = serde_json::json!({
            "package": package,
            "signature": { "present": signer.is_some(), "verified": false, "claimed_signer": signer },
        });
        println!("{v}");
        return Ok(());
    }
    println!("{}", package.summary());
    match &package {
        Package::Document(d) => {
            let h = &d.header;
            println!("  from:       {} {}", h.from.organ_id, h.from.organ_name);
            for t in &h.to {
                println!("  to:         {} {}", t.organ_id, t.organ_name);
            }
            println!("  id:         {}", h.effective_document_id());
            println!("  số/ký hiệu: {}", h.code.full());
            println!(
                "  date:       {} {}",
                h.promulgation_info.place,
                edxml::dates::format_date(h.promulgation_info.date)
            );
            println!("  type:       {}", h.document_type.type_name);
            println!("  subject:    {}", h.subject);
            let s = &h.signer_info;
            println!(
                "  signed by:  {} {} {}",
                s.competence, s.position, s.full_name
            );
            for (i, f) in d.attachments.iter().enumerate() {
                println!(
                    "  file {}:     {} ({}, {} bytes)",
                    i + 1,
                    // Escaped: a bidirectional override would reorder the line on a terminal.
                    f.name.escape_debug(),
                    f.content_type,
                    f.data.len()
                );
            }
        }
        Package::Status(s) => {
            println!("  from:       {} {}", s.from.organ_id, s.from.organ_name);
            println!("  about:      {}", s.response_for.effective_document_id());
            println!(
                "  status:     {} {}",
                s.status_code,
                s.status_code.meaning()
            );
            if !s.description.is_empty() {
                println!("  reason:     {}", s.description);
            }
            println!(
                "  at:         {}",
                edxml::dates::format_timestamp(s.timestamp)
            );
        }
    }
    for w in package.warnings() {
        println!("  warning:    {}: {}", w.path, w.message);
    }
    match signer {
        Some(c) => println!(
            "  signature:  present, NOT verified (use `lienthong verify`); claims {}",
            c.subject
        ),
        None => println!("  signature:  none"),
    }
    Ok(())
}
