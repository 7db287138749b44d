// Small SVG charts drawn here (no charting library): stacked bars over time, and legends.
const SVG = "http://www.w3.org/2000/svg";
export const PALETTE = ["#2563eb", "#f59e0b", "#10b981", "#ef4444", "#8b5cf6", "#06b6d4", "#84cc16", "#ec4899", "#64748b"];

function node(tag, attrs) {
  const element = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) element.setAttribute(name, value);
  return element;
}

// bars: [{label, parts: {series: number}}]; returns an <svg> of stacked bars with a y-axis in USD.
export function stackedBars(bars, series, { height = 260, format = (v) => String(v) } = {}) {
  const width = 1000, left = 96, bottom = 28, top = 12;
  const svg = node("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": "spend over time" });
  const totals = bars.map((bar) => Object.values(bar.parts).reduce((a, b) => a + b, 0));
  const max = Math.max(...totals, 0) || 1;
  const plot = height - bottom - top;
  for (const tick of [0, 0.5, 1]) {
    const y = top + plot * (1 - tick);
    svg.append(node("line", { x1: left, x2: width, y1: y, y2: y, stroke: "#e5e7eb" }));
    const text = node("text", { x: left - 6, y: y + 4, "text-anchor": "end", "font-size": 14, fill: "#5d6677" });
    text.textContent = format(max * tick);
    svg.append(text);
  }
  const step = (width - left) / Math.max(bars.length, 1);
  const barWidth = Math.max(2, step * 0.7);
  bars.forEach((bar, i) => {
    let y = top + plot;
    const x = left + i * step + (step - barWidth) / 2;
    series.forEach((name, s) => {
      const value = bar.parts[name] || 0;
      if (!value) return;
      const h = (value / max) * plot;
      y -= h;
      const rect = node("rect", { x, y, width: barWidth, height: Math.max(h, 0.5), fill: PALETTE[s % PALETTE.length] });
      const title = node("title", {});
      title.textContent = `${bar.label} · ${name}: ${format(value)}`;
      rect.append(title);
      svg.append(rect);
    });
    const every = Math.ceil(bars.length / 8);
    if (i % every === 0) {
      const text = node("text", { x: x + barWidth / 2, y: height - 8, "text-anchor": "middle", "font-size": 14, fill: "#5d6677" });
      text.textContent = bar.label;
      svg.append(text);
    }
  });
  return svg;
}

export function legend(series) {
  const box = document.createElement("div");
  box.className = "legend";
  series.forEach((name, s) => {
    const item = document.createElement("span");
    const swatch = document.createElement("i");
    swatch.style.background = PALETTE[s % PALETTE.length];
    item.append(swatch, name);
    box.append(item);
  });
  return box;
}
