#!/usr/bin/env node
// Checks the deployment assets without Docker, kubectl or promtool:
//   - every YAML file under deploy/ parses (all documents, no duplicate keys);
//   - every JSON file under deploy/ parses;
//   - the Postern config files pass Postern's own schema (needs dist/: `npm ci` or `npm run build`);
//   - every postern_* metric named in the Prometheus rules and the Grafana dashboard exists;
//   - rule groups have the fields Prometheus requires; Kubernetes documents name apiVersion/kind
//     (their full Kubernetes schema check is test/deploy/kubernetes.test.ts, with kubernetes-models).
// Usage: node deploy/validate.mjs   (from the repository root or anywhere; exit 1 on a problem)
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseAllDocuments } from "yaml";

const deployDir = dirname(fileURLToPath(import.meta.url));
const root = dirname(deployDir);
const problems = [];
const problem = (file, message) => problems.push(`${relative(root, file)}: ${message}`);
let checked = 0;

function walk(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? walk(join(dir, entry.name)) : [join(dir, entry.name)],
  );
}

/** Parses every document of a YAML file; compose files use merge keys (<<). */
function yamlDocs(file) {
  const docs = parseAllDocuments(readFileSync(file, "utf8"), { merge: true, uniqueKeys: true, prettyErrors: false });
  const list = Array.isArray(docs) ? docs : [docs];
  for (const doc of list) {
    for (const error of [...doc.errors, ...doc.warnings]) problem(file, error.message.split("\n")[0]);
  }
  return list.map((doc) => doc.toJS({ maxAliasCount: 100 })).filter((value) => value !== null && value !== undefined);
}

const files = walk(deployDir);
const parsed = new Map();
for (const file of files) {
  if (/\.ya?ml$/.test(file)) {
    parsed.set(file, yamlDocs(file));
    checked += 1;
  } else if (file.endsWith(".json")) {
    try {
      parsed.set(file, [JSON.parse(readFileSync(file, "utf8"))]);
    } catch (error) {
      problem(file, `not valid JSON: ${error.message}`);
    }
    checked += 1;
  }
}

// Postern configuration files, through Postern's schema.
const configFiles = [join(deployDir, "compose/postern.yaml"), join(deployDir, "kubernetes/postern.yaml")];
let parseConfig;
let PrometheusRecorder;
try {
  ({ parseConfig } = await import(pathToFileURL(join(root, "dist/config/load.js")).href));
  ({ PrometheusRecorder } = await import(pathToFileURL(join(root, "dist/metrics/prometheus.js")).href));
} catch (error) {
  problems.push(`dist/ is missing or stale (run npm ci or npm run build): ${error.message}`);
}
if (parseConfig) {
  for (const file of configFiles) {
    try {
      parseConfig(parsed.get(file)?.[0] ?? {}, relative(root, file));
    } catch (error) {
      problem(file, error.message);
    }
  }
}

// Metric names used by the rules and the dashboard.
if (PrometheusRecorder) {
  const recorder = new PrometheusRecorder();
  recorder.redisAvailable(true); // postern_redis_up exists only in Redis mode
  recorder.storageUp(true); // postern_storage_up only in embedded mode
  const known = new Set(recorder.registry.getMetricsAsArray().map((m) => m.name));
  const histogram = /_(bucket|sum|count)$/;
  const exists = (name) => known.has(name) || (histogram.test(name) && known.has(name.replace(histogram, "")));
  for (const file of [join(deployDir, "prometheus/rules.yaml"), join(deployDir, "grafana/postern-dashboard.json")]) {
    const names = new Set(readFileSync(file, "utf8").match(/\bpostern_[a-z0-9_]+/g) ?? []);
    for (const name of names) {
      // Metric names in prose (annotations) are checked too; skip the gauge help's label values.
      if (!exists(name)) problem(file, `unknown metric ${name}`);
    }
  }
}

// Rule file structure.
const rulesFile = join(deployDir, "prometheus/rules.yaml");
const alerts = new Set();
for (const group of parsed.get(rulesFile)?.[0]?.groups ?? []) {
  if (typeof group.name !== "string" || !Array.isArray(group.rules)) problem(rulesFile, "a group needs name and rules");
  for (const rule of group.rules ?? []) {
    if (typeof rule.alert !== "string" || typeof rule.expr !== "string") problem(rulesFile, `rule without alert/expr in ${group.name}`);
    if (!rule.labels?.severity) problem(rulesFile, `${rule.alert}: no severity label`);
    if (!rule.annotations?.summary) problem(rulesFile, `${rule.alert}: no summary annotation`);
    if (rule.for !== undefined && !/^\d+[smhdwy]$/.test(rule.for)) problem(rulesFile, `${rule.alert}: bad for: ${rule.for}`);
    const opens = (rule.expr ?? "").split("(").length;
    const closes = (rule.expr ?? "").split(")").length;
    if (opens !== closes) problem(rulesFile, `${rule.alert}: unbalanced parentheses`);
    if (alerts.has(rule.alert)) problem(rulesFile, `duplicate alert ${rule.alert}`);
    alerts.add(rule.alert);
  }
}
if (alerts.size === 0) problem(rulesFile, "no alerting rules");

// Kubernetes manifests.
for (const file of files.filter((f) => f.includes(`${join("deploy", "kubernetes")}`) && /\.ya?ml$/.test(f))) {
  if (file.endsWith("postern.yaml") || file.endsWith("kustomization.yaml")) continue;
  for (const doc of parsed.get(file) ?? []) {
    if (!doc.apiVersion || !doc.kind || !doc.metadata?.name) problem(file, "a document without apiVersion, kind or metadata.name");
  }
}

// Grafana: every panel has a unique id and its targets an expr.
const dashboardFile = join(deployDir, "grafana/postern-dashboard.json");
const dashboard = parsed.get(dashboardFile)?.[0];
if (dashboard) {
  const ids = new Set();
  for (const panel of dashboard.panels ?? []) {
    if (ids.has(panel.id)) problem(dashboardFile, `duplicate panel id ${panel.id}`);
    ids.add(panel.id);
    for (const target of panel.targets ?? []) if (!target.expr) problem(dashboardFile, `panel "${panel.title}" has a target without expr`);
  }
}

if (problems.length > 0) {
  process.stderr.write(`${problems.length} problem(s):\n  ${problems.join("\n  ")}\n`);
  process.stderr.write("(unknown keys or metrics can also mean dist/ is older than src/: run npm run build)\n");
  process.exit(1);
}
process.stdout.write(`deploy/: ${checked} YAML and JSON files parse; configs pass the schema; ${alerts.size} alerts name known metrics\n`);
