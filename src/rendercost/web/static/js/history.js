// History: this tenant's jobs, newest first (GET /v1/jobs pages); filter by state (server side),
// preset and class (on the loaded rows); open, cancel, re-run with the same settings, download.
import { TERMINAL, api, el, showError, usd, when } from "./common.js";
import { jobResult } from "./receipt.js";

const body = document.querySelector("#jobs tbody");
const filters = document.getElementById("filters");
let jobs = [];
let nextBefore = null;

function visible(job) {
  const preset = filters.preset.value;
  const klass = filters.class.value;
  return (!preset || job.preset === preset) && (!klass || job.priority === klass);
}

function rerunBody(job) {
  const spec = job.request.spec;
  const rewrite = job.request.extra && job.request.extra.rewrite;
  return {
    prompt: rewrite && rewrite.original_prompt ? rewrite.original_prompt : spec.prompt,
    negative_prompt: spec.negative_prompt,
    model: spec.model,
    preset: spec.preset,
    size: `${spec.width}x${spec.height}`,
    seed: spec.seed,
    n: job.request.n,
    loras: spec.loras,
    styles: job.request.styles,
    priority: job.request.priority,
    output_format: spec.output_format,
    rewrite: Boolean(rewrite),
  };
}

async function act(action, job) {
  showError("history-error", null);
  try {
    if (action === "cancel") await api("DELETE", `/v1/jobs/${job.id}`);
    if (action === "rerun") {
      const again = await api("POST", "/v1/jobs", rerunBody(job));
      await load();
      return open(again.id);
    }
    if (action === "open") return open(job.id);
    await load();
  } catch (error) {
    showError("history-error", error);
  }
}

async function open(id) {
  const job = await api("GET", `/v1/jobs/${id}`);
  document.getElementById("detail-id").textContent = job.id;
  const spec = job.request.spec;
  const settings = el("p", { class: "muted small", text: `${spec.model} · ${spec.preset} · ${spec.width}×${spec.height} · seed ${spec.seed} · ${job.request.n} image(s) · “${spec.prompt}”` });
  document.getElementById("detail-body").replaceChildren(settings, ...jobResult(job).filter(Boolean));
  const section = document.getElementById("job-detail");
  section.hidden = false;
  section.scrollIntoView({ block: "nearest" });
}

function row(job) {
  const actions = el("td", { class: "actions" },
    el("button", { type: "button", class: "small", text: "Open", onclick: () => act("open", job) }),
    TERMINAL.has(job.state) ? null : el("button", { type: "button", class: "small", "data-action": "cancel", text: "Cancel", onclick: () => act("cancel", job) }),
    el("button", { type: "button", class: "small", "data-action": "rerun", text: "Re-run", onclick: () => act("rerun", job) }),
    job.results.length ? el("a", { class: "button small", href: job.results[0].url, download: `${job.results[0].id}`, text: "Download" }) : null,
  );
  const cells = [
    ["Job", el("code", { title: job.id, text: `${job.id.slice(0, 16)}…` })],
    ["Created", when(job.created_at)],
    ["State", el("span", { class: `pill ${job.state}`, text: job.state })],
    ["Preset", job.preset],
    ["Class", job.priority],
    ["Images", String(job.n)],
    ["Cost", job.receipt ? usd(job.receipt.total_usd) : "–"],
  ];
  actions.dataset.label = "Actions";
  return el("tr", { "data-job-id": job.id, "data-state": job.state },
    cells.map(([label, value], i) => el("td", { "data-label": label, class: i >= 5 ? "num" : undefined }, value)),
    actions,
  );
}

function draw() {
  const shown = jobs.filter(visible);
  body.replaceChildren(...shown.map(row));
  if (!shown.length) body.append(el("tr", {}, el("td", { colspan: 8, class: "muted", text: "No jobs match." })));
  document.getElementById("more").hidden = !nextBefore;
}

async function load(more = false) {
  const params = new URLSearchParams({ limit: "20" });
  if (filters.state.value) params.set("state", filters.state.value);
  if (more && nextBefore) params.set("before", nextBefore);
  try {
    const page = await api("GET", `/v1/jobs?${params}`);
    jobs = more ? jobs.concat(page.data) : page.data;
    nextBefore = page.next_before;
    draw();
  } catch (error) {
    showError("history-error", error);
  }
}

filters.state.addEventListener("change", () => load());
filters.preset.addEventListener("change", draw);
filters.class.addEventListener("change", draw);
document.getElementById("refresh").addEventListener("click", () => load());
document.getElementById("load-more").addEventListener("click", () => load(true));
load();
