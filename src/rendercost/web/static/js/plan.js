// Plan: POST /v1/plan with the scenarios, then the as-is replay and each what-if side by side.
import { api, el, showError, usd } from "./common.js";

const ROWS = [
  ["cost_usd", "Cost over the window", usd],
  ["cost_per_month_usd", "Cost per month", usd],
  ["cost_per_image_marginal_usd", "Per image (marginal)", usd],
  ["cost_per_image_loaded_usd", "Per image (fully loaded)", usd],
  ["idle_usd", "Idle", usd],
  ["workers", "Workers", String],
  ["utilization", "Utilization", (v) => `${(v * 100).toFixed(1)}%`],
  ["wait_p95_s", "Wait p95 (s)", String],
  ["latency_p95_s", "Latency p95 (s)", String],
];

function change(vs) {
  if (!vs) return null;
  const pct = vs.change_pct;
  const down = vs.change.startsWith("-");
  return el("div", { class: down ? "change-down small" : "change-up small", text: `${usd(vs.before)} → ${usd(vs.after)} (${down ? "" : "+"}${pct === null ? "–" : pct + "%"})` });
}

function table(plan) {
  const columns = [{ ...plan.baseline, vs_baseline: null, name: `${plan.baseline.name} (as is)` }, ...plan.scenarios];
  return el("table", { id: "plan-scenarios" },
    el("thead", {}, el("tr", {}, el("th", { text: "" }), columns.map((c) => el("th", { class: "num", text: c.name })))),
    el("tbody", {},
      ROWS.map(([field, label, format]) => el("tr", {}, el("th", { text: label }), columns.map((c) => el("td", { class: "num", text: c[field] === undefined ? "–" : format(c[field]) })))),
      el("tr", {}, el("th", { text: "Change per month" }), columns.map((c) => el("td", { class: "num" }, change(c.vs_baseline && c.vs_baseline.cost_per_month_usd)))),
      el("tr", {}, el("th", { text: "Device · pricing" }), columns.map((c) => el("td", { class: "num", text: `${c.device} · ${c.pricing}` })))));
}

document.getElementById("plan-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  showError("plan-error", null);
  const until = new Date();
  const since = new Date(until - Number(document.getElementById("p-days").value || 30) * 86400000);
  let scenarios;
  try { scenarios = JSON.parse(document.getElementById("p-scenarios").value || "[]"); } catch (error) {
    showError("plan-error", { message: `Scenarios are not valid JSON: ${error.message}` });
    return;
  }
  try {
    const plan = await api("POST", "/v1/plan", { since: since.toISOString(), until: until.toISOString(), scenarios });
    document.getElementById("plan-table").replaceChildren(table(plan));
    document.getElementById("plan-result").hidden = false;
  } catch (error) {
    showError("plan-error", error);
  }
});
