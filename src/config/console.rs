//! The web console's configuration (`[console]`): where it is reached, how long a session lives,
//! who may sign in — through the province's identity provider (`[console.oidc]`, OpenID Connect)
//! and, for when that provider is down, local break-glass administrators (`[[console.local]]`,
//! passwords stored as argon2 hashes, never in clear).
//!
//! Who a person is *on the console* — a role, and for a clerk the one agency whose documents
//! they handle — comes from the identity provider's token through `[console.oidc.roles]` and
//! `agency_claim`; nothing is granted by default.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use super::expect::{DurationValue, Tables, Text, UrlKind};
use super::{AgencyConfig, Secret, bad};
use crate::Error;

/// A console role (Vietnamese names as the province's staff know them). What each may do is
/// `console::access`'s one table; the configuration only says who has which.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Văn thư: one agency's documents — send, receive, report statuses.
    Clerk,
    /// Quản trị hệ thống: deliveries, peers, the registry, the audit chain.
    SystemAdmin,
    /// Quản trị chứng thư: certificates and trust anchors.
    CertificateAdmin,
    /// Giám sát: reads everything an administrator reads, changes nothing.
    Auditor,
}

impl Role {
    /// The spelling used in the configuration and in audit records.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Clerk => "van_thu",
            Role::SystemAdmin => "quan_tri_he_thong",
            Role::CertificateAdmin => "quan_tri_chung_thu",
            Role::Auditor => "giam_sat",
        }
    }

    /// The name shown to people.
    pub fn label(self) -> &'static str {
        match self {
            Role::Clerk => "Văn thư",
            Role::SystemAdmin => "Quản trị hệ thống",
            Role::CertificateAdmin => "Quản trị chứng thư",
            Role::Auditor => "Giám sát",
        }
    }

    pub const ALL: [Role; 4] = [
        Role::Clerk,
        Role::SystemAdmin,
        Role::CertificateAdmin,
        Role::Auditor,
    ];

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

/// `[console]`: present only when the console is on.
#[derive(Debug, Clone)]
pub struct ConsoleConfig {
    /// The address people reach the node at (`https://lienthong.gialai.gov.vn`): the OpenID
    /// redirect URI is built from it, and an `https` one makes the session cookie `Secure`.
    pub public_url: String,
    /// A session unused this long ends (default 30 min).
    pub idle_timeout: Duration,
    /// A session ends this long after sign-in whatever its use (default 10 h: a working day).
    pub max_age: Duration,
    pub oidc: Option<OidcConfig>,
    /// `[[console.local]]`: break-glass administrators.
    pub local: Vec<LocalAccount>,
}

impl ConsoleConfig {
    /// Whether cookies must be `Secure` (the console is reached over https).
    pub fn secure_cookies(&self) -> bool {
        self.public_url.starts_with("https://")
    }
}

/// `[console.oidc]`: the province's identity provider (Keycloak, or any OpenID provider).
#[derive(Debug, Clone)]
pub struct OidcConfig {
    /// The issuer (`https://sso.gialai.gov.vn/realms/gialai`); its discovery document is read
    /// from `{issuer}/.well-known/openid-configuration`.
    pub issuer: String,
    pub client_id: String,
    pub client_secret: Secret,
    /// Scopes asked for besides `openid` (default `profile email`).
    pub scopes: Vec<String>,
    /// The claim holding the role (default `role`; a list of values is accepted).
    pub role_claim: String,
    /// The claim holding a clerk's agency code (default `agency`).
    pub agency_claim: String,
    /// The claim shown as the person's name (default `name`).
    pub name_claim: String,
    /// Claim value → role. A value not listed grants nothing.
    pub roles: BTreeMap<String, Role>,
}

/// `[[console.local]]`: one break-glass administrator.
#[derive(Debug, Clone)]
pub struct LocalAccount {
    pub user: String,
    /// The argon2 hash in PHC form (`$argon2id$v=19$…`), as `lienthong console hash-password`
    /// prints it.
    pub password_hash: String,
    pub role: Role,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "the [console] table")]
pub(super) struct ConsoleFile {
    public_url: Text<UrlKind>,
    idle_timeout: Option<DurationValue>,
    max_age: Option<DurationValue>,
    oidc: Option<OidcFile>,
    #[serde(default)]
    local: Tables<LocalFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "the [console.oidc] table")]
struct OidcFile {
    issuer: Text<UrlKind>,
    client_id: String,
    client_secret: String,
    #[serde(default)]
    scopes: Option<Vec<String>>,
    role_claim: Option<String>,
    agency_claim: Option<String>,
    name_claim: Option<String>,
    #[serde(default)]
    roles: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a [[console.local]] table (user, password_hash, role)"
)]
struct LocalFile {
    user: String,
    password_hash: String,
    role: String,
}

pub(super) fn build(
    f: &ConsoleFile,
    _agencies: &[AgencyConfig],
    secret: &dyn Fn(&str, &str) -> Result<String, Error>,
) -> Result<ConsoleConfig, Error> {
    let public_url = f.public_url.as_str().trim_end_matches('/').to_owned();
    let idle_timeout = f.idle_timeout.map_or(Duration::from_secs(30 * 60), |v| v.0);
    let max_age = f.max_age.map_or(Duration::from_secs(10 * 3600), |v| v.0);
    if idle_timeout < Duration::from_secs(1) || max_age < idle_timeout {
        return Err(bad(
            "console.max_age",
            "must be at least console.idle_timeout, which must be at least 1s",
        ));
    }
    let oidc = match &f.oidc {
        None => None,
        Some(o) => {
            if o.client_id.trim().is_empty() {
                return Err(bad("console.oidc.client_id", "empty"));
            }
            let mut roles = BTreeMap::new();
            for (value, role) in &o.roles {
                let parsed = Role::parse(role).ok_or_else(|| {
                    bad(
                        format!("console.oidc.roles.{value}"),
                        format!(
                            "{role:?} is not a role; write one of van_thu, quan_tri_he_thong, \
                             quan_tri_chung_thu, giam_sat"
                        ),
                    )
                })?;
                roles.insert(value.clone(), parsed);
            }
            Some(OidcConfig {
                issuer: o.issuer.as_str().trim_end_matches('/').to_owned(),
                client_id: o.client_id.clone(),
                client_secret: Secret(secret("console.oidc.client_secret", &o.client_secret)?),
                scopes: o
                    .scopes
                    .clone()
                    .unwrap_or_else(|| vec!["profile".into(), "email".into()]),
                role_claim: o.role_claim.clone().unwrap_or_else(|| "role".into()),
                agency_claim: o.agency_claim.clone().unwrap_or_else(|| "agency".into()),
                name_claim: o.name_claim.clone().unwrap_or_else(|| "name".into()),
                roles,
            })
        }
    };
    let mut local = Vec::new();
    for (i, l) in f.local.iter().enumerate() {
        let at = format!("console.local[{}]", i + 1);
        if l.user.trim().is_empty() {
            return Err(bad(format!("{at}.user"), "empty"));
        }
        if !l.password_hash.starts_with("$argon2") {
            return Err(bad(
                format!("{at}.password_hash"),
                "must be an argon2 hash ($argon2id$…), as `lienthong console hash-password` \
                 prints it; a password is never written in clear",
            ));
        }
        let role = Role::parse(&l.role).ok_or_else(|| {
            bad(
                format!("{at}.role"),
                format!(
                    "{:?} is not a role (quan_tri_he_thong, quan_tri_chung_thu, giam_sat)",
                    l.role
                ),
            )
        })?;
        if role == Role::Clerk {
            return Err(bad(
                format!("{at}.role"),
                "a break-glass account is an administrator's; clerks sign in through the \
                 identity provider",
            ));
        }
        local.push(LocalAccount {
            user: l.user.trim().to_owned(),
            password_hash: l.password_hash.clone(),
            role,
        });
    }
    if oidc.is_none() && local.is_empty() {
        return Err(bad(
            "console",
            "nobody could sign in: configure [console.oidc] or at least one [[console.local]]",
        ));
    }
    Ok(ConsoleConfig {
        public_url,
        idle_timeout,
        max_age,
        oidc,
        local,
    })
}
