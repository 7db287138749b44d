// Costs: the report of GET /v1/costs (totals, per-render cost, busy vs idle, savings, breakdown), spend
// over time (GET /web/spend), budgets with burn-down and forecast, anomalies and FOCUS export (admin).
import { api, el, ratio, seconds, showError, usd } from "./common.js";
import { legend, stackedBars, PALETTE } from "./chart.js";

const bucket = document.getElementById("c-bucket");
const by = document.getElementById("c-by");
const COUNTS = { hour: 24, day: 14, month: 12 };

function metric(label, value, attrs = {}) {
  return el("div", { class: "metric" }, el("div", { class: "label", text: label }), el("div", { class: "value", ...attrs, text: value }));
}

function drawTotals(totals) {
  document.getElementById("totals").replaceChildren(
    metric("Render spend (allocated)", usd(totals.allocated_cost_usd), { id: "total-allocated", "data-usd": totals.allocated_cost_usd }),
    metric("Machine cost", usd(totals.machine_cost_usd), { id: "total-machine", "data-usd": totals.machine_cost_usd }),
    metric("Renders", String(totals.renders)),
    metric("Marginal cost / render", usd(totals.marginal_cost_per_render_usd), { id: "marginal" }),
    metric("Fully loaded / render", usd(totals.loaded_cost_per_render_usd), { id: "loaded" }),
    metric("Utilization", `${(totals.utilization * 100).toFixed(1)}%`),
  );
}

function drawUtilization(totals) {
  const allocated = ratio(totals.allocated_cost_usd), idle = ratio(totals.idle_cost_usd);
  const sum = allocated + idle || 1;
  const busy = el("span"); busy.style.width = `${(allocated / sum) * 100}%`; busy.style.background = PALETTE[0];
  const rest = el("span"); rest.style.width = `${(idle / sum) * 100}%`; rest.style.background = "#cbd5e1";
  document.getElementById("utilization").replaceChildren(
    el("div", { class: "split", title: "busy vs idle" }, busy, rest),
    el("p", { id: "invariant" },
      "allocated ", el("b", { text: usd(totals.allocated_cost_usd) }), " + idle ", el("b", { text: usd(totals.idle_cost_usd) }),
      " = machine cost ", el("b", { text: usd(totals.machine_cost_usd) })),
    el("p", { class: "muted small", text: `busy ${seconds(totals.busy_device_seconds)} · idle ${seconds(totals.idle_device_seconds)} of device time` }),
  );
}

function drawSavings(savings) {
  const entries = Object.entries(savings || {});
  const box = document.getElementById("savings");
  if (!entries.length) { box.replaceChildren(el("p", { class: "muted", text: "No savings recorded yet: caches and batching report here as they save." })); return; }
  const largest = Math.max(...entries.map(([, v]) => ratio(v)), 1e-18);
  box.replaceChildren(el("table", { class: "receipt" }, el("tbody", {}, entries.map(([name, value]) => {
    const bar = el("span"); bar.style.width = `${Math.max(2, (ratio(value) / largest) * 100)}%`; bar.style.background = PALETTE[2];
    return el("tr", {}, el("td", { text: name.replaceAll("_", " ") }), el("td", {}, el("div", { class: "stagebar" }, bar)), el("td", { class: "num", text: usd(value) }));
  }))));
}

function drawBreakdown(report) {
  const dims = report.group_by;
  const head = el("tr", {}, dims.map((d) => el("th", { text: d })), ["renders", "images", "device time", "cost", "per render", "cache hits", "p50"].map((h) => el("th", { class: "num", text: h })));
  document.querySelector("#breakdown thead").replaceChildren(head);
  document.querySelector("#breakdown tbody").replaceChildren(...report.rows.map((row) => el("tr", {},
    dims.map((d) => el("td", { text: row[d] || "–" })),
    el("td", { class: "num", text: row.renders }), el("td", { class: "num", text: row.images }),
    el("td", { class: "num", text: seconds(row.device_seconds) }), el("td", { class: "num", text: usd(row.cost_usd) }),
    el("td", { class: "num", text: usd(row.cost_per_render_usd) }), el("td", { class: "num", text: `${(row.cache_hit_rate * 100).toFixed(0)}%` }),
    el("td", { class: "num", text: row.p50_latency_s === null ? "–" : seconds(row.p50_latency_s) }))));
}

async function drawSeries() {
  const series = await api("GET", `/web/spend?bucket=${bucket.value}&count=${COUNTS[bucket.value]}&by=${by.value}`);
  const names = [...new Set(series.buckets.flatMap((b) => Object.keys(b.groups)))];
  const label = (iso) => bucket.value === "hour" ? iso.slice(11, 16) : bucket.value === "day" ? iso.slice(5, 10) : iso.slice(0, 7);
  const bars = series.buckets.map((b) => ({ label: label(b.start), parts: Object.fromEntries(Object.entries(b.groups).map(([k, v]) => [k, ratio(v)])) }));
  const chart = document.getElementById("spend-chart");
  chart.replaceChildren(stackedBars(bars, names, { format: (v) => `$${v.toPrecision(2)}` }), legend(names));
  document.getElementById("spend-caption").textContent = `Spend per ${bucket.value} by ${by.value}, UTC; the last bar is the current ${bucket.value}.`;
}

function drawBudget(budget) {
  const amount = ratio(budget.amount_usd), spent = ratio(budget.spent_usd) + ratio(budget.reserved_usd);
  const start = new Date(budget.period_start), end = new Date(budget.period_end), now = new Date();
  const elapsed = Math.min(1, Math.max(1e-6, (now - start) / (end - start)));
  const forecast = spent / elapsed;
  const scale = Math.max(amount, forecast, 1e-18) * 1.05;
  const bar = el("div", { class: "burn" });
  const fore = el("div", { class: "forecast" }); fore.style.left = "0"; fore.style.width = `${(forecast / scale) * 100}%`;
  const used = el("div", { class: "spent" }); used.style.width = `${(spent / scale) * 100}%`;
  bar.append(fore, used);
  for (const mark of [0.5, 0.8, 1]) {
    const m = el("div", { class: "mark", title: `${mark * 100}% of the budget` }, el("b", { text: `${mark * 100}%` }));
    m.style.left = `${((amount * mark) / scale) * 100}%`;
    bar.append(m);
  }
  const pct = amount ? ((spent / amount) * 100).toFixed(1) : "–";
  return el("div", { class: "budget", "data-scope": budget.scope },
    el("div", { class: "costline" }, el("strong", { text: `${budget.scope} · ${budget.period}` }),
      el("span", { text: `${usd(budget.spent_usd)} spent + ${usd(budget.reserved_usd)} reserved of ${usd(budget.amount_usd)} (${pct}%)` })),
    bar,
    el("p", { class: "muted small", text: `forecast to ${end.toISOString().slice(0, 10)}: about $${forecast.toPrecision(3)} (${amount ? ((forecast / amount) * 100).toFixed(0) : "–"}% of the budget)${budget.override_until ? ` · override until ${budget.override_until}` : ""}` }),
  );
}

async function drawBudgets() {
  const list = await api("GET", "/v1/budgets");
  const box = document.getElementById("budgets");
  box.replaceChildren(...(list.data.length ? list.data.map(drawBudget) : [el("p", { class: "muted", text: "No budgets set." })]));
}

async function drawAnomalies() {
  const box = document.getElementById("anomalies");
  if (!box) return;
  const found = await api("GET", "/v1/costs/anomalies");
  if (!found.data.length) { box.replaceChildren(el("p", { class: "muted", text: "No anomalous tenant-hours in the last five weeks." })); return; }
  box.replaceChildren(el("div", { class: "table-wrap" }, el("table", {},
    el("thead", {}, el("tr", {}, ["Hour", "Tenant", "Expected", "Actual", "z", "Drivers"].map((h) => el("th", { text: h })))),
    el("tbody", {}, found.data.map((a) => el("tr", {},
      el("td", { text: a.hour.slice(0, 16) }), el("td", { text: a.tenant }), el("td", { class: "num", text: usd(String(a.expected_usd)) }),
      el("td", { class: "num", text: usd(String(a.actual_usd)) }), el("td", { class: "num", text: a.z_score }),
      el("td", { text: a.drivers.map((d) => `${d.model}/${d.preset} $${d.usd}`).join(", ") })))))));
}

async function load() {
  showError("costs-error", null);
  try {
    const report = await api("GET", `/v1/costs?by=${by.value}`);
    drawTotals(report.totals);
    drawUtilization(report.totals);
    drawSavings(report.totals.savings_usd);
    drawBreakdown(report);
    await Promise.all([drawSeries(), drawBudgets(), drawAnomalies()]);
  } catch (error) {
    showError("costs-error", error);
  }
  document.body.dataset.loaded = "true";
}

bucket.addEventListener("change", () => drawSeries().catch((e) => showError("costs-error", e)));
by.addEventListener("change", load);
load();
