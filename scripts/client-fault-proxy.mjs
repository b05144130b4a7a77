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
// Preflights (OPTIONS) are always forwarded, so "503" reaches the page as a readable answer.
// Binds 127.0.0.1 only and prints "client-fault-proxy listening on http://127.0.0.1:PORT".
import http from "node:http";

const target = new URL(process.argv[2] ?? "");
const modes = new Set(["up", "down", "hang", "503", "lose"]);
let mode = "up";
const hanging = new Set();

function control(req, res) {
  const requested = req.url.slice("/__proxy/mode/".length);
  const headers = { "access-control-allow-origin": "*", "content-type": "application/json" };
  if (req.method !== "POST" || !modes.has(requested)) {
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

const server = http.createServer((req, res) => {
  if (req.url.startsWith("/__proxy/")) return control(req, res);
  if (req.method === "OPTIONS" || mode === "up") return forward(req, res);
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
server.listen(0, "127.0.0.1", () => {
  console.log(`client-fault-proxy listening on http://127.0.0.1:${server.address().port}`);
});
for (const signal of ["SIGTERM", "SIGINT"]) process.on(signal, () => process.exit(0));
