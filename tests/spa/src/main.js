// The README's example, run for real: served by reauth-server itself (same origin), it registers a
// throwaway user, signs in, calls the API, signs out, and reports "ok" or the failure in #status.
import init, { AuthClient } from "reauth-client";
import { exercise } from "./exercise.js";

await init();
await exercise(AuthClient);
