// Drives the React test app (react.html, src/react-app.jsx) in Chromium as a user would: sign in,
// see the user and the API's answer, reload (silent sign-in), sign out.
// Usage: node tests/spa/check-react.mjs URL_OF_react.html   Exits 0 when every step passed.
import { launch, newPage } from "./browser.mjs";

const url = process.argv[2];
const browser = await launch();
try {
  const page = await newPage(browser);
  await page.goto(url);
  const state = page.locator("#state");
  const step = async (what, done) => {
    await done().catch((error) => {
      throw new Error(`${what}: ${error.message}\n  console: ${page.problems.join("\n  console: ")}`);
    });
    console.log(`react: ${what}`);
  };
  await step("starts signed out after loading", () => state.filter({ hasText: "signed out" }).waitFor({ timeout: 30_000 }));

  const username = `react${Math.floor(Math.random() * 1e9)}`;
  const registered = await page.evaluate(async (username) => {
    const body = JSON.stringify({ username, password: "correct horse battery" });
    const response = await fetch("/auth/register", { method: "POST", headers: { "content-type": "application/json" }, body });
    return response.status;
  }, username);
  if (registered !== 201) throw new Error(`register: ${registered}`);

  await page.fill("#username", username);
  await page.fill("#password", "correct horse battery");
  await page.click("#login");
  await step("signs in and shows the user", () => page.locator("#user").filter({ hasText: username }).waitFor({ timeout: 10_000 }));
  await step("useAuth().fetch carries the token", () => page.locator("#api").filter({ hasText: username }).waitFor({ timeout: 10_000 }));

  await page.reload();
  await step("a reload signs in silently", () => page.locator("#user").filter({ hasText: username }).waitFor({ timeout: 10_000 }));

  await page.click("#logout");
  await step("signs out", () => state.filter({ hasText: "signed out" }).waitFor({ timeout: 10_000 }));
  console.log(`${url}: ok`);
} finally {
  await browser.close();
}
