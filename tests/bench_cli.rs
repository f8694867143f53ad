//! `lienthong bench` end to end, small: two real node processes, documents through the clerk
//! API, every receipt back, and the report's JSON carrying the fields scripts rely on. No figure
//! is asserted (timing belongs in benchmarks), only that the run measured what it says.

use std::process::Command;

/// Runs `lienthong bench <args> --size 2048 --json` on the test PKI: the JSON report and the
/// table (stderr).
fn bench(args: &[&str]) -> (serde_json::Value, String) {
    let pki = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("certs/test-only");
    let out = Command::new(env!("CARGO_BIN_EXE_lienthong"))
        .arg("bench")
        .args(args)
        .args(["--size", "2048", "--json", "--pki"])
        .arg(&pki)
        .output()
        .expect("run lienthong bench");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "bench failed: {stderr}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)));
    (v, stderr)
}

#[test]
fn a_small_bench_delivers_every_document_and_reports_the_stable_fields() {
    let (v, stderr) = bench(&[
        "--documents",
        "24",
        "--concurrency",
        "4",
        "--warmup",
        "3",
        "--openssl-seconds",
        "1",
    ]);
    assert_eq!(v["documents"], 24, "{v}");
    assert_eq!(v["errors"], 0, "{v}");
    for field in [
        "docs_per_sec",
        "p50_ms",
        "p95_ms",
        "p99_ms",
        "max_ms",
        "cpu_ms_per_doc",
        "peak_rss_mb_sender",
        "peak_rss_mb_receiver",
    ] {
        let x = v[field]
            .as_f64()
            .unwrap_or_else(|| panic!("{field} missing: {v}"));
        assert!(x > 0.0, "{field} = {x}: {v}");
    }
    // The store's share is part of each node's CPU (it may round to 0 ticks in a run this
    // short, so only its bounds are checked).
    for node in ["sender", "receiver"] {
        let store = v[format!("store_cpu_ms_per_doc_{node}")]
            .as_f64()
            .unwrap_or_else(|| panic!("store_cpu_ms_per_doc_{node} missing: {v}"));
        let all = v[format!("cpu_ms_per_doc_{node}")].as_f64().unwrap_or(-1.0);
        assert!(
            (0.0..=all).contains(&store),
            "{node}: {store} of {all}: {v}"
        );
    }
    assert!(v["p50_ms"].as_f64() <= v["p99_ms"].as_f64(), "{v}");
    assert!(v["p99_ms"].as_f64() <= v["max_ms"].as_f64(), "{v}");
    // openssl is installed by the test script: the ceiling and the ratio are measured.
    let rate = v["openssl_sign_per_sec_per_core"]
        .as_f64()
        .expect("openssl rate");
    let ratio = v["ratio_to_rsa_ceiling"].as_f64().expect("ratio");
    let cores = v["cores"].as_f64().expect("cores");
    let dps = v["docs_per_sec"].as_f64().unwrap_or_default();
    assert!((ratio - dps / (cores * rate / 2.0)).abs() < 1e-9, "{v}");
    // The table went to stderr.
    assert!(stderr.contains("documents/s"), "{stderr}");
}

/// A soak holds its rate over the whole window: `rate × duration` documents, the first one at
/// once (not one interval late), every one delivered. The count is exact by construction (the
/// bench sends late what it could not send in time), not by how the scheduler ran.
#[test]
fn a_soak_sends_rate_times_duration_documents() {
    let (v, _) = bench(&[
        "--soak",
        "2s",
        "--rate",
        "15",
        "--warmup",
        "1",
        "--openssl-seconds",
        "0",
    ]);
    assert_eq!(v["documents"], 30, "{v}");
    assert_eq!(v["errors"], 0, "{v}");
    assert!(
        v["soak"]["windows"]
            .as_array()
            .is_some_and(|w| !w.is_empty()),
        "{v}"
    );
}
