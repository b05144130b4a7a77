// A fault-injecting HTTP proxy for the Wasm client's browser tests (no dependencies).
//
// Forwards every request to the reauth server given as the first argument, unless a test switched
// it into a failure mode through its control path:
//   POST /__proxy/mode/up     forward normally (the default)
//   POST /__proxy/mode/down   drop every connection: the browser sees a network error
//   POST /__proxy/mode/hang   accept requests and never answer: only the client's timeout ends them
//   POST /__proxy/mode/503    answer 503 temporarily_unavailable, as the server does when its store is down
//   POST /__proxy/mode/lose   forward to the server, let it answer in full, then drop the connection:
//                             the server acted (rotated a token, say), the browser sees a network error
//   POST /__proxy/reject-token (body: an access token) answer 401 invalid_token to every request
//                             carrying it, as a server does for a token it no longer accepts
//   GET  /__proxy/counts      how many requests (preflights aside) reached the proxy, per path, and
//                             how many of them it refused for their token ("rejected <path>")
// Preflights (OPTIONS) are always forwarded, so "503" reaches the page as a readable answer.
// Binds 127.0.0.1 (on the port given as second argument, else a free one) and prints
// "client-fault-proxy listening on http://127.0.0.1:PORT".
import http from "node:http";

const target = new URL(process.argv[2] ?? "");
const port = Number(process.argv[3] ?? 0);
const modes = new Set(["up", "down", "hang", "503", "lose"]);
let mode = "up";
const hanging = new Set();
const rejectedTokens = new Set();
const counts = {};

function control(req, res) {
  const headers = { "access-control-allow-origin": "*", "content-type": "application/json" };
  if (req.method === "GET" && req.url === "/__proxy/counts") {
    res.writeHead(200, headers).end(JSON.stringify(counts));
    return;
  }
  if (req.method === "POST" && req.url === "/__proxy/reject-token") {
    let token = "";
    req.on("data", (chunk) => (token += chunk));
    req.on("end", () => {
      rejectedTokens.add(token.trim());
      res.writeHead(200, headers).end(JSON.stringify({ rejected: rejectedTokens.size }));
    });
    return;
  }
  const requested = req.url.slice("/__proxy/mode/".length);
  if (req.method !== "POST" || !req.url.startsWith("/__proxy/mode/") || !modes.has(requested)) {
    res.writeHead(404, headers).end(JSON.stringify({ error: "unknown control request" }));
    return;
  }
  mode = requested;
  if (mode !== "hang") {
    for (const stuck of hanging) stuck.destroy();
    hanging.clear();
  }
  res.writeHead(200, headers).end(JSON.stringify({ mode }));
}

function corsHeaders(req) {
  const origin = req.headers.origin;
  return origin ? { "access-control-allow-origin": origin, "access-control-allow-credentials": "true", vary: "Origin" } : {};
}

function forward(req, res, { loseAnswer = false } = {}) {
  const upstream = http.request(
    { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: { ...req.headers, host: target.host } },
    (answer) => {
      if (loseAnswer) {
        answer.resume();
        answer.on("end", () => req.socket.destroy());
        return;
      }
      res.writeHead(answer.statusCode, answer.rawHeaders);
      answer.pipe(res);
    },
  );
  upstream.on("error", () => res.destroy());
  req.pipe(upstream);
}

function carriesRejectedToken(req) {
  const token = /^Bearer (.+)$/i.exec(req.headers.authorization ?? "")?.[1];
  return token !== undefined && rejectedTokens.has(token);
}

const server = http.createServer((req, res) => {
  if (req.url.startsWith("/__proxy/")) return control(req, res);
  if (req.method === "OPTIONS") return forward(req, res);
  const path = new URL(req.url, "http://proxy").pathname;
  counts[path] = (counts[path] ?? 0) + 1;
  if (carriesRejectedToken(req)) {
    counts[`rejected ${path}`] = (counts[`rejected ${path}`] ?? 0) + 1;
    res
      .writeHead(401, { ...corsHeaders(req), "content-type": "application/json", "www-authenticate": 'Bearer error="invalid_token"' })
      .end(JSON.stringify({ error: "invalid_token", error_description: "rejected by client-fault-proxy", reason: "invalid" }));
    return;
  }
  if (mode === "up") return forward(req, res);
  if (mode === "down") return req.socket.destroy();
  if (mode === "lose") return forward(req, res, { loseAnswer: true });
  if (mode === "hang") {
    hanging.add(req.socket);
    req.socket.on("close", () => hanging.delete(req.socket));
    return;
  }
  res
    .writeHead(503, { ...corsHeaders(req), "content-type": "application/json", "retry-after": "1" })
    .end(JSON.stringify({ error: "temporarily_unavailable", error_description: "injected by client-fault-proxy" }));
});

// Keep-alive connections would let a "down" proxy keep serving over an already-open socket.
server.keepAliveTimeout = 1;
server.listen(port, "127.0.0.1", () => {
  console.log(`client-fault-proxy listening on http://127.0.0.1:${server.address().port}`);
});
for (const signal of ["SIGTERM", "SIGINT"]) process.on(signal, () => process.exit(0));
