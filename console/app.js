// Postern's web console: plain ES module, no dependencies, no inline script (the CSP forbids
// it). It talks only to the admin API on its own origin, over the admin certificate the
// browser presents. Every mutating call carries the CSRF token from /v1/console/session and,
// where the gateway asks for one, the one-time code typed in next to the button.
// Untrusted text (identities, audit details) only ever goes into textContent.

const view = document.getElementById("view");
const message = document.getElementById("message");
let session;

/** Builds an element: h("td", { class: "mono" }, "text", child, ...). */
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

function say(text, kind = "info") {
  message.textContent = text;
  message.className = kind;
  message.hidden = false;
}

function clearMessage() {
  message.hidden = true;
  message.textContent = "";
}

class ApiError extends Error {
  constructor(status, problem) {
    super(`${status} ${problem.code ?? "error"}: ${problem.detail ?? problem.title ?? ""}`);
    this.status = status;
    this.code = problem.code;
  }
}

async function api(method, path, body, otp) {
  const headers = { accept: "application/json" };
  if (body !== undefined) headers["content-type"] = "application/json";
  if (method !== "GET") headers["postern-csrf"] = session.csrfToken;
  if (otp) headers["postern-otp"] = otp;
  const res = await fetch(path, { method, headers, credentials: "same-origin", cache: "no-store", ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
  const type = res.headers.get("content-type") ?? "";
  const data = type.includes("json") ? await res.json() : undefined;
  if (!res.ok) throw new ApiError(res.status, data ?? {});
  return data;
}

const iso = (text) => (text ? text.replace("T", " ").replace(/\.\d+Z$/, "Z") : "");
const REASONS = ["keyCompromise", "affiliationChanged", "superseded", "cessationOfOperation", "certificateHold", "privilegeWithdrawn", "aACompromise", "cACompromise", "unspecified"];

/** An OTP field: labelled with whether the gateway currently asks for a code for `action`. */
function otpField(action, id) {
  const needed = session.secondFactor[action];
  return h("label", {}, needed ? "one-time code (required)" : "one-time code (not required)",
    h("input", { id, name: "otp", inputmode: "numeric", autocomplete: "one-time-code", pattern: "[0-9]{6}", maxlength: 6, size: 8, required: needed }));
}

// ---- certificates: inventory, search, filters, expiry timeline --------------------------------

async function allCertificates(query) {
  const items = [];
  let cursor;
  do {
    const q = new URLSearchParams(query);
    q.set("limit", "1000");
    if (cursor) q.set("cursor", cursor);
    const page = await api("GET", `/v1/certificates?${q}`);
    items.push(...page.items);
    cursor = page.nextCursor;
  } while (cursor && items.length < 10_000);
  return items;
}

async function showCertificates(params) {
  const search = params.get("q") ?? "";
  const status = params.get("status") ?? "";
  const within = params.get("within") ?? "";
  const query = new URLSearchParams();
  if (status) query.set("status", status);
  if (within) query.set("expiringWithin", within);
  const items = await allCertificates(query);
  const needle = search.toLowerCase();
  const shown = items.filter((c) => !needle || c.identity.toLowerCase().includes(needle) || c.serial.includes(needle) || c.roles.some((r) => r.toLowerCase().includes(needle)));
  const update = (key, value) => {
    const next = new URLSearchParams(params);
    if (value) next.set(key, value);
    else next.delete(key);
    location.hash = `#/certificates?${next}`;
  };
  const searchBox = h("input", { id: "search", type: "search", placeholder: "identity, serial or role", value: search });
  searchBox.addEventListener("change", () => update("q", searchBox.value.trim()));
  const statusSelect = h("select", { id: "status-filter", onchange: (e) => update("status", e.target.value) },
    ["", "valid", "revoked"].map((s) => h("option", { value: s, selected: s === status }, s || "any status")));
  const withinSelect = h("select", { id: "within-filter", onchange: (e) => update("within", e.target.value) },
    [["", "any expiry"], ["1d", "within 1 day"], ["7d", "within 7 days"], ["30d", "within 30 days"]].map(([v, t]) => h("option", { value: v, selected: v === within }, t)));
  view.replaceChildren(
    h("h2", {}, "Certificates"),
    h("div", { class: "filters" }, h("label", {}, "search", searchBox), h("label", {}, "status", statusSelect), h("label", {}, "expiry", withinSelect)),
    h("p", { class: "muted", id: "cert-count" }, `${shown.length} of ${items.length} certificates`),
    h("table", { id: "certs" },
      h("thead", {}, h("tr", {}, ["Serial", "Identity", "Roles", "Status", "Not after"].map((t) => h("th", {}, t)))),
      h("tbody", {}, shown.map((c) => h("tr", { "data-serial": c.serial },
        h("td", { class: "mono" }, h("a", { class: "cert-link", href: `#/certificate/${c.serial}` }, c.serial)),
        h("td", { class: "mono" }, c.identity),
        h("td", {}, c.roles.join(", ")),
        h("td", { class: `status-${c.status}` }, c.status),
        h("td", {}, iso(c.notAfter)))))),
    h("h3", {}, "Expiry timeline (valid certificates)"),
    expiryTimeline(items.filter((c) => c.status === "valid")),
  );
}

function expiryTimeline(valid) {
  const now = Date.now();
  const day = 86_400_000;
  const buckets = [["expired", -Infinity, 0], ["< 1 hour", 0, day / 24], ["1 h – 1 day", day / 24, day], ["1 – 7 days", day, 7 * day], ["7 – 30 days", 7 * day, 30 * day], ["30 – 90 days", 30 * day, 90 * day], ["> 90 days", 90 * day, Infinity]];
  const counts = buckets.map(([, lo, hi]) => valid.filter((c) => { const left = Date.parse(c.notAfter) - now; return left >= lo && left < hi; }).length);
  const max = Math.max(1, ...counts);
  return h("div", { class: "bars", id: "expiry-timeline" }, buckets.flatMap(([label], i) => {
    const bar = h("div", { class: "bar" });
    bar.style.width = `${(counts[i] / max) * 100}%`; // CSSOM, allowed by the CSP (no inline style attribute)
    return [h("span", {}, label), h("div", {}, bar), h("span", {}, String(counts[i]))];
  }));
}

// ---- one certificate: chain, status, OCSP, revoke -----------------------------------------------

async function showCertificate(serial) {
  const c = await api("GET", `/v1/certificates/${encodeURIComponent(serial)}`);
  const reason = h("select", { id: "revoke-reason" }, REASONS.map((r) => h("option", { value: r }, r)));
  const form = h("form", { id: "revoke-form" },
    h("label", {}, "reason", reason),
    otpField("revoke", "revoke-otp"),
    h("button", { type: "submit", class: "danger", id: "revoke-button" }, "Revoke"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const otp = form.querySelector("#revoke-otp").value.trim();
    try {
      await api("POST", `/v1/certificates/${encodeURIComponent(c.serial)}/revoke`, { reason: reason.value }, otp || undefined);
      await showCertificate(c.serial);
      say(`revoked ${c.serial}`);
    } catch (error) {
      say(error.message, "error");
    }
  });
  view.replaceChildren(
    h("h2", {}, "Certificate ", h("span", { class: "mono" }, c.serial)),
    h("dl", {},
      h("dt", {}, "identity"), h("dd", { class: "mono", id: "cert-identity" }, c.identity),
      h("dt", {}, "status"), h("dd", { id: "cert-status", class: `status-${c.status}` }, c.status, c.revocationReason ? ` (${c.revocationReason}, ${iso(c.revokedAt)})` : ""),
      h("dt", {}, "OCSP answer"), h("dd", { id: "cert-ocsp", class: c.ocsp.status }, c.ocsp.status, c.ocsp.reason ? ` (${c.ocsp.reason}, ${iso(c.ocsp.revokedAt)})` : ""),
      h("dt", {}, "roles"), h("dd", {}, c.roles.join(", ") || "none"),
      h("dt", {}, "profile"), h("dd", {}, c.profile ?? "built-in"),
      h("dt", {}, "valid"), h("dd", {}, `${iso(c.notBefore)} – ${iso(c.notAfter)}`),
      h("dt", {}, "keyid (x5t#S256)"), h("dd", { class: "mono" }, c.fingerprint)),
    h("h3", {}, "Chain"),
    h("table", { id: "chain" },
      h("thead", {}, h("tr", {}, ["Subject", "Issuer", "Serial", "Not after"].map((t) => h("th", {}, t)))),
      h("tbody", {}, c.chain.map((e) => h("tr", {}, h("td", { class: "mono" }, e.subject), h("td", { class: "mono" }, e.issuer), h("td", { class: "mono" }, e.serial), h("td", {}, iso(e.notAfter)))))),
    ...(c.status === "valid" ? [h("h3", {}, "Revoke"), form] : []),
    h("p", {}, h("a", { href: "#/certificates" }, "← all certificates"), " · ", h("a", { href: `#/connections?serial=${c.serial}` }, "its live connections")),
  );
}

// ---- live connections ---------------------------------------------------------------------------

async function showConnections(params) {
  const only = params.get("serial");
  const { items } = await api("GET", "/v1/connections");
  const shown = only ? items.filter((c) => c.serial === only) : items;
  const byIdentity = new Map();
  for (const c of shown) byIdentity.set(c.identity, [...(byIdentity.get(c.identity) ?? []), c]);
  const otp = otpField("connection-close", "close-otp");
  const close = async (c) => {
    try {
      await api("POST", `/v1/connections/${c.listener}/${c.id}/close`, {}, otp.querySelector("input").value.trim() || undefined);
      say(`closed ${c.listener} connection ${c.id} of ${c.identity}`);
      await showConnections(params);
    } catch (error) {
      say(error.message, "error");
    }
  };
  view.replaceChildren(
    h("h2", {}, "Live connections"),
    h("div", { class: "filters" }, otp, h("button", { type: "button", id: "refresh-connections", onclick: () => showConnections(params) }, "Refresh")),
    ...(only ? [h("p", {}, "certificate ", h("span", { class: "mono" }, only), " · ", h("a", { href: "#/connections" }, "all"))] : []),
    h("p", { class: "muted", id: "connection-count" }, `${shown.length} connections with a client certificate, ${byIdentity.size} identities`),
    h("table", { id: "connections" },
      h("thead", {}, h("tr", {}, ["Identity", "Listener", "Serial", "From", "Since", ""].map((t) => h("th", {}, t)))),
      h("tbody", {}, [...byIdentity.values()].flat().map((c) => h("tr", { "data-serial": c.serial, "data-listener": c.listener },
        h("td", { class: "mono" }, c.identity), h("td", {}, c.listener), h("td", { class: "mono" }, h("a", { href: `#/certificate/${c.serial}` }, c.serial)),
        h("td", { class: "mono" }, c.remote), h("td", {}, iso(c.openedAt)),
        h("td", {}, c.serial === session.serial && c.listener === "admin" ? h("span", { class: "muted" }, "this console") : h("button", { type: "button", class: "danger close-connection", onclick: () => close(c) }, "Close")))))),
  );
}

// ---- tokens -------------------------------------------------------------------------------------

function showTokens() {
  const result = h("div", { id: "token-result" });
  const form = h("form", { id: "token-form" },
    h("label", {}, "identity", h("input", { id: "token-identity", required: true, size: 44, placeholder: "spiffe://postern.local/client/orders" })),
    h("label", {}, "valid for", h("input", { id: "token-ttl", value: "15m", size: 6 })),
    h("label", {}, "roles (comma-separated, optional)", h("input", { id: "token-roles", size: 16 })),
    otpField("token", "token-otp"),
    h("button", { type: "submit", id: "token-button" }, "Create token"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const roles = form.querySelector("#token-roles").value.split(",").map((r) => r.trim()).filter(Boolean);
    const body = { identity: form.querySelector("#token-identity").value.trim(), ttl: form.querySelector("#token-ttl").value.trim() || "15m", ...(roles.length ? { roles } : {}) };
    try {
      const created = await api("POST", "/v1/tokens", body, form.querySelector("#token-otp").value.trim() || undefined);
      result.replaceChildren(h("p", {}, `One-time token for ${body.identity}, valid until ${iso(created.expiresAt)}. Shown once: hand it over like a password.`), h("div", { class: "token", id: "token-value" }, created.token));
      clearMessage();
    } catch (error) {
      say(error.message, "error");
    }
  });
  view.replaceChildren(h("h2", {}, "Enrollment tokens"), form, result, h("p", { class: "muted" }, "The same as: postern token create --id IDENTITY --ttl 15m --otp CODE"));
}

// ---- audit log ----------------------------------------------------------------------------------

async function showAudit() {
  const { verification, events } = await api("GET", "/v1/audit");
  view.replaceChildren(
    h("h2", {}, "Audit log"),
    h("p", { id: "audit-verification", class: verification.ok ? "ok" : "bad" }, verification.ok
      ? `chain verified: ${verification.lines} lines, head ${verification.head}`
      : `chain BROKEN at line ${verification.line}: ${verification.reason}`),
    h("table", { id: "audit" },
      h("thead", {}, h("tr", {}, ["#", "At", "Actor", "Action", "Subject", "Details"].map((t) => h("th", {}, t)))),
      h("tbody", {}, events.slice().reverse().map((e) => h("tr", {},
        h("td", {}, String(e.seq)), h("td", {}, iso(e.at)), h("td", { class: "mono" }, e.actor), h("td", {}, e.action), h("td", { class: "mono" }, e.subject), h("td", { class: "mono" }, JSON.stringify(e.details)))))),
  );
}

// ---- traffic ------------------------------------------------------------------------------------

async function showTraffic() {
  const { minutes } = await api("GET", "/v1/traffic");
  const outcomes = [...new Set(minutes.flatMap((m) => Object.keys(m.outcomes)))].sort((a, b) => (a === "accepted" ? -1 : b === "accepted" ? 1 : a.localeCompare(b)));
  const color = (o) => `c${outcomes.indexOf(o) % 8}`;
  const max = Math.max(1, ...minutes.map((m) => Object.values(m.outcomes).reduce((a, b) => a + b, 0)));
  const totals = Object.fromEntries(outcomes.map((o) => [o, minutes.reduce((n, m) => n + (m.outcomes[o] ?? 0), 0)]));
  view.replaceChildren(
    h("h2", {}, "Messages over the last hour, per minute"),
    h("div", { class: "legend" }, outcomes.map((o) => h("span", {}, h("span", { class: `swatch ${color(o)}` }), `${o}: ${totals[o]}`))),
    h("div", { class: "chart", id: "traffic-chart" }, minutes.map((m) => h("div", { class: "col", title: `${iso(m.at)}: ${JSON.stringify(m.outcomes)}` },
      outcomes.filter((o) => m.outcomes[o]).map((o) => {
        const seg = h("div", { class: `seg ${color(o)}` });
        seg.style.height = `${(m.outcomes[o] / max) * 10}rem`;
        return seg;
      })))),
    h("p", { class: "muted" }, `accepted and refused (by error code) requests on the data plane, from this gateway's own counters; tallest minute ${max}`),
  );
}

// ---- routing ------------------------------------------------------------------------------------

async function route() {
  const [path, query] = (location.hash.slice(1) || "/certificates").split("?");
  const params = new URLSearchParams(query ?? "");
  for (const a of document.querySelectorAll("nav a")) a.classList.toggle("active", path.startsWith(a.getAttribute("href").slice(1)));
  try {
    if (path.startsWith("/certificate/")) await showCertificate(decodeURIComponent(path.slice("/certificate/".length)));
    else if (path === "/connections") await showConnections(params);
    else if (path === "/tokens") showTokens();
    else if (path === "/audit") await showAudit();
    else if (path === "/traffic") await showTraffic();
    else await showCertificates(params);
  } catch (error) {
    view.replaceChildren(h("p", { class: "bad" }, error.message));
  }
}

async function start() {
  try {
    session = await api("GET", "/v1/console/session");
  } catch (error) {
    view.replaceChildren(h("p", { class: "bad" }, `The admin API refused this browser: ${error.message}`));
    return;
  }
  document.getElementById("whoami").textContent = session.identity;
  window.addEventListener("hashchange", () => { clearMessage(); void route(); });
  await route();
}

void start();
