//! Revocation checking with the network: fetches the OCSP responses and CRLs that the pure
//! decision of [`crate::pki::status`] needs, caches them until their `nextUpdate`, and refreshes
//! cached CRLs in the background. Shared by the node and `lienthong verify`, so both follow the
//! same URLs the same way.
//!
//! SSRF: the only URLs fetched are those named by certificates of a [`ValidatedPath`] — a path
//! that already chained to a trust anchor (only path validation makes one) — plus the configured
//! OCSP responder. A stranger's certificate never makes this module fetch anything. Redirects
//! are not followed; only `http`/`https` URLs are taken; every answer is capped in size and time.
//!
//! Time: each fetch has its timeout, and the whole check a budget that also cuts off a fetch
//! under way when it is spent.
//!
//! Per certificate of the path, in order: a cached OCSP response still current; the OCSP
//! responders (the configured one, else those of the certificate's AIA), with a fresh random
//! nonce (none can be made: not asked), a response echoing it or at most `ocsp_max_age` old; the
//! configured CRL files; the CRLs of its distribution points (cached by URL until `nextUpdate`).
//! The first source that says good or revoked decides; if none does the status is unknown, and
//! the policy (`require`/`prefer`) says what that means ([`status::apply_policy`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use crate::error::{Code, TrustError};
use crate::pki::RevocationPolicy;
use crate::pki::status::{
    self, CertificateStatus, PathLink, RevocationOutcome, Source, Status, ValidatedPath,
};

/// Caps and knobs of the fetcher. `Default` suits both the node and the CLI.
#[derive(Debug, Clone)]
pub struct FetchConfig {
    /// Whole-request timeout per fetch.
    pub timeout: Duration,
    /// Largest CRL accepted.
    pub max_crl_bytes: usize,
    /// Largest OCSP response accepted.
    pub max_ocsp_bytes: usize,
    /// An OCSP responder to ask instead of the ones the certificates name.
    pub ocsp_responder: Option<String>,
    /// Send a nonce in OCSP requests (responders that do not support it just omit it).
    pub nonce: bool,
    /// Oldest `thisUpdate` (before the check) of a fetched OCSP response that does not echo the
    /// nonce: a cached, pre-produced answer is relied on only while this recent.
    pub ocsp_max_age: Duration,
    /// Most cache entries of each kind kept (oldest dropped past it).
    pub max_cache_entries: usize,
    /// Longest time one check (all certificates of a path) spends fetching; past it the
    /// remaining sources are skipped and their status is unknown. Keeps a peer's push answered
    /// within its timeout.
    pub budget: Duration,
}

impl Default for FetchConfig {
    fn default() -> Self {
        FetchConfig {
            timeout: Duration::from_secs(10),
            max_crl_bytes: 16 * 1024 * 1024,
            max_ocsp_bytes: 64 * 1024,
            ocsp_responder: None,
            nonce: true,
            ocsp_max_age: status::OCSP_UNBOUND_MAX_AGE,
            max_cache_entries: 1024,
            budget: Duration::from_secs(20),
        }
    }
}

#[derive(Debug, Clone)]
struct Cached {
    source: Source,
    until: SystemTime,
}

/// Fills a buffer with random bytes; `Err` when the system generator cannot.
type Random = fn(&mut [u8]) -> Result<(), aws_lc_rs::error::Unspecified>;

/// The revocation checker: a fetcher with its caches and the configured CRL files. Cheap to
/// share behind an `Arc`.
#[derive(Debug)]
pub struct Checker {
    client: reqwest::Client,
    config: FetchConfig,
    /// Where nonces come from (the system generator; a failing one in a unit test).
    random: Random,
    crl_files: Vec<Source>,
    crl_cache: Mutex<HashMap<String, Cached>>,
    ocsp_cache: Mutex<HashMap<Vec<u8>, Cached>>,
}

impl Checker {
    /// A checker with `config` and the configured CRL files `crl_files` (already read).
    pub fn new(config: FetchConfig, crl_files: Vec<Source>) -> Result<Self, TrustError> {
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("lienthong/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| {
                TrustError::new(
                    Code::ConfigInvalid,
                    "revocation",
                    format!("cannot build the HTTP client: {e}"),
                )
            })?;
        Ok(Checker {
            client,
            config,
            random: aws_lc_rs::rand::fill,
            crl_files,
            crl_cache: Mutex::new(HashMap::new()),
            ocsp_cache: Mutex::new(HashMap::new()),
        })
    }

    /// The revocation decision for `path` under `policy` at `at` (normally now): the statuses of
    /// every certificate (signer and intermediates) and the policy applied. `Err` is
    /// `CERT_REVOKED` or `REVOCATION_UNKNOWN`.
    pub async fn check(
        &self,
        path: &ValidatedPath,
        policy: RevocationPolicy,
        at: SystemTime,
    ) -> Result<RevocationOutcome, TrustError> {
        if policy == RevocationPolicy::Off {
            return Ok(RevocationOutcome::off());
        }
        let deadline = tokio::time::Instant::now() + self.config.budget;
        let mut statuses = Vec::with_capacity(path.links().len());
        for link in path.links() {
            let s = self.link_status(link, at, deadline).await;
            let revoked = s.status == Status::Revoked;
            statuses.push(s);
            if revoked {
                break;
            }
        }
        status::apply_policy(policy, statuses)
    }

    async fn link_status(
        &self,
        link: &PathLink,
        at: SystemTime,
        deadline: tokio::time::Instant,
    ) -> CertificateStatus {
        let over = || tokio::time::Instant::now() >= deadline;
        let spent = "not asked: the time budget of the check was spent";
        let mut notes = Vec::new();
        let mut ocsp_unknown = None;
        // 1. OCSP, cached then live.
        let urls = match &self.config.ocsp_responder {
            Some(u) => vec![u.clone()],
            None => link.ocsp_urls(),
        };
        if !urls.is_empty() {
            // A nonce is random or not sent at all: a predictable one (a failed generator's
            // zeros) would let a response captured earlier pass as this request's answer.
            let nonce = self.config.nonce.then(|| self.nonce()).transpose();
            match nonce.and_then(|n| {
                status::ocsp_request(link, n.as_ref().map(|n| &n[..])).map_err(|e| e.problem)
            }) {
                Err(e) => notes.push(format!("OCSP: {e}")),
                Ok(query) => {
                    if let Some(c) = self.cached(&self.ocsp_cache, &query.cert_id, at)
                        && let Ok(s) = status::check_ocsp(link, &c, status::Freshness::Kept, at)
                        && s.status != Status::Unknown
                    {
                        return s;
                    }
                    let freshness = status::Freshness::Fetched {
                        nonce: query.nonce.as_deref(),
                        max_age: self.config.ocsp_max_age,
                    };
                    for url in &urls {
                        if over() {
                            notes.push(format!("OCSP {url}: {spent}"));
                            continue;
                        }
                        match within(deadline, self.post_ocsp(url, &query.request)).await {
                            Err(e) => notes.push(format!("OCSP {url}: {e}")),
                            Ok(der) => {
                                let src = Source {
                                    source: url.clone(),
                                    der,
                                };
                                match status::check_ocsp(link, &src, freshness, at) {
                                    Ok(s) if s.status != Status::Unknown => {
                                        if let Some(until) = status::ocsp_cache_until(
                                            &src.der,
                                            query.nonce.as_deref(),
                                            self.config.ocsp_max_age,
                                        ) {
                                            self.store(
                                                &self.ocsp_cache,
                                                query.cert_id.clone(),
                                                src,
                                                until,
                                            );
                                        }
                                        return s;
                                    }
                                    Ok(s) => ocsp_unknown = Some(s),
                                    Err(e) => notes.push(format!("OCSP {url}: {e}")),
                                }
                            }
                        }
                    }
                }
            }
        }
        // 2. Configured CRL files (only those of this certificate's issuer say anything).
        for f in &self.crl_files {
            match status::check_crl(link, f, at) {
                Ok(s) => return s,
                Err(e) if e.contains("not by the certificate's issuer") => {}
                Err(e) => notes.push(format!("CRL {}: {e}", f.source)),
            }
        }
        // 3. Distribution points, cached then live.
        for url in link.crl_urls() {
            if let Some(c) = self.cached(&self.crl_cache, &url, at)
                && let Ok(s) = status::check_crl(link, &c, at)
            {
                return s;
            }
            if over() {
                notes.push(format!("CRL {url}: {spent}"));
                continue;
            }
            match within(deadline, self.get_crl(&url)).await {
                Err(e) => notes.push(format!("CRL {url}: {e}")),
                Ok(der) => {
                    let src = Source {
                        source: url.clone(),
                        der,
                    };
                    let verdict = status::check_crl(link, &src, at);
                    if verdict.is_ok()
                        && let Some(until) = status::crl_next_update(&src.der)
                        && until > at
                    {
                        self.store(&self.crl_cache, url.clone(), src, until);
                    }
                    match verdict {
                        Ok(s) => return s,
                        Err(e) => notes.push(format!("CRL {url}: {e}")),
                    }
                }
            }
        }
        ocsp_unknown.unwrap_or_else(|| status::unknown_status(link, &notes))
    }

    /// A fresh 16-byte nonce from the system generator; `Err` (no request is then made) when
    /// the generator fails.
    fn nonce(&self) -> Result<[u8; 16], String> {
        let mut n = [0u8; 16];
        (self.random)(&mut n).map_err(|_| {
            "not asked: the system random generator failed, and a request without a random \
             nonce could be answered by a replay"
                .to_owned()
        })?;
        Ok(n)
    }

    fn cached<K>(
        &self,
        cache: &Mutex<HashMap<K::Owned, Cached>>,
        key: &K,
        at: SystemTime,
    ) -> Option<Source>
    where
        K: std::hash::Hash + Eq + ToOwned + ?Sized,
        K::Owned: std::hash::Hash + Eq + std::borrow::Borrow<K>,
    {
        let map = cache.lock().unwrap_or_else(|p| p.into_inner());
        map.get(key)
            .filter(|c| c.until > at)
            .map(|c| c.source.clone())
    }

    fn store<K: std::hash::Hash + Eq + Clone>(
        &self,
        cache: &Mutex<HashMap<K, Cached>>,
        key: K,
        source: Source,
        until: SystemTime,
    ) {
        let mut map = cache.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= self.config.max_cache_entries && !map.contains_key(&key) {
            let oldest = map
                .iter()
                .min_by_key(|(_, c)| c.until)
                .map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                map.remove(&k);
            }
        }
        map.insert(key, Cached { source, until });
    }

    async fn post_ocsp(&self, url: &str, request: &[u8]) -> Result<Vec<u8>, String> {
        let resp = self
            .client
            .post(url)
            .header("content-type", "application/ocsp-request")
            .header("accept", "application/ocsp-response")
            .body(request.to_vec())
            .send()
            .await
            .map_err(|e| format!("unreachable ({})", without_url(&e)))?;
        read_capped(resp, self.config.max_ocsp_bytes).await
    }

    async fn get_crl(&self, url: &str) -> Result<Vec<u8>, String> {
        let resp = self
            .client
            .get(url)
            .send()
            .await
            .map_err(|e| format!("unreachable ({})", without_url(&e)))?;
        let der = read_capped(resp, self.config.max_crl_bytes).await?;
        // Distribution points serve DER; accept PEM too (some servers do).
        if der.starts_with(b"-----BEGIN") {
            use rustls_pki_types::pem::PemObject;
            return rustls_pki_types::CertificateRevocationListDer::from_pem_slice(&der)
                .map(|d| d.as_ref().to_vec())
                .map_err(|e| format!("bad PEM CRL: {e}"));
        }
        Ok(der)
    }

    /// Refetches every cached CRL whose `nextUpdate` is within `ahead` of `now`, so that a
    /// package arriving then does not wait for the download. Returns how many were refreshed.
    pub async fn refresh_crls(&self, now: SystemTime, ahead: Duration) -> usize {
        let due: Vec<String> = {
            let map = self.crl_cache.lock().unwrap_or_else(|p| p.into_inner());
            map.iter()
                .filter(|(_, c)| c.until <= now + ahead)
                .map(|(k, _)| k.clone())
                .collect()
        };
        let mut n = 0;
        for url in due {
            let Ok(der) = self.get_crl(&url).await else {
                continue;
            };
            // Only replace with a CRL that is newer (a later nextUpdate): the issuer check was
            // made on the cached one, and the next check of a certificate verifies it again.
            let Some(until) = status::crl_next_update(&der) else {
                continue;
            };
            let newer = {
                let map = self.crl_cache.lock().unwrap_or_else(|p| p.into_inner());
                map.get(&url).is_none_or(|c| until > c.until)
            };
            if newer && until > now {
                let src = Source {
                    source: url.clone(),
                    der,
                };
                self.store(&self.crl_cache, url, src, until);
                n += 1;
            }
        }
        n
    }

    /// Runs [`Checker::refresh_crls`] every `every`, refreshing CRLs due within `2 × every`.
    pub fn spawn_refresh(self: &Arc<Self>, every: Duration) -> tokio::task::JoinHandle<()> {
        let me = Arc::clone(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let n = me.refresh_crls(SystemTime::now(), every * 2).await;
                if n > 0 {
                    tracing::info!(
                        refreshed = n,
                        "revocation: CRLs refreshed before nextUpdate"
                    );
                }
            }
        })
    }
}

/// Runs the fetch `f`, cut off at the check's `deadline`: the budget bounds the whole check,
/// not only when each fetch may start.
async fn within<F>(deadline: tokio::time::Instant, f: F) -> Result<Vec<u8>, String>
where
    F: std::future::Future<Output = Result<Vec<u8>, String>>,
{
    tokio::time::timeout_at(deadline, f)
        .await
        .unwrap_or_else(|_| Err("cut off: the time budget of the check was spent".into()))
}

async fn read_capped(mut resp: reqwest::Response, cap: usize) -> Result<Vec<u8>, String> {
    if !resp.status().is_success() {
        return Err(format!("answered HTTP {}", resp.status().as_u16()));
    }
    if resp.content_length().is_some_and(|n| n > cap as u64) {
        return Err(format!("answer larger than {cap} bytes"));
    }
    let mut out = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| format!("read failed ({})", without_url(&e)))?
    {
        if out.len() + chunk.len() > cap {
            return Err(format!("answer larger than {cap} bytes"));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// A reqwest error's text without the URL (it is named by the caller already).
fn without_url(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        "connection refused or failed".into()
    } else if e.is_body() || e.is_decode() {
        "the answer could not be read".into()
    } else {
        "the request failed".into()
    }
}

/// The CRLs of `bytes` (one or more PEM `X509 CRL` blocks, or one DER CRL) as sources named
/// `source`, each checked to parse (`CONFIG_INVALID` otherwise: a CRL file is configuration).
pub fn crl_sources(bytes: &[u8], source: &str) -> Result<Vec<Source>, TrustError> {
    use rustls_pki_types::pem::PemObject;
    // Parses each the way the webpki check does, so both refuse the same files.
    crate::pki::crls_from_pem_or_der(bytes, source)?;
    if !bytes.windows(10).any(|w| w == b"-----BEGIN") {
        return Ok(vec![Source {
            source: source.to_owned(),
            der: bytes.to_vec(),
        }]);
    }
    rustls_pki_types::CertificateRevocationListDer::pem_slice_iter(bytes)
        .map(|d| {
            d.map(|d| Source {
                source: source.to_owned(),
                der: d.as_ref().to_vec(),
            })
            .map_err(|e| TrustError::new(Code::ConfigInvalid, source, format!("bad PEM: {e}")))
        })
        .collect()
}

/// Runs `check` on a fresh single-threaded runtime, for callers that are not async (the CLI).
pub fn check_blocking(
    checker: &Checker,
    path: &ValidatedPath,
    policy: RevocationPolicy,
    at: SystemTime,
) -> Result<RevocationOutcome, TrustError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            TrustError::new(
                Code::ConfigInvalid,
                "revocation",
                format!("cannot start the runtime: {e}"),
            )
        })?;
    rt.block_on(checker.check(path, policy, at))
}

impl Checker {
    /// The node's checker from its `[revocation]` configuration (CRL files read now).
    pub fn from_config(c: &crate::config::RevocationConfig) -> Result<Self, crate::Error> {
        let mut files = Vec::new();
        for path in &c.crl_files {
            let bytes =
                std::fs::read(path).map_err(|e| crate::Error::io(path.display().to_string(), e))?;
            files.extend(crl_sources(&bytes, &path.display().to_string())?);
        }
        let config = FetchConfig {
            timeout: c.timeout,
            budget: c.timeout * 2,
            ocsp_responder: c.ocsp_responder.clone(),
            ocsp_max_age: c.ocsp_max_age,
            ..FetchConfig::default()
        };
        Ok(Checker::new(config, files)?)
    }
}

/// The outcome of a check as the rows stored with a received message (signer first).
pub fn evidence_rows(
    outcome: &RevocationOutcome,
    checked_at: i64,
) -> Vec<crate::store::RevocationEvidence> {
    outcome
        .certificates
        .iter()
        .map(|c| crate::store::RevocationEvidence {
            subject: c.subject.clone(),
            serial: c.serial.clone(),
            fingerprint: c.fingerprint.clone(),
            policy: outcome.policy.to_owned(),
            status: match c.status {
                Status::Good => "good",
                Status::Revoked => "revoked",
                Status::Unknown => "unknown",
            }
            .to_owned(),
            kind: c.evidence.as_ref().map(|e| {
                match e.kind {
                    status::EvidenceKind::Crl => "crl",
                    status::EvidenceKind::Ocsp => "ocsp",
                }
                .to_owned()
            }),
            source: c.evidence.as_ref().map(|e| e.source.clone()),
            der: c.evidence.as_ref().map(|e| e.der.clone()),
            this_update: c.evidence.as_ref().and_then(|e| e.this_update.clone()),
            next_update: c.evidence.as_ref().and_then(|e| e.next_update.clone()),
            produced_at: c.evidence.as_ref().and_then(|e| e.produced_at.clone()),
            note: c.note.clone(),
            flagged: c.flagged,
            checked_at,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls_pki_types::pem::PemObject;

    fn der(name: &str) -> Vec<u8> {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("certs/test-only")
            .join(name);
        rustls_pki_types::CertificateDer::from_pem_file(p)
            .unwrap()
            .as_ref()
            .to_vec()
    }

    /// A generator that fails never yields a request: no connection reaches the responder (a
    /// loopback listener that would hold it), and the status says why nothing was asked.
    #[test]
    fn a_failing_random_generator_sends_no_request() {
        let responder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        responder.set_nonblocking(true).unwrap();
        let config = FetchConfig {
            ocsp_responder: Some(format!("http://{}/", responder.local_addr().unwrap())),
            timeout: Duration::from_secs(2),
            ..FetchConfig::default()
        };
        let mut checker = Checker::new(config, Vec::new()).unwrap();
        checker.random = |_| Err(aws_lc_rs::error::Unspecified);
        let path = ValidatedPath::new(
            vec![(der("stttt-gialai.cert.pem"), der("issuing-ca.cert.pem"))],
            "CN=root".into(),
        );
        let out =
            check_blocking(&checker, &path, RevocationPolicy::Prefer, SystemTime::now()).unwrap();
        let s = &out.certificates[0];
        assert_eq!(s.status, Status::Unknown);
        let note = s.note.as_deref().unwrap();
        assert!(note.contains("random generator failed"), "{note}");
        assert!(
            matches!(responder.accept(), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
            "a request reached the responder"
        );

        // The control: with the system generator, the same checker does connect.
        checker.random = aws_lc_rs::rand::fill;
        let _ = check_blocking(&checker, &path, RevocationPolicy::Prefer, SystemTime::now());
        assert!(responder.accept().is_ok(), "the control made no request");
    }
}
