// What every test page shares: a check that throws, a runner that reports "ok" or the failure in
// #status (check-in-browser.mjs waits for it), and a throwaway user on the serving reauth-server.
export function check(condition, what) {
  if (!condition) throw new Error(`failed: ${what}`);
}

export async function run(test) {
  const status = document.querySelector("#status");
  try {
    await test();
    status.textContent = "ok";
  } catch (error) {
    status.textContent = `error: ${error?.message ?? error}`;
  }
}

export async function registerUser(baseUrl = location.origin) {
  const username = `spa${Math.floor(Math.random() * 1e9)}`;
  const password = "correct horse battery";
  const registered = await fetch(`${baseUrl}/auth/register`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ username, password }),
  });
  check(registered.status === 201, "register");
  return { username, password };
}

/** How a promise settled: its value, or the error it rejected with (as `{ rejected }`). */
export function outcome(promise) {
  return promise.then(
    (value) => ({ value }),
    (rejected) => ({ rejected }),
  );
}
