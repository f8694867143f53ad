//! Where a delivery to an agency code goes.

use crate::config::Config;
use crate::edxml::OrganId;

/// The way out for one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// An agency this node serves: straight into its inbox.
    Local,
    /// A peer node that serves the code (by its configured name).
    Peer(String),
    /// A mail-only agency: its official mailbox (`[[mail.route]]`), through the relay.
    Mail(String),
    /// Nobody is known to serve it: the delivery fails with `NO_ROUTE` for an operator.
    None,
}

impl Route {
    /// The form stored with a delivery: `local`, `peer:<name>`, `mail:<address>` or `none`.
    pub fn as_stored(&self) -> String {
        match self {
            Route::Local => "local".into(),
            Route::Peer(name) => format!("peer:{name}"),
            Route::Mail(address) => format!("mail:{address}"),
            Route::None => "none".into(),
        }
    }

    pub fn from_stored(s: &str) -> Route {
        match s {
            "local" => Route::Local,
            _ => {
                if let Some(name) = s.strip_prefix("peer:") {
                    Route::Peer(name.to_owned())
                } else if let Some(address) = s.strip_prefix("mail:") {
                    Route::Mail(address.to_owned())
                } else {
                    Route::None
                }
            }
        }
    }
}

/// Routes `code`: a local agency first; then a mail-only agency (`[[mail.route]]`, the code
/// itself); else the peer whose configured code is the most specific one covering it (a peer
/// serving `000.00.05.H41` wins over one serving `000.00.00.H41`).
pub fn route(config: &Config, code: &OrganId) -> Route {
    if config.agency(code).is_some() {
        return Route::Local;
    }
    if let Some(r) = config
        .mail
        .as_ref()
        .and_then(|m| m.routes.iter().find(|r| &r.code == code))
    {
        return Route::Mail(r.address.clone());
    }
    config
        .peers
        .iter()
        .filter_map(|p| {
            p.serves
                .iter()
                .filter(|s| code.is_within(s))
                .map(|s| s.level().unwrap_or(5))
                .max()
                .map(|depth| (depth, p))
        })
        .max_by_key(|(depth, _)| *depth)
        .map_or(Route::None, |(_, p)| Route::Peer(p.name.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn config() -> Config {
        let text = r#"
[node]
name = "gialai"
listen = "127.0.0.1:0"
store = "sqlite::memory:"
trust = []
dev_plain_http = true
[[agency]]
code = "000.00.05.H21"
name = "Sở Thông tin và Truyền thông tỉnh Gia Lai"
key = "k.pem"
cert = "c.pem"
[[peer]]
name = "nghean"
url = "http://127.0.0.1:1"
serves = ["000.00.00.H41"]
[[peer]]
name = "nghean-stttt"
url = "http://127.0.0.1:2"
serves = ["000.00.05.H41", "vxp.saas.03"]
"#;
        Config::from_toml(text, Path::new("/"), &|_| None).unwrap()
    }

    fn code(s: &str) -> OrganId {
        OrganId::parse_lenient(s).unwrap()
    }

    #[test]
    fn local_then_most_specific_peer_then_none() {
        let c = config();
        assert_eq!(route(&c, &code("000.00.05.H21")), Route::Local);
        assert_eq!(
            route(&c, &code("000.00.00.H41")),
            Route::Peer("nghean".into())
        );
        assert_eq!(
            route(&c, &code("000.00.07.H41")),
            Route::Peer("nghean".into())
        );
        assert_eq!(
            route(&c, &code("000.03.05.H41")),
            Route::Peer("nghean-stttt".into())
        );
        assert_eq!(
            route(&c, &code("vxp.saas.03")),
            Route::Peer("nghean-stttt".into())
        );
        assert_eq!(route(&c, &code("000.00.00.H21")), Route::None);
        for r in [Route::Local, Route::Peer("x".into()), Route::None] {
            assert_eq!(Route::from_stored(&r.as_stored()), r);
        }
    }
}
