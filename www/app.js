// The reauth demo: everything here is what an SPA would write against the published package.
import init, { AuthClient } from "./pkg/reauth_client.js";
import { developmentWallet } from "./dev-wallet.js";

const $ = (id) => document.getElementById(id);
const time = (ms) => new Date(ms).toLocaleTimeString();

// Counts the refresh requests that actually leave the page, to show that one refresh serves many callers.
let refreshRequests = 0;
function countingFetch(input, options) {
  const url = typeof input === "string" ? input : input.url;
  if (new URL(url, location.href).pathname === "/auth/refresh") refreshRequests += 1;
  return window.fetch(input, options);
}

const MESSAGES = {
  invalid_credentials: () => "Wrong username or password.",
  rate_limited: (e) => `Too many failed attempts. Try again in ${e.retryAfter ?? "a few"} seconds.`,
  network: () => "The server cannot be reached. Check your connection; your session is kept.",
  timeout: () => "The server is not answering. Your session is kept; retrying.",
  temporarily_unavailable: () => "The server is temporarily unavailable. Your session is kept; retrying.",
  session_expired: (e) => `Your session ended (${e.reason ?? "expired"}). Please sign in again.`,
  unauthenticated: () => "Please sign in first.",
  forbidden: () => "This page's origin is not allowed to call the server.",
};

function notify(text, kind = "error") {
  const notice = $("notice");
  notice.textContent = text;
  notice.dataset.kind = kind;
  notice.hidden = !text;
}

function describe(error) {
  const message = MESSAGES[error?.code];
  return message ? message(error) : error?.message ?? String(error);
}

function logEvent(type, text) {
  const item = document.createElement("li");
  item.dataset.type = type;
  item.textContent = `${time(Date.now())}  ${type}${text ? ` — ${text}` : ""}`;
  $("events").prepend(item);
}

await init();
// `?lockTimeoutMs=…&debug=1` tune the client from the address bar (the browser tests use them).
const params = new URLSearchParams(location.search);
const auth = new AuthClient({
  baseUrl: location.origin,
  refreshMarginSeconds: 30,
  fetch: countingFetch,
  lockTimeoutMs: Number(params.get("lockTimeoutMs")) || undefined,
  debug: params.has("debug"),
});
// For the browser console (and the browser tests): `await auth.accessToken()`, `auth.getSnapshot()`.
window.auth = auth;

auth.onChange((event) => {
  const details = [event.reason, event.user?.username, event.expiresAt && `expires ${time(event.expiresAt)}`];
  logEvent(event.type, details.filter(Boolean).join(", "));
  render();
  if (event.type === "refresh_failed") {
    setStatus("degraded", "Server unreachable, retrying");
    notify("The server cannot be reached right now. You stay signed in; reauth keeps retrying.", "info");
  } else if (event.type === "refreshed" || event.type === "signed_in") {
    notify("");
    loadLists();
  } else if (event.type === "signed_out" && event.reason !== "logout") {
    notify(MESSAGES.session_expired(event));
  }
});

function setStatus(state, text) {
  $("status").dataset.state = state;
  $("status").textContent = text;
}

function render() {
  const signedIn = auth.isAuthenticated;
  $("signed-in").hidden = !signedIn;
  $("signed-out").hidden = signedIn;
  $("sessions-card").hidden = !signedIn;
  $("audit-card").hidden = !signedIn;
  if (signedIn) {
    $("who").textContent = auth.user.username;
    setStatus("in", `Signed in as ${auth.user.username}`);
  } else {
    setStatus("out", "Signed out");
    $("me").textContent = "–";
  }
}

function tick() {
  const expiresAt = auth.expiresAt;
  const refreshAt = auth.refreshAt;
  $("expires-in").textContent = expiresAt == null ? "–" : `${Math.max(0, Math.round((expiresAt - Date.now()) / 1000))} s (at ${time(expiresAt)})`;
  $("renews-at").textContent = refreshAt == null ? "–" : `${time(refreshAt)} (in ${Math.max(0, Math.round((refreshAt - Date.now()) / 1000))} s)`;
}
setInterval(tick, 250);

// `quiet` actions (background list loads) report failures but never clear a standing notice.
async function withErrors(action, { quiet = false } = {}) {
  try {
    if (!quiet) notify("");
    await action();
  } catch (error) {
    notify(describe(error));
    logEvent("error", describe(error));
  }
}

function credentials() {
  return { username: $("username").value.trim(), password: $("password").value };
}

$("credentials").addEventListener("submit", (event) => {
  event.preventDefault();
  withErrors(async () => {
    const { username, password } = credentials();
    await auth.login(username, password);
  });
});

$("register").addEventListener("click", () =>
  withErrors(async () => {
    if (!$("credentials").reportValidity()) return;
    const { username, password } = credentials();
    // Registration is an app concern, not the client's: a plain fetch.
    const response = await fetch("/auth/register", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ username, password }),
    });
    if (!response.ok) {
      const body = await response.json().catch(() => ({}));
      throw new Error(body.error_description ?? `Registration failed (${response.status})`);
    }
    await auth.login(username, password);
  }),
);

// The development wallet, made at its first use; a real application passes its wallet's account
// and message signing to loginWithWallet instead.
let wallet = null;
async function currentWallet({ fresh = false } = {}) {
  if (!wallet || fresh) wallet = await developmentWallet();
  $("wallet-account").textContent = wallet.account;
  return wallet;
}

$("wallet-login").addEventListener("click", () =>
  withErrors(async () => {
    const { account, signMessage } = await currentWallet();
    try {
      await auth.loginWithWallet({ account, signMessage });
    } catch (error) {
      if (error?.code === "invalid_credentials") throw new Error("The server refused the wallet's signature.");
      throw error;
    }
  }),
);

$("wallet-new-key").addEventListener("click", () => withErrors(() => currentWallet({ fresh: true })));

$("call-me").addEventListener("click", () =>
  withErrors(async () => {
    const response = await auth.fetch("/api/me");
    $("me").textContent = `${response.status} ${await response.text()}`;
  }),
);

$("burst").addEventListener("click", () =>
  withErrors(async () => {
    auth.invalidateAccessToken();
    const before = refreshRequests;
    const responses = await Promise.all(Array.from({ length: 20 }, () => auth.fetch("/api/me")));
    const ok = responses.filter((response) => response.ok).length;
    const refreshes = refreshRequests - before;
    const result = $("burst-result");
    result.hidden = false;
    result.textContent = `${ok} of 20 requests succeeded; ${refreshes} refresh request${refreshes === 1 ? "" : "s"} served them all.`;
    result.dataset.ok = String(ok);
    result.dataset.refreshes = String(refreshes);
  }),
);

$("logout").addEventListener("click", () => withErrors(() => auth.logout()));
$("logout-all").addEventListener("click", () => withErrors(() => auth.logoutAll()));
$("reload-sessions").addEventListener("click", () => loadSessions());
$("reload-audit").addEventListener("click", () => loadAudit());

function loadLists() {
  loadSessions();
  loadAudit();
}

async function loadSessions() {
  await withErrors(async () => {
    const response = await auth.fetch("/auth/sessions");
    if (!response.ok) return;
    const list = $("sessions");
    list.replaceChildren();
    for (const session of await response.json()) {
      const item = document.createElement("li");
      item.dataset.sessionId = session.id;
      const label = document.createElement("span");
      label.textContent = `${session.current ? "This tab's session" : "Other session"} · ${session.user_agent ?? "unknown device"} · last used ${time(session.last_used_at * 1000)}`;
      const revoke = document.createElement("button");
      revoke.type = "button";
      revoke.className = "secondary";
      revoke.textContent = "Revoke";
      revoke.addEventListener("click", () =>
        withErrors(async () => {
          await auth.fetch(`/auth/sessions/${encodeURIComponent(session.id)}`, { method: "DELETE" });
          logEvent("revoked", `session ${session.id.slice(0, 8)}…; it ends at its next renewal`);
          loadLists();
        }),
      );
      item.append(label, revoke);
      list.append(item);
    }
  }, { quiet: true });
}

async function loadAudit() {
  await withErrors(async () => {
    const response = await auth.fetch("/auth/audit");
    if (!response.ok) return;
    const rows = (await response.json()).slice(0, 20).map((event) => {
      const row = document.createElement("tr");
      for (const text of [time(event.at * 1000), event.type, event.session_id?.slice(0, 8) ?? "–", event.client_ip ?? "–"]) {
        const cell = document.createElement("td");
        cell.textContent = text;
        row.append(cell);
      }
      return row;
    });
    $("audit").replaceChildren(...rows);
  }, { quiet: true });
}

setStatus("loading", "Restoring session…");
await withErrors(() => auth.restore());
render();
if (auth.isAuthenticated) loadLists();
