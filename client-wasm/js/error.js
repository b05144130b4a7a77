// ReauthError and the JavaScript guards around the Wasm client. A wasm-bindgen snippet: the Wasm
// imports it to create its errors (src/error.rs), and the entry module re-exports this same file,
// so `instanceof ReauthError` holds. Documented in error.d.ts; kept terse, it is shipped as is.

export class ReauthError extends Error {
  constructor(code, message, options) {
    super(message, options);
    this.name = "ReauthError";
    this.code = code;
  }
}

// Also true for errors from another copy of the package or another realm.
export function isReauthError(value, code) {
  const is = value instanceof ReauthError || (value?.name === "ReauthError" && typeof value.code === "string");
  return is && (code === undefined || value.code === code);
}

// Methods that return a value, not a Promise: after free() they throw instead of rejecting.
const SYNC = new Set(["onChange", "subscribe", "getSnapshot", "invalidateAccessToken", "sendsTokenTo"]);
const disposed = (name) => new ReauthError("disposed", `${name}(): the client was freed`);

// wasm-bindgen's free() zeroes `__wbg_ptr`; a call after it would fail with "null pointer passed
// to rust". Instead: ReauthError "disposed", also for a call under way at free() that then fails
// with a ReauthError. free() becomes idempotent.
export function guardAfterFree(Client) {
  const proto = Client.prototype;
  for (const name of Object.getOwnPropertyNames(proto)) {
    const { value, get } = Object.getOwnPropertyDescriptor(proto, name);
    if (name === "constructor" || name.startsWith("__")) continue;
    if (get) {
      Object.defineProperty(proto, name, {
        configurable: true,
        get() {
          if (!this.__wbg_ptr) throw disposed(name);
          return get.call(this);
        },
      });
    } else if (typeof value === "function") {
      proto[name] = function (...args) {
        if (this.__wbg_ptr) {
          const result = value.apply(this, args);
          return result instanceof Promise
            ? result.catch((error) => {
                throw this.__wbg_ptr || !isReauthError(error) ? error : disposed(name);
              })
            : result;
        }
        if (name === "free") return undefined;
        if (SYNC.has(name)) throw disposed(name);
        return Promise.reject(disposed(name));
      };
    }
  }
  // The glue aliases it to the unguarded free() (`using auth = …` after free() would throw).
  if (typeof Symbol.dispose === "symbol") proto[Symbol.dispose] = proto.free;
}

// wasm-bindgen's init(), with every failure (no WebAssembly at all, as in iOS Lockdown Mode; a CSP
// without 'wasm-unsafe-eval'; the .wasm not fetched) as ReauthError "wasm_unavailable".
export async function loadWasm(init, moduleOrPath) {
  if (typeof WebAssembly !== "object" || !WebAssembly) {
    throw new ReauthError("wasm_unavailable", "WebAssembly is not available (disabled, e.g. by iOS Lockdown Mode)");
  }
  try {
    return await init(moduleOrPath);
  } catch (cause) {
    throw new ReauthError("wasm_unavailable", `the client's WebAssembly did not load: ${cause?.message ?? cause}`, { cause });
  }
}
