//! `lienthong completions SHELL` and `lienthong man [--out DIR]`: shell completion scripts and
//! manual pages generated from the command tree itself ([`super::command`]), so they can never
//! disagree with the binary that wrote them. Packaging runs these at build time (README,
//! "Command line").

use std::path::{Path, PathBuf};

use lienthong::Error;

use super::{CmdResult, Failure};

#[derive(clap::Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    shell: clap_complete::Shell,
}

#[derive(clap::Args)]
pub struct ManArgs {
    /// Write one page per command here (`lienthong.1`, `lienthong-send.1`, …; the folder is
    /// created) instead of the top page on stdout.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
}

pub fn completions(a: &CompletionsArgs) -> CmdResult {
    let mut cmd = super::command();
    // Into memory first: `generate` panics on a failed write, and `| head` closes the pipe.
    let mut script = Vec::new();
    clap_complete::generate(a.shell, &mut cmd, "lienthong", &mut script);
    to_stdout(&script)
}

pub fn man(a: &ManArgs) -> CmdResult {
    let cmd = super::command();
    let Some(dir) = &a.out else {
        let mut page = Vec::new();
        clap_mangen::Man::new(cmd)
            .render(&mut page)
            .map_err(|e| Failure::Local(Error::io("stdout", e)))?;
        return to_stdout(&page);
    };
    std::fs::create_dir_all(dir)
        .map_err(|e| Failure::Local(Error::io(dir.display().to_string(), e)))?;
    let mut cmd = cmd.disable_help_subcommand(true);
    cmd.build();
    let mut written = Vec::new();
    pages(&cmd, dir, &mut written)
        .map_err(|e| Failure::Local(Error::io(dir.display().to_string(), e)))?;
    for p in written {
        outln!("{}", p.display());
    }
    Ok(())
}

/// Writes `bytes` to stdout. A reader that stops early (`| head -1`) closes the pipe: that is
/// what it asked for, so a broken pipe is success, not an error or a panic.
fn to_stdout(bytes: &[u8]) -> CmdResult {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(Failure::Local(Error::io("stdout", e)))
        }
        _ => Ok(()),
    }
}

/// Writes the page of `cmd` and of every visible subcommand below it (what
/// `clap_mangen::generate_to` does), collecting the paths written.
fn pages(cmd: &clap::Command, dir: &Path, written: &mut Vec<PathBuf>) -> std::io::Result<()> {
    written.push(clap_mangen::Man::new(cmd.clone()).generate_to(dir)?);
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        pages(sub, dir, written)?;
    }
    Ok(())
}
