//! Command-line interface. Stable: scripts and other systems call it.
//!
//! Exit status: 0 success; 1 the package was refused (one line `CODE: reason` on stderr, or a
//! JSON object on stdout with `--json`); 2 bad usage (with `--json`, a JSON object `USAGE` on
//! stdout); 3 a local problem (unreadable file, unusable key). A problem with what the user typed
//! (a file or a flag's value) adds the Vietnamese on a second line.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};
use lienthong::{Code, Error};

/// `println!` for the command line's answers: when stdout is closed early
/// (`lienthong verify x.edxml | head -1`) the command ends quietly with status 0, as it would
/// have written nothing more worth reading, instead of panicking on the broken pipe as
/// `println!` does. Any other write error is a local problem (status 3).
macro_rules! outln {
    () => {
        $crate::cli::write_out(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::cli::write_out(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// `print!` with [`outln!`]'s handling of a closed stdout.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::cli::write_out(format_args!($($arg)*))
    };
}

/// Writes to stdout (see [`outln!`]).
pub(crate) fn write_out(args: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = stdout.write_fmt(args).and_then(|()| stdout.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("cannot write to standard output: {e}");
        std::process::exit(3);
    }
}

mod admin;
mod audit;
mod bench;
mod clerk_view;
mod client;
mod console;
mod docs;
mod document;
mod drafts;
mod extract;
mod flags;
mod followup;
mod inspect;
mod package;
mod registry;
mod serve;
mod sign;
mod status;
mod store;
mod table;
mod verify;

#[derive(Parser)]
#[command(
    name = "lienthong",
    version,
    about = "Signed edXML document exchange between agencies (QCVN 102:2016/BTTTT)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build edXML document packages.
    #[command(subcommand)]
    Package(package::Command),
    /// Sign a package with an organisation's key (enveloped XML-DSig, RSA-SHA256).
    Sign(sign::Args),
    /// Verify a package's signature and its signer's certificate chain.
    Verify(verify::Args),
    /// Show a package's header, attachments and signer.
    Inspect(inspect::Args),
    /// Write a package's attached files (unzipped) into a folder.
    Extract(extract::Args),
    /// Build status packages (01 arrived … 16 refused).
    #[command(subcommand)]
    Status(status::Command),
    /// Verify or export the audit chain of a node's store.
    #[command(subcommand)]
    Audit(audit::Command),
    /// The agency registry on the node's own store, with its --config, on the node's machine
    /// (`lienthong admin registry` does the same over the admin API, from anywhere).
    #[command(subcommand)]
    Registry(registry::Command),
    /// The web console: `hash-password` for a break-glass account.
    #[command(subcommand)]
    Console(console::Command),
    /// Run the node: clerk API, peer endpoint, outbox worker (until SIGINT/SIGTERM).
    Serve(serve::Args),
    /// Apply a store's pending schema migrations (SQLite or PostgreSQL) and say which.
    Migrate(store::MigrateArgs),
    /// Move a node's store to another backend (`store copy --from sqlite://… --to postgres://…`).
    #[command(subcommand)]
    Store(store::Command),
    /// Send a dispatch through a node's clerk API (the node composes and signs it).
    Send(Box<client::SendArgs>),
    /// The agency's received documents, through a node's clerk API.
    #[command(subcommand)]
    Inbox(client::InboxCommand),
    /// The agency's sent documents and their delivery state, through a node's clerk API.
    #[command(subcommand)]
    Sent(client::SentCommand),
    /// Revoke (thu hồi) a document the agency sent: the node signs and sends the revocation to
    /// its recipients, who answer 15 (agree) or 16 (refuse).
    Revoke(followup::RevokeArgs),
    /// Update (cập nhật) a document the agency sent: new subject, content, due date, signer,
    /// recipient list or files; the node signs and sends the update.
    Update(Box<followup::UpdateArgs>),
    /// Replace (thay thế) a document the agency sent with a new one, composed as `send` does.
    Replace(Box<followup::ReplaceArgs>),
    /// The agency's drafts made from mail of its registered mailbox: list, show, file, approve
    /// (the node numbers, signs and sends it), discard.
    #[command(subcommand)]
    Drafts(drafts::Command),
    /// The node's admin API with an operator token: deliveries, agency registry, mail log.
    #[command(subcommand)]
    Admin(admin::Command),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell) on stdout.
    Completions(docs::CompletionsArgs),
    /// Write manual pages (roff): the top page on stdout, or one page per command into --out.
    Man(docs::ManArgs),
    /// Measure two real nodes on loopback: documents/s, latency, CPU and memory per node (with
    /// --mail-env, the mail channel through real mail servers).
    Bench(Box<bench::Args>),
}

/// Why a command failed, and so which exit status and line to print.
pub(crate) enum Failure {
    /// The package (or the request) was refused: exit 1.
    Refused(Error),
    /// A local problem: exit 3.
    Local(Error),
    /// Refused, and the reason already printed (e.g. the node's own answer): exit 1.
    Reported,
    /// A local problem whose report is already printed (e.g. in a command's JSON): exit 3.
    ReportedLocal,
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        match e.code() {
            Code::Io | Code::KeyInvalid | Code::ConfigInvalid => Failure::Local(e),
            _ => Failure::Refused(e),
        }
    }
}

impl From<lienthong::error::FormatError> for Failure {
    fn from(e: lienthong::error::FormatError) -> Self {
        Failure::Refused(e.into())
    }
}

pub(crate) type CmdResult = Result<(), Failure>;

/// The whole command tree, for what is generated from it (completions, manual pages) and for
/// the tests that check it.
pub fn command() -> clap::Command {
    Cli::command()
}

pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(&e),
    };
    let (json, result) = match cli.command {
        Command::Package(c) => (false, package::run(c)),
        Command::Sign(a) => (false, sign::run(a)),
        Command::Verify(a) => (a.json, verify::run(&a)),
        Command::Inspect(a) => (a.json, inspect::run(&a)),
        Command::Extract(a) => (a.json, extract::run(a)),
        Command::Status(c) => (false, status::run(c)),
        Command::Audit(c) => (false, audit::run(c)),
        Command::Registry(c) => (false, registry::run(c)),
        Command::Console(c) => (false, console::run(c)),
        Command::Serve(a) => (false, serve::run(a)),
        Command::Migrate(a) => (false, store::migrate(a)),
        Command::Store(c) => (false, store::run(c)),
        Command::Send(a) => (false, client::send(*a)),
        Command::Inbox(c) => (false, client::inbox(c)),
        Command::Sent(c) => (false, client::sent(c)),
        Command::Revoke(a) => (false, followup::revoke(a)),
        Command::Update(a) => (false, followup::update(*a)),
        Command::Replace(a) => (false, followup::replace(*a)),
        Command::Drafts(c) => (false, drafts::run(c)),
        Command::Admin(c) => (false, admin::run(c)),
        Command::Completions(a) => (false, docs::completions(&a)),
        Command::Man(a) => (false, docs::man(&a)),
        Command::Bench(a) => (false, bench::run(*a)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Refused(e)) => {
            report(&e, json);
            ExitCode::from(1)
        }
        Err(Failure::Local(e)) => {
            report(&e, json);
            ExitCode::from(3)
        }
        Err(Failure::Reported) => ExitCode::from(1),
        Err(Failure::ReportedLocal) => ExitCode::from(3),
    }
}

/// One line: `CODE: what and where`, or the JSON form. A problem with what the user typed (a
/// file named on the command line, a flag's value) adds the Vietnamese on a second line (and as
/// `message_vi`): a clerk can act on it. Other refusals keep the one line scripts parse.
fn report(e: &Error, json: bool) {
    let vi = e.message_vi();
    let typed = match e {
        Error::Format(f) => f.code == Code::Io || f.path.starts_with("--"),
        _ => false,
    };
    let own_vi = typed && vi != e.code().message_vi();
    if json {
        let mut v = serde_json::json!({ "ok": false, "code": e.code(), "message": e.to_string() });
        if own_vi {
            v["message_vi"] = vi.into();
        }
        outln!("{v}");
    } else {
        eprintln!("{}: {}", e.code(), e);
        if own_vi {
            eprintln!("  {vi}");
        }
    }
}

/// A command line clap refuses. Help and version print as clap prints them (exit 0); a usage
/// error is clap's text on stderr (exit 2), or with `--json` anywhere among the arguments the
/// JSON error object on stdout that `--json` promises (`code` `USAGE`, `http_status` null), so a
/// script reading stdout is not left with nothing.
fn usage_error(e: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind as K;
    let json = std::env::args_os().skip(1).any(|a| a == "--json");
    let help = matches!(
        e.kind(),
        K::DisplayHelp | K::DisplayVersion | K::DisplayHelpOnMissingArgumentOrSubcommand
    );
    if json && !help {
        let text = e.render().to_string();
        // clap's text ends with a usage block and a pointer to --help; the first line says it.
        let message = text
            .lines()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("")
            .trim_start_matches("error: ")
            .trim()
            .to_owned();
        let v = serde_json::json!({
            "ok": false,
            "code": "USAGE",
            "message": message,
            "http_status": null,
        });
        outln!("{v}");
        return ExitCode::from(2);
    }
    let _ = e.print();
    ExitCode::from(if e.use_stderr() { 2 } else { 0 })
}

/// A file named on the command line that could not be read or written, said as the user typed
/// it (`--attach /x: no such file`) in both languages, with what to do about it: a typo is not a
/// matter for the administrator. Code `IO` (exit 3) as any local failure; carried as a
/// [`FormatError`](lienthong::error::FormatError) because that is the error with a field (here
/// the flag) and a Vietnamese rendering.
fn file_error(flag: &str, path: &Path, code: Code, en: impl Into<String>, vi: Problem) -> Error {
    let field = if flag.is_empty() {
        path.display().to_string()
    } else {
        format!("{flag} {}", path.display())
    };
    lienthong::error::FormatError::new(code, field, en)
        .said(vi)
        .into()
}

use lienthong::error::Problem;

/// Why reading `path` failed, in the user's terms.
fn read_error(flag: &str, path: &Path, e: &std::io::Error) -> Error {
    use std::io::ErrorKind as K;
    let (en, vi): (String, &'static str) = match e.kind() {
        K::NotFound => (
            "no such file".into(),
            "không tìm thấy tệp; kiểm tra lại đường dẫn",
        ),
        K::PermissionDenied => (
            "cannot be read (permission denied)".into(),
            "không có quyền đọc tệp này; kiểm tra lại quyền truy cập của tệp",
        ),
        K::IsADirectory => (
            "is a folder, not a file".into(),
            "đây là một thư mục, không phải tệp; hãy chỉ ra đường dẫn tới tệp",
        ),
        _ => (
            format!("cannot be read: {e}"),
            "không đọc được tệp; kiểm tra lại tệp và đường dẫn",
        ),
    };
    file_error(flag, path, Code::Io, en, Problem::Said(vi.into()))
}

/// Why writing `path` failed, in the user's terms.
fn write_error(flag: &str, path: &Path, e: &std::io::Error) -> Error {
    use std::io::ErrorKind as K;
    let (en, vi): (String, &'static str) = match e.kind() {
        K::NotFound => (
            "cannot write: its folder does not exist".into(),
            "không ghi được tệp vì thư mục chứa nó không tồn tại; kiểm tra lại đường dẫn",
        ),
        K::PermissionDenied | K::ReadOnlyFilesystem => (
            "cannot write (permission denied)".into(),
            "không có quyền ghi vào đây; hãy chọn nơi lưu khác",
        ),
        K::IsADirectory => (
            "cannot write: is a folder, not a file name".into(),
            "đây là một thư mục; hãy ghi rõ tên tệp cần lưu",
        ),
        K::StorageFull => (
            "cannot write: the disk is full".into(),
            "không ghi được tệp vì ổ đĩa đã đầy; hãy giải phóng chỗ trống hoặc chọn nơi lưu khác",
        ),
        _ => (
            format!("cannot write: {e}"),
            "không ghi được tệp; kiểm tra lại đường dẫn và quyền ghi",
        ),
    };
    file_error(flag, path, Code::Io, en, Problem::Said(vi.into()))
}

/// Reads a file named by `flag` (`--attach`, `--content-file`, an input argument: `""` names
/// it by its path alone), refusing before reading one larger than the package limit.
pub(crate) fn read_file(flag: &str, path: &Path) -> Result<Vec<u8>, Error> {
    let max = lienthong::edxml::xml::Limits::default().max_package_bytes;
    let meta = std::fs::metadata(path).map_err(|e| read_error(flag, path, &e))?;
    if meta.is_dir() {
        let e = std::io::Error::from(std::io::ErrorKind::IsADirectory);
        return Err(read_error(flag, path, &e));
    }
    let len = meta.len();
    if len > max as u64 {
        return Err(file_error(
            flag,
            path,
            Code::PackageTooLarge,
            format!("too large: {len} bytes, over the limit of {max}"),
            Problem::TooLarge { max: max as u64 },
        ));
    }
    std::fs::read(path).map_err(|e| read_error(flag, path, &e))
}

/// Writes `bytes` to `path` (named by `flag`, as [`read_file`]) atomically (temporary file,
/// fsync, rename), so a crash never leaves a half-written package where a complete one is
/// expected.
pub(crate) fn write_file(flag: &str, path: &Path, bytes: &[u8]) -> Result<(), Error> {
    use std::io::Write as _;
    if path.is_dir() {
        let e = std::io::Error::from(std::io::ErrorKind::IsADirectory);
        return Err(write_error(flag, path, &e));
    }
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    // The temporary name is short and fixed in form: derived from the target's name, it would
    // pass the file system's name limit when the target's name is near it.
    let tmp = dir.join(format!(".lienthong-{}.tmp", std::process::id()));
    let written = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if written.is_err() {
        // Nothing half-written is left behind (the next file would reuse the name anyway).
        let _ = std::fs::remove_file(&tmp);
    }
    written.map_err(|e| write_error(flag, path, &e))
}

#[cfg(test)]
mod tests {
    /// clap's own consistency checks (conflicting names, `requires` naming no argument, …),
    /// which otherwise run only when the faulty command is used.
    #[test]
    fn the_command_tree_passes_clap_checks() {
        super::command().debug_assert();
    }

    /// Every command, subcommand and argument says what it is for in `--help` (and so in the
    /// manual pages and completions generated from the same tree).
    #[test]
    fn every_command_and_argument_has_a_help_text() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            let path = format!("{path} {}", cmd.get_name()).trim().to_owned();
            let said = |s: Option<&clap::builder::StyledStr>| {
                s.is_some_and(|h| !h.to_string().trim().is_empty())
            };
            if !said(cmd.get_about()) && !said(cmd.get_long_about()) {
                missing.push(format!("command `{path}`"));
            }
            for arg in cmd.get_arguments() {
                if !said(arg.get_help()) && !said(arg.get_long_help()) {
                    missing.push(format!("argument `{}` of `{path}`", arg.get_id()));
                }
            }
            for sub in cmd.get_subcommands() {
                walk(sub, &path, missing);
            }
        }
        let mut cmd = super::command();
        cmd.build();
        let mut missing = Vec::new();
        walk(&cmd, "", &mut missing);
        assert!(missing.is_empty(), "no help text:\n{}", missing.join("\n"));
    }
}
