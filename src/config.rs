//! The node's configuration: one TOML file (every key, documented: `examples/two-nodes/gialai.toml`
//! and the packaged `packaging/lienthong.toml`; `config/example_tests.rs` keeps them complete).
//!
//! Secrets never have to sit in the file: any string value may be written `"env:NAME"` and is
//! then read from the environment variable `NAME` at load time (a missing variable is an error,
//! never an empty secret). Clerk API tokens are stored only as their SHA-256 (tokens are 256-bit
//! random strings, so a fast hash is enough; see [`hash_token`]).
//!
//! Loading validates everything it can without touching the network: agency codes, that every key
//! matches its certificate, that peers do not claim this node's own agencies, that durations
//! parse. A node that starts has a configuration that makes sense.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use crate::Error;
use crate::edxml::xml::Limits;
use crate::edxml::{OrganId, Organization};
use crate::error::{Code, FormatError};
use crate::pki::RevocationPolicy;
use expect::{
    AddressKind, CodeKind, DurationValue, FingerprintKind, Kind, List, PathKind, StoreKind, Tables,
    Text, UrlKind, Whole,
};

mod console;
mod expect;
mod files;
mod mail;
mod span;

pub use mail::{
    ImapConfig, MailConfig, MailLimits, MailRoute, MailTls, NotifyConfig, NotifyEvent, Secret,
    SmtpConfig,
};

pub use console::{ConsoleConfig, LocalAccount, OidcConfig, Role};
pub use span::Source;

/// The whole configuration, as loaded and checked.
#[derive(Debug, Clone)]
pub struct Config {
    pub node: NodeSection,
    pub agencies: Vec<AgencyConfig>,
    /// Operator tokens for the admin API (list, retry and cancel deliveries), stored hashed.
    pub admin_tokens: Vec<TokenConfig>,
    pub peers: Vec<PeerConfig>,
    /// The node's TLS identity for the mutual-TLS peer endpoint and for pushing to peers
    /// (`[tls]`); required unless `node.dev_plain_http`.
    pub tls: Option<TlsConfig>,
    pub retry: RetryPolicy,
    pub limits: Limits,
    /// Revocation checking of received packages (`[revocation]`).
    pub revocation: RevocationConfig,
    /// How the two listeners hold connections and wait for requests (`[http]`).
    pub http: HttpConfig,
    /// The mail bridge (`[mail]`), when it is on.
    pub mail: Option<MailConfig>,
    /// The web console (`[console]`), when it is on.
    pub console: Option<ConsoleConfig>,
    /// The folder relative paths in the file are resolved against (the file's folder).
    pub base_dir: PathBuf,
    /// The text it was read from, kept so that a problem found later (a port that is taken)
    /// is reported at its key's line and column like the ones found while loading.
    source: Option<Arc<Source>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, expecting = "the [node] table")]
pub struct NodeSection {
    /// A short name for logs and metrics, e.g. `gialai`.
    pub name: String,
    /// Where the node listens for the clerk API, the admin API and operations: plain HTTP, meant
    /// to sit behind the province's reverse proxy. (The peer endpoint is here too only under
    /// `dev_plain_http`.)
    #[serde(deserialize_with = "deserialize_text::<AddressKind, _>")]
    pub listen: String,
    /// Where the node serves the peer endpoint over mutual TLS (`[tls]`); required unless
    /// `dev_plain_http`.
    #[serde(default, deserialize_with = "deserialize_some_text::<AddressKind, _>")]
    pub peer_listen: Option<String>,
    /// DEVELOPMENT ONLY: nodes talk plain HTTP (`http://` peer URLs allowed, the peer endpoint is
    /// served on `listen` and trusts the `X-Lienthong-Peer` header). Logged loudly at start.
    #[serde(default)]
    pub dev_plain_http: bool,
    /// The store URL, e.g. `sqlite://data/lienthong.db` (relative to the config file).
    #[serde(deserialize_with = "deserialize_text::<StoreKind, _>")]
    pub store: String,
    /// Trust anchors for signers: PEM files or folders.
    #[serde(deserialize_with = "deserialize_paths")]
    pub trust: Vec<PathBuf>,
    /// Intermediate CA certificates (PEM files) used to build signers' paths when a package does
    /// not carry them; never trusted by themselves.
    #[serde(default, deserialize_with = "deserialize_paths")]
    pub intermediates: Vec<PathBuf>,
    /// Accept legacy RSA-SHA1 signatures and SHA-1 chains from peers.
    #[serde(default)]
    pub allow_sha1: bool,
    /// After SIGTERM, how long `serve` lets the requests in flight finish before it stops
    /// anyway: a client that stops reading a large download would otherwise keep the node
    /// alive until it is killed. Nothing unacknowledged is lost either way (an answer is sent
    /// only after its commit). Default `30s`.
    #[serde(
        default = "default_shutdown_grace",
        deserialize_with = "deserialize_duration"
    )]
    pub shutdown_grace: Duration,
    /// How this replica uses a `postgres://` store (`[node.postgres]`); not read for SQLite.
    #[serde(default)]
    pub postgres: PostgresSection,
}

fn default_shutdown_grace() -> Duration {
    Duration::from_secs(30)
}

/// `[node.postgres]`: one replica's use of a PostgreSQL store. The URL (`node.store`) says
/// which database; several replicas with the same URL share it. The password may be in the URL
/// (write it `"env:NAME"`) or in `PGPASSWORD`; it is never logged.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, expecting = "the [node.postgres] table")]
pub struct PostgresSection {
    /// Connections of this replica's pool (requests, the group writer, the queue listener).
    /// Every replica's pool counts against the server's `max_connections`. Default 16.
    #[serde(
        default = "default_pg_connections",
        deserialize_with = "deserialize_connections"
    )]
    pub max_connections: u32,
    /// A statement that runs longer is ended by the server (`STORE_UNAVAILABLE`, retried by
    /// the client): a stuck lock never holds a request for ever. Default `30s`.
    #[serde(
        default = "default_pg_statement_timeout",
        deserialize_with = "deserialize_duration"
    )]
    pub statement_timeout: Duration,
    /// How long a request waits for a connection (a new one included, so a database that does
    /// not answer is noticed in this time: `/readyz` then says 503). Default `2s`.
    #[serde(
        default = "default_pg_acquire_timeout",
        deserialize_with = "deserialize_duration"
    )]
    pub acquire_timeout: Duration,
    /// This replica's own folder for local copies of large packages it streams (relative to
    /// the configuration file; never shared between replicas). Default: under the system's
    /// temporary folder.
    #[serde(default, deserialize_with = "deserialize_some_path")]
    pub cache_dir: Option<PathBuf>,
}

impl Default for PostgresSection {
    fn default() -> Self {
        PostgresSection {
            max_connections: default_pg_connections(),
            statement_timeout: default_pg_statement_timeout(),
            acquire_timeout: default_pg_acquire_timeout(),
            cache_dir: None,
        }
    }
}

fn default_pg_connections() -> u32 {
    16
}

fn default_pg_statement_timeout() -> Duration {
    Duration::from_secs(30)
}

fn default_pg_acquire_timeout() -> Duration {
    Duration::from_secs(2)
}

/// A pool size: a whole number (at least 2 — the group writer holds one connection — checked
/// at load, so the key is named).
fn deserialize_connections<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    Ok(Whole::<u32>::deserialize(d)?.0)
}

/// An optional path, refused in the operator's terms when it is not one.
fn deserialize_some_path<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<PathBuf>, D::Error> {
    deserialize_text::<PathKind, D>(d).map(|p| Some(PathBuf::from(p)))
}

/// A duration written as in the rest of the file (`30s`, `500ms`, `2m`).
fn deserialize_duration<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    DurationValue::deserialize(d).map(|v| v.0)
}

/// A string of kind `K`, refused in the operator's terms when it is not one.
fn deserialize_text<'de, K: Kind, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Text::<K>::deserialize(d).map(|t| t.0)
}

/// [`deserialize_text`] for an optional key.
fn deserialize_some_text<'de, K: Kind, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<String>, D::Error> {
    deserialize_text::<K, D>(d).map(Some)
}

/// A list of paths, refused in the operator's terms when it is not one (see `expect.rs`).
fn deserialize_paths<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<PathBuf>, D::Error> {
    List::<PathKind>::deserialize(d).map(|l| l.iter().map(PathBuf::from).collect())
}

/// An agency this node serves: it signs for it and holds its inbox.
#[derive(Debug, Clone)]
pub struct AgencyConfig {
    pub organization: Organization,
    /// Organisation abbreviation used in notations (`STTTT` in `125/STTTT-CĐS`).
    pub abbreviation: Option<String>,
    pub key: PathBuf,
    pub cert: PathBuf,
    pub chain: Option<PathBuf>,
    /// The official mailbox (`…@gialai.gov.vn`), for the mail bridge.
    pub mail: Option<String>,
    pub tokens: Vec<TokenConfig>,
}

/// A clerk API token of one agency, stored hashed.
#[derive(Debug, Clone)]
pub struct TokenConfig {
    /// Who holds it (e.g. `idesk`, `van-thu-1`); recorded as the actor in the audit chain.
    pub name: String,
    /// SHA-256 of the token.
    pub sha256: [u8; 32],
}

/// Another node, and the agency codes it may speak for.
#[derive(Debug, Clone)]
pub struct PeerConfig {
    pub name: String,
    /// Base URL of its peer endpoint, e.g. `https://lienthong.nghean.gov.vn:8440`.
    pub url: String,
    /// Codes it serves: each entry covers that code and every code under it.
    pub serves: Vec<OrganId>,
    /// How its TLS certificate (server certificate when we push, client certificate when it
    /// pushes) is recognised.
    pub tls: PeerTls,
    /// What the XML signature of a package it pushes must be (`xml_signature`).
    pub xml_signature: XmlSignature,
}

/// What a peer's packages must carry as their XML signature (`[[peer]] xml_signature`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum XmlSignature {
    /// `"required"` (the default): a valid signature by a trusted signer bound to the sender,
    /// as for every package.
    #[default]
    Required,
    /// `"channel"`: the peer's mutual-TLS connection authenticates what it sends, so a package
    /// whose signature is absent or a placeholder (no certificate that parses — what SDK-built
    /// traffic and the national platform's own carry) is accepted as authenticated by this
    /// channel, and recorded so (never as signed). A package that carries a real certificate
    /// is verified as from any peer, and refused if that fails: a real signature that does not
    /// check out is tampering, not a placeholder. See `node::ingest`.
    Channel,
}

impl XmlSignature {
    /// The configuration spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            XmlSignature::Required => "required",
            XmlSignature::Channel => "channel",
        }
    }
}

/// How a peer's certificate is recognised. Every check that is configured must pass: the
/// certificate chains to one of `ca` (with the TLS EKU of its role), its SHA-256 is one of
/// `pin_sha256`, and it names `name` (a DNS subjectAltName). At least `ca` or a pin is required,
/// and `ca` alone needs `name` (otherwise any node of that CA could speak for this peer).
#[derive(Debug, Clone, Default)]
pub struct PeerTls {
    /// PEM files of the CA certificates its certificate must chain to.
    pub ca: Vec<PathBuf>,
    /// SHA-256 fingerprints of the DER certificate it must present (one of them).
    pub pin_sha256: Vec<[u8; 32]>,
    /// The DNS name its certificate must carry as a subjectAltName.
    pub name: Option<String>,
}

/// The node's own TLS identity (`[tls]`): presented as the server certificate on `peer_listen`
/// and as the client certificate when pushing to peers. Must have EKU serverAuth and clientAuth.
#[derive(Debug, Clone)]
pub struct TlsConfig {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// Intermediate CA certificates sent after `cert`.
    pub chain: Option<PathBuf>,
    /// How long a client may take to complete the TLS handshake.
    pub handshake_timeout: Duration,
}

impl PeerConfig {
    /// Does this peer serve `code`?
    pub fn serves(&self, code: &OrganId) -> bool {
        self.serves.iter().any(|s| code.is_within(s))
    }
}

/// How hard the outbox tries before handing a delivery to an operator.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    /// After this long since the first attempt a delivery is `failed` and waits for an operator.
    pub give_up_after: Duration,
    /// Consecutive failures that open a peer's circuit breaker.
    pub breaker_failures: u32,
    /// How long an open breaker waits before letting one attempt through.
    pub breaker_cooldown: Duration,
    /// How long one push to a peer may take.
    pub push_timeout: Duration,
    /// How long a claimed delivery stays with the worker that claimed it. After a crash its
    /// deliveries are claimable again once this runs out, so it bounds the delay a crash adds;
    /// it must exceed `push_timeout`.
    pub lease: Duration,
    /// Deliveries in flight at once. Each waits mostly on the peer (its verification, signing
    /// and commit), so more than the cores keeps the pipeline full.
    pub in_flight: u32,
    /// Package bytes the deliveries in flight may hold in memory at once; a package larger than
    /// this is sent alone.
    pub in_flight_bytes: u64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            initial_backoff: Duration::from_secs(2),
            max_backoff: Duration::from_secs(600),
            give_up_after: Duration::from_secs(72 * 3600),
            breaker_failures: 5,
            breaker_cooldown: Duration::from_secs(60),
            push_timeout: Duration::from_secs(30),
            lease: Duration::from_secs(60),
            in_flight: 128,
            in_flight_bytes: 64 * 1024 * 1024,
        }
    }
}

/// How the clerk/admin listener (`listen`) and the peer listener (`peer_listen`) hold
/// connections (`[http]`). A stranger can open connections and send nothing, or a byte at a
/// time, for free: the timeouts bound how long one such connection lasts and the caps how many
/// the node holds, while a stale connection that has not yet delivered a whole request is
/// evicted to make room for a newcomer from another address rather than the newcomer being
/// refused (see `http::admission`).
#[derive(Debug, Clone, PartialEq)]
pub struct HttpConfig {
    /// How long a request head may take to arrive (from the connection's start, its TLS
    /// handshake done, or the end of the previous response). Default `30s`.
    pub header_timeout: Duration,
    /// How long a request body may take to arrive, from its head. Default `60s`: twice a
    /// peer's default `push_timeout`, and a 256 MiB package at 4.5 MB/s.
    pub body_timeout: Duration,
    /// Connections the clerk/admin listener holds at once. Default 1024.
    pub max_connections: usize,
    /// …of which from one address. Default 1024: behind the reverse proxy every clerk has the
    /// proxy's address.
    pub max_connections_per_source: usize,
    /// Connections the peer listener holds at once (in their TLS handshake or open). Default 512.
    pub peer_max_connections: usize,
    /// …of which from one address. Default 256: room for a peer's `retry.in_flight` (128 by
    /// default) pushes at once, and no one address can hold more than half the listener.
    pub peer_max_connections_per_source: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            header_timeout: Duration::from_secs(30),
            body_timeout: Duration::from_secs(60),
            max_connections: 1024,
            max_connections_per_source: 1024,
            peer_max_connections: 512,
            peer_max_connections_per_source: 256,
        }
    }
}

/// Revocation checking of received packages: a default policy, per-anchor overrides, CRL files
/// and an optional OCSP responder used instead of the ones certificates name.
#[derive(Debug, Clone)]
pub struct RevocationConfig {
    /// The policy for paths ending at an anchor without an override. Default `prefer`: refuse
    /// what is revoked, accept (flagged) what cannot be checked.
    pub policy: RevocationPolicy,
    /// Overrides by anchor subject: RFC 4514 text as `lienthong inspect` prints it
    /// (`CN=…, O=…, C=VN`), or the same RDNs in the certificate's order (`C=VN, O=…, CN=…`).
    pub anchors: Vec<AnchorPolicy>,
    /// CRL files (PEM or DER) checked besides the distribution points.
    pub crl_files: Vec<PathBuf>,
    pub ocsp_responder: Option<String>,
    /// Timeout of one fetch (OCSP or CRL).
    pub timeout: Duration,
    /// Oldest `thisUpdate` of a fetched OCSP response that does not echo the request's nonce.
    pub ocsp_max_age: Duration,
    /// How often cached CRLs are refreshed ahead of their nextUpdate.
    pub refresh_every: Duration,
}

impl Default for RevocationConfig {
    fn default() -> Self {
        RevocationConfig {
            policy: RevocationPolicy::Prefer,
            anchors: Vec::new(),
            crl_files: Vec::new(),
            ocsp_responder: None,
            timeout: Duration::from_secs(10),
            ocsp_max_age: crate::pki::status::OCSP_UNBOUND_MAX_AGE,
            refresh_every: Duration::from_secs(15 * 60),
        }
    }
}

impl RevocationConfig {
    /// The policy for a path ending at the anchor `anchor_subject` (RFC 4514 text): a
    /// configured subject matches in either RDN order ([`crate::pki::same_name`]).
    pub fn policy_for(&self, anchor_subject: &str) -> RevocationPolicy {
        self.anchors
            .iter()
            .find(|a| crate::pki::same_name(&a.subject, anchor_subject))
            .map_or(self.policy, |a| a.policy)
    }
}

/// A per-anchor revocation policy.
#[derive(Debug, Clone)]
pub struct AnchorPolicy {
    pub subject: String,
    pub policy: RevocationPolicy,
}

// --- the file as written -----------------------------------------------------------------------

// Values are held as the types of `expect.rs`, so that a value of the wrong type is refused
// saying what to write (`a duration such as "1m"`), never a Rust type name.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    node: NodeSection,
    #[serde(default, rename = "agency")]
    agencies: Tables<AgencyFile>,
    #[serde(default, rename = "admin")]
    admins: Tables<TokenFile>,
    #[serde(default, rename = "peer")]
    peers: Tables<PeerFile>,
    tls: Option<TlsFile>,
    #[serde(default)]
    retry: RetryFile,
    #[serde(default)]
    limits: LimitsFile,
    #[serde(default)]
    revocation: RevocationFile,
    #[serde(default)]
    http: HttpFile,
    mail: Option<mail::MailFile>,
    console: Option<console::ConsoleFile>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "the [http] table")]
struct HttpFile {
    header_timeout: Option<DurationValue>,
    body_timeout: Option<DurationValue>,
    max_connections: Option<Whole<usize>>,
    max_connections_per_source: Option<Whole<usize>>,
    peer_max_connections: Option<Whole<usize>>,
    peer_max_connections_per_source: Option<Whole<usize>>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "the [revocation] table")]
struct RevocationFile {
    policy: Option<String>,
    #[serde(default)]
    crl_files: List<PathKind>,
    ocsp_responder: Option<Text<UrlKind>>,
    timeout: Option<DurationValue>,
    ocsp_max_age: Option<DurationValue>,
    refresh_every: Option<DurationValue>,
    #[serde(default, rename = "anchor")]
    anchors: Tables<AnchorFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a [[revocation.anchor]] table")]
struct AnchorFile {
    subject: String,
    policy: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "an [[agency]] table")]
struct AgencyFile {
    code: Text<CodeKind>,
    name: String,
    parent: Option<String>,
    abbreviation: Option<String>,
    address: Option<String>,
    email: Option<String>,
    telephone: Option<String>,
    website: Option<String>,
    key: Text<PathKind>,
    cert: Text<PathKind>,
    chain: Option<Text<PathKind>>,
    mail: Option<String>,
    #[serde(default, rename = "token")]
    tokens: Tables<TokenFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a token table (name, sha256)")]
struct TokenFile {
    name: String,
    sha256: Text<FingerprintKind>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a [[peer]] table")]
struct PeerFile {
    name: String,
    url: Text<UrlKind>,
    serves: List<CodeKind>,
    #[serde(default)]
    ca: List<PathKind>,
    #[serde(default)]
    pin_sha256: List<FingerprintKind>,
    tls_name: Option<String>,
    xml_signature: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "the [tls] table")]
struct TlsFile {
    cert: Text<PathKind>,
    key: Text<PathKind>,
    chain: Option<Text<PathKind>>,
    handshake_timeout: Option<DurationValue>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "the [retry] table")]
struct RetryFile {
    initial_backoff: Option<DurationValue>,
    max_backoff: Option<DurationValue>,
    give_up_after: Option<DurationValue>,
    breaker_failures: Option<Whole<u32>>,
    breaker_cooldown: Option<DurationValue>,
    push_timeout: Option<DurationValue>,
    lease: Option<DurationValue>,
    in_flight: Option<Whole<u32>>,
    in_flight_mb: Option<Whole<u64>>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "the [limits] table")]
struct LimitsFile {
    max_package_mb: Option<Whole<usize>>,
    max_attachments: Option<Whole<usize>>,
    max_attachment_mb: Option<Whole<u64>>,
}

fn bad(path: impl Into<String>, problem: impl Into<String>) -> Error {
    FormatError::new(Code::ConfigInvalid, path, problem).into()
}

impl Config {
    /// Reads and checks the file at `path` and every file it names (see [`Config::check_files`]).
    /// Every problem is `CONFIG_INVALID`, reported as `FILE:LINE:COL: KEY: problem`.
    pub fn load(path: &Path) -> Result<Config, Error> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| {
            let problem = match e.kind() {
                std::io::ErrorKind::NotFound => "no such file".to_owned(),
                std::io::ErrorKind::PermissionDenied => "permission denied".to_owned(),
                _ => format!("cannot read: {e}"),
            };
            bad(name.clone(), problem)
        })?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let config = Config::parse(&text, &name, &base, &|name| std::env::var(name).ok())?;
        config.check_files()?;
        Ok(config)
    }

    /// Parses `text`, resolving relative paths against `base_dir` and `env:` values with `env`.
    /// Touches no file: problems are reported as in the file `<config>`.
    pub fn from_toml(
        text: &str,
        base_dir: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, Error> {
        Config::parse(text, "<config>", base_dir, env)
    }

    /// [`Config::from_toml`], reporting problems as in the file `name` (the path as given).
    pub fn parse(
        text: &str,
        name: &str,
        base_dir: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, Error> {
        let source = Arc::new(Source {
            name: name.to_owned(),
            text: text.to_owned(),
        });
        let file: File = toml::from_str(text).map_err(|e| toml_problem(&source, &e))?;
        let mut config = Config::build(file, base_dir, env).map_err(|e| relocate(&source, e))?;
        config.source = Some(source);
        Ok(config)
    }

    /// Checks every file the configuration names: there, readable, and holding what its key
    /// says (certificates parse, each agency's key belongs to its certificate, the TLS key to
    /// the TLS certificate, CRLs parse, the store's folder exists). Run at load so that a node
    /// that starts has every file it needs, and a problem names its key.
    pub fn check_files(&self) -> Result<(), Error> {
        files::check(self).map_err(|(key, problem)| self.problem(&key, problem))
    }

    /// A `CONFIG_INVALID` about `key` (a path such as `node.listen`, `agency[0].cert`,
    /// `peer[1].ca[0]`), placed at that key's value in the file: `FILE:LINE:COL: KEY: problem`.
    pub fn problem(&self, key: &str, problem: impl Into<String>) -> Error {
        let at = match &self.source {
            Some(s) => s.locate(key),
            None => key.to_owned(),
        };
        bad(at, problem)
    }

    fn build(
        file: File,
        base_dir: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, Error> {
        let secret = |path: &str, v: &str| -> Result<String, Error> {
            match v.strip_prefix("env:") {
                Some(name) => env(name)
                    .ok_or_else(|| bad(path, format!("environment variable {name} is not set"))),
                None => Ok(v.to_owned()),
            }
        };
        let resolve = |p: &str| -> PathBuf {
            let p = PathBuf::from(p);
            if p.is_absolute() { p } else { base_dir.join(p) }
        };
        let token = |path: &str, t: &TokenFile| -> Result<TokenConfig, Error> {
            let hexed = secret(path, t.sha256.as_str())?;
            let bytes = hex::decode(hexed.trim()).map_err(|_| bad(path, "not hexadecimal"))?;
            let sha256: [u8; 32] = bytes
                .try_into()
                .map_err(|_| bad(path, "not 32 bytes (64 hex digits)"))?;
            Ok(TokenConfig {
                name: t.name.clone(),
                sha256,
            })
        };

        let mut agencies = Vec::new();
        for (i, a) in file.agencies.iter().enumerate() {
            let at = format!("agency[{i}]");
            let code = OrganId::parse_strict(a.code.as_str())
                .map_err(|e| bad(format!("{at}.code"), e.problem))?;
            if agencies
                .iter()
                .any(|x: &AgencyConfig| x.organization.organ_id == code)
            {
                return Err(bad(
                    format!("{at}.code"),
                    format!("{code} is configured twice"),
                ));
            }
            let mut org = Organization::new(code, a.name.clone());
            org.organization_in_charge = a.parent.clone();
            org.organ_add = a.address.clone();
            org.email = a.email.clone();
            org.telephone = a.telephone.clone();
            org.website = a.website.clone();
            let mut tokens = Vec::new();
            for (j, t) in a.tokens.iter().enumerate() {
                tokens.push(token(&format!("{at}.token[{j}].sha256"), t)?);
            }
            agencies.push(AgencyConfig {
                organization: org,
                abbreviation: a.abbreviation.clone(),
                key: resolve(&secret(&format!("{at}.key"), a.key.as_str())?),
                cert: resolve(a.cert.as_str()),
                chain: a.chain.as_ref().map(|c| resolve(c.as_str())),
                mail: match &a.mail {
                    Some(m) => Some(
                        crate::mail::address::Address::parse(m)
                            .map_err(|e| bad(format!("{at}.mail"), e.message))?
                            .as_str()
                            .to_owned(),
                    ),
                    None => None,
                },
                tokens,
            });
        }

        let mut admin_tokens = Vec::new();
        for (i, t) in file.admins.iter().enumerate() {
            admin_tokens.push(token(&format!("admin[{i}].sha256"), t)?);
        }

        let mut peers = Vec::new();
        for (i, p) in file.peers.iter().enumerate() {
            let at = format!("peer[{i}]");
            let mut serves = Vec::new();
            for (j, s) in p.serves.iter().enumerate() {
                let code = OrganId::parse_lenient(s)
                    .map_err(|e| bad(format!("{at}.serves[{j}]"), e.problem))?;
                if let Some(a) = agencies
                    .iter()
                    .find(|a| a.organization.organ_id.is_within(&code))
                {
                    return Err(bad(
                        format!("{at}.serves[{j}]"),
                        format!(
                            "{s} covers {}, which this node serves itself",
                            a.organization.organ_id
                        ),
                    ));
                }
                serves.push(code);
            }
            let url = p.url.as_str();
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                return Err(bad(format!("{at}.url"), "must be an http(s) URL"));
            }
            if url.starts_with("http://") && !file.node.dev_plain_http {
                return Err(bad(
                    format!("{at}.url"),
                    "plain http:// between nodes needs node.dev_plain_http = true (development \
                     only); use https:// with mutual TLS",
                ));
            }
            let mut pin_sha256 = Vec::new();
            for (j, pin) in p.pin_sha256.iter().enumerate() {
                let clean: String = pin.chars().filter(|c| *c != ':').collect();
                let bytes = hex::decode(clean.trim())
                    .map_err(|_| bad(format!("{at}.pin_sha256[{j}]"), "not hexadecimal"))?;
                pin_sha256.push(bytes.try_into().map_err(|_| {
                    bad(
                        format!("{at}.pin_sha256[{j}]"),
                        "not a SHA-256 (64 hex digits)",
                    )
                })?);
            }
            let tls = PeerTls {
                ca: p.ca.iter().map(&resolve).collect(),
                pin_sha256,
                name: p.tls_name.clone(),
            };
            if url.starts_with("https://") || !file.node.dev_plain_http {
                if tls.ca.is_empty() && tls.pin_sha256.is_empty() {
                    return Err(bad(
                        at.clone(),
                        "needs ca = [...] and/or pin_sha256 = [...] to recognise its certificate",
                    ));
                }
                if tls.pin_sha256.is_empty() && tls.name.is_none() {
                    return Err(bad(
                        format!("{at}.tls_name"),
                        "missing: with ca alone, the name its certificate must carry is required",
                    ));
                }
            }
            let xml_signature = match p.xml_signature.as_deref() {
                None | Some("required") => XmlSignature::Required,
                Some("channel") => XmlSignature::Channel,
                Some(other) => {
                    return Err(bad(
                        format!("{at}.xml_signature"),
                        format!("{other:?} is not one of \"required\", \"channel\""),
                    ));
                }
            };
            // The channel is the authentication: only a peer identified by its client
            // certificate in the mutual-TLS handshake can be one (under dev_plain_http the plain
            // listener takes the peer's name from a header).
            if xml_signature == XmlSignature::Channel && file.node.dev_plain_http {
                return Err(bad(
                    format!("{at}.xml_signature"),
                    "\"channel\" trusts the peer's mutual-TLS connection, which \
                     node.dev_plain_http does not require",
                ));
            }
            if peers.iter().any(|x: &PeerConfig| x.name == p.name) {
                return Err(bad(
                    format!("{at}.name"),
                    format!("{} is configured twice", p.name),
                ));
            }
            peers.push(PeerConfig {
                name: p.name.clone(),
                url: url.trim_end_matches('/').to_owned(),
                serves,
                tls,
                xml_signature,
            });
        }

        let d = RetryPolicy::default();
        let r = &file.retry;
        let dur = |v: Option<DurationValue>, default: Duration| v.map_or(default, |v| v.0);
        let retry = RetryPolicy {
            initial_backoff: dur(r.initial_backoff, d.initial_backoff),
            max_backoff: dur(r.max_backoff, d.max_backoff),
            give_up_after: dur(r.give_up_after, d.give_up_after),
            breaker_failures: r
                .breaker_failures
                .map_or(d.breaker_failures, |n| n.0)
                .max(1),
            breaker_cooldown: dur(r.breaker_cooldown, d.breaker_cooldown),
            push_timeout: dur(r.push_timeout, d.push_timeout),
            lease: dur(r.lease, d.lease),
            in_flight: match r.in_flight.map(|n| n.0) {
                None => d.in_flight,
                Some(n @ 1..=1000) => n,
                Some(n) => return Err(bad("retry.in_flight", format!("{n} is outside 1-1000"))),
            },
            in_flight_bytes: match r.in_flight_mb.map(|n| n.0) {
                None => d.in_flight_bytes,
                Some(mb @ 1..=65536) => mb * 1024 * 1024,
                Some(mb) => {
                    return Err(bad(
                        "retry.in_flight_mb",
                        format!("{mb} is outside 1-65536"),
                    ));
                }
            },
        };
        if retry.lease <= retry.push_timeout {
            return Err(bad("retry.lease", "must be longer than retry.push_timeout"));
        }

        let mut limits = Limits::default();
        if let Some(Whole(mb)) = file.limits.max_package_mb {
            limits.max_package_bytes = mb.saturating_mul(1024 * 1024);
        }
        if let Some(Whole(n)) = file.limits.max_attachments {
            limits.max_attachments = n;
        }
        if let Some(Whole(mb)) = file.limits.max_attachment_mb {
            limits.max_attachment_bytes = mb.saturating_mul(1024 * 1024);
            limits.max_total_attachment_bytes = limits
                .max_total_attachment_bytes
                .max(limits.max_attachment_bytes);
        }

        let tls = match &file.tls {
            Some(t) => Some(TlsConfig {
                cert: resolve(t.cert.as_str()),
                key: resolve(&secret("tls.key", t.key.as_str())?),
                chain: t.chain.as_ref().map(|c| resolve(c.as_str())),
                handshake_timeout: t.handshake_timeout.map_or(Duration::from_secs(10), |v| v.0),
            }),
            None => None,
        };
        // A node without peers has no peer endpoint to protect (and pushes nowhere).
        if !file.node.dev_plain_http && !peers.is_empty() {
            if tls.is_none() {
                return Err(bad(
                    "tls",
                    "missing: nodes talk mutual TLS (set node.dev_plain_http = true for plain \
                     HTTP, development only)",
                ));
            }
            if file.node.peer_listen.is_none() {
                return Err(bad(
                    "node.peer_listen",
                    "missing: the address of the mutual-TLS peer endpoint",
                ));
            }
        }
        let rf = &file.revocation;
        let dr = RevocationConfig::default();
        let policy = |at: &str, s: &str| -> Result<RevocationPolicy, Error> {
            s.parse().map_err(|e: String| bad(at, e))
        };
        let rdur = |v: Option<DurationValue>, default: Duration| v.map_or(default, |v| v.0);
        if let Some(u) = rf.ocsp_responder.as_ref().map(Text::as_str)
            && !(u.starts_with("https://") || u.starts_with("http://"))
        {
            return Err(bad("revocation.ocsp_responder", "must be an http(s) URL"));
        }
        let mut anchors = Vec::new();
        for (i, a) in rf.anchors.iter().enumerate() {
            if crate::pki::parse_name(&a.subject).is_none() {
                return Err(bad(
                    format!("revocation.anchor[{i}].subject"),
                    format!(
                        "{:?} is not a distinguished name (RFC 4514: `CN=…, O=…, C=VN`)",
                        a.subject
                    ),
                ));
            }
            anchors.push(AnchorPolicy {
                subject: a.subject.clone(),
                policy: policy(&format!("revocation.anchor[{i}].policy"), &a.policy)?,
            });
        }
        let revocation = RevocationConfig {
            policy: match &rf.policy {
                Some(p) => policy("revocation.policy", p)?,
                None => dr.policy,
            },
            anchors,
            crl_files: rf.crl_files.iter().map(&resolve).collect(),
            ocsp_responder: rf.ocsp_responder.as_ref().map(|u| u.0.clone()),
            timeout: rdur(rf.timeout, dr.timeout),
            ocsp_max_age: rdur(rf.ocsp_max_age, dr.ocsp_max_age),
            refresh_every: rdur(rf.refresh_every, dr.refresh_every).max(Duration::from_secs(1)),
        };

        let http = http_config(&file.http)?;

        let mail = match &file.mail {
            Some(m) => Some(mail::build(
                m,
                &mail::Context {
                    node: &file.node,
                    agencies: &agencies,
                    secret: &secret,
                    resolve: &resolve,
                },
            )?),
            None => None,
        };
        let console = match &file.console {
            Some(c) => Some(console::build(c, &agencies, &secret)?),
            None => None,
        };

        let mut node = file.node;
        node.trust = node
            .trust
            .iter()
            .map(|p| resolve(&p.to_string_lossy()))
            .collect();
        node.intermediates = node
            .intermediates
            .iter()
            .map(|p| resolve(&p.to_string_lossy()))
            .collect();
        if !(2..=10_000).contains(&node.postgres.max_connections) {
            return Err(bad(
                "node.postgres.max_connections",
                format!(
                    "{} is outside 2-10000 (the group writer holds one connection)",
                    node.postgres.max_connections
                ),
            ));
        }
        node.postgres.cache_dir = node
            .postgres
            .cache_dir
            .as_ref()
            .map(|p| resolve(&p.to_string_lossy()));
        if let Some(rest) = node.store.strip_prefix("sqlite://")
            && !rest.starts_with('/')
            && !rest.starts_with(':')
        {
            node.store = format!("sqlite://{}", base_dir.join(rest).display());
        }
        Ok(Config {
            node,
            agencies,
            admin_tokens,
            peers,
            tls,
            retry,
            limits,
            revocation,
            http,
            mail,
            console,
            base_dir: base_dir.to_path_buf(),
            source: None,
        })
    }

    /// How to open `node.store`: `[node.postgres]` for a PostgreSQL store, SQLite's defaults.
    pub fn store_options(&self) -> crate::store::StoreOptions {
        let pg = &self.node.postgres;
        crate::store::StoreOptions {
            sqlite: crate::store::SqliteOptions::default(),
            postgres: crate::store::PgOptions {
                max_connections: pg.max_connections,
                acquire_timeout: pg.acquire_timeout,
                statement_timeout: pg.statement_timeout,
                cache_dir: pg.cache_dir.clone(),
            },
        }
    }

    /// The agency this node serves with code `code`.
    pub fn agency(&self, code: &OrganId) -> Option<&AgencyConfig> {
        self.agencies
            .iter()
            .find(|a| &a.organization.organ_id == code)
    }
}

/// A `CONFIG_INVALID` found while building, placed in `source` (see `span.rs`).
fn relocate(source: &Source, e: Error) -> Error {
    match e {
        Error::Format(f) if f.code == Code::ConfigInvalid => bad(source.locate(&f.path), f.problem),
        other => other,
    }
}

/// toml's own error (syntax, a wrong type, an unknown key) in the same form: the position of
/// its span, the key there, the message, and for an unknown key the closest known one.
fn toml_problem(source: &Source, e: &toml::de::Error) -> Error {
    let at = match e.span() {
        Some(span) => source.locate_byte(span.start),
        None => source.name.clone(),
    };
    // serde's names for TOML's tables and arrays are a Rust programmer's; what it expected is
    // already in the operator's terms (`expect.rs`).
    let message = e
        .message()
        .trim_end()
        .replacen("invalid type: map,", "invalid type: table,", 1)
        .replacen("invalid type: sequence,", "invalid type: array,", 1);
    let problem = match did_you_mean(&message) {
        Some(known) => format!("{message} (did you mean `{known}`?)"),
        None => message,
    };
    bad(at, problem)
}

/// For serde's "unknown field `X`, expected one of `a`, `b`": the known key closest to `X`, if
/// one is close enough to be a typo.
fn did_you_mean(message: &str) -> Option<String> {
    let rest = message.strip_prefix("unknown field `")?;
    let (unknown, expected) = rest.split_once('`')?;
    expected
        .split('`')
        .skip(1)
        .step_by(2)
        .map(|known| (strsim::damerau_levenshtein(unknown, known), known))
        .filter(|(d, known)| *d <= (known.chars().count() / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, known)| known.to_owned())
}

/// The `[http]` table, checked: timeouts of at least 100 ms, caps of 1 to 65536 connections.
fn http_config(f: &HttpFile) -> Result<HttpConfig, Error> {
    let d = HttpConfig::default();
    let dur =
        |name: &str, v: Option<DurationValue>, default: Duration| -> Result<Duration, Error> {
            let at = format!("http.{name}");
            let got = v.map_or(default, |v| v.0);
            if got < Duration::from_millis(100) {
                return Err(bad(at, "must be at least 100ms"));
            }
            Ok(got)
        };
    let cap = |name: &str, v: Option<Whole<usize>>, default: usize| -> Result<usize, Error> {
        match v.map(|n| n.0) {
            None => Ok(default),
            Some(n @ 1..=65536) => Ok(n),
            Some(n) => Err(bad(
                format!("http.{name}"),
                format!("{n} is outside 1-65536"),
            )),
        }
    };
    Ok(HttpConfig {
        header_timeout: dur("header_timeout", f.header_timeout, d.header_timeout)?,
        body_timeout: dur("body_timeout", f.body_timeout, d.body_timeout)?,
        max_connections: cap("max_connections", f.max_connections, d.max_connections)?,
        max_connections_per_source: cap(
            "max_connections_per_source",
            f.max_connections_per_source,
            d.max_connections_per_source,
        )?,
        peer_max_connections: cap(
            "peer_max_connections",
            f.peer_max_connections,
            d.peer_max_connections,
        )?,
        peer_max_connections_per_source: cap(
            "peer_max_connections_per_source",
            f.peer_max_connections_per_source,
            d.peer_max_connections_per_source,
        )?,
    })
}

/// SHA-256 of a clerk token, as stored in the configuration.
pub fn hash_token(token: &str) -> [u8; 32] {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// `500ms`, `30s`, `10m`, `72h`, `7d`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: u64 = n
        .parse()
        .map_err(|_| format!("{s:?}: expected a number and a unit, e.g. 30s"))?;
    let ms = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(format!("{s:?}: unit must be ms, s, m, h or d")),
    };
    Ok(Duration::from_millis(n.saturating_mul(ms)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"
[node]
name = "gialai"
listen = "127.0.0.1:8440"
store = "sqlite://data/node.db"
dev_plain_http = true
trust = ["certs/root.pem"]

[[agency]]
code = "000.00.05.H21"
name = "Sở Thông tin và Truyền thông tỉnh Gia Lai"
parent = "Ủy ban nhân dân tỉnh Gia Lai"
abbreviation = "STTTT"
key = "env:STTTT_KEY"
cert = "stttt.cert.pem"

[[agency.token]]
name = "idesk"
sha256 = "env:IDESK_TOKEN_SHA256"

[[admin]]
name = "operator"
sha256 = "env:IDESK_TOKEN_SHA256"

[[peer]]
name = "nghean"
url = "http://127.0.0.1:8441/"
serves = ["000.00.00.H41"]

[retry]
initial_backoff = "500ms"
give_up_after = "2h"
"#;

    fn env(name: &str) -> Option<String> {
        match name {
            "STTTT_KEY" => Some("/secret/stttt.key.pem".into()),
            "IDESK_TOKEN_SHA256" => Some(hex::encode(hash_token("s3cret"))),
            _ => None,
        }
    }

    #[test]
    fn loads_resolves_and_reads_secrets_from_the_environment() {
        let c = Config::from_toml(SAMPLE, Path::new("/etc/lienthong"), &env).unwrap();
        assert_eq!(c.node.store, "sqlite:///etc/lienthong/data/node.db");
        assert_eq!(
            c.node.trust,
            vec![PathBuf::from("/etc/lienthong/certs/root.pem")]
        );
        let a = &c.agencies[0];
        assert_eq!(a.key, PathBuf::from("/secret/stttt.key.pem"));
        assert_eq!(a.cert, PathBuf::from("/etc/lienthong/stttt.cert.pem"));
        assert_eq!(a.tokens[0].sha256, hash_token("s3cret"));
        assert_eq!(c.admin_tokens[0].name, "operator");
        assert_eq!(c.peers[0].url, "http://127.0.0.1:8441");
        let under = OrganId::parse_strict("000.00.12.H41").unwrap();
        assert!(c.peers[0].serves(&under));
        assert!(!c.peers[0].serves(&OrganId::parse_strict("000.00.00.H21").unwrap()));
        assert_eq!(c.retry.initial_backoff, Duration::from_millis(500));
        assert_eq!(c.retry.give_up_after, Duration::from_secs(7200));
        assert_eq!(c.retry.max_backoff, RetryPolicy::default().max_backoff);
    }

    #[test]
    fn refuses_what_makes_no_sense() {
        let no_env = |_: &str| None;
        let e = Config::from_toml(SAMPLE, Path::new("/x"), &no_env).unwrap_err();
        assert_eq!(e.code(), Code::ConfigInvalid);
        assert!(e.to_string().contains("is not set"), "{e}");
        let own = SAMPLE.replace(
            r#"serves = ["000.00.00.H41"]"#,
            r#"serves = ["000.00.00.H21"]"#,
        );
        let e = Config::from_toml(&own, Path::new("/x"), &env).unwrap_err();
        assert!(e.to_string().contains("this node serves itself"), "{e}");
        let typo = SAMPLE.replace("listen =", "listne =");
        assert_eq!(
            Config::from_toml(&typo, Path::new("/x"), &env)
                .unwrap_err()
                .code(),
            Code::ConfigInvalid
        );
        // A field missing from a table: the table's header, by its key.
        let nameless = SAMPLE.replace("name = \"Sở Thông tin và Truyền thông tỉnh Gia Lai\"\n", "");
        let e = Config::from_toml(&nameless, Path::new("/x"), &env).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("<config>:9:1: agency[0]: missing field `name`"),
            "{e}"
        );
        let none_in_flight = SAMPLE.replace("[retry]\n", "[retry]\nin_flight = 0\n");
        let e = Config::from_toml(&none_in_flight, Path::new("/x"), &env).unwrap_err();
        assert!(e.to_string().contains("retry.in_flight"), "{e}");
        let sized = SAMPLE.replace("[retry]\n", "[retry]\nin_flight = 8\nin_flight_mb = 16\n");
        let c = Config::from_toml(&sized, Path::new("/x"), &env).unwrap();
        assert_eq!((c.retry.in_flight, c.retry.in_flight_bytes), (8, 16 << 20));
        assert!(parse_duration("10 minutes").is_err());
        assert_eq!(
            parse_duration("7d").unwrap(),
            Duration::from_secs(7 * 86400)
        );
    }

    /// `text` refused at `FILE:LINE:COL: KEY: message`, the line being the first that contains
    /// `marker` and the column that of the value after `marker`.
    fn refused_at(text: &str, marker: &str, key: &str, message: &str) {
        let e = Config::from_toml(text, Path::new("/x"), &env).unwrap_err();
        assert_eq!(e.code(), Code::ConfigInvalid);
        let (line, l) = text
            .lines()
            .enumerate()
            .find(|(_, l)| l.contains(marker))
            .unwrap_or_else(|| panic!("no {marker:?} in the text"));
        let col = l[..l.find(marker).unwrap() + marker.len()].chars().count() + 1;
        assert_eq!(
            e.to_string(),
            format!("<config>:{}:{col}: {key}: {message}", line + 1)
        );
    }

    /// A value of the wrong kind is refused saying what to write, in the operator's terms:
    /// never a Rust type name (`u32`, `struct RetryFile`, `(OrganId)`, `path string`).
    #[test]
    fn a_value_of_the_wrong_kind_says_what_to_write() {
        let retry = |line: &str| SAMPLE.replace("[retry]\n", &format!("[retry]\n{line}\n"));
        let duration = "a duration such as \"1m\" or \"72h\"";
        refused_at(
            &retry("max_backoff = 5"),
            "max_backoff = ",
            "retry.max_backoff",
            &format!("invalid type: integer `5`, expected {duration}"),
        );
        refused_at(
            &retry("max_backoff = \"5 minutes\""),
            "max_backoff = ",
            "retry.max_backoff",
            &format!(
                "\"5 minutes\" is not {duration} (a whole number and a unit: ms, s, m, h or d)"
            ),
        );
        refused_at(
            &SAMPLE.replace("[node]\n", "[node]\nshutdown_grace = 30\n"),
            "shutdown_grace = ",
            "node.shutdown_grace",
            &format!("invalid type: integer `30`, expected {duration}"),
        );
        refused_at(
            &format!("{SAMPLE}\n[http]\nbody_timeout = true\n"),
            "body_timeout = ",
            "http.body_timeout",
            &format!("invalid type: boolean `true`, expected {duration}"),
        );
        refused_at(
            &retry("in_flight = \"8\""),
            "in_flight = ",
            "retry.in_flight",
            "invalid type: string \"8\", expected a whole number such as 128 (no quotes)",
        );
        refused_at(
            &retry("in_flight = -1"),
            "in_flight = ",
            "retry.in_flight",
            "-1 is not a whole number from 0 to 4294967295",
        );
        refused_at(
            &format!("{SAMPLE}\n[limits]\nmax_package_mb = 1.5\n"),
            "max_package_mb = ",
            "limits.max_package_mb",
            "invalid type: floating point `1.5`, expected a whole number such as 128 (no quotes)",
        );
        let trust = "trust = [\"certs/root.pem\"]";
        refused_at(
            &SAMPLE.replace(trust, "trust = \"certs/root.pem\""),
            "trust = ",
            "node.trust",
            "invalid type: string \"certs/root.pem\", expected a list of file paths such as \
             [\"certs/root.pem\"]",
        );
        refused_at(
            &SAMPLE.replace(trust, "trust = [5]"),
            "trust = [",
            "node.trust[0]",
            "invalid type: integer `5`, expected a file path such as \"certs/root.pem\"",
        );
        refused_at(
            &SAMPLE.replace("cert = \"stttt.cert.pem\"", "cert = 5"),
            "cert = ",
            "agency[0].cert",
            "invalid type: integer `5`, expected a file path such as \"certs/root.pem\"",
        );
        refused_at(
            &SAMPLE.replace("serves = [\"000.00.00.H41\"]", "serves = \"000.00.00.H41\""),
            "serves = ",
            "peer \"nghean\".serves",
            "invalid type: string \"000.00.00.H41\", expected a list of agency codes such as \
             [\"000.00.00.H41\"]",
        );
        refused_at(
            &SAMPLE.replace("listen = \"127.0.0.1:8440\"", "listen = 8440"),
            "listen = ",
            "node.listen",
            "invalid type: integer `8440`, expected an address and port such as \"127.0.0.1:8440\"",
        );
        refused_at(
            &SAMPLE.replace(
                "url = \"http://127.0.0.1:8441/\"",
                "url = [\"http://127.0.0.1:8441/\"]",
            ),
            "url = ",
            "peer \"nghean\".url",
            "invalid type: array, expected a URL such as \"https://lienthong.nghean.gov.vn:8450\"",
        );
        // A table where a value goes, and one table where repeated ones go.
        refused_at(
            &format!("limits = 5\n{SAMPLE}"),
            "limits = ",
            "limits",
            "invalid type: integer `5`, expected the [limits] table",
        );
        let single = SAMPLE.replace("[[peer]]", "[peer]");
        let e = Config::from_toml(&single, Path::new("/x"), &env).unwrap_err();
        let line = single.lines().position(|l| l == "[peer]").unwrap() + 1;
        assert_eq!(
            e.to_string(),
            format!(
                "<config>:{line}:1: peer: invalid type: table, expected one table per entry, \
                 each headed with double brackets ([[…]])"
            )
        );
        // Not the code's type name: what is wrong with the value.
        refused_at(
            &SAMPLE.replace("\"000.00.05.H21\"", "\"000.00.05.h21x\""),
            "code = ",
            "agency[0].code",
            "\"000.00.05.h21x\" is not of the shape DDD.DD.DD.LNN (e.g. 000.00.00.H21)",
        );
        refused_at(
            &SAMPLE.replace(
                "serves = [\"000.00.00.H41\"]",
                "serves = [\"H41\", \"a b\"]",
            ),
            "\"H41\", ",
            "peer \"nghean\".serves[1]",
            "\"a b\" contains whitespace or control characters",
        );
    }

    #[test]
    fn xml_signature_defaults_to_required_and_channel_needs_mutual_tls() {
        let c = Config::from_toml(SAMPLE, Path::new("/x"), &env).unwrap();
        assert_eq!(c.peers[0].xml_signature, XmlSignature::Required);
        let peer = r#"serves = ["000.00.00.H41"]"#;
        let typo = SAMPLE.replace(peer, &format!("{peer}\nxml_signature = \"chanel\""));
        let e = Config::from_toml(&typo, Path::new("/x"), &env).unwrap_err();
        assert_eq!(e.code(), Code::ConfigInvalid);
        assert!(
            e.to_string()
                .starts_with("<config>:29:17: peer \"nghean\".xml_signature: "),
            "{e}"
        );
        assert!(e.to_string().contains("chanel"), "{e}");
        // The sample is a development node: its plain listener does not authenticate peers.
        let plain = SAMPLE.replace(peer, &format!("{peer}\nxml_signature = \"channel\""));
        let e = Config::from_toml(&plain, Path::new("/x"), &env).unwrap_err();
        assert!(
            e.to_string().contains("peer \"nghean\".xml_signature"),
            "{e}"
        );
        assert!(e.to_string().contains("dev_plain_http"), "{e}");
        let tls = plain
            .replace(
                "dev_plain_http = true\n",
                "peer_listen = \"127.0.0.1:8450\"\n",
            )
            .replace("http://127.0.0.1:8441/", "https://127.0.0.1:8451")
            .replace(
                peer,
                &format!("{peer}\npin_sha256 = [\"{}\"]", "ab".repeat(32)),
            )
            + "\n[tls]\ncert = \"tls.cert.pem\"\nkey = \"tls.key.pem\"\n";
        let c = Config::from_toml(&tls, Path::new("/x"), &env).unwrap();
        assert_eq!(c.peers[0].xml_signature, XmlSignature::Channel);
        let required = tls.replace("\"channel\"", "\"required\"");
        let c = Config::from_toml(&required, Path::new("/x"), &env).unwrap();
        assert_eq!(c.peers[0].xml_signature, XmlSignature::Required);
    }

    #[test]
    fn http_limits_default_and_are_checked() {
        let c = Config::from_toml(SAMPLE, Path::new("/x"), &env).unwrap();
        assert_eq!(c.http, HttpConfig::default());
        let set = format!(
            "{SAMPLE}\n[http]\nheader_timeout = \"5s\"\nbody_timeout = \"2m\"\n\
             peer_max_connections = 64\npeer_max_connections_per_source = 8\n"
        );
        let c = Config::from_toml(&set, Path::new("/x"), &env).unwrap();
        assert_eq!(c.http.header_timeout, Duration::from_secs(5));
        assert_eq!(c.http.body_timeout, Duration::from_secs(120));
        assert_eq!(
            (
                c.http.peer_max_connections,
                c.http.peer_max_connections_per_source
            ),
            (64, 8)
        );
        for (wrong, at) in [
            ("max_connections = 0", "http.max_connections"),
            ("body_timeout = \"0s\"", "http.body_timeout"),
            (
                "header_timeot = \"5s\"",
                ":35:1: http.header_timeot: unknown field `header_timeot`",
            ),
            ("header_timeot = \"5s\"", "(did you mean `header_timeout`?)"),
        ] {
            let text = format!("{SAMPLE}\n[http]\n{wrong}\n");
            let e = Config::from_toml(&text, Path::new("/x"), &env).unwrap_err();
            assert!(e.to_string().contains(at), "{wrong}: {e}");
        }
    }

    #[test]
    fn revocation_defaults_to_prefer_and_takes_per_anchor_policies() {
        let c = Config::from_toml(SAMPLE, Path::new("/etc/lienthong"), &env).unwrap();
        assert_eq!(c.revocation.policy, RevocationPolicy::Prefer);
        assert!(c.node.intermediates.is_empty());
        let with = SAMPLE.replace(
            "trust = [\"certs/root.pem\"]",
            "trust = [\"certs/root.pem\"]\nintermediates = [\"certs/issuing.pem\"]",
        );
        let c2 = Config::from_toml(&with, Path::new("/etc/lienthong"), &env).unwrap();
        assert_eq!(
            c2.node.intermediates,
            vec![PathBuf::from("/etc/lienthong/certs/issuing.pem")]
        );
        assert_eq!(c.revocation.policy_for("CN=Any"), RevocationPolicy::Prefer);
        let text = format!(
            "{SAMPLE}\n[revocation]\npolicy = \"off\"\ncrl_files = [\"crl/root.pem\"]\n\
             timeout = \"3s\"\nocsp_max_age = \"2m\"\n[[revocation.anchor]]\nsubject = \"CN=Root, C=VN\"\n\
             policy = \"require\"\n"
        );
        let c = Config::from_toml(&text, Path::new("/etc/lienthong"), &env).unwrap();
        assert_eq!(
            c.revocation.policy_for("CN=Root, C=VN"),
            RevocationPolicy::Require
        );
        assert_eq!(c.revocation.policy_for("CN=Other"), RevocationPolicy::Off);
        // The certificate's own order names the same anchor.
        assert_eq!(
            c.revocation.policy_for("C=VN, CN=Root"),
            RevocationPolicy::Require
        );
        let reversed = text.replace("subject = \"CN=Root, C=VN\"", "subject = \"C=VN, CN=Root\"");
        let c3 = Config::from_toml(&reversed, Path::new("/x"), &env).unwrap();
        assert_eq!(
            c3.revocation.policy_for("CN=Root, C=VN"),
            RevocationPolicy::Require
        );
        let nonsense = text.replace("subject = \"CN=Root, C=VN\"", "subject = \"Root CA\"");
        let e = Config::from_toml(&nonsense, Path::new("/x"), &env).unwrap_err();
        assert!(
            e.to_string().contains("revocation.anchor[0].subject"),
            "{e}"
        );
        assert_eq!(
            c.revocation.crl_files,
            vec![PathBuf::from("/etc/lienthong/crl/root.pem")]
        );
        assert_eq!(c.revocation.timeout, Duration::from_secs(3));
        assert_eq!(c.revocation.ocsp_max_age, Duration::from_secs(120));
        let bad = text.replace("policy = \"require\"", "policy = \"maybe\"");
        let e = Config::from_toml(&bad, Path::new("/x"), &env).unwrap_err();
        assert!(e.to_string().contains("revocation.anchor[0].policy"), "{e}");
    }
}

#[cfg(test)]
mod example_tests;
