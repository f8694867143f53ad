//! The checker of `tests/common/openapi.rs` (through which every node test's HTTP answers pass)
//! finds drift, and the node's description compiles under it.

mod common;

use common::openapi::{Spec, spec};

const DOC: &str = r##"
openapi: 3.1.0
info: { title: t, version: "1" }
paths:
  /things/{id}:
    get:
      responses:
        "200":
          description: ok
          content:
            application/json:
              schema:
                allOf:
                  - $ref: "#/components/schemas/Base"
                  - type: object
                    properties:
                      extra: { type: [string, "null"] }
        "404": { $ref: "#/components/responses/Error" }
  /things/special:
    get:
      responses:
        "204": { description: none }
components:
  responses:
    Error:
      description: e
      content:
        application/json:
          schema:
            type: object
            required: [code]
            properties: { code: { type: string } }
  schemas:
    Base:
      type: object
      required: [id]
      properties:
        id: { type: integer }
        at: { type: string, format: date-time }
"##;

#[test]
fn the_checker_finds_drift() {
    let s = Spec::parse(DOC).unwrap();
    let json = Some("application/json");
    let ok = |body: &str| s.check("GET", "/things/7", 200, json, body.as_bytes());
    ok(r#"{"id": 7, "extra": null, "at": "2026-11-25T10:00:00Z"}"#).unwrap();
    ok(r#"{"id": 7, "extra": "x"}"#).unwrap();
    // Missing, retyped, undocumented, badly formatted.
    assert!(ok(r#"{"extra": "x"}"#).is_err());
    assert!(ok(r#"{"id": "7"}"#).is_err());
    let e = ok(r#"{"id": 7, "new_field": 1}"#).unwrap_err();
    assert!(e.contains("new_field"), "{e}");
    assert!(ok(r#"{"id": 7, "at": "yesterday"}"#).is_err());
    assert!(ok("not json").is_err());
    // Status, content type, path and method.
    let e = s.check("GET", "/things/7", 500, json, b"{}").unwrap_err();
    assert!(e.contains("not documented"), "{e}");
    assert!(
        s.check("GET", "/things/7", 200, Some("text/plain"), b"x")
            .is_err()
    );
    assert!(s.check("POST", "/things/7", 200, json, b"{}").is_err());
    assert!(s.check("GET", "/nothing", 200, json, b"{}").is_err());
    s.check("GET", "/things/7", 404, json, br#"{"code": "NOT_FOUND"}"#)
        .unwrap();
    // The literal path wins over the template; a body where none is documented is drift.
    s.check("GET", "/things/special", 204, None, b"").unwrap();
    assert!(s.check("GET", "/things/special", 204, json, b"{}").is_err());
}

#[test]
fn openapi_3_0_nullable_is_refused() {
    let doc = DOC.replace(r#"type: [string, "null"]"#, "type: string, nullable: true");
    let e = Spec::parse(&doc).err().unwrap();
    assert!(e.contains("nullable"), "{e}");
}

#[test]
fn the_description_of_the_node_compiles() {
    let _ = spec();
}

/// A route the description does not have must be refused with the documented error body; the
/// families of a metrics body must be listed.
#[test]
fn undocumented_routes_and_metric_families() {
    let doc = DOC.replacen(
        "paths:\n",
        "paths:\n  /metrics:\n    get:\n      responses:\n        \"200\":\n          \
         description: m\n          x-metric-families: [a_total]\n          content:\n            \
         text/plain:\n              schema: { type: string }\n",
        1,
    );
    let s = Spec::parse(&doc).unwrap();
    let json = Some("application/json");
    s.check("GET", "/nowhere", 404, json, br#"{"code": "NOT_FOUND"}"#)
        .unwrap();
    assert!(s.check("GET", "/nowhere", 200, json, b"{}").is_err());
    assert!(s.check("GET", "/nowhere", 404, json, b"{}").is_err());
    let text = Some("text/plain; version=0.0.4");
    s.check(
        "GET",
        "/metrics",
        200,
        text,
        b"# TYPE a_total counter\na_total 1\n",
    )
    .unwrap();
    let e = s
        .check(
            "GET",
            "/metrics",
            200,
            text,
            b"# TYPE b_total counter\nb_total 1\n",
        )
        .unwrap_err();
    assert!(e.contains("b_total"), "{e}");
}
