// Signing in with a `callwatch token`, and talking to the API with it.
// The token lives in sessionStorage (this tab only); fetch sends it as a Bearer header, websockets as ?token=.

import { byId, clear, h } from "./dom.js";

const TOKEN_KEY = "callwatch.token";

export class HttpError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/** What the token says about itself. Not verified here: the server checks the signature on every request. */
export function readClaims(token) {
  try {
    const body = token.trim().split(".")[0].replaceAll("-", "+").replaceAll("_", "/");
    const claims = JSON.parse(atob(body + "=".repeat((4 - (body.length % 4)) % 4)));
    if (typeof claims.role !== "string") return null;
    return claims;
  } catch {
    return null;
  }
}

export function currentToken() {
  return sessionStorage.getItem(TOKEN_KEY);
}

/**
 * A link may carry the token (`/agent?token=…` or `#token=…`): keep it for this tab and take it out of the
 * address bar, so it is not left in history or shared by copying the URL.
 */
function adoptTokenFromUrl() {
  const url = new URL(location.href);
  const hash = new URLSearchParams(url.hash.slice(1));
  const token = url.searchParams.get("token") || hash.get("token");
  if (!token) return;
  sessionStorage.setItem(TOKEN_KEY, token);
  url.searchParams.delete("token");
  hash.delete("token");
  url.hash = hash.toString();
  history.replaceState(null, "", url.pathname + url.search + url.hash);
}

export function signOut() {
  sessionStorage.removeItem(TOKEN_KEY);
  location.reload();
}

/** Resolves with {token, claims} once the user holds a token one of `roles` may use on this page. */
export function requireSession(roles) {
  adoptTokenFromUrl();
  const stored = currentToken();
  const claims = stored && readClaims(stored);
  const problem = claims && checkClaims(claims, roles);
  if (claims && !problem) return Promise.resolve(showSignedIn(stored, claims));
  return new Promise((resolve) => renderSignIn(roles, problem, (token, ok) => resolve(showSignedIn(token, ok))));
}

function checkClaims(claims, roles) {
  if (claims.exp && claims.exp * 1000 < Date.now()) return "This token has expired. Ask for a new one.";
  if (!roles.includes(claims.role)) {
    const where = claims.role === "agent" ? "your own screen at /agent" :
      claims.role === "supervisor" ? "the board at /supervisor" : "ingest connections, not screens";
    return `This is a ${claims.role} token; this page needs ${roles.join(" or ")}. It is meant for ${where}.`;
  }
  return "";
}

function renderSignIn(roles, problem, done) {
  const section = byId("signin");
  const error = h("p", { class: "error", role: "alert", id: "signin-error", text: problem || "" });
  const input = h("input", {
    id: "token", name: "token", type: "password", required: true, autocomplete: "off", spellcheck: "false",
    "aria-describedby": "token-help signin-error", placeholder: "eyJyb2xlIjoi…",
  });
  const example = roles.includes("agent") ? "callwatch token --role agent --agent-id YOUR_ID" :
    "callwatch token --role supervisor";
  const form = h("form", { "aria-labelledby": "signin-title" },
    h("label", { for: "token" }, "Access token"),
    input,
    h("p", { class: "hint", id: "token-help" }, "Your administrator creates one with ", h("code", {}, example),
      ". It is kept only in this browser tab."),
    error,
    h("div", {}, h("button", { class: "primary", type: "submit", "data-testid": "signin-submit" }, "Sign in")));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const token = input.value.trim();
    const claims = readClaims(token);
    const why = !claims ? "That does not look like a callwatch token." : checkClaims(claims, roles);
    if (why) {
      error.textContent = why;
      input.focus();
      return;
    }
    sessionStorage.setItem(TOKEN_KEY, token);
    section.hidden = true;
    done(token, claims);
  });
  clear(section).append(h("h2", { id: "signin-title" }, "Sign in"), form);
  section.hidden = false;
  byId("main").hidden = true;
  input.focus();
}

function showSignedIn(token, claims) {
  byId("main").hidden = false;
  const conn = byId("conn");
  if (conn) conn.hidden = false;
  const who = byId("who");
  if (who) {
    clear(who).append(claims.role === "agent" ? "Agent " : "Supervisor", claims.agent_id ?
      h("strong", {}, claims.agent_id) : "");
  }
  const out = byId("signout");
  if (out) {
    out.hidden = false;
    out.addEventListener("click", signOut);
  }
  return { token, claims };
}

/** A banner at the top of the page; `kind` "error" for refusals, anything else for calm notices. */
export function showBanner(message, kind = "notice") {
  const banner = byId("banner");
  if (!banner) return;
  banner.dataset.kind = kind;
  banner.textContent = message;
  banner.hidden = !message;
}

export function explainRefusal(error) {
  if (!(error instanceof HttpError)) return `Cannot reach callwatch: ${error.message}`;
  if (error.status === 401) return `Your token was refused (${error.message}). Sign out and sign in with a fresh one.`;
  if (error.status === 403) return `Not allowed with this token: ${error.message}.`;
  if (error.status === 404) return `Not found: ${error.message}.`;
  return `callwatch answered ${error.status}: ${error.message}`;
}

/** fetch with the token; JSON in and out; throws HttpError with the server's own message. */
export async function api(path, { method = "GET", body, as = "json" } = {}) {
  const headers = { Authorization: `Bearer ${currentToken() || ""}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (!response.ok) {
    let message = response.statusText;
    try {
      message = (await response.json()).error || message;
    } catch { /* not JSON: keep the status text */ }
    throw new HttpError(response.status, message);
  }
  return as === "blob" ? response.blob() : response.json();
}

export function socketUrl(path) {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const join = path.includes("?") ? "&" : "?";
  return `${scheme}//${location.host}${path}${join}token=${encodeURIComponent(currentToken() || "")}`;
}

/**
 * A websocket that reconnects (1 s, doubling to 15 s) and reports its state to `onState`
 * ("connecting" | "open" | "closed"). A socket refused before it ever opened is checked over HTTP, so a bad
 * token shows as a clear message rather than endless retries. Returns {close()}.
 */
export function openStream(path, { onMessage, onState, onOpen, probe }) {
  let socket = null;
  let delay = 1000;
  let stopped = false;
  let timer = null;
  const connect = () => {
    onState?.("connecting");
    let opened = false;
    socket = new WebSocket(socketUrl(path));
    socket.addEventListener("open", () => {
      opened = true;
      delay = 1000;
      onState?.("open");
      onOpen?.();
    });
    socket.addEventListener("message", (event) => {
      try {
        onMessage(JSON.parse(event.data));
      } catch (error) {
        console.error("callwatch: bad message", error);
      }
    });
    socket.addEventListener("close", async () => {
      if (stopped) return;
      onState?.("closed");
      if (!opened && probe) {
        try {
          await probe();
        } catch (error) {
          if (error instanceof HttpError && (error.status === 401 || error.status === 403)) {
            showBanner(explainRefusal(error), "error");
            return;
          }
        }
      }
      timer = setTimeout(connect, delay);
      delay = Math.min(delay * 2, 15000);
    });
  };
  connect();
  return {
    close() {
      stopped = true;
      clearTimeout(timer);
      socket?.close();
    },
  };
}
