//! Real mail servers on loopback for the mail bridge's tests: Dovecot (IMAP, IMAPS, LMTP, auth)
//! and aiosmtpd (`tests/mail/smtp_lmtp.py`: STARTTLS + AUTH on one port, implicit TLS + AUTH on
//! another) handing every accepted message to Dovecot over LMTP. The recipe and its measurements
//! are `../shared/docs/mail-harness.md`.
//!
//! [`MailServers::start`] picks free loopback ports, writes a test CA and a server certificate
//! (for `localhost` and `127.0.0.1`), the users and Dovecot's configuration into a short temporary
//! folder (`/tmp/mt.XXXXXX`: Dovecot's socket paths must stay under 108 bytes), starts both
//! servers and waits for their ports. As root the mailboxes belong to `nobody` (Dovecot refuses
//! uid 0 for mail); as anyone else Dovecot runs rootless. `Drop` kills and waits for every
//! child, so no server outlives a test, panicking or not (and keeps the folder, with Dovecot's
//! log, when the test panicked).
//!
//! Missing servers are a panic naming the packages (`scripts/test.sh` installs them): a mail
//! test never passes by skipping.
//!
//! What a test reads back goes through its own IMAP (async-imap, plain IMAP on loopback) and
//! LMTP clients here, not through the node's `mail::imap`, so the code under test is never its
//! own witness.

use std::io::{BufRead, BufReader, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use futures_util::TryStreamExt as _;
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _};

/// A mailbox account of the harness.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub address: &'static str,
    pub password: &'static str,
}

/// The mailbox the bridge reads (`[mail.imap]`).
pub const VANTHU: Account = Account {
    address: "vanthu@gialai.gov.vn",
    password: "matkhau-thu",
};
/// The account the bridge sends as (`[mail.smtp]` user; also a mailbox, where bounces land).
pub const LIENTHONG: Account = Account {
    address: "lienthong@gialai.gov.vn",
    password: "mat-khau-gui",
};
/// A mail-only commune (a `[[mail.route]]` target).
pub const XA_IAKHA: Account = Account {
    address: "xa-iakha@gialai.gov.vn",
    password: "matkhau-iakha",
};
/// A mail-only official (a notification address, or a draft's sender).
pub const SO_TTTT: Account = Account {
    address: "so-tttt@gialai.gov.vn",
    password: "matkhau-sotttt",
};
/// Every account Dovecot knows. Any other address @gialai.gov.vn is refused by LMTP (550).
pub const ACCOUNTS: [Account; 4] = [VANTHU, LIENTHONG, XA_IAKHA, SO_TTTT];
/// An address Dovecot does not know: a message to it is refused with a real 5xx.
pub const UNKNOWN: &str = "khong-ton-tai@gialai.gov.vn";

/// Long enough for a loaded 2-core machine; a server that is not up by then is broken.
const START_DEADLINE: Duration = Duration::from_secs(30);

/// Dovecot and aiosmtpd, running until dropped.
pub struct MailServers {
    /// The temporary folder holding everything (certificate, configuration, mailboxes, logs).
    pub dir: PathBuf,
    /// The test CA that issued the certificate both servers present; the only CA a client
    /// must trust.
    pub ca: PathBuf,
    /// The host name in that certificate (`localhost`; `127.0.0.1` is in it too).
    pub host: &'static str,
    pub imap_port: u16,
    pub imaps_port: u16,
    pub lmtp_port: u16,
    /// SMTP with STARTTLS required before AUTH.
    pub smtp_port: u16,
    /// SMTP over TLS from the first byte.
    pub smtps_port: u16,
    dovecot: Mutex<Option<Child>>,
    smtp: Mutex<Option<Child>>,
    _tmp: Option<tempfile::TempDir>,
}

fn require_tools() {
    let mut missing = Vec::new();
    if !Path::new("/usr/sbin/dovecot").exists() || !Path::new("/usr/lib/dovecot/imap").exists() {
        missing.push("dovecot-imapd");
    }
    if !Path::new("/usr/lib/dovecot/lmtp").exists() {
        missing.push("dovecot-lmtpd");
    }
    let aiosmtpd = Command::new("/usr/bin/python3")
        .args(["-c", "import aiosmtpd"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !aiosmtpd {
        missing.push("python3-aiosmtpd");
    }
    if !missing.is_empty() {
        panic!(
            "the mail tests need real mail servers: install {} (scripts/test.sh does: \
             apt-get install --no-install-recommends dovecot-imapd dovecot-lmtpd python3-aiosmtpd)",
            missing.join(" ")
        );
    }
}

/// `n` distinct free loopback ports (bound together, then released).
fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind a loopback port"))
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().expect("local address").port())
        .collect()
}

fn id_of(flag: &str, user: &str) -> u32 {
    let out = Command::new("id")
        .args([flag, user])
        .output()
        .expect("run id");
    assert!(out.status.success(), "id {flag} {user}: {out:?}");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("a numeric id")
}

fn name_of(flag: &str) -> String {
    let out = Command::new("id").arg(flag).output().expect("run id");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Waits until `port` accepts a connection; panics (with `log`'s tail) if `child` exits first or
/// the deadline passes.
fn wait_port(port: u16, child: &mut Child, what: &str, log: &Path) {
    let t0 = Instant::now();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    loop {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "{what} exited during start-up ({status}); its log:\n{}",
                tail(log)
            );
        }
        if t0.elapsed() > START_DEADLINE {
            panic!(
                "{what}: port {port} not accepting after {START_DEADLINE:?}; its log:\n{}",
                tail(log)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

fn kill_and_wait(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

impl MailServers {
    /// Starts Dovecot and the SMTP relay on free loopback ports (about half a second).
    pub fn start() -> MailServers {
        Self::start_with("")
    }

    /// Like [`MailServers::start`], Dovecot announcing only `capabilities` after login (e.g.
    /// without `MOVE` or `IDLE`, as plainer servers do).
    pub fn start_with_imap_capability(capabilities: &str) -> MailServers {
        Self::start_with(&format!(
            "protocol imap {{\n  imap_capability = {capabilities}\n}}\n"
        ))
    }

    fn start_with(extra: &str) -> MailServers {
        require_tools();
        let tmp = tempfile::Builder::new()
            .prefix("mt.")
            .tempdir_in("/tmp")
            .expect("a temporary folder under /tmp");
        let d = tmp.path().to_path_buf();
        // Dovecot's unprivileged processes (auth as `dovecot`, mail as `nobody`) must get in.
        set_mode(&d, 0o755);
        for sub in ["run", "state", "mail", "tls", "control"] {
            std::fs::create_dir(d.join(sub)).expect("create a harness folder");
        }
        let ports = free_ports(6);
        let (imap, imaps, lmtp, auth, smtp, smtps) =
            (ports[0], ports[1], ports[2], ports[3], ports[4], ports[5]);

        let (ca, _cert, _key) = make_tls(&d.join("tls"));

        let users: String = ACCOUNTS
            .iter()
            .map(|a| format!("{}:{{PLAIN}}{}::::::\n", a.address, a.password))
            .collect();
        std::fs::write(d.join("users"), users).expect("write the users file");

        let rootless;
        let (muid, mgid);
        if is_root() {
            muid = id_of("-u", "nobody");
            mgid = id_of("-g", "nobody");
            std::os::unix::fs::chown(d.join("mail"), Some(muid), Some(mgid))
                .expect("give the mailboxes to nobody");
            rootless = String::new();
        } else {
            muid = id_of("-u", &name_of("-un"));
            mgid = id_of("-g", &name_of("-un"));
            rootless = format!(
                "default_login_user = {u}\ndefault_internal_user = {u}\n\
                 default_internal_group = {g}\nservice imap-login {{\n  chroot =\n}}\n\
                 service anvil {{\n  chroot =\n}}\n",
                u = name_of("-un"),
                g = name_of("-gn"),
            );
        }
        let ds = d.display();
        let conf = format!(
            "instance_name = mt-{imap}
base_dir = {ds}/run
state_dir = {ds}/state
log_path = {ds}/dovecot.log
protocols = imap lmtp
listen = 127.0.0.1
ssl = yes
ssl_cert = <{ds}/tls/cert.pem
ssl_key = <{ds}/tls/key.pem
ssl_dh = </usr/share/dovecot/dh.pem
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
login_trusted_networks = 127.0.0.0/8
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
mail_location = maildir:~/Maildir
first_valid_uid = {muid}
first_valid_gid = {mgid}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {ds}/users
}}
userdb {{
  driver = static
  args = uid={muid} gid={mgid} home={ds}/mail/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {imap}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {imaps}
    ssl = yes
  }}
}}
service lmtp {{
  inet_listener lmtp {{
    address = 127.0.0.1
    port = {lmtp}
  }}
}}
service auth {{
  inet_listener {{
    address = 127.0.0.1
    port = {auth}
  }}
}}
protocol lmtp {{
  postmaster_address = postmaster@gialai.gov.vn
}}
{rootless}{extra}"
        );
        std::fs::write(d.join("dovecot.conf"), conf).expect("write dovecot.conf");

        let dovecot = Command::new("/usr/sbin/dovecot")
            .arg("-F")
            .arg("-c")
            .arg(d.join("dovecot.conf"))
            .stdin(Stdio::null())
            .stdout(file(&d.join("dovecot.out")))
            .stderr(file(&d.join("dovecot.out")))
            .spawn()
            .expect("start /usr/sbin/dovecot");
        let servers = MailServers {
            ca,
            host: "localhost",
            imap_port: imap,
            imaps_port: imaps,
            lmtp_port: lmtp,
            smtp_port: smtp,
            smtps_port: smtps,
            dovecot: Mutex::new(Some(dovecot)),
            smtp: Mutex::new(None),
            dir: d.clone(),
            _tmp: Some(tmp),
        };
        // From here on Drop stops what was started, whatever panics below.
        let log = d.join("dovecot.log");
        {
            let mut guard = servers.dovecot.lock().unwrap();
            let dovecot = guard.as_mut().expect("just started");
            for port in [imaps, imap, lmtp] {
                wait_port(port, dovecot, "dovecot", &log);
            }
        }
        servers.start_smtp();
        servers
    }

    /// Starts the SMTP relay (again) on its ports. It must not be running.
    pub fn start_smtp(&self) {
        let mut slot = self.smtp.lock().unwrap();
        assert!(slot.is_none(), "the SMTP relay is already running");
        let d = &self.dir;
        let log = d.join("smtp.log");
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/mail/smtp_lmtp.py");
        let mut child = Command::new("/usr/bin/python3")
            .arg(script)
            .args(["--port", &self.smtp_port.to_string()])
            .args(["--tls-port", &self.smtps_port.to_string()])
            .arg("--cert")
            .arg(d.join("tls/cert.pem"))
            .arg("--key")
            .arg(d.join("tls/key.pem"))
            .args(["--lmtp", &format!("127.0.0.1:{}", self.lmtp_port)])
            .args([
                "--user",
                LIENTHONG.address,
                "--password",
                LIENTHONG.password,
            ])
            .arg("--control")
            .arg(d.join("control"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(file(&log))
            .spawn()
            .expect("start tests/mail/smtp_lmtp.py with /usr/bin/python3");
        // It prints "ready" once both ports accept connections.
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        match rx.recv_timeout(START_DEADLINE) {
            Ok(line) if line.trim() == "ready" => {}
            other => {
                kill_and_wait(&mut child);
                panic!(
                    "the SMTP relay did not start ({other:?}); its log:\n{}",
                    tail(&log)
                );
            }
        }
        *slot = Some(child);
    }

    /// Stops the SMTP relay (its ports refuse connections until [`MailServers::start_smtp`]).
    pub fn stop_smtp(&self) {
        if let Some(mut child) = self.smtp.lock().unwrap().take() {
            kill_and_wait(&mut child);
        }
    }

    /// Makes the relay answer every message's data with `reply` (e.g. `451 4.3.0 …`) instead of
    /// delivering it; `None` goes back to delivering.
    pub fn smtp_reply(&self, reply: Option<&str>) {
        let path = self.dir.join("control/reply");
        match reply {
            Some(r) => {
                assert!(
                    r.len() > 4 && r.as_bytes()[..3].iter().all(u8::is_ascii_digit),
                    "an SMTP reply starts with its code: {r:?}"
                );
                std::fs::write(path, format!("{r}\n")).expect("write the reply switch");
            }
            None => {
                let _ = std::fs::remove_file(path);
            }
        }
    }

    /// The relay answers `451 4.3.0` (a transient refusal) while `on`.
    pub fn smtp_transient_failure(&self, on: bool) {
        self.smtp_reply(on.then_some("451 4.3.0 Relay temporarily unable to accept mail"));
    }

    /// While `on`, recipients Dovecot refuses are accepted by the relay (250) and a delivery
    /// status notification in Postfix's layout goes back to the envelope sender's mailbox,
    /// as a relay with a queue does; while off, they are refused with a 550 at once.
    pub fn smtp_bounce_mode(&self, on: bool) {
        let path = self.dir.join("control/bounce");
        if on {
            std::fs::write(path, "on\n").expect("write the bounce switch");
        } else {
            let _ = std::fs::remove_file(path);
        }
    }

    /// The envelopes (`MAIL FROM`, `RCPT TO`s) of the messages the relay accepted, in order.
    pub fn smtp_envelopes(&self) -> Vec<(String, Vec<String>)> {
        let text =
            std::fs::read_to_string(self.dir.join("control/envelopes.jsonl")).unwrap_or_default();
        text.lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).expect("an envelope line");
                let to = v["to"]
                    .as_array()
                    .expect("to")
                    .iter()
                    .map(|r| r.as_str().expect("a recipient").to_owned())
                    .collect();
                (v["from"].as_str().expect("from").to_owned(), to)
            })
            .collect()
    }

    /// The password of a harness account.
    pub fn password(address: &str) -> &'static str {
        ACCOUNTS
            .iter()
            .find(|a| a.address == address)
            .unwrap_or_else(|| panic!("{address} is not a harness account"))
            .password
    }

    /// Delivers `raw` to `rcpt` straight into Dovecot over LMTP (no SMTP relay involved), with
    /// the envelope sender `<>`. Panics unless Dovecot accepted it.
    pub async fn deliver(&self, rcpt: &str, raw: &[u8]) {
        if let Err(e) = self.try_deliver(rcpt, raw).await {
            panic!("LMTP delivery to {rcpt}: {e}");
        }
    }

    /// Like [`MailServers::deliver`], returning Dovecot's refusal (e.g. `550 5.1.1 …`).
    pub async fn try_deliver(&self, rcpt: &str, raw: &[u8]) -> Result<(), String> {
        lmtp_deliver(self.lmtp_port, rcpt, raw).await
    }

    /// Every mail of `folder` in `user`'s mailbox, by UID, as stored (over plain IMAP, read
    /// only: nothing is marked seen).
    pub async fn messages(&self, user: &str, folder: &str) -> Vec<(u32, Vec<u8>)> {
        let mut session = self.login(user).await;
        let mailbox = session
            .examine(folder)
            .await
            .unwrap_or_else(|e| panic!("EXAMINE {folder} of {user}: {e}"));
        let mut out = Vec::new();
        if mailbox.exists > 0 {
            let fetches: Vec<_> = session
                .uid_fetch("1:*", "(UID BODY.PEEK[])")
                .await
                .unwrap_or_else(|e| panic!("UID FETCH in {folder} of {user}: {e}"))
                .try_collect()
                .await
                .unwrap_or_else(|e| panic!("UID FETCH in {folder} of {user}: {e}"));
            for f in fetches {
                let uid = f.uid.expect("the UID of a fetched mail");
                out.push((uid, f.body().expect("BODY[] of a fetched mail").to_vec()));
            }
        }
        out.sort_by_key(|(uid, _)| *uid);
        let _ = session.logout().await;
        out
    }

    /// Waits until `folder` of `user` holds at least `n` mails (or panics after `within`) and
    /// returns them: for mails that arrive through a relay or a node's task.
    pub async fn wait_messages(
        &self,
        user: &str,
        folder: &str,
        n: usize,
        within: Duration,
    ) -> Vec<(u32, Vec<u8>)> {
        let t0 = Instant::now();
        loop {
            let folders = self.folders(user).await;
            if folders.iter().any(|f| f == folder) {
                let got = self.messages(user, folder).await;
                if got.len() >= n {
                    return got;
                }
                if t0.elapsed() > within {
                    panic!(
                        "{user}/{folder}: {} mails after {within:?}, expected {n}",
                        got.len()
                    );
                }
            } else if t0.elapsed() > within {
                panic!("{user}: no folder {folder} after {within:?} (folders: {folders:?})");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The folders of `user`'s mailbox, sorted.
    pub async fn folders(&self, user: &str) -> Vec<String> {
        let mut session = self.login(user).await;
        let names: Vec<_> = session
            .list(Some(""), Some("*"))
            .await
            .unwrap_or_else(|e| panic!("LIST of {user}: {e}"))
            .try_collect()
            .await
            .unwrap_or_else(|e| panic!("LIST of {user}: {e}"));
        let mut out: Vec<String> = names.iter().map(|n| n.name().to_owned()).collect();
        out.sort();
        let _ = session.logout().await;
        out
    }

    async fn login(&self, user: &str) -> async_imap::Session<tokio::net::TcpStream> {
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", self.imap_port))
            .await
            .unwrap_or_else(|e| panic!("connect to Dovecot IMAP {}: {e}", self.imap_port));
        let mut client = async_imap::Client::new(tcp);
        client
            .read_response()
            .await
            .expect("IMAP greeting")
            .expect("IMAP greeting");
        client
            .login(user, Self::password(user))
            .await
            .map_err(|(e, _)| e)
            .unwrap_or_else(|e| panic!("IMAP LOGIN {user}: {e}"))
    }
}

/// A small LMTP client (RFC 2033): `LHLO`, `MAIL FROM:<>`, `RCPT TO`, `DATA` with the body
/// dot-stuffed, one reply per recipient.
async fn lmtp_deliver(port: u16, rcpt: &str, raw: &[u8]) -> Result<(), String> {
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .map_err(|e| format!("connect to LMTP {port}: {e}"))?;
    let (r, mut w) = tcp.into_split();
    let mut r = tokio::io::BufReader::new(r);
    async fn reply(r: &mut tokio::io::BufReader<tokio::net::tcp::OwnedReadHalf>) -> String {
        let mut all = String::new();
        loop {
            let mut line = String::new();
            if r.read_line(&mut line).await.unwrap_or(0) == 0 {
                return format!("{all}(connection closed)");
            }
            all.push_str(&line);
            // "250-..." continues, "250 ..." ends.
            if line.as_bytes().get(3) != Some(&b'-') {
                return all.trim_end().to_owned();
            }
        }
    }
    let expect = |got: String, code: &str, what: &str| {
        if got.starts_with(code) {
            Ok(())
        } else {
            Err(format!("{what}: {got}"))
        }
    };
    expect(reply(&mut r).await, "220", "greeting")?;
    for (cmd, code) in [
        ("LHLO harness.test\r\n".to_owned(), "250"),
        ("MAIL FROM:<>\r\n".to_owned(), "250"),
        (format!("RCPT TO:<{rcpt}>\r\n"), "250"),
        ("DATA\r\n".to_owned(), "354"),
    ] {
        w.write_all(cmd.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        expect(reply(&mut r).await, code, cmd.trim())?;
    }
    let mut data = Vec::with_capacity(raw.len() + 64);
    for line in raw.split_inclusive(|&b| b == b'\n') {
        if line.first() == Some(&b'.') {
            data.push(b'.');
        }
        data.extend_from_slice(line);
    }
    if !data.ends_with(b"\n") {
        data.extend_from_slice(b"\r\n");
    }
    data.extend_from_slice(b".\r\n");
    w.write_all(&data).await.map_err(|e| e.to_string())?;
    expect(reply(&mut r).await, "250", "end of data")?;
    let _ = w.write_all(b"QUIT\r\n").await;
    Ok(())
}

/// A test CA and a server certificate it issued for `localhost` and `127.0.0.1` (rustls, as
/// webpki, refuses a CA certificate as a server's, so the usual one-line self-signed certificate
/// will not do). Returns (CA, certificate, key) paths.
fn make_tls(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let (ca, ca_key) = (dir.join("ca.pem"), dir.join("ca.key"));
    let (cert, key, csr) = (
        dir.join("cert.pem"),
        dir.join("key.pem"),
        dir.join("req.csr"),
    );
    let ext = dir.join("server.ext");
    std::fs::write(
        &ext,
        "basicConstraints = critical, CA:FALSE\n\
         keyUsage = critical, digitalSignature\n\
         extendedKeyUsage = serverAuth\n\
         subjectAltName = DNS:localhost, IP:127.0.0.1\n",
    )
    .expect("write the extensions file");
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    let run = |args: &[&std::ffi::OsStr]| {
        let out = Command::new("openssl")
            .args(args)
            .output()
            .expect("run openssl (package openssl)");
        assert!(out.status.success(), "openssl {args:?}: {out:?}");
    };
    let os = |s: &'static str| std::ffi::OsStr::new(s);
    let mut args: Vec<&std::ffi::OsStr> = vec![os("req"), os("-x509")];
    args.extend(ec.iter().map(|s| os(s)));
    args.extend([
        os("-days"),
        os("2"),
        os("-subj"),
        os("/CN=lienthong mail test CA"),
    ]);
    args.extend([
        os("-keyout"),
        ca_key.as_os_str(),
        os("-out"),
        ca.as_os_str(),
    ]);
    run(&args);
    let mut args: Vec<&std::ffi::OsStr> = vec![os("req")];
    args.extend(ec.iter().map(|s| os(s)));
    args.extend([os("-subj"), os("/CN=localhost")]);
    args.extend([os("-keyout"), key.as_os_str(), os("-out"), csr.as_os_str()]);
    run(&args);
    run(&[
        os("x509"),
        os("-req"),
        os("-in"),
        csr.as_os_str(),
        os("-CA"),
        ca.as_os_str(),
        os("-CAkey"),
        ca_key.as_os_str(),
        os("-CAcreateserial"),
        os("-days"),
        os("2"),
        os("-extfile"),
        ext.as_os_str(),
        os("-out"),
        cert.as_os_str(),
    ]);
    set_mode(&key, 0o600);
    set_mode(&ca_key, 0o600);
    (ca, cert, key)
}

fn file(path: &Path) -> std::fs::File {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("open a harness log")
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

impl Drop for MailServers {
    fn drop(&mut self) {
        // A panic while a lock was held poisons it; the child must be stopped all the same.
        if let Some(mut c) = self
            .smtp
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            kill_and_wait(&mut c);
        }
        // SIGKILL to Dovecot's master: its children exit within ~40 ms on their own.
        if let Some(mut c) = self
            .dovecot
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            kill_and_wait(&mut c);
        }
        if std::thread::panicking()
            && let Some(tmp) = self._tmp.take()
        {
            let kept = tmp.keep();
            let _ = writeln!(
                std::io::stderr(),
                "mail harness kept for inspection: {} (dovecot.log, smtp.log)",
                kept.display()
            );
        }
    }
}
