// Admin: API keys (created keys shown once; revoke), budgets and overrides, routing policies.
import { api, el, showError, usd, when } from "./common.js";

const CLASSES = ["draft", "review", "final"];
const PRESETS = ["", "quality", "speed", "extreme-speed", "lightning", "hyper-sd"];

function status(text) {
  const node = document.getElementById("admin-status");
  node.textContent = text;
  node.hidden = !text;
}

async function guarded(work) {
  showError("admin-error", null);
  status("");
  try { await work(); } catch (error) { showError("admin-error", error); }
}


async function loadKeys() {
  const body = document.querySelector("#keys tbody");
  const answer = await api("GET", "/v1/admin/keys");
  body.replaceChildren(...answer.data.map((key) => el("tr", { "data-key-id": key.id },
    el("td", {}, el("code", { text: `${key.prefix}…` })),
    el("td", { text: `${key.tenant}${key.admin ? " (admin)" : ""}` }),
    el("td", { title: when(key.created_at), text: (key.created_at || "").slice(0, 10) }),
    el("td", {}, el("span", { class: `pill ${key.revoked_at ? "failed" : "succeeded"}`, title: key.revoked_at ? when(key.revoked_at) : "", text: key.revoked_at ? "revoked" : "active" })),
    el("td", {}, key.revoked_at ? null : el("button", { type: "button", class: "small", text: "Revoke", onclick: () => guarded(async () => {
      if (!window.confirm(`Revoke ${key.prefix}… of ${key.tenant}? Its sessions end too.`)) return;
      await api("DELETE", `/v1/admin/keys/${key.id}`);
      status(`Revoked ${key.prefix}…`);
      await loadKeys();
    }) })),
  )));
}

document.getElementById("key-form").addEventListener("submit", (event) => {
  event.preventDefault();
  guarded(async () => {
    const created = await api("POST", "/v1/admin/keys", { tenant: document.getElementById("k-tenant").value.trim(), admin: document.getElementById("k-admin").checked });
    document.getElementById("new-key-value").textContent = created.key;
    document.getElementById("new-key").hidden = false;
    await loadKeys();
  });
});

async function loadBudgets() {
  const list = await api("GET", "/v1/budgets");
  document.getElementById("budget-list").replaceChildren(el("div", { class: "table-wrap" }, el("table", {},
    el("thead", {}, el("tr", {}, ["Scope", "Budget", "Spent", "Reserved", "Override until"].map((h) => el("th", { text: h })))),
    el("tbody", {}, list.data.map((b) => el("tr", { "data-scope": b.scope },
      el("td", { text: b.scope }), el("td", { text: `${usd(b.amount_usd)} / ${b.period}` }), el("td", { text: usd(b.spent_usd) }),
      el("td", { text: usd(b.reserved_usd) }), el("td", { text: b.override_until ? when(b.override_until) : "–" })))))));
}

document.getElementById("budget-form").addEventListener("submit", (event) => {
  event.preventDefault();
  guarded(async () => {
    const scope = document.getElementById("b-scope").value.trim();
    await api("PUT", `/v1/budgets/${encodeURIComponent(scope)}`, { amount_usd: document.getElementById("b-amount").value.trim(), period: document.getElementById("b-period").value });
    status(`Budget of ${scope} set.`);
    await loadBudgets();
  });
});

document.getElementById("override-form").addEventListener("submit", (event) => {
  event.preventDefault();
  guarded(async () => {
    const scope = document.getElementById("o-scope").value.trim();
    const until = document.getElementById("o-until").value;
    await api("POST", `/v1/budgets/${encodeURIComponent(scope)}/override`, { until: until ? `${until}:00Z` : null });
    status(until ? `Override of ${scope} until ${until} UTC.` : `Override of ${scope} ended.`);
    await loadBudgets();
  });
});

function select(name, options, value) {
  return el("select", { name }, options.map((option) => el("option", { value: option, selected: option === (value || ""), text: option || "(default)" })));
}

async function loadRouting() {
  const tenant = document.getElementById("r-tenant").value.trim();
  const answer = await api("GET", `/v1/routing${tenant ? `?tenant=${encodeURIComponent(tenant)}` : ""}`);
  document.getElementById("r-tenant").placeholder = answer.tenant;
  document.querySelector("#routing tbody").replaceChildren(...CLASSES.map((klass) => {
    const rule = answer.rules[klass] || {};
    return el("tr", { "data-class": klass }, el("td", { text: klass }), el("td", {}, select("preset", PRESETS, rule.preset)), el("td", {}, select("priority", ["", "interactive", "batch"], rule.priority)));
  }));
}

document.getElementById("r-load").addEventListener("click", () => guarded(loadRouting));
document.getElementById("routing-form").addEventListener("submit", (event) => {
  event.preventDefault();
  guarded(async () => {
    const rules = {};
    for (const row of document.querySelectorAll("#routing tbody tr")) {
      const preset = row.querySelector('select[name="preset"]').value;
      const priority = row.querySelector('select[name="priority"]').value;
      if (preset || priority) rules[row.dataset.class] = Object.fromEntries(Object.entries({ preset, priority }).filter(([, v]) => v));
    }
    const tenant = document.getElementById("r-tenant").value.trim();
    await api("PUT", `/v1/routing${tenant ? `?tenant=${encodeURIComponent(tenant)}` : ""}`, { rules });
    status("Routing saved.");
    await loadRouting();
  });
});

guarded(async () => {
  await Promise.all([loadKeys().catch((error) => {
    document.querySelector("#keys tbody").replaceChildren(el("tr", {}, el("td", { colspan: 5, class: "muted", text: `Keys: ${error.message}` })));
  }), loadBudgets(), loadRouting()]);
});
