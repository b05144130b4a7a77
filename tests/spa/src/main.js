// The README's example, run for real: served by reauth-server itself (same origin), it registers a
// throwaway user, signs in, calls the API, signs out, and reports "ok" or the failure in #status.
import init, * as reauth from "reauth-client";
import { exercise } from "./exercise.js";
import { run } from "./page.js";

run(async () => {
  await init();
  await exercise(reauth);
});
