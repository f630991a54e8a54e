// Validates every YAML document of the files named on the command line by
// its kind, with the models of @kubernetes-models/istio and
// @kubernetes-models/envoy-gateway (package.json pins them):
//
// 1. the models' own validators (JSON Schema compiled with Ajv): types,
//    enums, patterns, lengths, required fields. They ignore fields they do
//    not know, so
// 2. each document is also type-checked, as an object literal, against the
//    model's TypeScript interface (generated from the same schema): an
//    unknown field at any depth is an error ("excess property"), and so is
//    a wrong type.
//
// Prints `ok FILE` or `FAIL FILE` followed by the errors, one per line;
// exits 1 if any file fails. Usage: node check.mjs FILE...
//
// The models declare Node.js 22 or later in their package.json; they run
// on Node.js 20, the oldest ./build.sh accepts (tests/manifests.rs runs
// them there).

import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseAllDocuments } from "yaml";
import ts from "typescript";

const here = dirname(fileURLToPath(import.meta.url));

// kind -> [apiVersion, module, class]
const KINDS = {
  WasmPlugin: ["extensions.istio.io/v1alpha1", "@kubernetes-models/istio/extensions.istio.io/v1alpha1/WasmPlugin"],
  EnvoyFilter: ["networking.istio.io/v1alpha3", "@kubernetes-models/istio/networking.istio.io/v1alpha3/EnvoyFilter"],
  EnvoyExtensionPolicy: ["gateway.envoyproxy.io/v1alpha1", "@kubernetes-models/envoy-gateway/gateway.envoyproxy.io/v1alpha1/EnvoyExtensionPolicy"],
  EnvoyPatchPolicy: ["gateway.envoyproxy.io/v1alpha1", "@kubernetes-models/envoy-gateway/gateway.envoyproxy.io/v1alpha1/EnvoyPatchPolicy"],
  ClientTrafficPolicy: ["gateway.envoyproxy.io/v1alpha1", "@kubernetes-models/envoy-gateway/gateway.envoyproxy.io/v1alpha1/ClientTrafficPolicy"],
  EnvoyProxy: ["gateway.envoyproxy.io/v1alpha1", "@kubernetes-models/envoy-gateway/gateway.envoyproxy.io/v1alpha1/EnvoyProxy"],
  Secret: ["v1", "kubernetes-models/v1/Secret"],
};

const files = process.argv.slice(2);
if (files.length === 0) {
  console.error("usage: node check.mjs FILE...");
  process.exit(2);
}

const errors = new Map(files.map((f) => [f, []]));
const sources = new Map(); // virtual .ts file -> [manifest file, document index]
const texts = new Map();

for (const file of files) {
  const docs = parseAllDocuments(readFileSync(file, "utf8"));
  for (const [i, d] of docs.entries()) {
    const where = `document ${i + 1}`;
    if (d.errors.length > 0) {
      for (const e of d.errors) errors.get(file).push(`${where}: YAML: ${e.message}`);
      continue;
    }
    const obj = d.toJS();
    if (obj === null || obj === undefined) continue;
    const known = KINDS[obj.kind];
    if (!known) {
      errors.get(file).push(`${where}: kind ${JSON.stringify(obj.kind)} is not one this check knows`);
      continue;
    }
    const [apiVersion, module] = known;
    if (obj.apiVersion !== apiVersion) {
      errors.get(file).push(`${where}: ${obj.kind} is ${apiVersion}, not ${JSON.stringify(obj.apiVersion)}`);
      continue;
    }
    const cls = (await import(module))[obj.kind];
    try {
      new cls(obj).validate();
    } catch (e) {
      errors.get(file).push(`${where}: ${obj.kind}: ${e.message}`);
    }
    const name = join(here, `.check-${sources.size}.ts`);
    sources.set(name, [file, where]);
    texts.set(
      name,
      `import type { I${obj.kind} } from "${module}";\n` +
        `export const doc: I${obj.kind} = ${JSON.stringify(obj, null, 1)};\n`,
    );
  }
}

if (sources.size > 0) {
  const options = {
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2022,
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    types: [],
  };
  const host = ts.createCompilerHost(options);
  const { getSourceFile, fileExists, readFile } = host;
  host.fileExists = (f) => texts.has(f) || fileExists.call(host, f);
  host.readFile = (f) => texts.get(f) ?? readFile.call(host, f);
  host.getSourceFile = (f, lang, ...rest) =>
    texts.has(f)
      ? ts.createSourceFile(f, texts.get(f), lang, true)
      : getSourceFile.call(host, f, lang, ...rest);
  const program = ts.createProgram([...texts.keys()], options, host);
  for (const diag of ts.getPreEmitDiagnostics(program)) {
    const message = ts.flattenDiagnosticMessageText(diag.messageText, " ");
    const at = diag.file && sources.get(diag.file.fileName);
    if (!at) {
      // Not about a manifest: the models themselves did not load.
      console.error(`the models' types do not load: ${message}`);
      process.exit(2);
    }
    // The literal's property path, from the root to the offending node.
    let node = ts.getTokenAtPosition(diag.file, diag.start);
    const path = [];
    for (; node; node = node.parent) {
      if (ts.isPropertyAssignment(node)) path.unshift(node.name.text);
      else if (node.parent && ts.isArrayLiteralExpression(node.parent)) {
        path.unshift(String(node.parent.elements.indexOf(node)));
      }
    }
    errors.get(at[0]).push(`${at[1]}: /${path.join("/")}: ${message}`);
  }
}

let failed = false;
for (const [file, errs] of errors) {
  if (errs.length === 0) {
    console.log(`ok ${file}`);
  } else {
    failed = true;
    console.log(`FAIL ${file}`);
    for (const e of errs) console.log(`  ${e}`);
  }
}
process.exit(failed ? 1 : 0);
