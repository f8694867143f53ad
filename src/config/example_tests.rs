//! The shipped configurations (the two-node demo and the packaged `/etc/lienthong/lienthong.toml`)
//! are the operator's reference: they must show every key the node reads, set or commented out,
//! and nothing it does not read. The keys are taken from the `deny_unknown_fields` structs the
//! file is parsed into (traced with serde-reflection), so a key added to the code without being
//! documented in the examples fails here.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_reflection::{ContainerFormat, Format, Registry, Tracer, TracerConfig};

use super::{Config, File};

const EXAMPLES: [&str; 3] = [
    "examples/two-nodes/gialai.toml",
    "examples/two-nodes/nghean.toml",
    "packaging/lienthong.toml",
];

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// Every key the configuration file accepts, as `table.key` (`node.listen`,
/// `agency.token.sha256`, `revocation.anchor.policy`).
fn known_keys() -> BTreeSet<String> {
    // Strings are traced with a value every string field accepts, durations included.
    let config = TracerConfig::default()
        .default_string_value("30s".to_owned())
        .default_borrowed_str_value("30s");
    let mut tracer = Tracer::new(config);
    tracer
        .trace_simple_type::<File>()
        .expect("tracing the configuration structs");
    let registry = tracer.registry().expect("a complete registry");
    let mut keys = BTreeSet::new();
    walk(&registry, "File", "", &mut keys);
    keys
}

fn walk(registry: &Registry, name: &str, prefix: &str, keys: &mut BTreeSet<String>) {
    let Some(ContainerFormat::Struct(fields)) = registry.get(name) else {
        panic!("{name} is not a struct in the traced registry");
    };
    for field in fields {
        let path = if prefix.is_empty() {
            field.name.clone()
        } else {
            format!("{prefix}.{}", field.name)
        };
        match table_of(&field.value) {
            Some(inner) => walk(registry, inner, &path, keys),
            None => {
                keys.insert(path);
            }
        }
    }
}

/// The struct a field holds (a table, an optional table or an array of tables), if any.
fn table_of(format: &Format) -> Option<&str> {
    match format {
        Format::TypeName(name) => Some(name),
        Format::Option(inner) | Format::Seq(inner) => table_of(inner),
        _ => None,
    }
}

/// The keys a TOML file shows, set or commented out (`# key = …` under a table header that may
/// itself be commented out), as `table.key`.
fn shown_keys(text: &str) -> BTreeSet<String> {
    let mut table = String::new();
    let mut keys = BTreeSet::new();
    for line in text.lines() {
        let line = line.trim_start();
        let line = line.strip_prefix('#').unwrap_or(line).trim_start();
        if let Some(header) = line.strip_prefix('[') {
            let header = header.trim_start_matches('[');
            if let Some(end) = header.find(']') {
                table = header[..end].trim().to_owned();
            }
            continue;
        }
        if let Some((key, _value)) = line.split_once(" = ")
            && !key.is_empty()
            && key
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        {
            keys.insert(format!("{table}.{key}"));
        }
    }
    keys
}

#[test]
fn the_traced_keys_are_the_ones_the_file_accepts() {
    let keys = known_keys();
    for key in [
        "node.listen",
        "node.allow_sha1",
        "agency.token.sha256",
        "admin.sha256",
        "peer.xml_signature",
        "limits.max_attachment_mb",
        "revocation.anchor.subject",
        "http.peer_max_connections_per_source",
        "tls.handshake_timeout",
        "retry.in_flight_mb",
        "mail.from",
        "mail.smtp.password",
        "mail.imap.quarantine_folder",
        "mail.route.to",
        "mail.notify.events",
        "mail.limits.max_headers_kb",
    ] {
        assert!(keys.contains(key), "{key} missing from {keys:?}");
    }
    // The walk reached every table: no key is a table itself.
    for table in [
        "node",
        "agency",
        "agency.token",
        "admin",
        "peer",
        "tls",
        "retry",
        "mail",
        "mail.smtp",
        "mail.imap",
        "mail.route",
        "mail.notify",
        "mail.limits",
    ] {
        assert!(!keys.contains(table), "{table} taken for a key");
    }
}

#[test]
fn every_example_shows_every_key_and_only_known_keys() {
    let keys = known_keys();
    for example in EXAMPLES {
        let text = std::fs::read_to_string(repo(example)).expect(example);
        let shown = shown_keys(&text);
        let missing: Vec<_> = keys.difference(&shown).collect();
        assert!(
            missing.is_empty(),
            "{example} does not show (set or commented out): {missing:?}"
        );
        let unknown: Vec<_> = shown.difference(&keys).collect();
        assert!(
            unknown.is_empty(),
            "{example} shows keys the node does not read: {unknown:?}"
        );
    }
}

#[test]
fn every_example_loads() {
    // The demo configurations load with every file they name (certs: a link to the test PKI).
    for example in &EXAMPLES[..2] {
        let config =
            Config::load(&repo(example)).unwrap_or_else(|e| panic!("{example} does not load: {e}"));
        assert!(!config.agencies.is_empty(), "{example}: no agency");
    }
    // The packaged configuration names /etc/lienthong and /var/lib/lienthong, which exist only
    // once installed: it must parse and check as a whole (everything but the files it names).
    let path = repo("packaging/lienthong.toml");
    let text = std::fs::read_to_string(&path).expect("packaged");
    let packaged = Config::from_toml(&text, std::path::Path::new("/etc/lienthong"), &|_| None)
        .unwrap_or_else(|e| panic!("packaging/lienthong.toml does not parse: {e}"));
    assert_eq!(packaged.node.listen, "127.0.0.1:8440");
    assert_eq!(packaged.node.peer_listen.as_deref(), Some("0.0.0.0:8450"));
    assert_eq!(packaged.node.store, "sqlite:///var/lib/lienthong/node.db");
    let two = Config::load(&repo("examples/two-nodes/gialai.toml")).expect("gialai");
    assert_eq!(
        two.admin_tokens[0].sha256,
        super::hash_token("demo-token-operator")
    );
}

#[test]
fn a_key_left_out_of_an_example_is_noticed() {
    let text = std::fs::read_to_string(repo("examples/two-nodes/gialai.toml")).expect("gialai");
    let without: String = text
        .lines()
        .filter(|l| !l.contains("max_attachment_mb"))
        .map(|l| format!("{l}\n"))
        .collect();
    let shown = shown_keys(&without);
    assert!(
        known_keys()
            .difference(&shown)
            .any(|k| k == "limits.max_attachment_mb")
    );
    // A commented table header still names the table of the commented keys below it.
    let shown = shown_keys("[node]\nname = \"x\"\n# [[revocation.anchor]]\n# policy = \"off\"\n");
    assert_eq!(
        shown.into_iter().collect::<Vec<_>>(),
        ["node.name", "revocation.anchor.policy"]
    );
}
