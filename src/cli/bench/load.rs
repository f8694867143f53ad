//! The load: dispatches submitted through the sender's real clerk API, and when each one's
//! receipt came back, read from the same API afterwards.
//!
//! Latency is *submit → receipt*: from just before the clerk's `POST /api/v1/documents` to the
//! moment the sending node recorded the recipient's signed receipt (status 01) — the
//! `delivered_at` of the delivery, committed by the sender's store. Both clocks are this machine's.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use lienthong::Error;
use reqwest::multipart::{Form, Part};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::sync::Semaphore;

use super::nodes::RECEIVER_CODE;

/// One submitted document: the sender's message id and when the submission started (Unix ms).
#[derive(Debug, Clone, Copy)]
pub struct Submitted {
    pub id: i64,
    pub started_ms: f64,
}

/// What a load phase produced.
#[derive(Debug, Default)]
pub struct Outcome {
    pub submitted: Vec<Submitted>,
    /// Submissions the node refused or that failed in transport (with the first error).
    pub errors: usize,
    pub first_error: Option<String>,
}

/// The clerk side: a pooled client with the agency's token, the attachment to send and the
/// agency it is sent to.
#[derive(Clone)]
pub struct Clerk {
    client: reqwest::Client,
    base_url: String,
    /// Where submissions go, round-robin: the sender's replicas (`--replicas`), or just
    /// `base_url`. Reads (metrics, lists) go to `base_url`: the replicas share one store.
    submit_urls: Arc<Vec<String>>,
    next_submit: Arc<std::sync::atomic::AtomicUsize>,
    token: String,
    attachment: Arc<Vec<u8>>,
    recipient: String,
}

pub fn now_ms() -> f64 {
    (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1000) as f64 / 1000.0
}

impl Clerk {
    /// `size` bytes of incompressible attachment (a scanned PDF compresses little either), sent
    /// to the receiving node's agency (another with [`Clerk::to`]).
    pub fn new(base_url: &str, token: &str, size: usize) -> Result<Clerk, Error> {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(1024)
            .timeout(Duration::from_secs(600))
            .build()
            .map_err(|e| Error::io("HTTP client", std::io::Error::other(e.to_string())))?;
        let mut attachment = vec![0u8; size];
        fastrand::fill(&mut attachment);
        Ok(Clerk {
            client,
            base_url: base_url.to_owned(),
            submit_urls: Arc::new(vec![base_url.to_owned()]),
            next_submit: Arc::new(AtomicUsize::new(0)),
            token: token.to_owned(),
            attachment: Arc::new(attachment),
            recipient: RECEIVER_CODE.to_owned(),
        })
    }

    /// The same clerk submitting round-robin across `replicas` (base URLs of nodes sharing one
    /// store); reads still go to the first.
    pub fn across(mut self, replicas: Vec<String>) -> Clerk {
        if !replicas.is_empty() {
            self.submit_urls = Arc::new(replicas);
        }
        self
    }

    /// The same clerk sending to agency `code` instead (e.g. a mail-only commune).
    pub fn to(mut self, code: &str) -> Clerk {
        self.recipient = code.to_owned();
        self
    }

    /// The next replica's base URL.
    fn submit_url(&self) -> &str {
        let i = self.next_submit.fetch_add(1, Ordering::Relaxed);
        &self.submit_urls[i % self.submit_urls.len()]
    }

    /// Submits one dispatch; the message id.
    pub async fn submit(&self, n: usize) -> Result<i64, String> {
        let metadata = serde_json::json!({
            "recipients": [self.recipient],
            "notation": "STTTT-ĐHN",
            "subject": format!("Văn bản đo hiệu năng số {n}"),
            "priority": 0,
            "signer": { "full_name": "Nguyễn Văn An" },
        });
        let metadata = Part::text(metadata.to_string())
            .mime_str("application/json")
            .map_err(|e| e.to_string())?;
        let file = Part::stream(reqwest::Body::from(self.attachment.as_ref().clone()))
            .file_name("bao-cao.pdf");
        let form = Form::new().part("metadata", metadata).part("file", file);
        let res = self
            .client
            .post(format!("{}/api/v1/documents", self.submit_url()))
            .bearer_auth(&self.token)
            .multipart(form)
            .send()
            .await
            .map_err(|e| format!("submit: {e}"))?;
        let status = res.status();
        let body: serde_json::Value = res.json().await.map_err(|e| format!("submit: {e}"))?;
        if !status.is_success() {
            return Err(format!("submit: HTTP {status}: {body}"));
        }
        body["id"]
            .as_i64()
            .ok_or_else(|| format!("submit: no id in {body}"))
    }

    /// Submits `count` documents, `concurrency` at a time (closed loop: each worker sends its
    /// next one as soon as the previous is acknowledged).
    pub async fn closed_loop(&self, count: usize, concurrency: usize) -> Outcome {
        let next = Arc::new(AtomicUsize::new(0));
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..concurrency.max(1) {
            let clerk = self.clone();
            let next = next.clone();
            tasks.spawn(async move {
                let mut out = Outcome::default();
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if n >= count {
                        return out;
                    }
                    let started = now_ms();
                    let r = clerk.submit(n).await;
                    out.record(r, started);
                }
            });
        }
        let mut all = Outcome::default();
        while let Some(done) = tasks.join_next().await {
            if let Ok(part) = done {
                all.merge(part);
            }
        }
        all
    }

    /// Submits at `rate` per second for `duration` (open loop: a slow node does not slow the
    /// arrivals), at most `max_in_flight` outstanding. `tick` is called once per second with the
    /// submissions so far, for sampling.
    pub async fn open_loop(
        &self,
        rate: f64,
        duration: Duration,
        max_in_flight: usize,
        mut tick: impl FnMut(usize),
    ) -> Outcome {
        let permits = Arc::new(Semaphore::new(max_in_flight.max(1)));
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let start = Instant::now();
        let mut sent = 0usize;
        let mut last_tick = 0u64;
        let mut all = Outcome::default();
        // Arrival k is due at k / rate: 0, 1/rate, … — `rate × duration` of them in the window.
        // Every one of them is sent, even when this loop or the permits fell behind and the
        // window closed first (they are late, and their latency counts from when they left):
        // the count is the rate times the duration, never what the scheduler allowed.
        let total = open_loop_count(rate, duration);
        'window: while start.elapsed() < duration || sent < total {
            let due = if start.elapsed() < duration {
                ((start.elapsed().as_secs_f64() * rate) as usize + 1).min(total)
            } else {
                total
            };
            while sent < due {
                let Ok(permit) = permits.clone().acquire_owned().await else {
                    break 'window;
                };
                let clerk = self.clone();
                let tx = tx.clone();
                let n = sent;
                tokio::spawn(async move {
                    let started = now_ms();
                    let r = clerk.submit(n).await;
                    drop(permit);
                    let _ = tx.send((r, started));
                });
                sent += 1;
            }
            while let Ok((r, started)) = rx.try_recv() {
                all.record(r, started);
            }
            let secs = start.elapsed().as_secs();
            if secs > last_tick {
                last_tick = secs;
                tick(sent);
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        drop(tx);
        while let Some((r, started)) = rx.recv().await {
            all.record(r, started);
        }
        all
    }

    /// Waits until the sender's store holds `target` delivered deliveries (or `timeout`).
    /// Polls the operations endpoint `/metrics`, which counts deliveries by state.
    pub async fn wait_delivered(&self, target: u64, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        loop {
            let (delivered, failed) = self.delivery_counts().await.unwrap_or((0, 0));
            if delivered >= target {
                return Ok(());
            }
            if failed > 0 {
                return Err(format!("{failed} deliveries failed (see the sender's log)"));
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "only {delivered} of {target} receipts after {} s",
                    timeout.as_secs()
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The node's `/metrics` text (empty when it cannot be read).
    pub async fn metrics(&self) -> String {
        let res = self
            .client
            .get(format!("{}/metrics", self.base_url))
            .send()
            .await;
        match res {
            Ok(r) => r.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        }
    }

    async fn delivery_counts(&self) -> Option<(u64, u64)> {
        let text = self.metrics().await;
        if text.is_empty() {
            return None;
        }
        let count = |state: &str| {
            let key = format!("lienthong_deliveries{{state=\"{state}\"}} ");
            text.lines()
                .find_map(|l| l.strip_prefix(&key))
                .and_then(|v| v.trim().parse::<u64>().ok())
                .unwrap_or(0)
        };
        Some((count("delivered"), count("failed") + count("rejected")))
    }

    /// `delivered_at` (Unix ms) of every sent document, by message id, read page by page from
    /// `GET /api/v1/documents`.
    pub async fn delivered_at(&self) -> Result<HashMap<i64, f64>, String> {
        let mut out = HashMap::new();
        let mut before: Option<i64> = None;
        loop {
            let mut url = format!("{}/api/v1/documents?per_page=1000", self.base_url);
            if let Some(b) = before {
                url.push_str(&format!("&before={b}"));
            }
            let page: serde_json::Value = self
                .client
                .get(url)
                .bearer_auth(&self.token)
                .send()
                .await
                .map_err(|e| e.to_string())?
                .json()
                .await
                .map_err(|e| e.to_string())?;
            let items = page["items"].as_array().cloned().unwrap_or_default();
            for item in &items {
                let id = item["id"].as_i64();
                let at = item["deliveries"][0]["delivered_at"]
                    .as_str()
                    .and_then(|s| OffsetDateTime::parse(s, &Rfc3339).ok());
                if let (Some(id), Some(at)) = (id, at) {
                    out.insert(id, (at.unix_timestamp_nanos() / 1000) as f64 / 1000.0);
                }
            }
            match page["next_before"].as_i64() {
                Some(b) if !items.is_empty() => before = Some(b),
                _ => return Ok(out),
            }
        }
    }
}

/// How many submissions [`Clerk::open_loop`] makes at `rate` per second for `duration`.
pub fn open_loop_count(rate: f64, duration: Duration) -> usize {
    (duration.as_secs_f64() * rate).ceil() as usize
}

impl Outcome {
    fn record(&mut self, r: Result<i64, String>, started_ms: f64) {
        match r {
            Ok(id) => self.submitted.push(Submitted { id, started_ms }),
            Err(e) => {
                self.errors += 1;
                self.first_error.get_or_insert(e);
            }
        }
    }

    fn merge(&mut self, other: Outcome) {
        self.submitted.extend(other.submitted);
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }
}
