// The bundler target initialises the Wasm module on import: no init() to call.
import { AuthClient } from "reauth-client";
import { exercise } from "./exercise.js";

await exercise(AuthClient);
