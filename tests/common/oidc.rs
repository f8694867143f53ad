//! A real OpenID provider for the console's single sign-on tests: oidc-provider (the certified
//! Node.js implementation, pinned in tests/console/package-lock.json) run by
//! tests/console/oidc/provider.mjs on loopback, with the consoles under test as its clients.
//!
//! Needs Node.js ≥ 20 and `npm ci --prefix tests/console` (the README's test command runs
//! both); without them the test fails and says what to run — it never passes by skipping.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::{Value, json};

use super::nodes::{NGHEAN, STTTT, UBND_GL};

/// Every client's secret; with characters that must be form-encoded for client_secret_basic
/// (RFC 6749 §2.3.1).
pub const CLIENT_SECRET: &str = "console-secret+/:=2026";

/// The provider process; killed when dropped, whatever the test's outcome.
pub struct Provider {
    child: Child,
    pub issuer: String,
    _dir: tempfile::TempDir,
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `tests/console`: the npm harness (browser walk, provider).
pub fn harness_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/console")
}

/// Starts the provider with one client per `(client_id, console base URL)` and the accounts
/// `users` (`[{login, password, sub, claims}]`).
pub fn start_provider(clients: &[(&str, &str)], users: Value) -> Provider {
    let node_ok = Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        node_ok,
        "Node.js (≥ 20) is needed for the OpenID provider of these tests: \
         install Node.js ≥ 20 with npm, then run `npm ci --prefix tests/console`"
    );
    let dir = harness_dir();
    assert!(
        dir.join("node_modules/oidc-provider/package.json")
            .is_file(),
        "the OpenID provider's packages are not installed: run `npm ci --prefix tests/console`"
    );
    let tmp = tempfile::tempdir().unwrap();
    let clients: Vec<Value> = clients
        .iter()
        .map(|(id, public)| {
            json!({
                "client_id": id,
                "client_secret": CLIENT_SECRET,
                "redirect_uris": [format!("{public}/console/login/callback")],
                "post_logout_redirect_uris": [format!("{public}/console/login?why=out")],
                "token_endpoint_auth_method": "client_secret_basic"
            })
        })
        .collect();
    let config = json!({
        "clients": clients,
        "users": users,
        "ttl": {"session": 600, "id_token": 300, "access_token": 300, "authorization_code": 60,
                "interaction": 600, "grant": 3600, "refresh_token": 3600},
        "clock_tolerance": 0
    });
    let config_path = tmp.path().join("provider.json");
    std::fs::write(&config_path, config.to_string()).unwrap();
    let stderr = std::fs::File::create(tmp.path().join("provider.err")).unwrap();
    let mut child = Command::new("node")
        .arg(dir.join("oidc/provider.mjs"))
        .arg(&config_path)
        .args(["--port", "0", "--host", "127.0.0.1"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .expect("node starts");
    let mut line = String::new();
    let read = BufReader::new(child.stdout.take().unwrap()).read_line(&mut line);
    let started: Option<Value> = serde_json::from_str(line.trim()).ok();
    let Some(issuer) = started
        .as_ref()
        .and_then(|v| v["issuer"].as_str())
        .map(str::to_owned)
    else {
        let _ = child.kill();
        let _ = child.wait();
        let err = std::fs::read_to_string(tmp.path().join("provider.err")).unwrap_or_default();
        panic!("the provider did not start ({read:?}, stdout {line:?}): {err}");
    };
    Provider {
        child,
        issuer,
        _dir: tmp,
    }
}

/// The tests' accounts at the provider: clerks of a Gia Lai department and of Nghệ An, an administrator
/// whose role claim is a list, and someone with no role the console knows.
pub fn accounts() -> Value {
    json!([
        {"login": "vanthu.stttt", "password": "Mật khẩu Văn thư 1", "sub": "u-vanthu-stttt",
         "claims": {"name": "Trần Thị Thu Hà", "agency": STTTT, "role": "van_thu"}},
        {"login": "quantri", "password": "QuanTri#2026", "sub": "u-quantri",
         "claims": {"name": "Lê Văn Đạt", "agency": UBND_GL,
                    "role": ["nhan_vien", "qt_lienthong", "giam_sat"]}},
        {"login": "vanthu.nghean", "password": "NgheAn#2026", "sub": "u-vanthu-nghean",
         "claims": {"name": "Hồ Thị Lan", "agency": NGHEAN, "role": "van_thu"}},
        {"login": "nhanvien", "password": "NhanVien#2026", "sub": "u-nhanvien",
         "claims": {"name": "Phạm Văn Bình", "agency": STTTT, "role": "nhan_vien"}}
    ])
}

/// The `[console.oidc]` tables of a console signing in through `issuer` as `client_id`, with
/// the role mapping the tests' accounts use (`van_thu`, `qt_lienthong`, `giam_sat`).
pub fn oidc_table(issuer: &str, client_id: &str) -> String {
    format!(
        "[console.oidc]\nissuer = \"{issuer}\"\nclient_id = \"{client_id}\"\n\
         client_secret = \"{CLIENT_SECRET}\"\n\
         [console.oidc.roles]\nvan_thu = \"van_thu\"\nqt_lienthong = \"quan_tri_he_thong\"\n\
         giam_sat = \"giam_sat\"\n"
    )
}
