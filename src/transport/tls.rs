//! Mutual TLS between nodes (issue 4): the rustls configurations of the peer endpoint (server,
//! client certificate required) and of the push client (client certificate presented, the peer's
//! server certificate checked against that peer's own configuration), and the mapping of a
//! verified client certificate to exactly one configured peer.
//!
//! How a peer's certificate is recognised is [`PeerTls`](crate::config::PeerTls): every configured check must pass —
//! it chains to one of the peer's `ca` files with the EKU of its role (clientAuth when it
//! pushes to us, serverAuth when we push to it), its SHA-256 is one of `pin_sha256`, and it names
//! `tls_name` as a DNS subjectAltName. An agency signing certificate (EKU document signing) is
//! therefore never a usable TLS identity. A pin alone skips the CA, chain and EKU checks (the
//! pin names the very certificate) but not its validity period.
//!
//! **Invariant:** on the mutual-TLS listener the pushing peer is the configured peer whose checks
//! the verified client certificate passes — nothing in the request can change it.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, DistinguishedName, RootCertStore,
    ServerConfig, SignatureScheme,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, TrustAnchor, UnixTime};

use crate::Error;
use crate::config::{Config, PeerConfig, TlsConfig};
use crate::error::{Code, FormatError};

fn bad(path: impl Into<String>, problem: impl Into<String>) -> Error {
    FormatError::new(Code::ConfigInvalid, path, problem).into()
}

/// The crypto provider of every TLS connection of the node (aws-lc-rs, as the rest of the node).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// SHA-256 of a DER certificate: what `pin_sha256` holds.
pub fn fingerprint(der: &[u8]) -> [u8; 32] {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, der);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// The PEM certificates of `path`, at least one (`CONFIG_INVALID` otherwise).
pub(crate) fn certs_from(path: &Path) -> Result<Vec<CertificateDer<'static>>, Error> {
    let shown = path.display().to_string();
    let certs: Vec<_> = CertificateDer::pem_file_iter(path)
        .map_err(|e| bad(&shown, format!("cannot read PEM certificates: {e}")))?
        .collect::<Result<_, _>>()
        .map_err(|e| bad(&shown, format!("not PEM certificates: {e}")))?;
    if certs.is_empty() {
        return Err(bad(shown, "holds no certificate"));
    }
    Ok(certs)
}

/// The node's certificate chain (its certificate, then `chain`) and key.
pub fn identity(
    tls: &TlsConfig,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), Error> {
    let mut chain = certs_from(&tls.cert)?;
    if let Some(c) = &tls.chain {
        chain.extend(certs_from(c)?);
    }
    let key = PrivateKeyDer::from_pem_file(&tls.key).map_err(|e| {
        bad(
            format!("tls.key ({})", tls.key.display()),
            format!("cannot read the private key: {e}"),
        )
    })?;
    Ok((chain, key))
}

/// One configured peer's checks, prepared.
#[derive(Debug)]
struct Matcher {
    peer: String,
    anchors: Vec<TrustAnchor<'static>>,
    pins: Vec<[u8; 32]>,
    name: Option<ServerName<'static>>,
}

impl Matcher {
    fn new(peer: &PeerConfig) -> Result<Matcher, Error> {
        let at = format!("peer {:?}", peer.name);
        let mut anchors = Vec::new();
        for ca in &peer.tls.ca {
            for der in certs_from(ca)? {
                let a = webpki::anchor_from_trusted_cert(&der).map_err(|e| {
                    bad(
                        format!("{at}.ca ({})", ca.display()),
                        format!("not a usable CA certificate: {e:?}"),
                    )
                })?;
                anchors.push(a.to_owned());
            }
        }
        let name = match &peer.tls.name {
            Some(n) => Some(ServerName::try_from(n.clone()).map_err(|e| {
                bad(
                    format!("{at}.tls_name"),
                    format!("{n:?} is not a name: {e}"),
                )
            })?),
            None => None,
        };
        Ok(Matcher {
            peer: peer.name.clone(),
            anchors,
            pins: peer.tls.pin_sha256.clone(),
            name,
        })
    }

    /// Does `chain` (end entity first) pass every check of this peer, for `usage`?
    fn check(
        &self,
        chain: &[CertificateDer<'_>],
        now: UnixTime,
        usage: webpki::KeyUsage,
    ) -> Result<(), String> {
        let ee_der = chain.first().ok_or("no certificate")?;
        if !self.pins.is_empty() && !self.pins.contains(&fingerprint(ee_der)) {
            return Err(format!(
                "certificate SHA-256 {} is not pinned for peer {}",
                hex::encode(fingerprint(ee_der)),
                self.peer
            ));
        }
        if !self.pins.is_empty() {
            pinned_in_validity(ee_der, now)
                .map_err(|e| format!("{e} (pinned for peer {})", self.peer))?;
        }
        let ee = webpki::EndEntityCert::try_from(ee_der)
            .map_err(|e| format!("certificate does not parse: {e:?}"))?;
        if !self.anchors.is_empty() {
            ee.verify_for_usage(
                webpki::ALL_VERIFICATION_ALGS,
                &self.anchors,
                &chain[1..],
                now,
                usage,
                None,
                None,
            )
            .map_err(|e| {
                format!(
                    "certificate does not chain to the CA of peer {} for this use: {e:?}",
                    self.peer
                )
            })?;
        }
        if let Some(name) = &self.name {
            ee.verify_is_valid_for_subject_name(name).map_err(|_| {
                format!(
                    "certificate does not name {} (expected for peer {})",
                    name.to_str(),
                    self.peer
                )
            })?;
        }
        Ok(())
    }
}

/// A pinned certificate's own validity period at `now`. The pin replaces the CA (and with it the
/// EKU and chain), not the dates: a key is kept with care for as long as its certificate says, a
/// retired one (rotated out, left in backups) must stop working without anyone removing the pin.
/// So a self-signed node certificate needs a renewal date like any other.
fn pinned_in_validity(der: &[u8], now: UnixTime) -> Result<(), String> {
    use x509_parser::prelude::FromDer;
    let (_, c) = x509_parser::certificate::X509Certificate::from_der(der)
        .map_err(|e| format!("certificate does not parse: {e}"))?;
    let t = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
    let v = c.validity();
    if t < v.not_before.timestamp() {
        return Err(format!(
            "pinned certificate not valid before {}",
            v.not_before
        ));
    }
    if t > v.not_after.timestamp() {
        return Err(format!("pinned certificate expired on {}", v.not_after));
    }
    Ok(())
}

/// Maps verified client certificates to configured peers.
#[derive(Debug)]
pub struct PeerIdentifier {
    matchers: Vec<Matcher>,
}

impl PeerIdentifier {
    /// The peers of `config` whose certificate checks are configured (the `https://` ones).
    pub fn new(config: &Config) -> Result<PeerIdentifier, Error> {
        let matchers = config
            .peers
            .iter()
            .filter(|p| !p.tls.ca.is_empty() || !p.tls.pin_sha256.is_empty())
            .map(Matcher::new)
            .collect::<Result<_, _>>()?;
        Ok(PeerIdentifier { matchers })
    }

    /// The name of the one configured peer `chain` (the client's, end entity first) identifies;
    /// none or more than one is an error saying why.
    pub fn identify(&self, chain: &[CertificateDer<'_>]) -> Result<String, String> {
        let now = UnixTime::now();
        let mut found = Vec::new();
        let mut why = Vec::new();
        for m in &self.matchers {
            match m.check(chain, now, webpki::KeyUsage::client_auth()) {
                Ok(()) => found.push(m.peer.clone()),
                Err(e) => why.push(e),
            }
        }
        match found.len() {
            1 => Ok(found.remove(0)),
            0 => Err(format!(
                "the client certificate is not that of a configured peer ({})",
                why.join("; ")
            )),
            _ => Err(format!(
                "the client certificate matches several configured peers ({}); refusing to guess",
                found.join(", ")
            )),
        }
    }
}

/// The rustls verifier of the peer endpoint: a client certificate is required and must chain to
/// the CA of some peer (WebPKI, EKU clientAuth) or be pinned by some peer. Which peer it is, if
/// any, is decided after the handshake by [`PeerIdentifier`].
#[derive(Debug)]
struct ClientVerifier {
    inner: Option<Arc<dyn ClientCertVerifier>>,
    pins: Vec<[u8; 32]>,
    provider: Arc<CryptoProvider>,
}

impl ClientCertVerifier for ClientVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.as_ref().map_or(&[], |i| i.root_hint_subjects())
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        if self.pins.contains(&fingerprint(end_entity)) {
            return match pinned_in_validity(end_entity, now) {
                Ok(()) => Ok(ClientCertVerified::assertion()),
                Err(e) => {
                    tracing::warn!(problem = %e, "pinned client certificate refused");
                    Err(rustls::Error::InvalidCertificate(CertificateError::Expired))
                }
            };
        }
        match &self.inner {
            Some(i) => i.verify_client_cert(end_entity, intermediates, now),
            None => Err(rustls::Error::InvalidCertificate(
                CertificateError::UnknownIssuer,
            )),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

fn tls_error(what: &str, e: rustls::Error) -> Error {
    bad(what.to_owned(), e.to_string())
}

/// Everything the mutual-TLS peer endpoint needs: the server configuration and the identifier.
#[derive(Debug, Clone)]
pub struct PeerTlsServer {
    pub config: Arc<ServerConfig>,
    pub identifier: Arc<PeerIdentifier>,
    pub handshake_timeout: Duration,
}

impl PeerTlsServer {
    /// From the node's `[tls]` and its peers' certificate checks; reads the files it names.
    pub fn new(config: &Config) -> Result<PeerTlsServer, Error> {
        let tls = config.tls.as_ref().ok_or_else(|| {
            bad(
                "tls",
                "missing: the peer endpoint needs the node's identity",
            )
        })?;
        let provider = provider();
        let mut roots = RootCertStore::empty();
        let mut pins = Vec::new();
        for p in &config.peers {
            for ca in &p.tls.ca {
                for der in certs_from(ca)? {
                    roots.add(der).map_err(|e| {
                        bad(
                            format!("peer {:?}.ca ({})", p.name, ca.display()),
                            e.to_string(),
                        )
                    })?;
                }
            }
            pins.extend_from_slice(&p.tls.pin_sha256);
        }
        let inner = if roots.is_empty() {
            None
        } else {
            let v = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .build()
                .map_err(|e| bad("peer[].ca", e.to_string()))?;
            Some(v)
        };
        let verifier = ClientVerifier {
            inner,
            pins,
            provider: provider.clone(),
        };
        let (chain, key) = identity(tls)?;
        let mut server = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| tls_error("tls", e))?
            .with_client_cert_verifier(Arc::new(verifier))
            .with_single_cert(chain, key)
            .map_err(|e| tls_error(&format!("tls.cert ({})", tls.cert.display()), e))?;
        server.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(PeerTlsServer {
            config: Arc::new(server),
            identifier: Arc::new(PeerIdentifier::new(config)?),
            handshake_timeout: tls.handshake_timeout,
        })
    }
}

/// The push client's check of one peer's server certificate: WebPKI against the peer's CA (with
/// the URL's host name, EKU serverAuth) if `ca` is set, the pin if set, `tls_name` if set.
#[derive(Debug)]
struct ServerVerifier {
    matcher: Matcher,
    webpki: Option<Arc<WebPkiServerVerifier>>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for ServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Some(w) = &self.webpki {
            w.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)?;
        }
        let mut chain = vec![end_entity.clone()];
        chain.extend(intermediates.iter().cloned());
        self.matcher
            .check(&chain, now, webpki::KeyUsage::server_auth())
            .map_err(|e| {
                tracing::warn!(peer = %self.matcher.peer, problem = %e, "peer server certificate refused");
                rustls::Error::InvalidCertificate(CertificateError::ApplicationVerificationFailure)
            })?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// The rustls client configuration for pushing to `peer`: the node's certificate as the client
/// certificate, the peer's server certificate checked by that peer's [`PeerTls`](crate::config::PeerTls).
pub fn client_config(tls: &TlsConfig, peer: &PeerConfig) -> Result<ClientConfig, Error> {
    let provider = provider();
    let matcher = Matcher::new(peer)?;
    let webpki = if peer.tls.ca.is_empty() {
        None
    } else {
        let mut roots = RootCertStore::empty();
        for ca in &peer.tls.ca {
            for der in certs_from(ca)? {
                roots
                    .add(der)
                    .map_err(|e| bad(format!("peer {:?}.ca", peer.name), e.to_string()))?;
            }
        }
        Some(
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .build()
                .map_err(|e| bad(format!("peer {:?}.ca", peer.name), e.to_string()))?,
        )
    };
    let verifier = ServerVerifier {
        matcher,
        webpki,
        provider: provider.clone(),
    };
    let (chain, key) = identity(tls)?;
    let mut client = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_error("tls", e))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_client_auth_cert(chain, key)
        .map_err(|e| tls_error(&format!("tls.cert ({})", tls.cert.display()), e))?;
    client.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(client)
}
