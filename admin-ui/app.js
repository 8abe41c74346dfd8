// mailcloak admin web UI: plain ES module, no build step, no CDN. Talks to
// the JSON API of the same origin; a browser session sends its CSRF token in
// X-CSRF-Token on every state-changing request.

const $ = (id) => document.getElementById(id);
const ADMIN_VIEWS = new Set(["overview", "setup", "domains", "aliases", "apps"]);
const state = { me: null, token: sessionStorage.getItem("mailcloakAdminToken") || "", aliases: [], self: null };

class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

async function api(method, path, body) {
  const headers = {};
  if (state.token) headers.Authorization = `Bearer ${state.token}`;
  if (state.me && state.me.csrf && method !== "GET") headers["X-CSRF-Token"] = state.me.csrf;
  const init = { method, headers, credentials: "same-origin" };
  if (body !== undefined) { headers["Content-Type"] = "application/json"; init.body = JSON.stringify(body); }
  const res = await fetch(path, init);
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  if (!res.ok) throw new ApiError(res.status, (data && data.error) || `HTTP ${res.status}`);
  return data;
}

function notify(message, ok = false) {
  const n = $("notice");
  n.textContent = message;
  n.className = ok ? "ok" : "";
  n.hidden = false;
}
function clearNotice() { $("notice").hidden = true; }
function announce(text) { $("status").textContent = text; }

/** Run an action; show its error (the API's one line) instead of throwing. */
function guarded(fn) {
  return async (event) => {
    if (event && event.preventDefault) event.preventDefault();
    clearNotice();
    try { await fn(event); } catch (err) { notify(err.message); if (err.status === 401) await boot(); }
  };
}

/** Ask before anything destructive; resolves true when confirmed. */
function confirmAction(text, okLabel = "Confirm") {
  const d = $("confirm");
  $("confirm-text").textContent = text;
  $("confirm-ok").textContent = okLabel;
  d.returnValue = "";
  d.showModal();
  $("confirm-cancel").focus();
  return new Promise((resolve) => d.addEventListener("close", () => resolve(d.returnValue === "ok"), { once: true }));
}

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "onclick" || k === "onsubmit") e.addEventListener(k.slice(2), v);
    else if (k === "text") e.textContent = v;
    else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c);
  return e;
}
const button = (label, onclick, cls = "", aria = "") => el("button", { type: "button", class: cls, onclick: guarded(onclick), ...(aria ? { "aria-label": aria } : {}) }, label);
const yesNo = (v, yes = "yes", no = "no") => el("span", { class: v ? "yes" : "no", text: v ? yes : no });
function kv(target, rows) {
  target.replaceChildren();
  for (const [k, v] of rows) target.append(el("dt", { text: k }), v instanceof Node ? el("dd", {}, v) : el("dd", { text: v ?? "-" }));
}
const enc = encodeURIComponent;

// ---- views -------------------------------------------------------------------

async function showOverview() {
  const o = await api("GET", "/api/overview");
  const s = o.setup;
  kv($("ov-config"), [["Path", s.config_path], ["Exists", yesNo(s.config_exists)], ["Valid", yesNo(s.config_valid)], ["Writable", yesNo(s.config_writable)], ["Problem", s.config_error || s.config_writable_error || "-"]]);
  kv($("ov-db"), [["Path", s.db_path], ["Exists", yesNo(s.db_exists)], ["Initialised", yesNo(s.db_initialized)], ["Writable", yesNo(s.db_writable)], ["Problem", s.db_error || s.db_writable_error || "-"]]);
  kv($("ov-idp"), [["Provider", o.idp.provider || "-"], ["Answers", yesNo(o.idp.ok)], ["Detail", o.idp.detail]]);
  kv($("ov-daemon"), [["Configured", yesNo(o.daemon.configured)], ["Ready", yesNo(o.daemon.ready)], ["Detail", o.daemon.detail]]);
}

function setupConfig() {
  const f = $("setup-form").elements;
  const provider = f.provider.value;
  const config = {
    idp: { provider },
    policy: { idp_failure_mode: f.idp_failure_mode.value },
    sockets: { policy_socket: f.policy_socket.value, socketmap_socket: f.socketmap_socket.value, socket_owner_user: f.socket_owner_user.value, socket_owner_group: f.socket_owner_group.value, socket_mode: f.socket_mode.value },
    daemon: { user: f.daemon_user.value },
  };
  if (provider === "keycloak") {
    config.idp.keycloak = { base_url: f.base_url.value, realm: f.realm.value, client_id: f.client_id.value, client_secret: f.client_secret.value, cache_ttl_seconds: Number(f.cache_ttl_seconds.value || 120) };
  }
  return config;
}

async function showSetup() {
  const s = await api("GET", "/api/setup/status");
  $("setup-path").textContent = s.config_path;
}

async function showDomains() {
  const rows = await api("GET", "/api/domains");
  const body = $("domains-body");
  body.replaceChildren();
  if (rows.length === 0) body.append(el("tr", {}, el("td", { colspan: "3", text: "No domains yet" })));
  for (const d of rows) {
    body.append(el("tr", {},
      el("td", { text: d.domain_name }),
      el("td", {}, yesNo(d.enabled, "enabled", "disabled")),
      el("td", { class: "actions" },
        button(d.enabled ? "Disable" : "Enable", async () => {
          if (d.enabled && !(await confirmAction(`Disable domain ${d.domain_name}? Its aliases stop working.`, "Disable"))) return;
          await api("PATCH", `/api/domains/${enc(d.domain_name)}`, { enabled: !d.enabled });
          await showDomains();
        }, "", `${d.enabled ? "Disable" : "Enable"} ${d.domain_name}`),
        button("Delete", async () => {
          if (!(await confirmAction(`Delete domain ${d.domain_name} and every alias in it?`, "Delete"))) return;
          await api("DELETE", `/api/domains/${enc(d.domain_name)}`);
          notify(`Domain ${d.domain_name} deleted`, true);
          await showDomains();
        }, "danger", `Delete ${d.domain_name}`))));
  }
}

function renderAliases() {
  const filter = $("alias-filter").value.trim().toLowerCase();
  const body = $("aliases-body");
  body.replaceChildren();
  const rows = state.aliases.filter((a) => !filter || a.target_user.includes(filter));
  if (rows.length === 0) body.append(el("tr", {}, el("td", { colspan: "4", text: "No aliases" })));
  for (const a of rows) {
    body.append(el("tr", {},
      el("td", { text: a.alias_email }), el("td", { text: a.target_user }),
      el("td", {}, yesNo(a.enabled, "enabled", "disabled")),
      el("td", { class: "actions" },
        button(a.enabled ? "Disable" : "Enable", async () => {
          if (a.enabled && !(await confirmAction(`Disable alias ${a.alias_email}?`, "Disable"))) return;
          await api("PATCH", `/api/aliases/${enc(a.alias_email)}`, { enabled: !a.enabled });
          await showAliases();
        }, "", `${a.enabled ? "Disable" : "Enable"} ${a.alias_email}`),
        button("Delete", async () => {
          if (!(await confirmAction(`Delete alias ${a.alias_email}?`, "Delete"))) return;
          await api("DELETE", `/api/aliases/${enc(a.alias_email)}`);
          await showAliases();
        }, "danger", `Delete ${a.alias_email}`))));
  }
}
async function showAliases() {
  state.aliases = await api("GET", "/api/aliases");
  renderAliases();
}

function randomPassword() {
  const b = new Uint8Array(24);
  crypto.getRandomValues(b);
  return btoa(String.fromCharCode(...b)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function senderCell(app, base, onChange, addresses) {
  const list = el("ul", { class: "senders" });
  for (const s of app.senders) {
    list.append(el("li", {}, el("span", { text: s.from_addr + (s.enabled ? "" : " (disabled)") }),
      button("Remove", async () => {
        if (!(await confirmAction(`Stop ${app.app_id} sending as ${s.from_addr}?`, "Remove"))) return;
        await api("DELETE", `${base}/${enc(app.app_id)}/senders/${enc(s.from_addr)}`);
        await onChange();
      }, "danger", `Remove sender ${s.from_addr} from ${app.app_id}`)));
  }
  const id = `add-${base.replace(/\W/g, "")}-${app.app_id.replace(/\W/g, "_")}`;
  const input = addresses
    ? el("select", { id, name: "from_addr" }, ...addresses.map((a) => el("option", { value: a, text: a })))
    : el("input", { id, name: "from_addr", type: "email", required: "", placeholder: "sender@example.org" });
  const form = el("form", { class: "row", onsubmit: guarded(async () => {
    await api("POST", `${base}/${enc(app.app_id)}/senders`, { from_addr: input.value });
    await onChange();
  }) }, el("label", { for: id, text: `Allow sender for ${app.app_id}` }), input, el("button", { type: "submit", text: "Allow" }));
  return el("td", {}, list, form);
}

async function showApps() {
  const rows = await api("GET", "/api/apps");
  const body = $("apps-body");
  body.replaceChildren();
  if (rows.length === 0) body.append(el("tr", {}, el("td", { colspan: "4", text: "No apps" })));
  for (const a of rows) {
    body.append(el("tr", {},
      el("td", { text: a.app_id }),
      senderCell(a, "/api/apps", showApps, null),
      el("td", {}, yesNo(a.enabled, "enabled", "disabled")),
      el("td", { class: "actions" },
        button("Reset password", async () => {
          if (!(await confirmAction(`Give ${a.app_id} a new password? The old one stops working.`, "Reset"))) return;
          const pw = randomPassword();
          await api("POST", "/api/apps", { app_id: a.app_id, password: pw });
          notify(`New password for ${a.app_id}: ${pw} (shown once)`, true);
          await showApps();
        }, "", `Reset password of ${a.app_id}`),
        button(a.enabled ? "Disable" : "Enable", async () => {
          if (a.enabled && !(await confirmAction(`Disable app ${a.app_id}?`, "Disable"))) return;
          await api("PATCH", `/api/apps/${enc(a.app_id)}`, { enabled: !a.enabled });
          await showApps();
        }, "", `${a.enabled ? "Disable" : "Enable"} ${a.app_id}`),
        button("Delete", async () => {
          if (!(await confirmAction(`Delete app ${a.app_id} and its allowed senders?`, "Delete"))) return;
          await api("DELETE", `/api/apps/${enc(a.app_id)}`);
          await showApps();
        }, "danger", `Delete ${a.app_id}`))));
  }
}

async function showSelf() {
  const s = await api("GET", "/api/self");
  state.self = s;
  kv($("self-info"), [["User", s.username], ["Primary address", s.email || "none"]]);
  const ul = $("self-aliases");
  ul.replaceChildren();
  if (s.aliases.length === 0) ul.append(el("li", { text: "No aliases" }));
  for (const a of s.aliases) ul.append(el("li", { text: a.alias_email + (a.enabled ? "" : " (disabled)") }));
  const own = [s.email, ...s.aliases.filter((a) => a.enabled && !a.alias_email.startsWith("@")).map((a) => a.alias_email)].filter(Boolean);
  const body = $("self-apps-body");
  body.replaceChildren();
  if (s.apps.length === 0) body.append(el("tr", {}, el("td", { colspan: "3", text: "No app passwords" })));
  for (const a of s.apps) {
    body.append(el("tr", {}, el("td", { text: a.app_id }), senderCell(a, "/api/self/apps", showSelf, own),
      el("td", { class: "actions" }, button("Revoke", async () => {
        if (!(await confirmAction(`Revoke app password ${a.app_id}? Programs using it stop working.`, "Revoke"))) return;
        await api("DELETE", `/api/self/apps/${enc(a.app_id)}`);
        $("self-created").hidden = true;
        await showSelf();
      }, "danger", `Revoke ${a.app_id}`))));
  }
}

const VIEWS = { overview: showOverview, setup: showSetup, domains: showDomains, aliases: showAliases, apps: showApps, self: showSelf };

async function route() {
  clearNotice();
  document.querySelectorAll(".view").forEach((v) => (v.hidden = true));
  if (!state.me) { $("view-signin").hidden = false; return; }
  const isAdmin = state.me.role === "admin";
  let view = location.hash.slice(1) || (isAdmin ? "overview" : "self");
  if (!VIEWS[view]) view = isAdmin ? "overview" : "self";
  document.querySelectorAll("#nav a").forEach((a) => {
    a.hidden = a.hasAttribute("data-admin") && !isAdmin;
    if (a.getAttribute("href") === `#${view}`) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
  });
  if (ADMIN_VIEWS.has(view) && !isAdmin) { $("view-forbidden").hidden = false; return; }
  $(`view-${view}`).hidden = false;
  document.title = `mailcloak: ${view}`;
  try { await VIEWS[view](); } catch (err) { notify(err.message); }
}

async function boot() {
  try { state.me = await api("GET", "/api/me"); } catch (err) {
    state.me = null;
    if (err.status === 401 && state.token) { state.token = ""; sessionStorage.removeItem("mailcloakAdminToken"); }
  }
  const who = $("who");
  who.replaceChildren();
  $("nav").hidden = !state.me;
  if (state.me) {
    who.append(el("span", { text: `${state.me.name} (${state.me.role})` }));
    who.append(state.me.kind === "session"
      ? button("Sign out", async () => { const r = await api("POST", "/auth/logout"); location.href = r.redirect; })
      : button("Forget token", async () => { sessionStorage.removeItem("mailcloakAdminToken"); state.token = ""; await boot(); }));
  }
  $("signin-oidc").hidden = false;
  await route();
}

document.addEventListener("DOMContentLoaded", () => {
  window.addEventListener("hashchange", route);
  $("token-form").addEventListener("submit", guarded(async () => {
    state.token = $("token-input").value.trim();
    sessionStorage.setItem("mailcloakAdminToken", state.token);
    $("token-input").value = "";
    await boot();
    if (!state.me) notify("That token was refused");
  }));
  $("ov-refresh").addEventListener("click", guarded(showOverview));
  $("domain-form").addEventListener("submit", guarded(async () => {
    const f = $("domain-form");
    await api("POST", "/api/domains", { domain_name: f.elements.domain_name.value });
    notify(`Domain ${f.elements.domain_name.value.trim().toLowerCase()} added`, true);
    f.reset();
    await showDomains();
  }));
  $("alias-form").addEventListener("submit", guarded(async () => {
    const f = $("alias-form");
    await api("POST", "/api/aliases", { alias_email: f.elements.alias_email.value, target_user: f.elements.target_user.value });
    notify("Alias added", true);
    f.reset();
    await showAliases();
  }));
  $("alias-filter").addEventListener("input", renderAliases);
  $("app-form").addEventListener("submit", guarded(async () => {
    const f = $("app-form");
    await api("POST", "/api/apps", { app_id: f.elements.app_id.value, password: f.elements.password.value });
    notify(`App ${f.elements.app_id.value.trim()} saved`, true);
    f.reset();
    await showApps();
  }));
  $("setup-validate").addEventListener("click", guarded(async () => {
    await api("POST", "/api/setup/validate", { config: setupConfig() });
    notify("The configuration is valid", true);
  }));
  $("setup-test").addEventListener("click", guarded(async () => {
    const r = await api("POST", "/api/idp/test", { config: setupConfig() });
    notify(`${r.provider} answers`, true);
  }));
  $("setup-form").addEventListener("submit", guarded(async () => {
    const f = $("setup-form").elements;
    const body = { config: setupConfig(), init_db: f.init_db.checked, test_idp: f.test_idp.checked, overwrite: f.overwrite.checked };
    if (body.overwrite && !(await confirmAction("Replace the existing config file?", "Replace"))) return;
    const r = await api("POST", "/api/setup/apply", body);
    notify(`Setup applied: ${r.config_path} written${r.idp_test ? `, ${r.idp_test.provider} answers` : ""}`, true);
  }));
  $("self-app-form").addEventListener("submit", guarded(async () => {
    const f = $("self-app-form");
    const r = await api("POST", "/api/self/apps", { name: f.elements.name.value });
    f.reset();
    await showSelf();
    $("self-created-id").textContent = r.app_id;
    $("self-created-pw").textContent = r.password;
    $("self-created").hidden = false;
    $("self-created").focus();
    announce(`App password ${r.app_id} created`);
  }));
  void boot();
});
