#!/usr/bin/env python3
"""Extracts from the official Hetzner Cloud OpenAPI document the response
schemas of the endpoints hcloud-sim serves, stripped of prose, and converts
them to JSON Schema (OpenAPI 3.0 `nullable` becomes `anyOf [..., null]`).

Usage: extract_openapi_schemas.py OPENAPI.json OUT.json

The output is committed (tests/conformance/hcloud-openapi-subset.json) so the
conformance check runs on a plain clone; rerun this script when the document
changes. The document's version and SHA-256 are recorded in the output.
"""
import hashlib
import json
import sys

ENDPOINTS = [
    ("GET", "/actions"), ("GET", "/actions/{id}"),
    ("GET", "/datacenters"), ("GET", "/datacenters/{id}"),
    ("GET", "/locations"), ("GET", "/locations/{id}"),
    ("GET", "/networks"), ("GET", "/networks/{id}"),
    ("GET", "/server_types"), ("GET", "/server_types/{id}"),
    ("GET", "/servers"), ("GET", "/servers/{id}"),
    ("GET", "/volumes"), ("POST", "/volumes"),
    ("GET", "/volumes/actions"), ("GET", "/volumes/actions/{id}"),
    ("GET", "/volumes/{id}"), ("PUT", "/volumes/{id}"), ("DELETE", "/volumes/{id}"),
    ("GET", "/volumes/{id}/actions"), ("GET", "/volumes/{id}/actions/{action_id}"),
    ("POST", "/volumes/{id}/actions/attach"), ("POST", "/volumes/{id}/actions/detach"),
    ("POST", "/volumes/{id}/actions/resize"), ("POST", "/volumes/{id}/actions/change_protection"),
]

# Keywords that carry structure; everything else (description, example, title,
# format, deprecated, readOnly, ...) is prose or advice and is dropped.
KEEP = {"type", "properties", "required", "items", "enum", "additionalProperties",
        "minimum", "maximum", "minItems", "maxItems", "pattern", "allOf", "anyOf", "oneOf"}


def convert(schema):
    if isinstance(schema, list):
        return [convert(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {}
    for key, value in schema.items():
        if key not in KEEP:
            continue
        if key == "properties":
            out[key] = {name: convert(sub) for name, sub in value.items()}
        elif key in ("items", "additionalProperties") and isinstance(value, dict):
            out[key] = convert(value)
        elif key in ("allOf", "anyOf", "oneOf"):
            out[key] = convert(value)
        else:
            out[key] = value
    if schema.get("nullable"):
        if "enum" in out and None not in out["enum"]:
            out["enum"] = out["enum"] + [None]
        return {"anyOf": [out, {"type": "null"}]}
    return out


def main(src, dst):
    raw = open(src, "rb").read()
    doc = json.loads(raw)
    responses = {}
    for method, path in ENDPOINTS:
        op = doc["paths"][path][method.lower()]
        for status, resp in op["responses"].items():
            schema = resp.get("content", {}).get("application/json", {}).get("schema")
            entry = responses.setdefault(f"{method} {path}", {})
            entry[status] = convert(schema) if schema else None
    out = {
        "_source": "Hetzner Cloud OpenAPI document (official, converted to JSON)",
        "openapi": doc["openapi"],
        "info_version": doc["info"].get("version"),
        "sha256": hashlib.sha256(raw).hexdigest(),
        "responses": responses,
    }
    with open(dst, "w") as f:
        json.dump(out, f, indent=1, sort_keys=True)
        f.write("\n")
    print(f"wrote {dst}: {len(responses)} operations")


if __name__ == "__main__":
    main(*sys.argv[1:3])
