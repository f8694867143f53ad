//! `schemas/openapi.yaml` checked against what the node really answers. Every request the node
//! tests make goes through [`ApiClient`] (the helpers of `nodes.rs` hand one out), and every
//! answer is checked before the test sees it: the status must be documented for the path and
//! method, the content type for that status, and a JSON body must match the documented schema
//! (JSON Schema 2020-12, the dialect of OpenAPI 3.1, with formats checked). A mismatch fails the
//! test that made the call, naming the call, the answer and what differs.
//!
//! The check is stricter than the file alone: an object schema that lists its `properties` is
//! closed (`unevaluatedProperties: false` unless it says otherwise), so a field the node adds,
//! renames or retypes cannot drift from the description unnoticed. OpenAPI 3.0's `nullable` is
//! refused (3.1 spells it `type: [string, "null"]`). `/metrics` lists its families in
//! `x-metric-families`: every family the node exports must be listed.
#![allow(dead_code)] // each test binary uses a different subset

use std::sync::OnceLock;

use serde_json::{Map, Value};

use super::root;

/// The parsed description with a compiled validator per documented JSON body.
pub struct Spec {
    operations: Vec<Operation>,
    /// `components/responses/Error`: what a route the description does not have answers.
    error: Option<Response>,
}

struct Operation {
    method: String,
    template: String,
    /// Path segments; `None` is a `{parameter}`.
    segments: Vec<Option<String>>,
    responses: Vec<(String, Response)>,
}

struct Response {
    /// Media types with the validator of their schema (JSON bodies only).
    content: Vec<(String, Option<jsonschema::Validator>)>,
    /// `x-metric-families`: the Prometheus families a text body may hold.
    metric_families: Option<Vec<String>>,
}

/// The description, loaded and compiled once per test binary; panics if it cannot be.
pub fn spec() -> &'static Spec {
    static SPEC: OnceLock<Spec> = OnceLock::new();
    SPEC.get_or_init(|| {
        let path = root().join("schemas/openapi.yaml");
        let text = std::fs::read_to_string(&path).unwrap();
        Spec::parse(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    })
}

impl Spec {
    /// Parses and compiles `text` (YAML).
    pub fn parse(text: &str) -> Result<Spec, String> {
        let doc: Value = serde_yaml_ng::from_str(text).map_err(|e| format!("not YAML: {e}"))?;
        let mut nullable = Vec::new();
        find_key(&doc, "nullable", "", &mut nullable);
        if !nullable.is_empty() {
            return Err(format!(
                "`nullable` is OpenAPI 3.0; in 3.1 write `type: [T, \"null\"]`: {}",
                nullable.join(", ")
            ));
        }
        let paths = doc
            .get("paths")
            .and_then(Value::as_object)
            .ok_or("no `paths`")?;
        let mut operations = Vec::new();
        for (template, item) in paths {
            let item = item
                .as_object()
                .ok_or(format!("{template}: not an object"))?;
            for (method, op) in item {
                if !matches!(
                    method.as_str(),
                    "get" | "put" | "post" | "delete" | "patch" | "head" | "options"
                ) {
                    continue;
                }
                let at = format!("{} {template}", method.to_uppercase());
                let responses = op
                    .get("responses")
                    .and_then(Value::as_object)
                    .ok_or(format!("{at}: no responses"))?;
                let mut compiled = Vec::new();
                for (status, r) in responses {
                    let r = deref(&doc, r)?;
                    compiled.push((
                        status.clone(),
                        compile_response(&doc, r).map_err(|e| format!("{at} {status}: {e}"))?,
                    ));
                }
                operations.push(Operation {
                    method: method.to_uppercase(),
                    template: template.clone(),
                    segments: template
                        .split('/')
                        .map(|s| (!s.starts_with('{')).then(|| s.to_owned()))
                        .collect(),
                    responses: compiled,
                });
            }
        }
        let error = match doc.pointer("/components/responses/Error") {
            Some(r) => Some(compile_response(&doc, r)?),
            None => None,
        };
        Ok(Spec { operations, error })
    }

    /// Checks one answer: `status` documented for `method path`, `content_type` for that
    /// status, and `body` against its schema.
    pub fn check(
        &self,
        method: &str,
        path: &str,
        status: u16,
        content_type: Option<&str>,
        body: &[u8],
    ) -> Result<(), String> {
        let op = match self.operation(method, path) {
            Ok(op) => op,
            // A route the description does not have must be refused as such, with the
            // documented error body.
            Err(e) => {
                if !matches!(status, 404 | 405) {
                    return Err(format!("{e}, and the answer is {status}, not 404 or 405"));
                }
                let error = self.error.as_ref().ok_or("no components/responses/Error")?;
                return check_body(error, "(undocumented route)", status, content_type, body);
            }
        };
        let status_text = status.to_string();
        let range = format!("{}XX", status / 100);
        let response = ["exact", "range", "default"]
            .iter()
            .find_map(|k| {
                let want = match *k {
                    "exact" => status_text.as_str(),
                    "range" => range.as_str(),
                    _ => "default",
                };
                op.responses.iter().find(|(s, _)| s == want).map(|(_, r)| r)
            })
            .ok_or_else(|| {
                format!(
                    "status {status} is not documented for {} {} (documented: {})",
                    op.method,
                    op.template,
                    op.responses
                        .iter()
                        .map(|(s, _)| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })?;
        check_body(
            response,
            &format!("{} {}", op.method, op.template),
            status,
            content_type,
            body,
        )
    }

    /// The operation for `method path`: literal segments preferred over `{parameters}`.
    fn operation(&self, method: &str, path: &str) -> Result<&Operation, String> {
        let segments: Vec<&str> = path.split('/').collect();
        self.operations
            .iter()
            .filter(|op| op.method == method.to_uppercase() && op.segments.len() == segments.len())
            .filter(|op| {
                op.segments
                    .iter()
                    .zip(&segments)
                    .all(|(t, s)| t.as_deref().map_or(!s.is_empty(), |t| t == *s))
            })
            .max_by_key(|op| op.segments.iter().filter(|s| s.is_some()).count())
            .ok_or_else(|| format!("{method} {path} is not documented"))
    }
}

/// Checks `body` (of type `content_type`) against the documented `response` of `at`.
fn check_body(
    response: &Response,
    at: &str,
    status: u16,
    content_type: Option<&str>,
    body: &[u8],
) -> Result<(), String> {
    let media = content_type
        .map(|c| {
            c.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_default();
    if response.content.is_empty() {
        return if body.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "a body ({media}) that is not documented for {at} {status}"
            ))
        };
    }
    let found = response.content.iter().find(|(m, _)| {
        m == &media
            || m == "*/*"
            || m.strip_suffix("/*")
                .is_some_and(|t| media.starts_with(&format!("{t}/")))
    });
    let Some((_, validator)) = found else {
        return Err(format!(
            "content type {media:?} is not documented for {at} {status}"
        ));
    };
    if let Some(families) = &response.metric_families {
        let text = std::str::from_utf8(body).map_err(|_| "metrics: not UTF-8".to_owned())?;
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let family = rest.split_whitespace().next().unwrap_or("");
                if !families.iter().any(|f| f == family) {
                    return Err(format!(
                        "metric family {family} is not in x-metric-families of {at}"
                    ));
                }
            }
        }
    }
    let Some(validator) = validator else {
        return Ok(());
    };
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        format!(
            "documented as JSON, but not JSON ({e}): {}",
            String::from_utf8_lossy(body)
        )
    })?;
    let errors: Vec<String> = validator
        .iter_errors(&value)
        .map(|e| format!("at {}: {e}", e.instance_path()))
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "the body does not match the schema of {at} {status}: {}\nbody: {value}",
            errors.join("; ")
        ))
    }
}

/// A response object, following a `$ref` into `components/responses`.
fn deref<'a>(doc: &'a Value, v: &'a Value) -> Result<&'a Value, String> {
    match v.get("$ref").and_then(Value::as_str) {
        Some(r) => pointer(doc, r),
        None => Ok(v),
    }
}

fn pointer<'a>(doc: &'a Value, r: &str) -> Result<&'a Value, String> {
    r.strip_prefix('#')
        .and_then(|p| doc.pointer(p))
        .ok_or_else(|| format!("unresolvable $ref {r}"))
}

fn compile_response(doc: &Value, r: &Value) -> Result<Response, String> {
    let mut content = Vec::new();
    if let Some(c) = r.get("content").and_then(Value::as_object) {
        for (media, m) in c {
            let json = media == "application/json" || media.ends_with("+json");
            let validator = match (json, m.get("schema")) {
                (true, Some(schema)) => {
                    let mut schema = inline(doc, schema, 0)?;
                    close(&mut schema, false);
                    Some(
                        jsonschema::options()
                            .with_draft(jsonschema::Draft::Draft202012)
                            .should_validate_formats(true)
                            .build(&schema)
                            .map_err(|e| format!("{media}: the schema does not compile: {e}"))?,
                    )
                }
                _ => None,
            };
            content.push((media.to_ascii_lowercase(), validator));
        }
    }
    let metric_families = r.get("x-metric-families").map(|f| {
        f.as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s.as_str().map(str::to_owned))
            .collect()
    });
    Ok(Response {
        content,
        metric_families,
    })
}

/// `schema` with every `$ref` replaced by what it names (siblings kept beside it in an `allOf`).
fn inline(doc: &Value, schema: &Value, depth: usize) -> Result<Value, String> {
    if depth > 32 {
        return Err("$ref nesting deeper than 32 (a cycle?)".into());
    }
    Ok(match schema {
        Value::Object(m) => {
            if let Some(r) = m.get("$ref").and_then(Value::as_str) {
                let target = inline(doc, pointer(doc, r)?, depth + 1)?;
                if m.len() == 1 {
                    return Ok(target);
                }
                let mut out = Map::new();
                for (k, v) in m.iter().filter(|(k, _)| *k != "$ref") {
                    out.insert(k.clone(), inline(doc, v, depth + 1)?);
                }
                out.insert("allOf".into(), Value::Array(vec![target]));
                return Ok(Value::Object(out));
            }
            let mut out = Map::new();
            for (k, v) in m {
                out.insert(k.clone(), inline(doc, v, depth + 1)?);
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(
            a.iter()
                .map(|v| inline(doc, v, depth + 1))
                .collect::<Result<_, _>>()?,
        ),
        other => other.clone(),
    })
}

/// Closes object schemas: one with `properties` or `allOf` and no `additionalProperties` or
/// `unevaluatedProperties` gets `unevaluatedProperties: false`. Members of an `allOf` are left
/// open (the `allOf` as a whole is closed instead, seeing what each member evaluated).
fn close(schema: &mut Value, all_of_member: bool) {
    let Value::Object(m) = schema else {
        return;
    };
    for (k, v) in m.iter_mut() {
        match k.as_str() {
            "allOf" | "oneOf" | "anyOf" => {
                for s in v.as_array_mut().into_iter().flatten() {
                    close(s, k == "allOf");
                }
            }
            "properties" | "patternProperties" => {
                for s in v.as_object_mut().into_iter().flat_map(|o| o.values_mut()) {
                    close(s, false);
                }
            }
            "items" | "additionalProperties" | "not" | "contains" => close(v, false),
            _ => {}
        }
    }
    if !all_of_member
        && (m.contains_key("properties") || m.contains_key("allOf"))
        && !m.contains_key("additionalProperties")
        && !m.contains_key("unevaluatedProperties")
    {
        m.insert("unevaluatedProperties".into(), Value::Bool(false));
    }
}

fn find_key(v: &Value, key: &str, at: &str, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                let here = format!("{at}/{k}");
                if k == key {
                    out.push(here.clone());
                }
                find_key(child, key, &here, out);
            }
        }
        Value::Array(a) => {
            for (i, child) in a.iter().enumerate() {
                find_key(child, key, &format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

// --- the HTTP client the node tests use -------------------------------------------------------

/// A `reqwest::Client` whose every answer is checked against the description ([`Spec::check`])
/// before the caller sees it. Same calls as `reqwest::Client` for what the tests use.
#[derive(Clone, Default)]
pub struct ApiClient(reqwest::Client);

impl From<reqwest::Client> for ApiClient {
    fn from(c: reqwest::Client) -> Self {
        ApiClient(c)
    }
}

impl ApiClient {
    pub fn new() -> ApiClient {
        ApiClient::default()
    }

    pub fn request(&self, method: reqwest::Method, url: impl reqwest::IntoUrl) -> ApiRequest {
        ApiRequest(self.0.request(method, url))
    }

    pub fn get(&self, url: impl reqwest::IntoUrl) -> ApiRequest {
        self.request(reqwest::Method::GET, url)
    }

    pub fn post(&self, url: impl reqwest::IntoUrl) -> ApiRequest {
        self.request(reqwest::Method::POST, url)
    }

    pub fn put(&self, url: impl reqwest::IntoUrl) -> ApiRequest {
        self.request(reqwest::Method::PUT, url)
    }

    pub fn delete(&self, url: impl reqwest::IntoUrl) -> ApiRequest {
        self.request(reqwest::Method::DELETE, url)
    }
}

/// A request being built; [`ApiRequest::send`] checks the answer.
pub struct ApiRequest(reqwest::RequestBuilder);

impl ApiRequest {
    pub fn bearer_auth(self, token: impl std::fmt::Display) -> ApiRequest {
        ApiRequest(self.0.bearer_auth(token))
    }

    pub fn header(self, name: &'static str, value: impl AsRef<str>) -> ApiRequest {
        ApiRequest(self.0.header(name, value.as_ref()))
    }

    pub fn body(self, body: impl Into<reqwest::Body>) -> ApiRequest {
        ApiRequest(self.0.body(body))
    }

    pub fn json<T: serde::Serialize + ?Sized>(self, json: &T) -> ApiRequest {
        ApiRequest(self.0.json(json))
    }

    pub fn multipart(self, form: reqwest::multipart::Form) -> ApiRequest {
        ApiRequest(self.0.multipart(form))
    }

    /// Sends the request, reads the whole answer and checks it against the description
    /// (panicking on a mismatch); the answer is handed back as a `reqwest::Response`.
    pub async fn send(self) -> reqwest::Result<reqwest::Response> {
        let (client, request) = self.0.build_split();
        let request = request?;
        let method = request.method().clone();
        let url = request.url().clone();
        let r = client.execute(request).await?;
        let (status, version, headers) = (r.status(), r.version(), r.headers().clone());
        let body = r.bytes().await?;
        let content_type = headers
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok());
        if let Err(e) = spec().check(
            method.as_str(),
            url.path(),
            status.as_u16(),
            content_type,
            &body,
        ) {
            panic!("OpenAPI: {method} {} answered {status}: {e}", url.path());
        }
        let mut answer = axum::http::Response::builder()
            .status(status)
            .version(version);
        if let Some(h) = answer.headers_mut() {
            *h = headers;
        }
        Ok(reqwest::Response::from(answer.body(body).unwrap()))
    }
}
