// A finished job's images, each with its receipt: stage bars (device-seconds and USD), cache hits,
// batch mates and the machine's price. Amounts are shown exactly as the server wrote them.
import { el, ratio, seconds, usd } from "./common.js";

const DEVICE_STAGES = new Set(["text_encode", "prepare_latents", "denoise", "decode", "postprocess"]);

function machineLine(lines) {
  return lines.find((line) => line.stage === "denoise") || lines.find((line) => DEVICE_STAGES.has(line.stage));
}

// A non-device line's quantity, short: "1.16e-5 GB" rather than every digit (the USD stays exact).
function quantity(line) {
  const value = Number.parseFloat(line.quantity);
  const shown = !Number.isFinite(value) ? line.quantity : value !== 0 && Math.abs(value) < 0.01 ? value.toExponential(2) : String(+value.toPrecision(4));
  return `${shown} ${line.unit.replaceAll("_", " ")}`;
}

function stageRows(lines) {
  const largest = Math.max(...lines.map((line) => ratio(line.cost_usd) || ratio(line.cost_avoided_usd)), 1e-18);
  return lines.map((line) => {
    const share = (ratio(line.cost_usd) || ratio(line.cost_avoided_usd)) / largest;
    const bar = el("span");
    bar.style.width = `${Math.max(2, Math.round(share * 100))}%`;
    const cached = line.details && line.details.cache;
    return el(
      "tr",
      { "data-stage": line.stage },
      el("td", { text: line.stage.replace("_", " ") }),
      el("td", {}, el("div", { class: "stagebar", title: cached ? `cache hit (${cached})` : "" }, bar)),
      el("td", { class: "num", text: DEVICE_STAGES.has(line.stage) ? seconds(line.device_seconds) : quantity(line) }),
      el("td", { class: "num", text: cached ? `${usd(line.cost_usd)} (saved ${usd(line.cost_avoided_usd)})` : usd(line.cost_usd) }),
    );
  });
}

function facts(job, image, lines) {
  const machine = machineLine(lines);
  const hits = Object.entries((job.rendercost && job.rendercost.cache) || {}).filter(([, v]) => v === "hit").map(([k]) => k);
  const items = [el("li", { text: `seed ${image.seed}` })];
  items.push(el("li", {}, "cache: ", hits.length ? hits.map((h) => el("span", { class: "pill hit", text: h })) : "no hits"));
  if (machine) {
    const mates = Math.max(0, (machine.batch_size || 1) - 1);
    items.push(el("li", { class: "batch", text: mates ? `batched with ${mates} other image${mates > 1 ? "s" : ""}` : "rendered alone" }));
    items.push(el("li", { class: "machine", text: `${machine.device_type} at ${usd(machine.unit_price)}/${machine.unit.replace("_", "-")} (${machine.pricing_model})` }));
  }
  return el("ul", { class: "facts" }, items);
}

export function imageCard(job, image) {
  const lines = (image.receipt && image.receipt.lines) || [];
  const total = image.receipt ? image.receipt.total_usd : "0";
  return el(
    "figure",
    { class: "shot", "data-image-id": image.id },
    el("a", { href: image.url, target: "_blank", rel: "noopener" }, el("img", { src: image.url, alt: `image ${image.index + 1} of ${job.id}`, loading: "lazy" })),
    el(
      "figcaption",
      {},
      el("div", { class: "costline" }, el("span", { text: `Image ${image.index + 1}` }), el("strong", { class: "image-cost", "data-usd": total, text: usd(total) })),
      el("table", { class: "receipt" }, el("tbody", {}, stageRows(lines))),
      facts(job, image, lines),
      el("p", { class: "small" }, el("a", { href: image.url, download: `${image.id}.${image.media_type.split("/")[1] || "png"}`, text: "Download" })),
    ),
  );
}

// The whole job: a summary line (estimate beside the actual cost) and one card per image.
export function jobResult(job, estimate) {
  const total = job.receipt ? job.receipt.total_usd : null;
  const summary = el(
    "div",
    { class: "costline job-summary" },
    el("span", {}, "Job ", el("code", { text: job.id }), " ", el("span", { class: `pill ${job.state}`, text: job.state })),
    estimate ? el("span", { class: "muted" }, "estimated ", el("span", { id: "job-estimate", "data-usd": estimate, text: usd(estimate) })) : null,
    total !== null ? el("strong", {}, "actual ", el("span", { id: "job-actual", "data-usd": total, text: usd(total) })) : null,
  );
  const cards = (job.results || []).map((image) => imageCard(job, image));
  const error = job.error ? el("p", { class: "error", text: job.error }) : null;
  return [summary, error, el("div", { class: "gallery" }, cards)];
}
