#!/usr/bin/env python3
"""Validates Kubernetes manifests against vendored CustomResourceDefinitions
(and Helm values files against a chart's values.schema.json), the way the
API server's schema checks see them:

- each document is matched to the CRD of its apiVersion group, version and
  kind, and validated against that version's openAPIV3Schema;
- unknown fields are errors wherever the schema does not preserve them
  (kubectl's default --validate=strict), so a misspelled field fails here
  instead of being silently dropped by the server;
- the CEL rules (x-kubernetes-validations) are evaluated with cel-python
  (./build.sh test installs it).

usage: validate.py --crds CRD.yaml... --manifests FILE.yaml...
       validate.py --values SCHEMA.json FILE.yaml
Prints one line per document; exits 1 if any fails.
"""
import copy
import json
import re
import sys

import jsonschema
import yaml

# libyaml when present: the Envoy Gateway CRDs are large.
LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def strict(schema):
    """A copy of a structural schema where unknown fields are errors."""
    s = copy.deepcopy(schema)

    def walk(node):
        if not isinstance(node, dict):
            return
        if (
            "properties" in node
            and "additionalProperties" not in node
            and not node.get("x-kubernetes-preserve-unknown-fields")
        ):
            node["additionalProperties"] = False
        for key in ("properties", "patternProperties"):
            for child in node.get(key, {}).values():
                walk(child)
        for key in ("items", "additionalProperties", "not"):
            walk(node.get(key))
        for key in ("allOf", "anyOf", "oneOf"):
            for child in node.get(key, []):
                walk(child)

    walk(s)
    return s


def _parse_request_uri(s):
    """What Kubernetes' CEL isURL/url accept (Go's url.ParseRequestURI):
    an absolute URI or an absolute path, without spaces."""
    s = str(s)
    if not s or any(c.isspace() for c in s):
        return None
    m = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*):(.*)$", s)
    if m:
        return m.group(1).lower()
    return "" if s.startswith("/") else None


def _celpy():
    """cel-python, imported only when a CRD has CEL rules (it is slow to load)."""
    import celpy

    return celpy


_PROGRAMS = {}


def _program(rule):
    """The compiled rule (compiling is the costly step; rules repeat)."""
    if rule not in _PROGRAMS:
        env = _celpy().Environment()
        _PROGRAMS[rule] = env.program(env.compile(rule), functions=k8s_functions())
    return _PROGRAMS[rule]


# The Kubernetes CEL URL library (k8s.io/apiserver/pkg/cel/library/urls.go),
# as far as the vendored CRDs use it.
def k8s_functions():
    celpy = _celpy()
    return {
        "isURL": lambda s: celpy.celtypes.BoolType(_parse_request_uri(s) is not None),
        "url": lambda s: celpy.celtypes.StringType(s)
        if _parse_request_uri(s) is not None
        else celpy.CELEvalError("URL parse error"),
        "getScheme": lambda u: celpy.celtypes.StringType(_parse_request_uri(u) or ""),
    }


def cel_errors(schema, value, path):
    """Evaluates every x-kubernetes-validations rule that applies to value
    and to the values below it."""
    errors = []
    if not isinstance(schema, dict):
        return errors
    for rule in schema.get("x-kubernetes-validations", []):
        try:
            result = _program(rule["rule"]).evaluate({"self": _celpy().json_to_cel(value)})
        except Exception as e:  # a rule this evaluator cannot run
            errors.append(f"{path}: cannot evaluate {rule['rule']!r}: {e}")
            continue
        if isinstance(result, Exception) or not bool(result):  # a CELEvalError is a failure
            errors.append(f"{path}: {rule.get('message', rule['rule'])}")
    if isinstance(value, dict):
        for name, child in value.items():
            sub = schema.get("properties", {}).get(name)
            if sub is None and isinstance(schema.get("additionalProperties"), dict):
                sub = schema["additionalProperties"]
            errors += cel_errors(sub, child, f"{path}.{name}")
    elif isinstance(value, list):
        for i, child in enumerate(value):
            errors += cel_errors(schema.get("items"), child, f"{path}[{i}]")
    return errors


def load_crds(paths):
    crds = {}
    for path in paths:
        with open(path) as f:
            for doc in yaml.load_all(f, Loader=LOADER):
                if not doc or doc.get("kind") != "CustomResourceDefinition":
                    continue
                spec = doc["spec"]
                for version in spec["versions"]:
                    key = (spec["group"], version["name"], spec["names"]["kind"])
                    crds[key] = version["schema"]["openAPIV3Schema"]
    return crds


def check_manifest(crds, path):
    failed = False
    with open(path) as f:
        docs = [d for d in yaml.load_all(f, Loader=LOADER) if d]
    for doc in docs:
        group, _, version = doc.get("apiVersion", "").rpartition("/")
        kind = doc.get("kind")
        name = f"{path}: {kind}/{doc.get('metadata', {}).get('name')}"
        schema = crds.get((group, version, kind))
        if schema is None:
            print(f"FAIL {name}: no vendored CRD for {doc.get('apiVersion')} {kind}")
            failed = True
            continue
        s = strict(schema)
        for field in ("apiVersion", "kind"):
            s.setdefault("properties", {})[field] = {"type": "string"}
        s["properties"]["metadata"] = {"type": "object", "required": ["name"]}
        errors = [
            f"{'.'.join(str(p) for p in e.absolute_path) or '(root)'}: {e.message}"
            for e in jsonschema.Draft7Validator(s).iter_errors(doc)
        ]
        if not errors:
            errors += cel_errors(schema.get("properties", {}).get("spec"), doc.get("spec", {}), "spec")
        if errors:
            failed = True
            print(f"FAIL {name}")
            for e in errors:
                print(f"  {e}")
        else:
            print(f"ok   {name}")
    return failed


def main(argv):
    if argv[:1] == ["--values"] and len(argv) == 3:
        with open(argv[1]) as f:
            schema = json.load(f)
        with open(argv[2]) as f:
            values = yaml.safe_load(f)
        errors = list(jsonschema.Draft7Validator(schema).iter_errors(values))
        for e in errors:
            print(f"FAIL {argv[2]}: {'.'.join(str(p) for p in e.absolute_path)}: {e.message}")
        if not errors:
            print(f"ok   {argv[2]}")
        return 1 if errors else 0
    if "--crds" not in argv or "--manifests" not in argv:
        print(__doc__)
        return 2
    i, j = argv.index("--crds"), argv.index("--manifests")
    crds = load_crds(argv[i + 1 : j])
    failed = False
    for path in argv[j + 1 :]:
        failed |= check_manifest(crds, path)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
