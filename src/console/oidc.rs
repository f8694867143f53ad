//! Sign-in through the province's OpenID provider (`[console.oidc]`): the authorization code
//! flow with PKCE (S256), `state` and `nonce`, and RP-initiated logout.
//!
//! - The provider's endpoints come from its discovery document
//!   (`{issuer}/.well-known/openid-configuration`), read when first needed and kept for an
//!   hour, so a node starts even while the provider is down (break-glass still works then).
//! - A login in progress (`state` → PKCE verifier, nonce, where to go back to) is kept on the
//!   server for ten minutes at most, at most [`MAX_PENDING`] at once, and bound to the browser
//!   that started it by the `lt_oidc` cookie: a code and state carried to another browser (login
//!   CSRF) are refused. The cookie is not named `op_…`, the provider's own prefix when both run on
//!   one host.
//! - The ID token is verified with `jsonwebtoken` on aws-lc-rs (RS256 only) against the
//!   provider's JWKS, cached by `kid` and fetched again once when a token names a key not seen
//!   yet (the provider rotated its keys); then `iss`, `aud` (= `client_id`, and `azp` when
//!   several audiences), `exp` and `iat` with a minute of leeway, and the `nonce` of this login.
//! - Who the person is on the console comes from the token's claims ([`principal_of`]): a role
//!   only through `[console.oidc.roles]`, and a clerk only for one of this node's agencies.
//!   Every refusal is answered in Vietnamese and recorded (`console.login_failed`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_lc_rs::constant_time::verify_slices_are_equal;
use aws_lc_rs::digest::{SHA256, digest};
use axum::extract::{Query, State};
use axum::http::header::{CONTENT_SECURITY_POLICY, COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::{Value, json};

use super::access::{Principal, Via};
use super::pages::login::{record, safe_next};
use super::{ConsoleState, see_other_with_cookie, session};
use crate::config::{OidcConfig, Role};
use crate::edxml::OrganId;
use crate::store::Store;

/// The cookie that binds a login in progress to the browser that started it.
pub const COOKIE_NAME: &str = "lt_oidc";
/// How long a person has at the provider before the login must be started again.
const PENDING_TTL: Duration = Duration::from_secs(10 * 60);
/// Most logins in progress kept at once (the oldest are dropped first): starting logins in a
/// loop cannot grow the map without bound.
pub const MAX_PENDING: usize = 2_000;
/// How long the discovery document is trusted before it is read again.
const DISCOVERY_TTL: Duration = Duration::from_secs(3600);
/// Clock skew allowed on `exp` and `iat`, in seconds.
const LEEWAY_SECS: u64 = 60;
/// Every request to the provider: a provider that hangs must not hold a person's page forever.
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a sign-in through the provider did not complete (logged and audited; the person sees a
/// Vietnamese page that says what to do).
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    #[error("the identity provider could not be reached: {0}")]
    Unreachable(String),
    #[error("the identity provider's answer is not usable: {0}")]
    BadAnswer(String),
    #[error("the identity provider refused: {0}")]
    Refused(String),
    #[error("the ID token is not valid: {0}")]
    IdToken(String),
}

/// The parts of the discovery document this client uses.
#[derive(Debug, Clone, Deserialize)]
pub struct Discovery {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub jwks_uri: String,
    #[serde(default)]
    pub end_session_endpoint: Option<String>,
    #[serde(default)]
    pub token_endpoint_auth_methods_supported: Option<Vec<String>>,
    #[serde(default)]
    pub code_challenge_methods_supported: Option<Vec<String>>,
}

/// How the client authenticates at the token endpoint (RFC 6749 §2.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ClientAuth {
    Basic,
    Post,
}

impl Discovery {
    /// `client_secret_basic` unless the provider lists only `client_secret_post` (the spec's
    /// default when the list is absent is basic).
    fn client_auth(&self) -> ClientAuth {
        match &self.token_endpoint_auth_methods_supported {
            Some(m)
                if !m.iter().any(|x| x == "client_secret_basic")
                    && m.iter().any(|x| x == "client_secret_post") =>
            {
                ClientAuth::Post
            }
            _ => ClientAuth::Basic,
        }
    }
}

struct Pending {
    verifier: String,
    nonce: String,
    next: String,
    /// The `lt_oidc` cookie value of the browser that started this login.
    browser: String,
    created: Instant,
}

/// What the callback proved: the verified ID token (kept for logout) and its claims.
pub struct Verified {
    pub id_token: String,
    pub claims: Value,
}

/// The OpenID client of this node's console.
pub struct Oidc {
    config: OidcConfig,
    redirect_uri: String,
    post_logout_redirect_uri: String,
    /// The issuer's origin, where the end-session endpoint is.
    origin: Option<String>,
    http: reqwest::Client,
    discovery: Mutex<Option<(Arc<Discovery>, Instant)>>,
    /// The provider's RS256 verification keys by `kid` (`""` for a key without one).
    keys: Mutex<HashMap<String, Jwk>>,
    pending: Mutex<HashMap<String, Pending>>,
}

/// Locks a map that stays consistent through a panic (every change is one insert or remove).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn encode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// `base`, with `params` added to its query.
fn with_query(base: &str, params: &[(&str, &str)]) -> String {
    let mut url = base.to_owned();
    let mut sep = if base.contains('?') { '&' } else { '?' };
    for (k, v) in params {
        url.push(sep);
        url.push_str(&encode(k));
        url.push('=');
        url.push_str(&encode(v));
        sep = '&';
    }
    url
}

/// The PKCE S256 challenge of `verifier` (RFC 7636 §4.2).
pub fn pkce_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(digest(&SHA256, verifier.as_bytes()).as_ref())
}

fn same_issuer(a: &str, b: &str) -> bool {
    a.trim_end_matches('/') == b.trim_end_matches('/')
}

impl Oidc {
    /// The client for `config`, reached back at `public_url` (no trailing slash).
    pub fn new(config: OidcConfig, public_url: &str) -> Result<Oidc, OidcError> {
        let http = reqwest::Client::builder()
            .timeout(HTTP_TIMEOUT)
            .connect_timeout(HTTP_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("lienthong/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| OidcError::Unreachable(format!("cannot build the HTTP client: {e}")))?;
        let origin = reqwest::Url::parse(&config.issuer)
            .ok()
            .map(|u| u.origin().ascii_serialization())
            .filter(|o| o != "null");
        Ok(Oidc {
            origin,
            config,
            redirect_uri: format!("{public_url}/console/login/callback"),
            post_logout_redirect_uri: format!("{public_url}/console/login?why=out"),
            http,
            discovery: Mutex::new(None),
            keys: Mutex::new(HashMap::new()),
            pending: Mutex::new(HashMap::new()),
        })
    }

    /// The provider's origin (`https://sso.gialai.gov.vn`), for the pages' `form-action`.
    pub fn provider_origin(&self) -> Option<&str> {
        self.origin.as_deref()
    }

    pub fn config(&self) -> &OidcConfig {
        &self.config
    }

    /// The redirect URI registered at the provider (`{public_url}/console/login/callback`).
    pub fn redirect_uri(&self) -> &str {
        &self.redirect_uri
    }

    /// The discovery document, from the cache while it is fresh.
    pub async fn discovery(&self) -> Result<Arc<Discovery>, OidcError> {
        if let Some((d, at)) = lock(&self.discovery).as_ref()
            && at.elapsed() < DISCOVERY_TTL
        {
            return Ok(d.clone());
        }
        let url = format!("{}/.well-known/openid-configuration", self.config.issuer);
        let d: Discovery = self.get_json(&url).await?;
        // OpenID Connect Discovery §4.3: the document must name the issuer it was read from.
        if !same_issuer(&d.issuer, &self.config.issuer) {
            return Err(OidcError::BadAnswer(format!(
                "the discovery document names issuer {:?}, not the configured {:?}",
                d.issuer, self.config.issuer
            )));
        }
        if let Some(m) = &d.code_challenge_methods_supported
            && !m.iter().any(|x| x == "S256")
        {
            return Err(OidcError::BadAnswer(
                "the provider does not support PKCE with S256".into(),
            ));
        }
        let d = Arc::new(d);
        *lock(&self.discovery) = Some((d.clone(), Instant::now()));
        Ok(d)
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, url: &str) -> Result<T, OidcError> {
        let r = self
            .http
            .get(url)
            .header("accept", "application/json")
            .send()
            .await
            .map_err(|e| OidcError::Unreachable(format!("GET {url}: {e}")))?;
        if !r.status().is_success() {
            return Err(OidcError::BadAnswer(format!(
                "GET {url} answered {}",
                r.status()
            )));
        }
        r.json()
            .await
            .map_err(|e| OidcError::BadAnswer(format!("GET {url}: {e}")))
    }

    /// Starts a login: keeps what the callback needs and returns the provider's authorization
    /// URL. `browser` is the value of the browser's `lt_oidc` cookie.
    pub async fn begin(&self, next: &str, browser: &str) -> Result<String, OidcError> {
        let d = self.discovery().await?;
        let state = session::random_token();
        let verifier = session::random_token();
        let nonce = session::random_token();
        let mut scope = vec!["openid".to_owned()];
        scope.extend(
            self.config
                .scopes
                .iter()
                .filter(|s| s.as_str() != "openid")
                .cloned(),
        );
        let url = with_query(
            &d.authorization_endpoint,
            &[
                ("response_type", "code"),
                ("client_id", &self.config.client_id),
                ("redirect_uri", &self.redirect_uri),
                ("scope", &scope.join(" ")),
                ("state", &state),
                ("nonce", &nonce),
                ("code_challenge", &pkce_challenge(&verifier)),
                ("code_challenge_method", "S256"),
            ],
        );
        self.keep(
            state,
            Pending {
                verifier,
                nonce,
                next: next.to_owned(),
                browser: browser.to_owned(),
                created: Instant::now(),
            },
        );
        Ok(url)
    }

    fn keep(&self, state: String, p: Pending) {
        let mut map = lock(&self.pending);
        map.retain(|_, p| p.created.elapsed() < PENDING_TTL);
        while map.len() >= MAX_PENDING {
            let Some(oldest) = map
                .iter()
                .min_by_key(|(_, p)| p.created)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            map.remove(&oldest);
        }
        map.insert(state, p);
    }

    /// The login in progress of `state`, taken (a state is good for one callback), if it is
    /// younger than ten minutes and was started by this `browser`.
    fn take(&self, state: &str, browser: Option<&str>) -> Option<Pending> {
        let p = lock(&self.pending).remove(state)?;
        let same_browser = browser
            .is_some_and(|b| verify_slices_are_equal(b.as_bytes(), p.browser.as_bytes()).is_ok());
        (same_browser && p.created.elapsed() < PENDING_TTL).then_some(p)
    }

    /// Logins in progress (for tests of the bound).
    pub fn pending_count(&self) -> usize {
        lock(&self.pending).len()
    }

    /// Exchanges `code` for tokens and verifies the ID token against `pending`'s nonce.
    async fn finish(&self, code: &str, pending: &Pending) -> Result<Verified, OidcError> {
        let d = self.discovery().await?;
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", self.redirect_uri.as_str()),
            ("code_verifier", pending.verifier.as_str()),
        ];
        let secret = self.config.client_secret.expose();
        let mut req = self.http.post(&d.token_endpoint);
        match d.client_auth() {
            ClientAuth::Basic => {
                // RFC 6749 §2.3.1: id and secret are form-encoded before base64.
                let pair = format!("{}:{}", encode(&self.config.client_id), encode(secret));
                req = req.header(
                    "authorization",
                    format!("Basic {}", STANDARD.encode(pair.as_bytes())),
                );
            }
            ClientAuth::Post => {
                form.push(("client_id", self.config.client_id.as_str()));
                form.push(("client_secret", secret));
            }
        }
        let r = req
            .header("accept", "application/json")
            .form(&form)
            .send()
            .await
            .map_err(|e| OidcError::Unreachable(format!("token endpoint: {e}")))?;
        let status = r.status();
        let body: Value = r
            .json()
            .await
            .map_err(|e| OidcError::BadAnswer(format!("token endpoint ({status}): {e}")))?;
        if !status.is_success() {
            let error = body.get("error").and_then(Value::as_str).unwrap_or("?");
            let text = body
                .get("error_description")
                .and_then(Value::as_str)
                .unwrap_or("");
            return Err(OidcError::Refused(format!(
                "token endpoint answered {status}: {error} {text}"
            )));
        }
        let id_token = body
            .get("id_token")
            .and_then(Value::as_str)
            .ok_or_else(|| OidcError::BadAnswer("the token response has no id_token".into()))?
            .to_owned();
        let claims = self
            .verify_id_token(&d, &id_token, &pending.nonce, now_secs())
            .await?;
        Ok(Verified { id_token, claims })
    }

    /// The claims of `token` once its signature, issuer, audience, times and nonce are right.
    pub async fn verify_id_token(
        &self,
        d: &Discovery,
        token: &str,
        nonce: &str,
        now: u64,
    ) -> Result<Value, OidcError> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|e| OidcError::IdToken(format!("header: {e}")))?;
        if header.alg != Algorithm::RS256 {
            return Err(OidcError::IdToken(format!(
                "signed with {:?}; only RS256 is accepted",
                header.alg
            )));
        }
        let kid = header.kid.unwrap_or_default();
        let jwk = match self.key(&kid) {
            Some(k) => k,
            None => {
                // Unknown key: the provider may have rotated. Read its JWKS again, once.
                self.refresh_keys(&d.jwks_uri).await?;
                self.key(&kid).ok_or_else(|| {
                    OidcError::IdToken(format!("no RS256 key with kid {kid:?} in the JWKS"))
                })?
            }
        };
        let key = DecodingKey::from_jwk(&jwk)
            .map_err(|e| OidcError::IdToken(format!("key {kid:?}: {e}")))?;
        let mut v = Validation::new(Algorithm::RS256);
        v.set_issuer(&[d.issuer.as_str()]);
        v.set_audience(&[self.config.client_id.as_str()]);
        v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        v.leeway = LEEWAY_SECS;
        let claims = jsonwebtoken::decode::<Value>(token, &key, &v)
            .map_err(|e| OidcError::IdToken(e.to_string()))?
            .claims;
        // `iat` is required by OpenID Connect Core §2; one from the future is refused.
        match claims.get("iat").and_then(Value::as_u64) {
            Some(iat) if iat <= now + LEEWAY_SECS => {}
            Some(iat) => {
                return Err(OidcError::IdToken(format!(
                    "issued in the future (iat {iat}, now {now})"
                )));
            }
            None => return Err(OidcError::IdToken("no iat".into())),
        }
        // Core §3.1.3.7: with several audiences, `azp` must be this client; if present, always.
        let several = claims
            .get("aud")
            .and_then(Value::as_array)
            .is_some_and(|a| a.len() > 1);
        match claims.get("azp").and_then(Value::as_str) {
            Some(azp) if azp != self.config.client_id => {
                return Err(OidcError::IdToken(format!(
                    "azp {azp:?} is not this client"
                )));
            }
            None if several => {
                return Err(OidcError::IdToken("several audiences and no azp".into()));
            }
            _ => {}
        }
        let got = claims.get("nonce").and_then(Value::as_str).unwrap_or("");
        if verify_slices_are_equal(got.as_bytes(), nonce.as_bytes()).is_err() {
            return Err(OidcError::IdToken(
                "the nonce is not this login's (a replayed or foreign token)".into(),
            ));
        }
        Ok(claims)
    }

    fn key(&self, kid: &str) -> Option<Jwk> {
        let keys = lock(&self.keys);
        match keys.get(kid) {
            Some(k) => Some(k.clone()),
            // A token without `kid` from a provider with a single key.
            None if kid.is_empty() && keys.len() == 1 => keys.values().next().cloned(),
            None => None,
        }
    }

    async fn refresh_keys(&self, jwks_uri: &str) -> Result<(), OidcError> {
        #[derive(Deserialize)]
        struct Set {
            keys: Vec<Value>,
        }
        let set: Set = self.get_json(jwks_uri).await?;
        let mut keys = HashMap::new();
        for k in set.keys {
            // One key of a kind this client does not know does not spoil the others.
            let Ok(jwk) = serde_json::from_value::<Jwk>(k) else {
                continue;
            };
            let rsa = matches!(jwk.algorithm, AlgorithmParameters::RSA(_));
            let for_signing = !matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption));
            let rs256 = jwk
                .common
                .key_algorithm
                .is_none_or(|a| a == KeyAlgorithm::RS256);
            if rsa && for_signing && rs256 {
                keys.insert(jwk.common.key_id.clone().unwrap_or_default(), jwk);
            }
        }
        *lock(&self.keys) = keys;
        Ok(())
    }

    /// Where to send a person who signs out with `id_token` to end the provider's session too
    /// (RP-initiated logout), or `None` when the provider has no end-session endpoint.
    pub async fn end_session_url(&self, id_token: &str) -> Option<String> {
        let d = match self.discovery().await {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(error = %e, "logout: the provider's discovery document is unavailable; local logout only");
                return None;
            }
        };
        let end = d.end_session_endpoint.as_deref()?;
        Some(with_query(
            end,
            &[
                ("id_token_hint", id_token),
                ("post_logout_redirect_uri", &self.post_logout_redirect_uri),
                ("client_id", &self.config.client_id),
            ],
        ))
    }
}

/// Why the claims of a valid token give no access to this node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// None of the role claim's values is in `[console.oidc.roles]`.
    NoRole { values: Vec<String> },
    /// A clerk whose agency claim is missing or not one of this node's agencies.
    ForeignAgency { agency: Option<String> },
    /// The token has no usable `sub`.
    NoSubject,
}

impl Refusal {
    fn why(&self) -> &'static str {
        match self {
            Refusal::NoRole { .. } => "no mapped role",
            Refusal::ForeignAgency { .. } => "a clerk of an agency this node does not serve",
            Refusal::NoSubject => "no sub claim",
        }
    }
}

/// A claim by name, or by a dotted path into nested objects (Keycloak's `realm_access.roles`)
/// when no claim has the whole name.
fn claim<'a>(claims: &'a Value, name: &str) -> Option<&'a Value> {
    if let Some(v) = claims.get(name) {
        return Some(v);
    }
    name.split('.').try_fold(claims, |v, part| v.get(part))
}

/// The claim's values: one string, or a list of strings.
fn strings(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    }
}

/// Who the verified `claims` make a person on this node: the role is the first of the role
/// claim's values that `[console.oidc.roles]` lists; a clerk must belong to one of `agencies`
/// (this node's). Administrators are the node's, not an agency's: their agency claim is not
/// used.
pub fn principal_of(
    config: &OidcConfig,
    claims: &Value,
    agencies: &[&OrganId],
) -> Result<Principal, Refusal> {
    let subject = claims
        .get("sub")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or(Refusal::NoSubject)?
        .to_owned();
    let values = strings(claim(claims, &config.role_claim));
    let role = values
        .iter()
        .find_map(|v| config.roles.get(v).copied())
        .ok_or_else(|| Refusal::NoRole {
            values: values.clone(),
        })?;
    let agency = if role == Role::Clerk {
        let given = strings(claim(claims, &config.agency_claim))
            .into_iter()
            .next();
        let ours = given
            .as_deref()
            .and_then(|g| agencies.iter().find(|a| a.as_str() == g))
            .map(|a| (*a).clone());
        match ours {
            Some(a) => Some(a),
            None => return Err(Refusal::ForeignAgency { agency: given }),
        }
    } else {
        None
    };
    let name = [config.name_claim.as_str(), "name", "preferred_username"]
        .iter()
        .find_map(|c| {
            claim(claims, c)
                .and_then(Value::as_str)
                .filter(|s| !s.trim().is_empty())
        })
        .unwrap_or(&subject)
        .to_owned();
    Ok(Principal {
        subject,
        name,
        role,
        agency,
        via: Via::Oidc,
    })
}

#[derive(Debug, Deserialize)]
pub struct Start {
    next: Option<String>,
}

/// `GET /console/login/oidc?next=…`: to the provider's sign-in page.
pub async fn start<S: Store>(
    State(state): State<ConsoleState<S>>,
    headers: HeaderMap,
    Query(q): Query<Start>,
) -> Response {
    let Some(oidc) = state.oidc.clone() else {
        return state.error_page(
            None,
            StatusCode::NOT_FOUND,
            "Chưa cấu hình đăng nhập một lần",
            "Hệ thống này chưa được kết nối với hệ thống đăng nhập một lần của tỉnh.",
        );
    };
    let next = safe_next(q.next.as_deref());
    // One binding per browser, kept for its other tabs' logins.
    let browser = browser_cookie(&headers)
        .filter(|b| {
            b.len() == 43
                && b.bytes()
                    .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        })
        .map_or_else(session::random_token, str::to_owned);
    match oidc.begin(next, &browser).await {
        Ok(url) => {
            let cookie = format!(
                "{COOKIE_NAME}={browser}; Path=/console; HttpOnly; SameSite=Lax; Max-Age={}{}",
                PENDING_TTL.as_secs(),
                secure(&state)
            );
            see_other_with_cookie(&url, &cookie)
        }
        Err(e) => {
            tracing::error!(error = %e, "console sign-in: the identity provider is unavailable");
            provider_down(&state)
        }
    }
}

fn secure<S: Store>(state: &ConsoleState<S>) -> &'static str {
    if state.config.secure_cookies() {
        "; Secure"
    } else {
        ""
    }
}

fn browser_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|h| session::cookie_value(h, COOKIE_NAME))
}

fn provider_down<S: Store>(state: &ConsoleState<S>) -> Response {
    state.error_page(
        None,
        StatusCode::BAD_GATEWAY,
        "Không kết nối được hệ thống đăng nhập một lần",
        "Hệ thống đăng nhập một lần của tỉnh hiện không trả lời. Vui lòng thử lại sau ít phút; \
         khi cần gấp, quản trị hệ thống có thể dùng tài khoản quản trị khẩn cấp.",
    )
}

#[derive(Debug, Deserialize)]
pub struct Callback {
    code: Option<String>,
    state: Option<String>,
    /// RFC 9207: the issuer that answers (sent by providers that advertise
    /// `authorization_response_iss_parameter_supported`); checked when present.
    iss: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// `GET /console/login/callback?code=…&state=…`: back from the provider. (The `lt_oidc` cookie
/// is left to expire: another tab's login may still need it.)
pub async fn callback<S: Store>(
    State(state): State<ConsoleState<S>>,
    headers: HeaderMap,
    Query(q): Query<Callback>,
) -> Response {
    let state = &state;
    let headers = &headers;
    let Some(oidc) = state.oidc.clone() else {
        return state.error_page(
            None,
            StatusCode::NOT_FOUND,
            "Chưa cấu hình đăng nhập một lần",
            "Hệ thống này chưa được kết nối với hệ thống đăng nhập một lần của tỉnh.",
        );
    };
    let pending = q
        .state
        .as_deref()
        .and_then(|s| oidc.take(s, browser_cookie(headers)));
    let Some(pending) = pending else {
        // Not audited: anyone can send this URL, and nothing was tried for a person yet.
        tracing::warn!("console sign-in: a callback with an unknown, expired or foreign state");
        return state.error_page(
            None,
            StatusCode::BAD_REQUEST,
            "Phiên đăng nhập không hợp lệ",
            "Yêu cầu đăng nhập đã hết hạn hoặc không được bắt đầu từ trình duyệt này. \
             Vui lòng đăng nhập lại.",
        );
    };
    let failed = |why: String, detail: Value| async move {
        tracing::warn!(why, "console sign-in through the identity provider failed");
        let mut d = json!({"via": "oidc", "why": why});
        if let (Some(d), Some(extra)) = (d.as_object_mut(), detail.as_object()) {
            d.extend(extra.clone());
        }
        record(state, "console:oidc:-", "console.login_failed", d).await;
    };
    if let Some(iss) = &q.iss {
        let expected = oidc
            .discovery()
            .await
            .map_or_else(|_| oidc.config().issuer.clone(), |d| d.issuer.clone());
        if !same_issuer(iss, &expected) {
            failed(
                "the callback's iss is not the configured issuer (mix-up)".into(),
                json!({"iss": iss}),
            )
            .await;
            return state.error_page(
                None,
                StatusCode::BAD_REQUEST,
                "Phiên đăng nhập không hợp lệ",
                "Kết quả đăng nhập không đến từ hệ thống đăng nhập một lần đã cấu hình. \
                 Vui lòng đăng nhập lại.",
            );
        }
    }
    if let Some(error) = &q.error {
        failed(
            format!("the provider answered {error}"),
            json!({"error": error, "error_description": q.error_description}),
        )
        .await;
        return state.error_page(
            None,
            StatusCode::UNAUTHORIZED,
            "Đăng nhập không thành công",
            "Hệ thống đăng nhập một lần không xác nhận tài khoản. Vui lòng đăng nhập lại; \
             nếu vẫn không được, liên hệ quản trị hệ thống.",
        );
    }
    let Some(code) = q.code.as_deref().filter(|c| !c.is_empty()) else {
        failed("no code in the callback".into(), json!({})).await;
        return state.error_page(
            None,
            StatusCode::BAD_REQUEST,
            "Phiên đăng nhập không hợp lệ",
            "Kết quả đăng nhập thiếu mã xác nhận. Vui lòng đăng nhập lại.",
        );
    };
    let verified = match oidc.finish(code, &pending).await {
        Ok(v) => v,
        Err(OidcError::Unreachable(e)) => {
            failed(e, json!({})).await;
            return provider_down(state);
        }
        Err(e) => {
            failed(e.to_string(), json!({})).await;
            return state.error_page(
                None,
                StatusCode::BAD_GATEWAY,
                "Không hoàn tất được đăng nhập",
                "Không xác minh được kết quả đăng nhập từ hệ thống đăng nhập một lần. \
                 Vui lòng đăng nhập lại; nếu lỗi lặp lại, liên hệ quản trị hệ thống.",
            );
        }
    };
    let agencies: Vec<&OrganId> = state
        .node
        .config
        .agencies
        .iter()
        .map(|a| &a.organization.organ_id)
        .collect();
    let subject = verified
        .claims
        .get("sub")
        .and_then(Value::as_str)
        .unwrap_or("-")
        .to_owned();
    match principal_of(oidc.config(), &verified.claims, &agencies) {
        Ok(principal) => {
            record(
                state,
                &principal.actor(),
                "console.login",
                json!({
                    "via": "oidc",
                    "role": principal.role.as_str(),
                    "agency": principal.agency.as_ref().map(|a| a.to_string()),
                }),
            )
            .await;
            tracing::info!(actor = %principal.actor(), "console sign-in through the identity provider");
            let id = state.sessions.create(principal, Some(verified.id_token));
            see_other_with_cookie(
                &pending.next,
                &session::cookie(&id, state.config.secure_cookies()),
            )
        }
        Err(refusal) => {
            let detail = match &refusal {
                Refusal::NoRole { values } => json!({"sub": subject, "roles": values}),
                Refusal::ForeignAgency { agency } => json!({"sub": subject, "agency": agency}),
                Refusal::NoSubject => json!({}),
            };
            let actor = format!("console:oidc:{subject}");
            let mut d = json!({"via": "oidc", "why": refusal.why()});
            if let (Some(d), Some(extra)) = (d.as_object_mut(), detail.as_object()) {
                d.extend(extra.clone());
            }
            record(state, &actor, "console.login_failed", d).await;
            tracing::warn!(actor, why = refusal.why(), "console sign-in refused");
            let text = match &refusal {
                Refusal::ForeignAgency { agency: Some(a) } => format!(
                    "Tài khoản văn thư của bạn thuộc đơn vị có mã {a}, không thuộc các đơn vị do \
                     hệ thống này phục vụ. Vui lòng đăng nhập vào hệ thống của đơn vị mình, hoặc \
                     liên hệ quản trị hệ thống. Lần đăng nhập này đã được ghi vào nhật ký kiểm toán."
                ),
                Refusal::ForeignAgency { agency: None } => "Tài khoản văn thư của bạn chưa được \
                     gắn với đơn vị nào. Vui lòng liên hệ quản trị hệ thống. Lần đăng nhập này đã \
                     được ghi vào nhật ký kiểm toán."
                    .to_owned(),
                _ => "Tài khoản của bạn chưa được cấp vai trò trên hệ thống liên thông văn bản. \
                      Vui lòng liên hệ quản trị hệ thống để được cấp quyền. Lần đăng nhập này đã \
                      được ghi vào nhật ký kiểm toán."
                    .to_owned(),
            };
            state.error_page(
                None,
                StatusCode::FORBIDDEN,
                "Không có quyền truy cập",
                &text,
            )
        }
    }
}

/// Adds the provider's origin to the pages' `form-action`: the logout form posts to the console,
/// which answers with a redirect to the provider's end-session endpoint, and browsers check a
/// form's redirects against `form-action` too (a `'self'`-only policy would stop the logout
/// there). A layer outside [`super::security_headers`], so that policy stays in one place.
pub async fn allow_provider_form_action<S: Store>(
    State(state): State<ConsoleState<S>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let mut res = next.run(req).await;
    let Some(origin) = state.oidc.as_ref().and_then(|o| o.provider_origin()) else {
        return res;
    };
    let csp = res
        .headers()
        .get(CONTENT_SECURITY_POLICY)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.replace(
                "form-action 'self'",
                &format!("form-action 'self' {origin}"),
            )
        });
    if let Some(v) = csp.and_then(|c| HeaderValue::from_str(&c).ok()) {
        res.headers_mut().insert(CONTENT_SECURITY_POLICY, v);
    }
    res
}

/// Where logout sends a person who signed in with `id_token` (the provider's end-session
/// endpoint), or `None` for the console's own sign-in page.
pub async fn logout_target<S: Store>(
    state: &ConsoleState<S>,
    id_token: Option<&str>,
) -> Option<String> {
    let oidc = state.oidc.as_ref()?;
    oidc.end_session_url(id_token?).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;
    use aws_lc_rs::rsa::{KeyPair, KeySize};
    use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_SHA256};
    use std::collections::BTreeMap;

    const ISSUER: &str = "https://sso.gialai.gov.vn/realms/gialai";

    fn config() -> OidcConfig {
        OidcConfig {
            issuer: ISSUER.into(),
            client_id: "lienthong-console".into(),
            client_secret: Secret("s".into()),
            scopes: vec!["profile".into()],
            role_claim: "role".into(),
            agency_claim: "agency".into(),
            name_claim: "name".into(),
            roles: BTreeMap::from([
                ("van_thu".to_owned(), Role::Clerk),
                ("qt".to_owned(), Role::SystemAdmin),
                ("gs".to_owned(), Role::Auditor),
            ]),
        }
    }

    fn id(s: &str) -> OrganId {
        OrganId::parse_strict(s).expect("organ id")
    }

    #[test]
    fn pkce_challenge_is_rfc7636s() {
        // RFC 7636, Appendix B.
        assert_eq!(
            pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn query_parameters_are_encoded_and_appended() {
        assert_eq!(
            with_query("https://x/auth", &[("a", "b c"), ("r", "http://y/?q=1&z")]),
            "https://x/auth?a=b+c&r=http%3A%2F%2Fy%2F%3Fq%3D1%26z"
        );
        assert_eq!(
            with_query("https://x/auth?k=1", &[("a", "b")]),
            "https://x/auth?k=1&a=b"
        );
    }

    #[test]
    fn claims_map_to_a_principal_only_through_the_roles_table() {
        let c = config();
        let stttt = id("000.00.05.H21");
        let ours = [&stttt];
        let clerk = json!({"sub": "u1", "name": "Trần Thị Thu Hà", "agency": "000.00.05.H21", "role": "van_thu"});
        let p = principal_of(&c, &clerk, &ours).expect("a clerk of ours");
        assert_eq!(p.role, Role::Clerk);
        assert_eq!(p.agency, Some(stttt.clone()));
        assert_eq!(p.name, "Trần Thị Thu Hà");
        assert_eq!(p.via, Via::Oidc);

        let foreign = json!({"sub": "u2", "agency": "000.00.00.H41", "role": "van_thu"});
        assert_eq!(
            principal_of(&c, &foreign, &ours),
            Err(Refusal::ForeignAgency {
                agency: Some("000.00.00.H41".into())
            })
        );
        let no_agency = json!({"sub": "u2", "role": ["van_thu"]});
        assert_eq!(
            principal_of(&c, &no_agency, &ours),
            Err(Refusal::ForeignAgency { agency: None })
        );

        // A list: the first value the table knows wins; administrators carry no agency.
        let admin = json!({"sub": "u3", "preferred_username": "quantri", "agency": "000.00.00.H41",
                           "role": ["nhan_vien", "qt", "gs"]});
        let p = principal_of(&c, &admin, &ours).expect("an administrator");
        assert_eq!(p.role, Role::SystemAdmin);
        assert_eq!(p.agency, None);
        assert_eq!(p.name, "quantri", "name falls back to preferred_username");

        let none = json!({"sub": "u4", "role": ["nhan_vien", 3]});
        assert_eq!(
            principal_of(&c, &none, &ours),
            Err(Refusal::NoRole {
                values: vec!["nhan_vien".into()]
            })
        );
        assert_eq!(
            principal_of(&c, &json!({"role": "qt"}), &ours),
            Err(Refusal::NoSubject)
        );

        // Keycloak's realm roles, by a dotted path.
        let kc = OidcConfig {
            role_claim: "realm_access.roles".into(),
            ..config()
        };
        let token = json!({"sub": "u5", "realm_access": {"roles": ["offline_access", "gs"]}});
        assert_eq!(
            principal_of(&kc, &token, &ours).map(|p| p.role),
            Ok(Role::Auditor)
        );
    }

    fn client() -> Oidc {
        Oidc::new(config(), "https://lienthong.gialai.gov.vn").expect("client")
    }

    fn pending(browser: &str) -> Pending {
        Pending {
            verifier: "v".into(),
            nonce: "n".into(),
            next: "/console/".into(),
            browser: browser.into(),
            created: Instant::now(),
        }
    }

    #[test]
    fn a_pending_login_is_bound_to_its_browser_and_used_once() {
        let o = client();
        o.keep("s1".into(), pending("browser-a"));
        assert!(o.take("s1", Some("browser-b")).is_none(), "another browser");
        assert!(
            o.take("s1", Some("browser-a")).is_none(),
            "spent by the try"
        );
        o.keep("s2".into(), pending("browser-a"));
        assert!(o.take("s2", None).is_none(), "no cookie");
        o.keep("s3".into(), pending("browser-a"));
        assert!(o.take("s3", Some("browser-a")).is_some());
        assert!(o.take("s3", Some("browser-a")).is_none(), "once only");
        let mut old = pending("browser-a");
        old.created = Instant::now() - PENDING_TTL;
        o.keep("s4".into(), old);
        assert!(o.take("s4", Some("browser-a")).is_none(), "too old");
    }

    #[test]
    fn pending_logins_are_bounded() {
        let o = client();
        for i in 0..MAX_PENDING + 50 {
            o.keep(format!("s{i}"), pending("b"));
        }
        assert_eq!(o.pending_count(), MAX_PENDING);
        assert!(
            o.take(&format!("s{}", MAX_PENDING + 49), Some("b"))
                .is_some()
        );
    }

    /// A provider's signing key, and tokens it signs (RS256, as oidc-provider and Keycloak do).
    struct Signer {
        key: KeyPair,
        kid: String,
    }

    impl Signer {
        fn new(kid: &str) -> Signer {
            Signer {
                key: KeyPair::generate(KeySize::Rsa2048).expect("RSA key"),
                kid: kid.into(),
            }
        }

        fn jwk(&self) -> Jwk {
            let pk = self.key.public_key();
            let n = URL_SAFE_NO_PAD.encode(pk.modulus().big_endian_without_leading_zero());
            let e = URL_SAFE_NO_PAD.encode(pk.exponent().big_endian_without_leading_zero());
            serde_json::from_value(
                json!({"kty": "RSA", "use": "sig", "alg": "RS256", "kid": self.kid, "n": n, "e": e}),
            )
            .expect("jwk")
        }

        fn sign(&self, header: Value, claims: &Value) -> String {
            let input = format!(
                "{}.{}",
                URL_SAFE_NO_PAD.encode(header.to_string()),
                URL_SAFE_NO_PAD.encode(claims.to_string())
            );
            let mut sig = vec![0; self.key.public_modulus_len()];
            self.key
                .sign(
                    &RSA_PKCS1_SHA256,
                    &aws_lc_rs::rand::SystemRandom::new(),
                    input.as_bytes(),
                    &mut sig,
                )
                .expect("sign");
            format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
        }

        fn token(&self, claims: &Value) -> String {
            self.sign(json!({"alg": "RS256", "kid": self.kid}), claims)
        }
    }

    fn discovery() -> Discovery {
        Discovery {
            issuer: ISSUER.into(),
            authorization_endpoint: format!("{ISSUER}/auth"),
            token_endpoint: format!("{ISSUER}/token"),
            // Nothing listens there: a fetch for an unknown key fails.
            jwks_uri: "http://127.0.0.1:9/jwks".into(),
            end_session_endpoint: None,
            token_endpoint_auth_methods_supported: None,
            code_challenge_methods_supported: None,
        }
    }

    const NOW: u64 = 1_796_663_056;

    fn claims() -> Value {
        json!({"sub": "u1", "iss": ISSUER, "aud": "lienthong-console", "iat": NOW - 5,
               "exp": NOW + 300, "nonce": "nonce-1", "role": "van_thu"})
    }

    fn with(mut v: Value, k: &str, x: Value) -> Value {
        v[k] = x;
        v
    }

    #[tokio::test]
    async fn id_tokens_are_verified_whole() {
        let o = client();
        let signer = Signer::new("k1");
        lock(&o.keys).insert("k1".into(), signer.jwk());
        let d = discovery();
        // jsonwebtoken checks exp against the real clock: shift the fixture to now.
        let now = now_secs();
        let c = |v: Value| {
            let mut v = v;
            for k in ["iat", "exp"] {
                if let Some(t) = v[k].as_u64() {
                    v[k] = json!(t + now - NOW);
                }
            }
            v
        };
        let check = |t: String| {
            let o = &o;
            let d = &d;
            async move { o.verify_id_token(d, &t, "nonce-1", now).await }
        };

        let good = check(signer.token(&c(claims()))).await.expect("valid");
        assert_eq!(good["sub"], "u1");
        let listed = with(claims(), "aud", json!(["lienthong-console"]));
        assert!(check(signer.token(&c(listed))).await.is_ok());

        let bad: Vec<(&str, Value)> = vec![
            ("another nonce", with(claims(), "nonce", json!("nonce-2"))),
            ("no nonce", {
                let mut v = claims();
                v.as_object_mut().map(|o| o.remove("nonce"));
                v
            }),
            (
                "another audience",
                with(claims(), "aud", json!("other-app")),
            ),
            (
                "another issuer",
                with(claims(), "iss", json!("https://evil.example")),
            ),
            ("expired", with(claims(), "exp", json!(NOW - 120))),
            ("from the future", with(claims(), "iat", json!(NOW + 600))),
            (
                "several audiences, no azp",
                with(claims(), "aud", json!(["lienthong-console", "other"])),
            ),
            (
                "azp of another client",
                with(claims(), "azp", json!("other")),
            ),
        ];
        for (what, v) in bad {
            let r = check(signer.token(&c(v))).await;
            assert!(matches!(r, Err(OidcError::IdToken(_))), "{what}: {r:?}");
        }

        // A signature by another key under the same kid.
        let forger = Signer::new("k1");
        assert!(check(forger.token(&c(claims()))).await.is_err());
        // A changed payload.
        let t = signer.token(&c(claims()));
        let mut parts: Vec<String> = t.split('.').map(str::to_owned).collect();
        parts[1] = URL_SAFE_NO_PAD.encode(c(with(claims(), "sub", json!("admin"))).to_string());
        assert!(check(parts.join(".")).await.is_err());
        // Only RS256: an HMAC token "signed" with anything is refused before any key is used.
        let hs = signer.sign(json!({"alg": "HS256", "kid": "k1"}), &c(claims()));
        assert!(check(hs).await.is_err());
        // An unknown kid makes one fetch of the JWKS (which fails here): refused.
        let other = Signer::new("k2");
        let r = check(other.token(&c(claims()))).await;
        assert!(matches!(r, Err(OidcError::Unreachable(_))), "{r:?}");
    }
}
