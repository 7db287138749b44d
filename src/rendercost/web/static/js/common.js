// Shared by every page: JSON calls to this server (with the session's CSRF token on unsafe methods),
// exact money formatting (decimal strings, never floats), small DOM helpers, and sign-out.

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.content : "";
}

const SAFE = new Set(["GET", "HEAD", "OPTIONS"]);

// fetch(path) on this origin; the JSON body, or null for 204. Throws ApiError with the server's code.
export async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  if (!SAFE.has(method)) headers["X-CSRF-Token"] = csrfToken();
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "same-origin",
  });
  if (response.status === 401 && document.body.dataset.page !== "sign_in") {
    window.location.assign("/sign-in");
  }
  if (response.status === 204) return null;
  const data = await response.json().catch(() => null);
  if (!response.ok) {
    const error = (data && data.error) || {};
    throw new ApiError(response.status, error.code || "http_" + response.status, error.message || response.statusText);
  }
  return data;
}

// "0.0000044096000" -> "$0.0000044096"; keeps every significant digit, at least two decimals.
export function usd(text) {
  if (text === null || text === undefined) return "–";
  let value = String(text);
  let sign = "";
  if (value.startsWith("-")) { sign = "-"; value = value.slice(1); }
  let [whole, frac = ""] = value.split(".");
  frac = frac.replace(/0+$/, "");
  if (frac.length < 2) frac = frac.padEnd(2, "0");
  return `${sign}$${whole || "0"}.${frac}`;
}

// Decimal strings to a comparable number, for bar widths only (never for the amounts shown).
export function ratio(text) {
  const value = Number.parseFloat(text);
  return Number.isFinite(value) ? value : 0;
}

export function seconds(value) {
  if (value === null || value === undefined) return "–";
  if (value < 1) return `${(value * 1000).toFixed(value < 0.01 ? 2 : 0)} ms`;
  return `${value.toFixed(value < 10 ? 2 : 1)} s`;
}

export function when(iso) {
  if (!iso) return "–";
  const date = new Date(iso);
  return date.toISOString().replace("T", " ").slice(0, 19) + " UTC";
}

// el("td", {class: "num", text: "3"}, child, ...): attributes, "text" for textContent, children.
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "text") node.textContent = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function showError(id, error) {
  const node = document.getElementById(id);
  if (!node) return;
  if (!error) { node.hidden = true; node.textContent = ""; return; }
  node.textContent = error.code ? `${error.message} (${error.code})` : String(error.message || error);
  node.hidden = false;
}

export const TERMINAL = new Set(["succeeded", "failed", "cancelled"]);

const signOut = document.getElementById("sign-out");
if (signOut) {
  signOut.addEventListener("click", async () => {
    try { await api("DELETE", "/v1/session"); } finally { window.location.assign("/sign-in"); }
  });
}
