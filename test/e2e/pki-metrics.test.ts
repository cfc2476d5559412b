import { generateKeyPairSync } from "node:crypto";
import t from "tap";
import { createCsr } from "../../src/pki/issue/csr-create.js";
import { startGateway } from "../helpers/gateway.js";

const metric = (text: string, name: string): number => {
  const line = text.split("\n").find((l) => l.startsWith(name + " "));
  if (!line) throw new Error(`no ${name} in the exposition`);
  return Number(line.slice(name.length + 1));
};

t.test("PKI metrics: expiry countdowns, issuance and revocation counters", async (t) => {
  const gw = await startGateway();
  t.teardown(() => gw.stop());
  const scrape = async () => (await fetch(`${gw.publicUrl}/metrics`)).text();

  let text = await scrape();
  t.ok(metric(text, 'postern_expiry_seconds{what="ca"}') > 4 * 365 * 86_400, "issuing CA: about 5 years");
  const crl = metric(text, 'postern_expiry_seconds{what="crl"}');
  t.ok(crl > 86_000 && crl <= 86_400, `CRL nextUpdate in about a day (${crl})`);
  t.ok(metric(text, 'postern_expiry_seconds{what="earliest_certificate"}') > 80 * 86_400, "the bootstrap's 90-day certificates");
  t.equal(metric(text, "postern_certificates_expired"), 0, "no certificate has lapsed");

  const admin = await gw.adminClient();
  const { privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const csr = createCsr({ privateKey, identity: "spiffe://postern.local/client/short" });
  const issued = (await admin.call("POST", "/v1/certificates", { csr, lifetime: "1h" })) as { serial: string };
  text = await scrape();
  const earliest = metric(text, 'postern_expiry_seconds{what="earliest_certificate"}');
  t.ok(earliest > 3500 && earliest <= 3600, `the new one-hour certificate is the earliest at once (${earliest})`);
  t.equal(metric(text, 'postern_certificates_total{kind="issued"}'), 1);

  await admin.call("POST", `/v1/certificates/${issued.serial}/revoke`, { reason: "keyCompromise" });
  text = await scrape();
  t.equal(metric(text, 'postern_certificates_revoked_total{reason="keyCompromise"}'), 1);
  t.match(text, /postern_revocation_propagation_seconds_count 1/);
});
