// The bundler target initialises the Wasm module on import: no init() to call.
import * as reauth from "reauth-client";
import { exercise } from "./exercise.js";
import { run } from "./page.js";

run(() => exercise(reauth));
