//! A throwaway CA for revocation and path tests: a temp copy of the committed test PKI (never
//! modified itself), fresh leaf certificates from its issuing CA whose CRL distribution point and
//! OCSP responder URLs point at loopback ports chosen here, a real HTTP server on loopback serving
//! CRLs, and a real `openssl ocsp` responder (behind a loopback HTTP front; stopped on drop).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use lienthong::dsig::sign_package;
use lienthong::edxml::xml::Limits;
use lienthong::signer::KeyFileSigner;

use super::corpus::status_package;
use super::*;

/// The agency code of every leaf issued here (`From/OrganId` of the packages they sign).
pub const ORGAN: &str = "000.00.05.H21";

/// Where a leaf's revocation information points.
#[derive(Clone, Copy)]
pub enum Points {
    /// CRL distribution point `http://127.0.0.1:<crl port>/issuing.crl`, no OCSP.
    Crl,
    /// CRL distribution point of a stale CRL (`/stale.crl`), no OCSP.
    StaleCrl,
    /// OCSP responder `http://127.0.0.1:<ocsp port>/`, no CRL distribution point.
    Ocsp,
    /// OCSP responder on a port where nothing listens, no CRL distribution point.
    DeadOcsp,
    /// Neither.
    None,
}

pub struct TestCa {
    pub dir: tempfile::TempDir,
    pub crl_port: u16,
    pub ocsp_port: u16,
    pub dead_port: u16,
    /// Requests the CRL server has answered (any path, found or not).
    pub crl_requests: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    /// Stops the OCSP front (see [`TestCa::start_ocsp`]).
    ocsp_stop: Option<tokio::sync::oneshot::Sender<()>>,
    /// The OCSP port, bound from the start (see [`hold_port`]); listens once the responder starts.
    ocsp_socket: Option<tokio::net::TcpSocket>,
    /// The dead port, bound and never listening for as long as the CA lives.
    _dead_socket: tokio::net::TcpSocket,
    _crl_server: std::thread::JoinHandle<()>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

/// A loopback port held for this CA: bound but not listening, so a connection to it is refused
/// (as to a responder that is down) and nothing else on the machine can take it meanwhile (a
/// port bound, read and released could be taken before it is used).
fn hold_port() -> (tokio::net::TcpSocket, u16) {
    let socket = tokio::net::TcpSocket::new_v4().expect("a socket");
    socket
        .bind(std::net::SocketAddr::from(([127, 0, 0, 1], 0)))
        .expect("bind a loopback port");
    let port = socket.local_addr().expect("bound").port();
    (socket, port)
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

impl TestCa {
    pub fn new() -> TestCa {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(&pki("."), &dir.path().join("pki"));
        std::fs::create_dir_all(dir.path().join("www")).unwrap();
        std::fs::create_dir_all(dir.path().join("pki/ca/csr")).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let crl_port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let www = dir.path().join("www");
        let crl_requests = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = crl_requests.clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let app = axum::Router::new()
                    .route(
                        "/{file}",
                        axum::routing::get(
                            |axum::extract::State(www): axum::extract::State<PathBuf>,
                             axum::extract::Path(file): axum::extract::Path<String>| async move {
                                match std::fs::read(www.join(file.replace('/', ""))) {
                                    Ok(b) => Ok(b),
                                    Err(_) => Err(axum::http::StatusCode::NOT_FOUND),
                                }
                            },
                        ),
                    )
                    .with_state(www)
                    .layer(axum::middleware::from_fn(
                        move |req: axum::extract::Request, next: axum::middleware::Next| {
                            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                            next.run(req)
                        },
                    ));
                let l = tokio::net::TcpListener::from_std(listener).unwrap();
                axum::serve(l, app)
                    .with_graceful_shutdown(async {
                        let _ = stopped.await;
                    })
                    .await
                    .unwrap();
            });
        });
        let (ocsp_socket, ocsp_port) = hold_port();
        let (dead_socket, dead_port) = hold_port();
        TestCa {
            dir,
            crl_port,
            crl_requests,
            ocsp_port,
            dead_port,
            ocsp_stop: None,
            ocsp_socket: Some(ocsp_socket),
            _dead_socket: dead_socket,
            _crl_server: server,
            stop: Some(stop),
        }
    }

    pub fn pki(&self) -> PathBuf {
        self.dir.path().join("pki")
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.pki().join(name)
    }

    /// Runs `openssl ARGS` in the PKI copy; panics with its output on failure.
    pub fn openssl(&self, args: &[&str]) {
        let o = tool("openssl", "openssl")
            .current_dir(self.pki())
            .args(args)
            .output()
            .expect("run openssl");
        assert!(
            o.status.success(),
            "openssl {args:?}: {}{}",
            stdout(&o),
            stderr(&o)
        );
    }

    /// `openssl ca -batch -config openssl.cnf ARGS`.
    pub fn ca(&self, args: &[&str]) {
        let mut all = vec!["ca", "-batch", "-notext", "-config", "openssl.cnf"];
        all.extend_from_slice(args);
        self.openssl(&all);
    }

    fn key_and_csr(&self, name: &str, subject: &str) {
        self.key_and_csr_bits(name, subject, 2048);
    }

    fn key_and_csr_bits(&self, name: &str, subject: &str, bits: u32) {
        self.openssl(&[
            "genpkey",
            "-quiet",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            &format!("rsa_keygen_bits:{bits}"),
            "-out",
            &format!("{name}.key.pem"),
        ]);
        self.openssl(&[
            "req",
            "-new",
            "-config",
            "openssl.cnf",
            "-utf8",
            "-key",
            &format!("{name}.key.pem"),
            "-subj",
            subject,
            "-out",
            &format!("ca/csr/{name}.csr"),
        ]);
    }

    /// The extension file of a signing leaf with `points`, plus `extra` lines.
    pub fn leaf_ext(&self, name: &str, points: Points, extra: &str) -> String {
        let mut ext = String::from(
            "basicConstraints=critical,CA:FALSE\n\
             keyUsage=critical,digitalSignature,nonRepudiation\n\
             extendedKeyUsage=1.3.6.1.4.1.311.10.3.12,emailProtection\n\
             subjectKeyIdentifier=hash\n\
             authorityKeyIdentifier=keyid:always\n",
        );
        match points {
            Points::Crl => ext.push_str(&format!(
                "crlDistributionPoints=URI:http://127.0.0.1:{}/issuing.crl\n",
                self.crl_port
            )),
            Points::StaleCrl => ext.push_str(&format!(
                "crlDistributionPoints=URI:http://127.0.0.1:{}/stale.crl\n",
                self.crl_port
            )),
            Points::Ocsp => ext.push_str(&format!(
                "authorityInfoAccess=OCSP;URI:http://127.0.0.1:{}/\n",
                self.ocsp_port
            )),
            Points::DeadOcsp => ext.push_str(&format!(
                "authorityInfoAccess=OCSP;URI:http://127.0.0.1:{}/\n",
                self.dead_port
            )),
            Points::None => {}
        }
        ext.push_str(extra);
        let file = format!("ca/csr/{name}.ext");
        std::fs::write(self.path(&file), ext).unwrap();
        file
    }

    fn subject(name: &str) -> String {
        format!("/C=VN/L=Gia Lai/O=TEST {name}/serialNumber={ORGAN}/CN=TEST {name}")
    }

    /// A signing leaf `name` from the issuing CA (`openssl ca`, so it can be revoked), valid 30
    /// days, its revocation information pointing at `points`.
    pub fn leaf(&self, name: &str, points: Points) {
        self.leaf_from("ca_issuing", name, points);
    }

    /// As [`TestCa::leaf`], from the CA section `ca` of `openssl.cnf` (`ca_rogue`: a root nobody
    /// trusts).
    pub fn leaf_from(&self, ca: &str, name: &str, points: Points) {
        self.key_and_csr(name, &Self::subject(name));
        let ext = self.leaf_ext(name, points, "");
        self.ca(&[
            "-name",
            ca,
            "-extfile",
            &ext,
            "-days",
            "30",
            "-in",
            &format!("ca/csr/{name}.csr"),
            "-out",
            &format!("{name}.cert.pem"),
        ]);
    }

    /// As [`TestCa::leaf`] with no revocation information, its RSA key of `bits` bits.
    pub fn leaf_with_key_bits(&self, name: &str, bits: u32) {
        self.key_and_csr_bits(name, &Self::subject(name), bits);
        let ext = self.leaf_ext(name, Points::None, "");
        self.ca(&[
            "-name",
            "ca_issuing",
            "-extfile",
            &ext,
            "-days",
            "30",
            "-in",
            &format!("ca/csr/{name}.csr"),
            "-out",
            &format!("{name}.cert.pem"),
        ]);
    }

    /// A signing leaf `name` issued by the CA `issuer` (`ISSUER.cert.pem`/`.key.pem` in the
    /// copy) with `openssl x509 -req`, with `extra` extension lines.
    pub fn leaf_under(&self, name: &str, issuer: &str, extra: &str) {
        self.key_and_csr(name, &Self::subject(name));
        let ext = self.leaf_ext(name, Points::None, extra);
        self.openssl(&[
            "x509",
            "-req",
            "-in",
            &format!("ca/csr/{name}.csr"),
            "-CA",
            &format!("{issuer}.cert.pem"),
            "-CAkey",
            &format!("{issuer}.key.pem"),
            "-set_serial",
            "0x1234",
            "-days",
            "30",
            "-sha256",
            "-extfile",
            &ext,
            "-out",
            &format!("{name}.cert.pem"),
        ]);
    }

    /// A CA `name` under the root (`openssl ca -name ca_root -extensions v3_issuing`) with
    /// `extra` options (`-md sha1`, `-startdate … -enddate …`).
    pub fn intermediate(&self, name: &str, extra: &[&str]) {
        self.key_and_csr(name, &format!("/C=VN/O=Lienthong TEST PKI/CN=TEST {name}"));
        let csr = format!("ca/csr/{name}.csr");
        let out = format!("{name}.cert.pem");
        let mut args = vec![
            "-name",
            "ca_root",
            "-extensions",
            "v3_issuing",
            "-in",
            &csr,
            "-out",
            &out,
        ];
        args.extend_from_slice(extra);
        self.ca(&args);
    }

    /// Revokes `name` in the issuing CA's database.
    pub fn revoke(&self, name: &str) {
        self.ca(&[
            "-name",
            "ca_issuing",
            "-revoke",
            &format!("{name}.cert.pem"),
            "-crl_reason",
            "keyCompromise",
        ]);
    }

    /// Issues the issuing CA's CRLs (current and stale) and puts them, DER, on the CRL server;
    /// returns the root's current CRL file (PEM), needed under `require` for the issuing CA.
    pub fn publish_crls(&self) -> PathBuf {
        self.ca(&["-name", "ca_issuing", "-gencrl", "-out", "issuing.crl.pem"]);
        self.ca(&[
            "-name",
            "ca_issuing",
            "-gencrl",
            "-crl_lastupdate",
            "20200101000000Z",
            "-crl_nextupdate",
            "20200201000000Z",
            "-out",
            "stale.crl.pem",
        ]);
        self.ca(&["-name", "ca_root", "-gencrl", "-out", "root.crl.pem"]);
        let www = self.dir.path().join("www");
        for name in ["issuing", "stale"] {
            self.openssl(&[
                "crl",
                "-in",
                &format!("{name}.crl.pem"),
                "-outform",
                "DER",
                "-out",
                www.join(format!("{name}.crl")).to_str().unwrap(),
            ]);
        }
        self.path("root.crl.pem")
    }

    /// Issues a CRL of the CA section `ca` with the CRL extensions `exts` (lines of an
    /// `openssl.cnf` section, e.g. `issuingDistributionPoint = critical, @idp` followed by the
    /// `[ idp ]` section) as the PEM file `out` of the copy, and returns its path. The
    /// extensions are `openssl ca -gencrl -crlexts`, from a copy of `openssl.cnf` with them added.
    pub fn gencrl_with(&self, ca: &str, exts: &str, out: &str) -> PathBuf {
        let base = std::fs::read_to_string(self.path("openssl.cnf")).unwrap();
        std::fs::write(
            self.path("crlexts.cnf"),
            format!("{base}\n[ lienthong_crl_exts ]\n{exts}\n"),
        )
        .unwrap();
        self.openssl(&[
            "ca",
            "-batch",
            "-config",
            "crlexts.cnf",
            "-name",
            ca,
            "-gencrl",
            "-crlexts",
            "lienthong_crl_exts",
            "-out",
            out,
        ]);
        self.path(out)
    }

    /// As [`TestCa::gencrl_with`] for the issuing CA, served (DER) as the CRL distribution point
    /// `issuing.crl` of [`Points::Crl`] leaves.
    pub fn publish_issuing_crl_with(&self, exts: &str) {
        let pem = self.gencrl_with("ca_issuing", exts, "issuing-scoped.crl.pem");
        let www = self.dir.path().join("www/issuing.crl");
        self.openssl(&[
            "crl",
            "-in",
            pem.to_str().unwrap(),
            "-outform",
            "DER",
            "-out",
            www.to_str().unwrap(),
        ]);
    }

    /// Issues a delegated OCSP responder certificate (id-kp-OCSPSigning) from the issuing CA and
    /// serves OCSP on the OCSP port (loopback): every request is answered by `openssl ocsp` over
    /// the issuing CA's index, signed by that responder certificate. Listening on return.
    pub fn start_ocsp(&mut self) {
        self.key_and_csr("ocsp", "/C=VN/O=Lienthong TEST PKI/CN=TEST OCSP responder");
        std::fs::write(
            self.path("ca/csr/ocsp.ext"),
            "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n\
             extendedKeyUsage=OCSPSigning\n",
        )
        .unwrap();
        self.ca(&[
            "-name",
            "ca_issuing",
            "-extfile",
            "ca/csr/ocsp.ext",
            "-days",
            "30",
            "-in",
            "ca/csr/ocsp.csr",
            "-out",
            "ocsp.cert.pem",
        ]);
        // `openssl ocsp -port` listens on every interface; tests serve only on loopback. So the
        // HTTP side is ours, on 127.0.0.1, and each request is answered by a real `openssl ocsp`
        // run as the responder over the CA's index (`-reqin`/`-respout`).
        let socket = self
            .ocsp_socket
            .take()
            .expect("the OCSP responder starts once");
        let pki = self.pki();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let app = axum::Router::new().route(
                    "/",
                    axum::routing::post(move |body: axum::body::Bytes| {
                        let pki = pki.clone();
                        async move {
                            let answer =
                                tokio::task::spawn_blocking(move || openssl_ocsp(&pki, &body))
                                    .await
                                    .unwrap();
                            (
                                [(
                                    axum::http::header::CONTENT_TYPE,
                                    "application/ocsp-response",
                                )],
                                answer,
                            )
                        }
                    }),
                );
                let l = socket.listen(1024).expect("listen on the OCSP port");
                axum::serve(l, app)
                    .with_graceful_shutdown(async {
                        let _ = stopped.await;
                    })
                    .await
                    .unwrap();
            });
        });
        self.ocsp_stop = Some(stop);
    }

    /// A status package from [`ORGAN`] signed by `name`, with `chain` (certificate files of the
    /// copy) as the intermediates sent.
    pub fn signed_by(&self, name: &str, chain: Option<&str>) -> Vec<u8> {
        let chain = chain.map(|c| self.path(c));
        let signer = KeyFileSigner::from_files(
            &self.path(&format!("{name}.key.pem")),
            &self.path(&format!("{name}.cert.pem")),
            chain.as_deref(),
        )
        .expect("test leaf loads");
        sign_package(
            status_package("07", ORGAN).as_bytes(),
            &signer,
            &Limits::default(),
        )
        .expect("signs")
    }

    /// Writes `bytes` as `name` in the temp dir, for the CLI.
    pub fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }
}

impl Drop for TestCa {
    fn drop(&mut self) {
        if let Some(s) = self.ocsp_stop.take() {
            let _ = s.send(());
        }
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

/// One OCSP answer from `openssl ocsp` acting as the responder of the issuing CA (its index, the
/// delegated responder certificate), for the DER request `request`.
fn openssl_ocsp(pki: &Path, request: &[u8]) -> Vec<u8> {
    let dir = tempfile::tempdir_in(pki).unwrap();
    let (req, resp) = (dir.path().join("req.der"), dir.path().join("resp.der"));
    std::fs::write(&req, request).unwrap();
    let o = tool("openssl", "openssl")
        .current_dir(pki)
        .args([
            "ocsp",
            "-index",
            "ca/issuing/index.txt",
            "-rsigner",
            "ocsp.cert.pem",
        ])
        .args([
            "-rkey",
            "ocsp.key.pem",
            "-CA",
            "issuing-ca.cert.pem",
            "-nmin",
            "60",
        ])
        .arg("-reqin")
        .arg(&req)
        .arg("-respout")
        .arg(&resp)
        .stdin(Stdio::null())
        .output()
        .expect("run openssl ocsp");
    assert!(o.status.success(), "openssl ocsp: {}", stderr(&o));
    std::fs::read(&resp).unwrap()
}
