// Shared helpers of the labeling pages: the token kept in sessionStorage, `api()` (fetch with the
// Bearer token, JSON in and out, typed errors), `el()` (DOM building where every string becomes a
// text node, so task text can never turn into markup), and small display helpers.
// No framework, no build step: an ES module served as /static/common.js.

const TOKEN_KEY = "rlhf-label-token";

/** The token of this browser tab, or null. */
export function getToken() {
  return sessionStorage.getItem(TOKEN_KEY);
}

/** Remembers the token for this tab only (sessionStorage is cleared when the tab closes). */
export function setToken(token) {
  sessionStorage.setItem(TOKEN_KEY, token);
}

/** Forgets the token and goes back to the login page. */
export function signOut() {
  sessionStorage.removeItem(TOKEN_KEY);
  window.location.assign("/");
}

/** An HTTP answer outside 2xx: `status` and the server's `{"error": ...}` reason. */
export class ApiError extends Error {
  constructor(status, message, body) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.body = body;
  }
}

/** The request never got an answer (server down, connection lost). */
export class NetworkError extends Error {
  constructor(cause) {
    super(`Network error: ${cause && cause.message ? cause.message : cause}`);
    this.name = "NetworkError";
  }
}

/**
 * Calls the API with the tab's token. Resolves to `{status, data}` (data: parsed JSON, the raw
 * text for non-JSON bodies, or null for an empty body such as 204); rejects with ApiError for any
 * 4xx/5xx and with NetworkError when no answer came. `options.token` overrides the stored token;
 * `options.raw` returns the Response itself (for downloads).
 */
export async function api(path, options = {}) {
  const token = options.token ?? getToken();
  const headers = { Accept: "application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  const init = { method: options.method || "GET", headers, cache: "no-store" };
  if (options.body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(options.body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (cause) {
    throw new NetworkError(cause);
  }
  if (!response.ok) {
    const text = await response.text().catch(() => "");
    let body = null;
    try {
      body = JSON.parse(text);
    } catch {
      body = null;
    }
    const reason = body && typeof body.error === "string" ? body.error : text || response.statusText;
    throw new ApiError(response.status, `${response.status}: ${reason}`, body);
  }
  if (options.raw) return { status: response.status, response };
  const text = await response.text();
  if (text === "") return { status: response.status, data: null };
  const type = response.headers.get("Content-Type") || "";
  if (type.includes("json")) {
    return { status: response.status, data: JSON.parse(text) };
  }
  return { status: response.status, data: text };
}

/**
 * Creates `<tag>` with attributes and children. Strings and numbers among the children become text
 * nodes (never parsed as HTML); `null`/`false` children are skipped. Attribute keys: `class`,
 * `text` (textContent), `on<event>` (listener), booleans (set or omitted), anything else via
 * setAttribute.
 */
export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = String(value);
    else if (key.startsWith("on") && typeof value === "function") {
      node.addEventListener(key.slice(2), value);
    } else if (value === true) node.setAttribute(key, "");
    else node.setAttribute(key, String(value));
  }
  append(node, children);
  return node;
}

/** The same for SVG elements (the admin page's interval bars). */
export function svg(tag, attributes = {}) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, String(value));
  return node;
}

function append(node, children) {
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(typeof child === "string" || typeof child === "number" ? String(child) : child);
  }
}

/** Replaces all children of `node` with `children` (same rules as `el`). */
export function replace(node, ...children) {
  node.replaceChildren();
  append(node, children);
}

/** Shows `message` in an error box (role="alert"), or hides the box for an empty message. */
export function showError(box, message) {
  box.textContent = message || "";
  box.hidden = !message;
}

/** A person-readable line for any error thrown by `api`. */
export function describeError(error) {
  if (error instanceof NetworkError) {
    return "The server could not be reached. Check the connection and try again; nothing you entered is lost.";
  }
  if (error instanceof ApiError) {
    if (error.status === 401) return "This token is not recognised. Sign in again with a valid token.";
    if (error.status >= 500) return `The server had a problem (${error.message}).`;
    return `The server refused the request (${error.message}).`;
  }
  return `Unexpected error: ${error && error.message ? error.message : error}`;
}

/** Formats a number with `digits` decimals, or an em dash for null / non-finite values. */
export function fmt(value, digits = 2) {
  return typeof value === "number" && Number.isFinite(value) ? value.toFixed(digits) : "—";
}

/** Saves a Blob under `filename` through a temporary object URL. */
export function saveBlob(blob, filename) {
  const url = URL.createObjectURL(blob);
  const link = el("a", { href: url, download: filename, hidden: true });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/** Wires the page's "Sign out" button (any element with id="sign-out"). */
export function wireSignOut() {
  const button = document.getElementById("sign-out");
  if (button) button.addEventListener("click", signOut);
}

/** True when keyboard shortcuts must not fire because the user is typing text. */
export function isTyping(target) {
  if (!(target instanceof HTMLElement)) return false;
  if (target.isContentEditable) return true;
  if (target instanceof HTMLTextAreaElement) return true;
  if (target instanceof HTMLInputElement) {
    return !["checkbox", "radio", "button", "submit", "reset"].includes(target.type);
  }
  return false;
}

// ---- The login page (index.html has no script of its own: the CSP forbids inline scripts and the
// server embeds a fixed set of files, so its few lines live here, run only on that page).

/** Sends the pasted token to the admin page when the admin API accepts it, else to the rater page. */
async function signIn(token) {
  try {
    await api("/api/admin/progress", { token });
    return "/admin";
  } catch (error) {
    if (!(error instanceof ApiError) || (error.status !== 401 && error.status !== 403)) throw error;
  }
  await api("/api/me", { token });
  return "/rate";
}

function initLogin() {
  const form = document.getElementById("login");
  const input = document.getElementById("token");
  const box = document.getElementById("login-error");
  const button = form.querySelector("button[type=submit]");
  input.focus();
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const token = input.value.trim();
    if (!token) {
      showError(box, "Paste the token you were given.");
      return;
    }
    showError(box, "");
    button.disabled = true;
    try {
      const page = await signIn(token);
      setToken(token);
      window.location.assign(page);
    } catch (error) {
      showError(box, describeError(error));
      button.disabled = false;
      input.focus();
    }
  });
}

if (document.body && document.body.dataset.page === "login") initLogin();
