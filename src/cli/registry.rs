//! `lienthong registry list|show|add|remove|import --config node.toml`: the agency registry
//! (which certificates may sign for which agency code) in the node's store, for an operator on the
//! node's machine. The store is the one `[node] store` of the configuration; the node may be
//! running (SQLite serialises the writers). Every change is written with its audit record, actor
//! `admin:<os user>` — the operating-system user the process runs as (`getuid`, not `$USER`, which
//! the caller sets and sudo/systemd leave unset) — or `admin:<os user> as <NAME>` with
//! `--actor NAME` (who the change is for, e.g. the person a shared service account acts for;
//! the OS user is always kept). Times in `--json` are RFC 3339 UTC, as in the admin API.
//!
//! - `list [--json]`, `show CODE [--json]`: what is registered;
//! - `add CODE [--name N] [--cert FILE]… [--fingerprint HEX]… [--subject-attribute A --subject-value
//!   V (--issuer-cert FILE | --issuer-sha256 HEX | --issuer DN)]`: adds rules to the agency's
//!   entry (creating it);
//! - `remove CODE [--fingerprint HEX]`: removes the entry, or only the rule of that certificate;
//! - `import FILE [--replace-all]`: the TOML file of [`lienthong::node::registry`], in one
//!   transaction, all or nothing; an error names the file position.
//!
//! Exit status as every command: 0 done, 1 refused (one line `CODE: reason`), 3 a local problem.

use std::path::{Path, PathBuf};

use lienthong::config::Config;
use lienthong::node::registry::{certificate_der, certificate_rule, read_import};
use lienthong::pki::binding::{Attribute, Rule, normalise_fingerprint};
use lienthong::store::{AnyStore, NewRegistryEntry, RegistryEntry, Store};
use lienthong::{Code, Error};

use super::{CmdResult, Failure};

#[derive(clap::Subcommand)]
pub enum Command {
    /// Every agency in the registry with its rules.
    List(ListArgs),
    /// One agency's rules.
    Show(ShowArgs),
    /// Add rules to an agency's entry (created if absent).
    Add(AddArgs),
    /// Remove an agency's entry, or one certificate from it.
    Remove(RemoveArgs),
    /// Import a TOML registry file, all or nothing.
    Import(ImportArgs),
}

#[derive(clap::Args)]
pub struct ConfigArg {
    /// The node's configuration file (its `[node] store` is the registry's store).
    #[arg(long)]
    config: PathBuf,
}

/// Who a change is recorded as made by, besides the OS user.
#[derive(clap::Args)]
pub struct ActorArg {
    /// Record the change as made by NAME on behalf of the OS user (`admin:<os user> as NAME`),
    /// e.g. the person a shared operator account acts for.
    #[arg(long, value_name = "NAME")]
    actor: Option<String>,
}

#[derive(clap::Args)]
pub struct ListArgs {
    #[command(flatten)]
    config: ConfigArg,
    /// JSON instead of lines.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
pub struct ShowArgs {
    /// The agency code.
    code: String,
    #[command(flatten)]
    config: ConfigArg,
    /// JSON instead of lines.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
pub struct AddArgs {
    /// The agency code.
    code: String,
    #[command(flatten)]
    config: ConfigArg,
    #[command(flatten)]
    actor: ActorArg,
    /// The agency's name (kept if not given).
    #[arg(long)]
    name: Option<String>,
    #[command(flatten)]
    rules: RuleArgs,
}

/// The rules of an agency's entry as command-line options: shared by `registry add` (on the
/// store) and `admin registry set` (over the admin API), so both take certificates alike.
#[derive(clap::Args)]
pub struct RuleArgs {
    /// A certificate (PEM or DER file) allowed to sign for the agency.
    #[arg(long = "cert")]
    certs: Vec<PathBuf>,
    /// A certificate allowed to sign for the agency, by SHA-256 fingerprint.
    #[arg(long = "fingerprint")]
    fingerprints: Vec<String>,
    /// Subject rule: the attribute (`serialNumber`, `O`, `OU`, `CN`).
    #[arg(long, requires = "subject_value")]
    subject_attribute: Option<String>,
    /// Subject rule: the value it must equal.
    #[arg(long, requires = "subject_attribute")]
    subject_value: Option<String>,
    /// Subject rule: the issuing CA's certificate file.
    #[arg(long, requires = "subject_attribute", conflicts_with_all = ["issuer_sha256", "issuer"])]
    issuer_cert: Option<PathBuf>,
    /// Subject rule: the issuing CA's certificate fingerprint.
    #[arg(long, requires = "subject_attribute", conflicts_with = "issuer")]
    issuer_sha256: Option<String>,
    /// Subject rule: the issuer's exact DN as `lienthong inspect` prints it.
    #[arg(long, requires = "subject_attribute")]
    issuer: Option<String>,
    /// A note kept with each rule added.
    #[arg(long)]
    note: Option<String>,
}

#[derive(clap::Args)]
pub struct RemoveArgs {
    /// The agency code.
    code: String,
    #[command(flatten)]
    config: ConfigArg,
    #[command(flatten)]
    actor: ActorArg,
    /// Remove only the rule of this certificate (SHA-256), not the whole entry.
    #[arg(long)]
    fingerprint: Option<String>,
}

#[derive(clap::Args)]
pub struct ImportArgs {
    /// The TOML registry file.
    file: PathBuf,
    #[command(flatten)]
    config: ConfigArg,
    #[command(flatten)]
    actor: ActorArg,
    /// Remove the entries the file does not list.
    #[arg(long)]
    replace_all: bool,
}

pub fn run(c: Command) -> CmdResult {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Local(Error::io("tokio runtime", e)))?;
    runtime.block_on(async {
        match c {
            Command::List(a) => list(a).await,
            Command::Show(a) => show(a).await,
            Command::Add(a) => add(a).await,
            Command::Remove(a) => remove(a).await,
            Command::Import(a) => import(a).await,
        }
    })
}

async fn open(c: &ConfigArg) -> Result<AnyStore, Failure> {
    let config = Config::load(&c.config).map_err(Failure::Local)?;
    AnyStore::open_with(&config.node.store, &config.store_options())
        .await
        .map_err(Failure::Local)
}

/// The audit actor of a change: `admin:<os user>`, or `admin:<os user> as <NAME>` with
/// `--actor NAME`. The OS user comes from the process's real uid, which the caller cannot set.
fn actor(a: &ActorArg) -> Result<String, Failure> {
    let user = os_user();
    match a.actor.as_deref().map(str::trim) {
        None => Ok(format!("admin:{user}")),
        Some(name) if !name.is_empty() && !name.chars().any(char::is_control) => {
            Ok(format!("admin:{user} as {name}"))
        }
        Some(name) => Err(Failure::Refused(
            lienthong::error::FormatError::invalid(
                "--actor",
                format!("{name:?}: give a name without control characters"),
            )
            .into(),
        )),
    }
}

/// The name of the process's real user (`getpwuid_r(getuid())`), or `uid:<N>` when the user
/// database has no entry for it (a container's arbitrary uid).
fn os_user() -> String {
    // SAFETY: getuid cannot fail and has no preconditions.
    let uid = unsafe { libc::getuid() };
    let mut buf = vec![0u8; 1024];
    loop {
        // SAFETY: a zeroed passwd is a valid out-parameter; `buf` outlives the call and its
        // length is passed; `found` is only read after a successful call.
        let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
        let mut found: *mut libc::passwd = std::ptr::null_mut();
        let rc = unsafe {
            libc::getpwuid_r(
                uid,
                &mut pwd,
                buf.as_mut_ptr().cast(),
                buf.len(),
                &mut found,
            )
        };
        if rc == libc::ERANGE && buf.len() < 1 << 20 {
            buf.resize(buf.len() * 4, 0);
            continue;
        }
        if rc != 0 || found.is_null() || pwd.pw_name.is_null() {
            return format!("uid:{uid}");
        }
        // SAFETY: on success pw_name points at a NUL-terminated string inside `buf`.
        let name = unsafe { std::ffi::CStr::from_ptr(pwd.pw_name) };
        return name.to_string_lossy().into_owned();
    }
}

/// An entry as `--json` shows it: as the admin API does (`/admin/v1/registry`), times RFC 3339
/// UTC.
fn entry_json(e: &RegistryEntry) -> serde_json::Value {
    let time = lienthong::audit::export::rfc3339_ms;
    serde_json::json!({
        "code": e.code,
        "name": e.name,
        "rules": e.rules,
        "added_by": e.added_by,
        "added_at": time(e.added_at),
        "updated_by": e.updated_by,
        "updated_at": time(e.updated_at),
    })
}

fn now_ms() -> i64 {
    lienthong::node::service::now_ms()
}

fn print_entry(e: &RegistryEntry) {
    outln!("{}\t{}", e.code, e.name);
    for r in &e.rules {
        match r {
            Rule::Fingerprint { sha256, note } => outln!(
                "  fingerprint {sha256}{}",
                note.as_deref()
                    .map(|n| format!("  # {n}"))
                    .unwrap_or_default()
            ),
            Rule::Subject {
                issuer_sha256,
                issuer,
                attribute,
                value,
                note,
            } => {
                let by = issuer_sha256.as_deref().map_or_else(
                    || format!("issuer {:?}", issuer.as_deref().unwrap_or("")),
                    |f| format!("issuer_sha256 {f}"),
                );
                outln!(
                    "  subject {}={value:?} {by}{}",
                    attribute.as_str(),
                    note.as_deref()
                        .map(|n| format!("  # {n}"))
                        .unwrap_or_default()
                );
            }
        }
    }
}

async fn list(a: ListArgs) -> CmdResult {
    let store = open(&a.config).await?;
    let entries = store.registry_list().await?;
    if a.json {
        let items: Vec<_> = entries.iter().map(entry_json).collect();
        outln!("{}", serde_json::json!({ "items": items }));
    } else if entries.is_empty() {
        outln!("the registry is empty");
    } else {
        for e in &entries {
            print_entry(e);
        }
    }
    Ok(())
}

async fn show(a: ShowArgs) -> CmdResult {
    let store = open(&a.config).await?;
    let Some(e) = store.registry_entry(a.code.trim()).await? else {
        return Err(not_in_registry(&a.code));
    };
    if a.json {
        outln!("{}", entry_json(&e));
    } else {
        print_entry(&e);
    }
    Ok(())
}

fn not_in_registry(code: &str) -> Failure {
    Failure::Refused(Error::store(
        Code::NotFound,
        format!("{} has no entry in the agency registry", code.trim()),
    ))
}

impl RuleArgs {
    /// The rules these options give for agency `code` (certificate files read and checked to
    /// name `code`); refused when there are none, naming `command`.
    pub(crate) fn rules(&self, code: &str, command: &str) -> Result<Vec<Rule>, Failure> {
        let a = self;
        let code = code.trim();
        let note = a.note.clone();
        let mut new_rules = Vec::new();
        for c in &a.certs {
            let path = c.display().to_string();
            new_rules.push(certificate_rule(
                Path::new("."),
                &path,
                code,
                "--cert",
                note.clone(),
            )?);
        }
        for f in &a.fingerprints {
            new_rules.push(Rule::Fingerprint {
                sha256: f.clone(),
                note: note.clone(),
            });
        }
        if let (Some(attr), Some(value)) = (&a.subject_attribute, &a.subject_value) {
            let attribute = Attribute::parse(attr).ok_or_else(|| {
                Failure::Refused(
                    lienthong::error::FormatError::invalid(
                        "--subject-attribute",
                        format!("{attr:?}: expected serialNumber, O, OU or CN"),
                    )
                    .into(),
                )
            })?;
            let issuer_sha256 = match (&a.issuer_cert, &a.issuer_sha256) {
                (Some(p), _) => {
                    let der =
                        certificate_der(Path::new("."), &p.display().to_string(), "--issuer-cert")?;
                    Some(hex::encode(aws_lc_rs::digest::digest(
                        &aws_lc_rs::digest::SHA256,
                        &der,
                    )))
                }
                (None, f) => f.clone(),
            };
            new_rules.push(Rule::Subject {
                issuer_sha256,
                issuer: a.issuer.clone(),
                attribute,
                value: value.clone(),
                note: note.clone(),
            });
        }
        if new_rules.is_empty() {
            return Err(Failure::Refused(
                lienthong::error::FormatError::invalid(
                    command,
                    "give --cert, --fingerprint or a subject rule (--subject-attribute, --subject-value \
                     and an issuer)",
                )
                .into(),
            ));
        }
        Ok(new_rules)
    }
}

async fn add(a: AddArgs) -> CmdResult {
    let actor = actor(&a.actor)?;
    let code = a.code.trim().to_owned();
    let new_rules = a.rules.rules(&code, "registry add")?;
    let store = open(&a.config).await?;
    let existing = store.registry_entry(&code).await?;
    let (name, mut rules) = match existing {
        Some(e) => (a.name.clone().unwrap_or(e.name), e.rules),
        None => (a.name.clone().unwrap_or_default(), Vec::new()),
    };
    rules.extend(new_rules);
    let (entry, created) = store
        .registry_set(NewRegistryEntry { code, name, rules }, &actor, now_ms())
        .await?;
    outln!(
        "{} {}: {} rule(s)",
        if created { "added" } else { "updated" },
        entry.code,
        entry.rules.len()
    );
    Ok(())
}

async fn remove(a: RemoveArgs) -> CmdResult {
    let actor = actor(&a.actor)?;
    let code = a.code.trim().to_owned();
    let store = open(&a.config).await?;
    let Some(fp) = &a.fingerprint else {
        store.registry_remove(&code, &actor, now_ms()).await?;
        outln!("removed {code}");
        return Ok(());
    };
    let fp = normalise_fingerprint(fp).ok_or_else(|| {
        Failure::Refused(
            lienthong::error::FormatError::invalid(
                "--fingerprint",
                format!("{fp:?} is not a SHA-256 fingerprint (64 hex digits)"),
            )
            .into(),
        )
    })?;
    let Some(e) = store.registry_entry(&code).await? else {
        return Err(not_in_registry(&code));
    };
    let before = e.rules.len();
    let rules: Vec<Rule> = e
        .rules
        .into_iter()
        .filter(|r| r.fingerprint() != Some(fp.as_str()))
        .collect();
    if rules.len() == before {
        return Err(Failure::Refused(Error::store(
            Code::NotFound,
            format!("{code}: no rule for certificate {fp}"),
        )));
    }
    if rules.is_empty() {
        store.registry_remove(&code, &actor, now_ms()).await?;
        outln!("removed {code} (its last rule)");
    } else {
        store
            .registry_set(
                NewRegistryEntry {
                    code: code.clone(),
                    name: e.name,
                    rules,
                },
                &actor,
                now_ms(),
            )
            .await?;
        outln!("removed certificate {fp} from {code}");
    }
    Ok(())
}

async fn import(a: ImportArgs) -> CmdResult {
    let actor = actor(&a.actor)?;
    let entries = read_import(&a.file)?;
    let store = open(&a.config).await?;
    let n = entries.len();
    let o = store
        .registry_import(entries, a.replace_all, &actor, now_ms())
        .await?;
    outln!(
        "imported {n} agencies: {} added, {} replaced, {} removed",
        o.added,
        o.replaced,
        o.removed
    );
    Ok(())
}
