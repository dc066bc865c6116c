//! The OpenAPI 3.1 document of the API, built from [`ROUTES`], the one list of what the
//! server serves (the drift test `tests/openapi.rs` calls every route of it on the real
//! router, and compares the document with the copy kept in `server/openapi.json`).

use serde_json::{json, Map, Value};

/// One operation of the API.
#[derive(Debug, Clone, Copy)]
pub struct Route {
    /// `get` or `post`.
    pub method: &'static str,
    /// The path, with `{name}` parameters.
    pub path: &'static str,
    /// What it does.
    pub summary: &'static str,
    /// The request body's schema (a name under `components.schemas`), if any.
    pub body: Option<&'static str>,
    /// The success status.
    pub ok: u16,
    /// The query parameters (all optional).
    pub query: &'static [(&'static str, &'static str)],
}

const fn r(
    method: &'static str,
    path: &'static str,
    summary: &'static str,
    body: Option<&'static str>,
    ok: u16,
    query: &'static [(&'static str, &'static str)],
) -> Route {
    Route {
        method,
        path,
        summary,
        body,
        ok,
        query,
    }
}

const WAIT: &[(&str, &str)] = &[("wait", "boolean")];

/// Every operation, in the order the document lists them.
pub const ROUTES: &[Route] = &[
    r("get", "/v1/stagings", "List the stagings", None, 200, &[]),
    r(
        "post",
        "/v1/stagings",
        "Create a staging (202 pending, or 200 with ?wait=true)",
        Some("CreateStaging"),
        202,
        WAIT,
    ),
    r(
        "get",
        "/v1/stagings/{name}",
        "Show a staging (private values masked)",
        None,
        200,
        &[],
    ),
    r(
        "post",
        "/v1/stagings/{name}/update",
        "Update a staging's tag and overrides",
        Some("UpdateStaging"),
        202,
        WAIT,
    ),
    r(
        "post",
        "/v1/stagings/{name}/delete",
        "Delete (archive) a staging",
        None,
        202,
        WAIT,
    ),
    r(
        "post",
        "/v1/stagings/{name}/restore",
        "Restore an archived staging",
        Some("RestoreStaging"),
        202,
        WAIT,
    ),
    r(
        "post",
        "/v1/stagings/{name}/cleanup",
        "Remove a staging and its resources",
        None,
        202,
        WAIT,
    ),
    r(
        "get",
        "/v1/stagings/{name}/audit",
        "The audit log of a staging",
        None,
        200,
        &[("after", "integer"), ("limit", "integer")],
    ),
    r(
        "get",
        "/v1/stagings/{name}/info",
        "The named URLs of a staging",
        None,
        200,
        &[],
    ),
    r(
        "get",
        "/v1/events",
        "Staging events (Server-Sent Events, or a WebSocket)",
        None,
        200,
        &[("after", "integer"), ("staging", "string")],
    ),
    r("get", "/v1/capsules", "List the capsules", None, 200, &[]),
    r(
        "post",
        "/v1/capsules",
        "Create a capsule",
        Some("CreateCapsule"),
        201,
        &[],
    ),
    r(
        "get",
        "/v1/capsules/{id}/crates",
        "List a capsule's crates",
        None,
        200,
        &[],
    ),
    r(
        "post",
        "/v1/capsules/{id}/crates",
        "Bump: a new crate",
        Some("Bump"),
        201,
        &[],
    ),
    r(
        "get",
        "/v1/capsules/{id}/latest",
        "The newest crate (or the newest published)",
        None,
        200,
        &[("published", "boolean")],
    ),
    r(
        "get",
        "/v1/capsules/{id}/crates/{version}",
        "One crate",
        None,
        200,
        &[],
    ),
    r(
        "post",
        "/v1/capsules/{id}/crates/{version}/seal",
        "Seal (publish) a crate",
        None,
        200,
        &[],
    ),
    r(
        "get",
        "/v1/capsules/{id}/crates/{version}/sequences",
        "Frame sequences of a section, with missing frames",
        None,
        200,
        &[("section", "string")],
    ),
    r(
        "get",
        "/v1/fsck",
        "Check the store (no repair)",
        None,
        200,
        &[],
    ),
    r("get", "/v1/openapi.json", "This document", None, 200, &[]),
    r("get", "/metrics", "Prometheus metrics", None, 200, &[]),
    r("get", "/healthz", "Alive", None, 200, &[]),
    r(
        "get",
        "/readyz",
        "Ready: state store and store root reachable",
        None,
        200,
        &[],
    ),
];

/// Whether a route needs no token.
pub fn is_public(path: &str) -> bool {
    matches!(path, "/healthz" | "/readyz" | "/v1/openapi.json")
}

fn schemas() -> Value {
    let override_ = json!({"type": "object", "required": ["key", "value"], "additionalProperties": false,
        "properties": {"key": {"type": "string"}, "value": {"type": "string"},
            "scope": {"type": "string", "enum": ["app", "staging"], "default": "app"},
            "private": {"type": "boolean", "default": false}}});
    let ttl = json!({"type": "string", "description": "a time to live (`3d`, `12h`) or `never`"});
    json!({
        "Override": override_,
        "CreateStaging": {"type": "object", "required": ["name", "tag"], "additionalProperties": false,
            "properties": {"name": {"type": "string"}, "tag": {"type": "string"},
                "overrides": {"type": "array", "items": {"$ref": "#/components/schemas/Override"}},
                "ttl": ttl}},
        "UpdateStaging": {"type": "object", "required": ["tag"], "additionalProperties": false,
            "properties": {"tag": {"type": "string"},
                "overrides": {"type": "array", "items": {"$ref": "#/components/schemas/Override"}},
                "set": {"type": "array", "items": {"$ref": "#/components/schemas/Override"}},
                "unset": {"type": "array", "items": {"type": "object", "required": ["key"],
                    "additionalProperties": false, "properties": {"key": {"type": "string"},
                    "scope": {"type": "string", "enum": ["app", "staging"]}}}},
                "ttl": ttl}},
        "RestoreStaging": {"type": "object", "additionalProperties": false, "properties": {"ttl": ttl}},
        "CreateCapsule": {"type": "object", "required": ["id"], "additionalProperties": false,
            "properties": {"id": {"type": "string"}}},
        "Bump": {"type": "object", "additionalProperties": false,
            "properties": {"comment": {"type": "string"},
                "carry_over": {"type": "array", "items": {"type": "string", "enum": ["artifacts", "publishes", "scenes"]}},
                "tags": {"type": "array", "items": {"type": "string"}}}},
        "Problem": {"type": "object", "required": ["type", "title", "status", "detail", "code"],
            "properties": {"type": {"type": "string"}, "title": {"type": "string"},
                "status": {"type": "integer"}, "detail": {"type": "string"},
                "code": {"type": "string", "description": "capsa's stable error code (NOT_FOUND, BUSY, …) or UNAUTHENTICATED / FORBIDDEN"}}},
    })
}

/// The OpenAPI document.
pub fn document() -> Value {
    let mut paths = Map::new();
    for route in ROUTES {
        let params: Vec<Value> = route
            .path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}'))
            .map(|p| json!({"name": p, "in": "path", "required": true, "schema": {"type": "string"}}))
            .chain(route.query.iter().map(|(q, t)| {
                json!({"name": q, "in": "query", "required": false, "schema": {"type": t}})
            }))
            .collect();
        let problem = json!({"description": "a problem (RFC 9457)",
            "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}});
        let mut op = json!({
            "summary": route.summary,
            "operationId": format!("{}{}", route.method, route.path.replace(['/', '{', '}', '.'], "_")),
            "responses": {route.ok.to_string(): {"description": "success"}, "default": problem},
        });
        if !params.is_empty() {
            op["parameters"] = Value::Array(params);
        }
        if let Some(b) = route.body {
            op["requestBody"] = json!({"required": route.method == "post" && b != "RestoreStaging",
                "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{b}")}}}});
        }
        if is_public(route.path) {
            op["security"] = json!([]);
        }
        let entry = paths
            .entry(route.path.to_string())
            .or_insert_with(|| json!({}));
        entry[route.method] = op;
    }
    json!({
        "openapi": "3.1.0",
        "info": {"title": "capsa serve", "version": env!("CARGO_PKG_VERSION"),
            "description": "capsa's HTTP API: show storage, stagings, live events."},
        "paths": paths,
        "components": {
            "schemas": schemas(),
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "basic": {"type": "http", "scheme": "basic"},
            },
        },
        "security": [{"bearer": []}, {"basic": []}],
    })
}
