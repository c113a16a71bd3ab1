// SPDX-License-Identifier: MIT
// Validates a stream of Kubernetes objects (YAML, as `kubectl kustomize` renders it)
// against the API's JSON schemas, offline, with the kubernetes-models package:
//   kubectl kustomize DIR | node validate.mjs            one line per object, exit 1 on any error
//   kubectl kustomize DIR | node validate.mjs --json     the objects as a JSON array on stdout
import { parseAllDocuments } from "yaml";
import { readFileSync } from "node:fs";

const docs = parseAllDocuments(readFileSync(0, "utf8"));
const objects = [];
let failed = 0;

for (const doc of docs) {
  if (doc.errors.length) {
    console.error(`yaml: ${doc.errors[0].message}`);
    failed++;
    continue;
  }
  const obj = doc.toJS();
  if (obj === null) continue;
  objects.push(obj);
  const what = `${obj.kind ?? "?"}/${obj.metadata?.name ?? "?"}`;
  const [group, version] = String(obj.apiVersion ?? "").includes("/")
    ? obj.apiVersion.split("/")
    : ["", obj.apiVersion];
  let mod;
  try {
    mod = await import(group ? `kubernetes-models/${group}/${version}` : `kubernetes-models/${version}`);
  } catch {
    console.error(`${what}: unknown apiVersion ${obj.apiVersion}`);
    failed++;
    continue;
  }
  const Model = mod[obj.kind];
  if (!Model) {
    console.error(`${what}: unknown kind ${obj.kind} in ${obj.apiVersion}`);
    failed++;
    continue;
  }
  try {
    new Model(obj).validate();
    if (!process.argv.includes("--json")) console.log(`valid ${obj.apiVersion} ${what}`);
  } catch (e) {
    console.error(`${what}: ${e.message}`);
    failed++;
  }
}
if (process.argv.includes("--json")) console.log(JSON.stringify(objects));
if (!objects.length) {
  console.error("no objects");
  failed++;
}
process.exit(failed ? 1 : 0);
