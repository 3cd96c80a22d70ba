#!/usr/bin/env python3
"""Validates every JSON answer hcloud-sim logged during the test suite
(`--response-log` files in DIR) against the OpenAPI response schemas of
hcloud-openapi-subset.json. Prints one summary line; exits 1 on any violation.

Usage: validate_responses.py DIR
"""
import collections
import glob
import json
import os
import sys

import jsonschema

HERE = os.path.dirname(os.path.abspath(__file__))


def schema_for(operation, status):
    """The schema for an exact status, else its class (4xx/5xx), else default."""
    for key in (str(status), f"{str(status)[0]}xx", "default"):
        if key in operation:
            return key, operation[key]
    return None, None


def main(directory):
    subset = json.load(open(os.path.join(HERE, "hcloud-openapi-subset.json")))
    checked, skipped = 0, 0
    violations = []
    per_route = collections.Counter()
    for path in sorted(glob.glob(os.path.join(directory, "*.jsonl"))):
        with open(path) as f:
            for line_no, line in enumerate(f, 1):
                entry = json.loads(line)
                if not entry["route"]:
                    skipped += 1  # not an API path at all (a 404 for a typo)
                    continue
                name = f"{entry['method']} {entry['route']}"
                operation = subset["responses"].get(name)
                if operation is None:
                    violations.append(f"{name}: not an operation of the document")
                    continue
                key, schema = schema_for(operation, entry["status"])
                if key is None:
                    violations.append(f"{name}: status {entry['status']} is not documented")
                    continue
                checked += 1
                per_route[name] += 1
                if schema is None:
                    continue
                for err in jsonschema.Draft202012Validator(schema).iter_errors(entry["body"]):
                    where = "/".join(str(p) for p in err.absolute_path)
                    violations.append(f"{name} {entry['status']} at /{where}: {err.message} ({os.path.basename(path)}:{line_no})")
    for v in violations[:50]:
        print("violation:", v)
    print(f"conformance: {checked} simulator responses checked against OpenAPI {subset['openapi']} "
          f"(document {subset['info_version']}, sha256 {subset['sha256'][:12]}), "
          f"{len(per_route)} operations covered, {len(violations)} violations")
    if checked == 0:
        print("conformance: no responses were logged; was KBV3_RESPONSE_LOG_DIR set?")
        return 1
    return 1 if violations else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
