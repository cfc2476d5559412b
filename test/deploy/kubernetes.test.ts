/**
 * The Kubernetes manifests, without a cluster: every object passes the Kubernetes schema
 * (kubernetes-models, offline), and the manifests agree with the code and the docs: the pod
 * mounts exactly POD_PKI_FILES read-only and writes only to declared volumes, its shutdown
 * timing fits Postern's SIGTERM behaviour, the NetworkPolicy opens what deploy/README.md says,
 * the PrometheusRule is rules.yaml, and the README's Secret command makes exactly the pod's files.
 */
import { execFile } from "node:child_process";
import { mkdtemp, readFile, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, posix } from "node:path";
import { promisify } from "node:util";
import t from "tap";
import { parse, parseAllDocuments } from "yaml";
import { loadConfig } from "../../src/config/load.js";
import { ensurePki } from "../../src/pki/ca/bootstrap.js";
import { POD_PKI_FILES } from "../../src/pki/index.js";
import { ROOT } from "../helpers/process.js";

const run = promisify(execFile);
const K8S = join(ROOT, "deploy/kubernetes");
/** Files in deploy/kubernetes that are not Kubernetes objects. */
const NOT_OBJECTS = new Set(["kustomization.yaml", "postern.yaml"]);
const NEVER_IN_A_POD = ["root-ca.key", "admin.key", "admin.crt", "demo-client.key", "demo-client.crt", "ca-passphrase"];

// The shapes of just what these checks read; the schema check covers the rest.
interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string };
  [key: string]: unknown;
}
interface EnvVar { name: string; value?: string }
interface Mount { name: string; mountPath: string; readOnly?: boolean }
interface Probe { httpGet?: { path: string; port: string | number }; periodSeconds?: number; failureThreshold?: number }
interface Container {
  env: EnvVar[];
  volumeMounts: Mount[];
  ports: Array<{ name: string; containerPort: number }>;
  readinessProbe: Probe;
  livenessProbe: Probe;
  lifecycle?: { preStop?: unknown };
}
interface Volume { name: string; secret?: { secretName: string; items?: Array<{ key: string; path: string }> }; persistentVolumeClaim?: unknown; emptyDir?: unknown }
interface PodSpec { containers: Container[]; volumes: Volume[]; terminationGracePeriodSeconds: number }
interface Deployment extends Manifest { spec: { template: { metadata: { labels: Record<string, string> }; spec: PodSpec } } }
interface Peer { podSelector?: { matchLabels?: Record<string, string> }; namespaceSelector?: { matchLabels?: Record<string, string> }; ipBlock?: unknown }
interface NetworkPolicy extends Manifest {
  spec: { podSelector: { matchLabels?: Record<string, string> }; policyTypes: string[]; ingress?: Array<{ from?: Peer[]; ports?: Array<{ port: string | number }> }> };
}

/** Every Kubernetes object in deploy/kubernetes, with the file it is in. */
async function manifests(): Promise<Array<{ file: string; doc: Manifest }>> {
  const files = (await readdir(K8S)).filter((f) => f.endsWith(".yaml") && !NOT_OBJECTS.has(f)).sort();
  const out: Array<{ file: string; doc: Manifest }> = [];
  for (const file of files) {
    for (const doc of parseAllDocuments(await readFile(join(K8S, file), "utf8"))) {
      if (doc.errors.length > 0) throw new Error(`${file}: ${doc.errors[0]!.message}`);
      const value = doc.toJS() as Manifest | null;
      if (value) out.push({ file, doc: value });
    }
  }
  return out;
}

/** A kubernetes-models class: `validate()` throws what the API server's schema refuses. */
interface ModelClass {
  new (data: unknown): { validate(): void };
}

/**
 * The schema of an object's apiVersion and kind. The specifier is built at run time on purpose:
 * kubernetes-models is a devDependency the suite needs only here, so its types stay out of
 * `npm run typecheck`, which then also passes on an install made before it was added.
 */
async function modelOf(apiVersion: string, kind: string): Promise<ModelClass> {
  const pkg = apiVersion.startsWith("monitoring.coreos.com/") ? "@kubernetes-models/prometheus-operator" : "kubernetes-models";
  let module: Record<string, ModelClass | undefined>;
  try {
    module = (await import(`${pkg}/${apiVersion}/${kind}`)) as Record<string, ModelClass | undefined>;
  } catch (error) {
    throw new Error(`no schema for ${apiVersion} ${kind} (is ${pkg} installed? it is a devDependency: npm ci): ${(error as Error).message}`);
  }
  const model = module[kind];
  if (!model) throw new Error(`${pkg} has no ${kind} in ${apiVersion}`);
  return model;
}

/** What the schema refuses in `doc`, one line per object; empty when it passes. */
async function schemaProblems(where: string, doc: Manifest): Promise<string[]> {
  try {
    new (await modelOf(doc.apiVersion, doc.kind))(doc).validate();
    return [];
  } catch (error) {
    return [`${where}: ${doc.kind}/${doc.metadata?.name}: ${(error as Error).message}`];
  }
}

async function findOne<T extends Manifest>(kind: string, name: string): Promise<T> {
  const found = (await manifests()).find(({ doc }) => doc.kind === kind && doc.metadata.name === name);
  if (!found) throw new Error(`no ${kind} ${name} in deploy/kubernetes`);
  return found.doc as T;
}

const gateway = async () => {
  const deployment = await findOne<Deployment>("Deployment", "postern");
  return { deployment, pod: deployment.spec.template.spec, container: deployment.spec.template.spec.containers[0]! };
};

const envOf = (container: Container) => new Map(container.env.filter((e) => e.value !== undefined).map((e) => [e.name, e.value!]));

/** The pod's configuration: the ConfigMap's file with the Deployment's literal environment. */
async function podConfig() {
  const { container } = await gateway();
  return loadConfig({ ...Object.fromEntries(envOf(container)), POSTERN_CONFIG: join(K8S, "postern.yaml") });
}

t.test("every manifest passes the Kubernetes schema (kubernetes-models)", async (t) => {
  const all = await manifests();
  t.ok(all.length >= 12, `${all.length} objects`);
  const problems = (await Promise.all(all.map(({ file, doc }) => schemaProblems(file, doc)))).flat();
  t.same(problems, []);
  t.same([...new Set(all.map(({ doc }) => doc.kind))].sort(), [
    "Deployment", "Namespace", "NetworkPolicy", "PersistentVolumeClaim", "PodDisruptionBudget", "PrometheusRule", "Secret", "Service", "ServiceMonitor", "StatefulSet",
  ]);
});

t.test("a broken manifest fails the schema check (a test of the test)", async (t) => {
  const { deployment } = await gateway();
  const broken = structuredClone(deployment);
  broken.spec.template.spec.containers[0]!.ports[0]!.containerPort = "8443" as unknown as number;
  t.match(await schemaProblems("deployment.yaml", broken), [/Deployment\/postern: .*containers\/0\/ports\/0\/containerPort must be integer/]);
  const nameless = structuredClone(deployment);
  delete (nameless.spec.template.spec.containers[0] as Partial<Container> & { name?: string }).name;
  t.match(await schemaProblems("deployment.yaml", nameless), [/containers\/0 must have required property name/]);
  const policy = structuredClone(await findOne<NetworkPolicy>("NetworkPolicy", "postern-gateway"));
  delete (policy.spec as { podSelector?: unknown }).podSelector;
  t.match(await schemaProblems("networkpolicy.yaml", policy), [/data\/spec must have required property podSelector/]);
});

t.test("kubectl kustomize renders the kustomization, and every object it renders passes the schema", async (t) => {
  const home = await mkdtemp(join(tmpdir(), "postern-kubectl-"));
  t.teardown(() => rm(home, { recursive: true, force: true }));
  const rendered = await run("kubectl", ["kustomize", K8S], { env: { ...process.env, HOME: home }, maxBuffer: 16 * 1024 * 1024 }).catch((error: Error) => error);
  if (rendered instanceof Error) {
    const why = (rendered as NodeJS.ErrnoException).code === "ENOENT" ? "kubectl is not installed" : rendered.message.split("\n")[0]!;
    if ((rendered as NodeJS.ErrnoException).code !== "ENOENT") return t.fail(`kubectl kustomize failed: ${why}`);
    t.comment(`SKIPPED: ${why}: the kustomization was not rendered (the files were checked one by one above)`);
    return t.pass("skipped: no kubectl", { skip: why });
  }
  const docs = parseAllDocuments(rendered.stdout).map((d) => d.toJS() as Manifest);
  t.same((await Promise.all(docs.map((doc) => schemaProblems("kubectl kustomize", doc)))).flat(), []);
  const kinds = docs.map((d) => `${d.kind}/${d.metadata.name}`);
  for (const wanted of ["Deployment/postern", "NetworkPolicy/postern-gateway", "NetworkPolicy/redis", "NetworkPolicy/default-deny-ingress", "PersistentVolumeClaim/postern-state"]) {
    t.ok(kinds.includes(wanted), `${wanted} is applied`);
  }
  t.ok(kinds.some((k) => /^ConfigMap\/postern-config-/.test(k)), "the configuration as a ConfigMap");
});

t.test("the gateway pod mounts exactly POD_PKI_FILES, read-only, and nothing else of the PKI: no root key, client credentials or passphrase file", async (t) => {
  const { deployment, pod, container } = await gateway();
  const pki = pod.volumes.find((v) => v.secret?.secretName === "postern-pki");
  t.ok(pki, "the PKI comes from the Secret postern-pki");
  t.same(pki!.secret!.items!.map((i) => i.key).sort(), [...POD_PKI_FILES].sort(), "listed key by key: exactly POD_PKI_FILES");
  t.same(pki!.secret!.items!.map((i) => i.path), pki!.secret!.items!.map((i) => i.key), "each under its own name");
  const mount = container.volumeMounts.find((m) => m.name === pki!.name);
  t.equal(mount?.readOnly, true, "mounted read-only");
  t.equal(mount?.mountPath, envOf(container).get("POSTERN_PKI_DIR"), "at pki.dir");
  t.equal(envOf(container).get("POSTERN_PKI_READ_ONLY"), "1", "and Postern is told not to write there");
  const text = JSON.stringify(deployment);
  for (const never of NEVER_IN_A_POD) {
    // As a file name: the Secret `postern-ca-passphrase` is another thing than the file `ca-passphrase`.
    t.notMatch(text, new RegExp(`(?<![\\w.-])${never.replaceAll(".", "\\.")}(?![\\w-])`), `${never} appears nowhere in the Deployment`);
  }
});

t.test("every location the pod writes is on a writable volume, what must survive on the state PVC, and the pod's configuration loads", async (t) => {
  const { pod, container } = await gateway();
  const config = await podConfig();
  t.equal(config.pki.readOnly, true);
  const mounts = container.volumeMounts;
  const volumeAt = (path: string) => {
    const mount = mounts.filter((m) => path === m.mountPath || path.startsWith(`${m.mountPath}/`)).sort((a, b) => b.mountPath.length - a.mountPath.length)[0];
    return { mount, volume: pod.volumes.find((v) => v.name === mount?.name) };
  };
  const persistent = {
    "pki.stateDir (the trust ledger)": config.pki.stateDir,
    "pki.auditLogPath": config.pki.auditLogPath,
    "pki.signingKeysDir (the forward-signing keys)": config.pki.signingKeysDir,
  };
  for (const [what, path] of Object.entries(persistent)) {
    t.ok(path && posix.isAbsolute(path), `${what} is set: ${path}`);
    const { mount, volume } = volumeAt(path!);
    t.notOk(mount?.readOnly, `${what} is writable`);
    t.ok(volume?.persistentVolumeClaim, `${what} is on a PersistentVolumeClaim (${volume?.name}): it must survive pods`);
  }
  const data = volumeAt(config.data.dir);
  t.ok(data.mount && !data.mount.readOnly, "data.dir is a writable volume");
  t.ok(config.redis.url !== "", "Redis mode: data.dir and the file store are unused, so an emptyDir is enough for data.dir");
  const tmp = volumeAt("/tmp");
  t.ok(tmp.volume?.emptyDir, "/tmp for commands run with kubectl exec");
});

t.test("SIGTERM: the readiness probe sees the 503 while Postern still serves; the grace period outlasts delay and drain; no preStop", async (t) => {
  const { pod, container } = await gateway();
  const { shutdown, listeners } = await podConfig();
  const probe = container.readinessProbe;
  t.equal(probe.httpGet?.path, "/readyz");
  t.equal(container.livenessProbe.httpGet?.path, "/healthz", "liveness: /healthz, which stays 200 while draining");
  const seenWithinSeconds = (probe.periodSeconds ?? 10) * (probe.failureThreshold ?? 3);
  t.ok(seenWithinSeconds <= shutdown.readinessDelaySeconds, `not ready noticed within ${seenWithinSeconds} s <= readinessDelaySeconds ${shutdown.readinessDelaySeconds}`);
  const needed = shutdown.readinessDelaySeconds + shutdown.drainTimeoutSeconds;
  t.ok(pod.terminationGracePeriodSeconds > needed, `terminationGracePeriodSeconds ${pod.terminationGracePeriodSeconds} > ${needed}`);
  t.equal(container.lifecycle?.preStop, undefined, "no preStop sleep: the readiness delay is Postern's own");
  const publicPort = container.ports.find((p) => p.name === probe.httpGet?.port);
  t.equal(publicPort?.containerPort, listeners.public.port, "the probes reach the public listener");
});

t.test("NetworkPolicy: data from anywhere, admin from the namespace, public from the namespace and monitoring, Redis from the gateway only", async (t) => {
  const { deployment, container } = await gateway();
  const portNumber = (port: string | number) => (typeof port === "number" ? port : container.ports.find((p) => p.name === port)?.containerPort);
  const deny = await findOne<NetworkPolicy>("NetworkPolicy", "default-deny-ingress");
  t.same(deny.spec, { podSelector: {}, policyTypes: ["Ingress"] }, "everything else in the namespace is closed");
  const policy = await findOne<NetworkPolicy>("NetworkPolicy", "postern-gateway");
  t.same(policy.spec.podSelector.matchLabels, deployment.spec.template.metadata.labels, "selects the gateway pods");
  const rules = policy.spec.ingress ?? [];
  const ruleFor = (port: number) => rules.filter((r) => r.ports?.some((p) => portNumber(p.port) === port));
  t.same(ruleFor(8443).map((r) => r.from), [undefined], "8443: one rule, no `from`: anyone");
  t.same(ruleFor(8444).map((r) => r.from), [[{ podSelector: {} }]], "8444: pods of this namespace only");
  t.same(ruleFor(9464).map((r) => r.from), [[{ podSelector: {} }, { namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "monitoring" } } }]], "9464: this namespace and monitoring");
  t.equal(rules.length, 3, "and no other rule");
  const redis = await findOne<NetworkPolicy>("NetworkPolicy", "redis");
  t.same(redis.spec.ingress?.map((r) => r.from), [[{ podSelector: { matchLabels: deployment.spec.template.metadata.labels } }]], "Redis: from the gateway pods only");
});

t.test("the PrometheusRule is generated from deploy/prometheus/rules.yaml and holds exactly its groups", async (t) => {
  const generated = await run(process.execPath, [join(K8S, "prometheusrule.mjs")]);
  const committed = await readFile(join(K8S, "prometheusrule.yaml"), "utf8");
  t.equal(committed, generated.stdout, "regenerate with: node deploy/kubernetes/prometheusrule.mjs > deploy/kubernetes/prometheusrule.yaml");
  const rules = parse(await readFile(join(ROOT, "deploy/prometheus/rules.yaml"), "utf8")) as { groups: unknown[] };
  t.same((parse(committed) as { spec: { groups: unknown[] } }).spec.groups, rules.groups);
});

t.test("secret.example.yaml shows exactly the pod's files", async (t) => {
  const secret = await findOne<Manifest & { stringData: Record<string, string> }>("Secret", "postern-pki");
  t.same(Object.keys(secret.stringData).sort(), [...POD_PKI_FILES].sort());
});

/** The deploy/README.md command that creates the PKI Secret, continuation lines joined. */
function readmeSecretCommand(readme: string): string {
  const match = /^[ \t]*kubectl -n postern create secret generic postern-pki(?:[^\n]*\\\n)*[^\n]*$/m.exec(readme);
  if (!match) throw new Error("deploy/README.md has no `kubectl -n postern create secret generic postern-pki` command");
  return match[0].replace(/\\\n\s*/g, " ").trim();
}

t.test("deploy/README.md lists exactly POD_PKI_FILES, and its Secret command, run as written on a bootstrapped directory, makes a Secret of exactly those", async (t) => {
  const readme = await readFile(join(ROOT, "deploy/README.md"), "utf8");
  const command = readmeSecretCommand(readme);
  const fromFiles = [...command.matchAll(/--from-file=pki\/(\S+)/g)].map((m) => m[1]!);
  t.same(fromFiles.sort(), [...POD_PKI_FILES].sort(), "the command names exactly the pod's files");
  const listed = /<!-- pod-pki-files -->\n([\s\S]*?)<!-- \/pod-pki-files -->/.exec(readme)?.[1] ?? "";
  t.same([...listed.matchAll(/^\| `([^`]+)` \|/gm)].map((m) => m[1]).sort(), [...POD_PKI_FILES].sort(), "the table of the pod's files");
  const dir = await mkdtemp(join(tmpdir(), "postern-secret-"));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await ensurePki({ dir: join(dir, "pki"), hostnames: ["postern"], env: { POSTERN_CA_PASSPHRASE: "a passphrase for the Secret test" } });
  const created = await run("sh", ["-c", `${command} --dry-run=client -o json`], { cwd: dir, env: { ...process.env, HOME: dir } }).catch((error: Error) => error);
  if (created instanceof Error) {
    if (!/kubectl: (command )?not found/.test(created.message)) return t.fail(`the README's command failed: ${created.message}`);
    t.comment("SKIPPED: kubectl is not installed: the README's Secret command was not run");
    return t.pass("skipped: no kubectl", { skip: "kubectl is not installed" });
  }
  const secret = JSON.parse(created.stdout) as { metadata: { name: string; namespace: string }; data: Record<string, string> };
  t.same([secret.metadata.name, secret.metadata.namespace], ["postern-pki", "postern"]);
  t.same(Object.keys(secret.data).sort(), [...POD_PKI_FILES].sort(), "exactly the pod's files, each present after a bootstrap");
});
