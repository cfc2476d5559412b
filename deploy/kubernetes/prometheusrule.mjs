#!/usr/bin/env node
// Prints deploy/kubernetes/prometheusrule.yaml: the Prometheus Operator's PrometheusRule made
// from deploy/prometheus/rules.yaml, the one source of the alerting rules (promtool tests it).
// Never edit the output by hand; regenerate it after changing the rules:
//   node deploy/kubernetes/prometheusrule.mjs > deploy/kubernetes/prometheusrule.yaml
// test/deploy/kubernetes.test.ts fails when the two differ.
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parse, stringify } from "yaml";

const deployDir = dirname(dirname(fileURLToPath(import.meta.url)));
const rules = parse(readFileSync(join(deployDir, "prometheus/rules.yaml"), "utf8"));
const resource = {
  apiVersion: "monitoring.coreos.com/v1",
  kind: "PrometheusRule",
  metadata: {
    name: "postern",
    labels: { "app.kubernetes.io/name": "postern", "app.kubernetes.io/component": "gateway" },
  },
  spec: { groups: rules.groups },
};
const header = [
  "# Generated from deploy/prometheus/rules.yaml by deploy/kubernetes/prometheusrule.mjs: do not edit.",
  "# Needs the Prometheus Operator (monitoring.coreos.com CRDs): add it to kustomization.yaml's",
  "# resources, and give it the labels your Prometheus's ruleSelector picks.",
];
process.stdout.write(`${header.join("\n")}\n${stringify(resource, { lineWidth: 0 })}`);
