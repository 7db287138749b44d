// The playground: the estimate for every preset and for the current choice before Generate is pressed,
// then the job's progress (GET /v1/jobs/{id}/events: queued, progress, done; polling if the stream
// fails) and its receipt.
import { TERMINAL, api, el, ratio, seconds, showError, usd } from "./common.js";
import { jobResult } from "./receipt.js";

const form = document.getElementById("render-form");
const generate = document.getElementById("generate");
const badge = document.getElementById("generate-estimate");
const cheaper = document.getElementById("cheaper");
const gallery = document.getElementById("gallery");
const seedInput = document.getElementById("seed");
let estimates = {};
let sequence = 0;
let timer = null;

function checkedValues(name) {
  return [...form.querySelectorAll(`input[name="${name}"]:checked`)].map((input) => input.value);
}

function choice() {
  const fixed = checkedValues("seed_mode")[0] === "fixed";
  const loras = checkedValues("loras").map((name) => ({
    name,
    weight: Number.parseFloat(form.querySelector(`input.weight[data-lora="${CSS.escape(name)}"]`).value || "1"),
  }));
  return {
    prompt: form.prompt.value.trim(),
    negative_prompt: form.negative_prompt.value.trim(),
    model: form.model.value,
    size: form.size.value,
    n: Number.parseInt(form.n.value || "1", 10),
    seed: fixed ? Number.parseInt(seedInput.value || "0", 10) : null,
    styles: checkedValues("styles"),
    loras,
    preset: checkedValues("preset")[0],
    rewrite: document.getElementById("rewrite").checked,
  };
}

function describe(row, n) {
  if (!row.available) return "needs its speed LoRA";
  if (row.cached) return "cached: $0";
  const time = row.seconds_per_image === null ? "no timing yet" : seconds(row.seconds_per_image * n);
  return `${usd(row.cost_usd)} · ${time}`;
}

function showCheaper(current, n) {
  cheaper.hidden = true;
  cheaper.replaceChildren();
  if (!current) return;
  if (current.cached) {
    cheaper.append(`This exact render is cached: it costs $0 and saves ${usd(current.per_image_usd)} per image.`);
    cheaper.hidden = false;
    return;
  }
  // a cached row, or a preset of fewer steps (the draft presets) estimated lower than the current one
  const options = Object.values(estimates).filter(
    (row) => row.available && row.preset !== current.preset && (row.cached || row.steps < current.steps),
  );
  const best = options.sort((a, b) => ratio(a.cost_usd) - ratio(b.cost_usd) || a.steps - b.steps)[0];
  if (!best || ratio(best.cost_usd) >= ratio(current.cost_usd)) return;
  const saving = (ratio(current.cost_usd) - ratio(best.cost_usd)).toPrecision(3);
  const label = best.cached ? `${best.preset} is cached for this prompt and seed: $0` : `${best.preset} would cost ${usd(best.cost_usd)}`;
  cheaper.append(
    `Cheaper: ${label}, saving about $${saving} on ${n} image${n > 1 ? "s" : ""}.`,
    el("button", { type: "button", class: "small", text: `Use ${best.preset}`, onclick: () => selectPreset(best.preset) }),
  );
  cheaper.hidden = false;
}

function selectPreset(name) {
  const input = form.querySelector(`input[name="preset"][value="${CSS.escape(name)}"]`);
  if (input) { input.checked = true; refreshBadge(); }
}

function refreshBadge() {
  const { preset, n } = choice();
  const current = estimates[preset];
  if (!current) { badge.textContent = "estimating…"; return; }
  badge.dataset.usd = current.cost_usd;
  const time = current.cached ? "from the cache" : current.seconds_per_image === null ? "" : ` · ~${seconds(current.seconds_per_image * n)} device time`;
  badge.textContent = `estimated ${usd(current.cost_usd)}${time}`;
  showCheaper(current, n);
}

async function estimate() {
  const mine = ++sequence;
  const { preset, rewrite, ...body } = choice();
  try {
    const answer = await api("POST", "/v1/estimate", body);
    if (mine !== sequence) return;  // a newer choice is being estimated
    estimates = Object.fromEntries(answer.estimates.map((row) => [row.preset, row]));
    for (const row of answer.estimates) {
      const cell = form.querySelector(`[data-estimate-for="${CSS.escape(row.preset)}"]`);
      if (cell) { cell.textContent = describe(row, answer.n); cell.dataset.usd = row.cost_usd; }
    }
    showError("render-error", null);
    refreshBadge();
  } catch (error) {
    if (mine === sequence) { badge.textContent = "no estimate"; showError("render-error", error); }
  }
}

function scheduleEstimate() {
  clearTimeout(timer);
  timer = setTimeout(estimate, 200);
}

function progress(fraction, text) {
  document.getElementById("progress").hidden = false;
  document.getElementById("progress-fill").style.width = `${Math.round(Math.min(1, Math.max(0, fraction)) * 100)}%`;
  document.getElementById("progress-text").textContent = text;
}

function finish(job, estimateUsd) {
  generate.disabled = false;
  progress(job.state === "succeeded" ? 1 : 0, job.state);
  gallery.replaceChildren(...jobResult(job, estimateUsd).filter(Boolean));
  scheduleEstimate();  // the same prompt may now be cached
}

async function poll(id, estimateUsd) {
  for (;;) {
    const job = await api("GET", `/v1/jobs/${id}`);
    if (TERMINAL.has(job.state)) return finish(job, estimateUsd);
    progress(job.progress || 0, job.state === "queued" ? `queued, position ${job.queue_position ?? "?"}` : `rendering ${Math.round((job.progress || 0) * 100)}%`);
    await new Promise((resolve) => setTimeout(resolve, 400));
  }
}

function watch(job, estimateUsd) {
  if (TERMINAL.has(job.state)) return finish(job, estimateUsd);
  progress(0, "queued");
  if (!("EventSource" in window)) return poll(job.id, estimateUsd);
  const stream = new EventSource(`/v1/jobs/${job.id}/events`);
  let done = false;
  const data = (event) => { try { return JSON.parse(event.data); } catch { return {}; } };
  stream.addEventListener("queued", (event) => progress(0, `queued, position ${data(event).queue_position ?? "?"}`));
  stream.addEventListener("progress", (event) => {
    const info = data(event);
    const fraction = info.progress ?? 0;
    progress(fraction, `rendering (${Math.round(fraction * 100)}%)`);
  });
  stream.addEventListener("done", async (event) => {
    done = true;
    stream.close();
    const settled = data(event);  // the job JSON, as GET /v1/jobs/{id} answers it
    finish(settled.id ? settled : await api("GET", `/v1/jobs/${job.id}`), estimateUsd);
  });
  stream.addEventListener("timeout", () => stream.onerror());  // the stream's lifetime ran out: poll
  stream.onerror = () => {
    if (done) return;
    done = true;
    stream.close();
    poll(job.id, estimateUsd).catch((error) => { generate.disabled = false; showError("render-error", error); });
  };
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  showError("render-error", null);
  const { seed, loras, ...rest } = choice();
  const body = { ...rest, loras };
  if (seed !== null) body.seed = seed;
  const estimateUsd = badge.dataset.usd;
  generate.disabled = true;
  gallery.replaceChildren(el("p", { class: "muted", text: "Submitting…" }));
  try {
    const job = await api("POST", "/v1/jobs", body);
    watch(job, estimateUsd);
  } catch (error) {
    generate.disabled = false;
    gallery.replaceChildren();
    showError("render-error", error);
  }
});

form.addEventListener("input", scheduleEstimate);
form.addEventListener("change", (event) => {
  if (event.target.name === "seed_mode") seedInput.disabled = checkedValues("seed_mode")[0] !== "fixed";
  if (event.target.name === "styles") document.getElementById("style-count").textContent = `${checkedValues("styles").length || ""}`;
  if (event.target.name === "preset") refreshBadge();
  else scheduleEstimate();
});
estimate();
