// DEVELOPMENT WALLET: a stand-in for a Stellar wallet (Freighter, xBull, …) so that the demo and its
// browser tests can sign in with a wallet where no wallet extension exists (headless Chromium).
// Its Ed25519 key is generated in the page and kept in its memory only (a reload makes a new one),
// within reach of any script on the page: never hold real funds with it. A real application passes its wallet's message signing
// instead, e.g. `signMessage: (message) => wallet.signMessage(message)`.
//
// What it does is what a wallet does: the account id is the public key as a `G…` strkey, and
// messages are signed per SEP-53: Ed25519 over SHA-256("Stellar Signed Message:\n" + message),
// the signature sent base64-encoded.

// Strkey version byte of an Ed25519 public key ("G…"): 6 << 3.
const ACCOUNT_VERSION_BYTE = 6 << 3;
// An Ed25519 PKCS#8 private key is this fixed DER prefix followed by the 32-byte seed (RFC 8410).
const PKCS8_ED25519_PREFIX = [0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20];
const BASE32_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const SEP53_PREFIX = "Stellar Signed Message:\n";

/** CRC16-XModem (polynomial 0x1021, initial 0), the checksum of strkeys. */
function crc16XModem(bytes) {
  let crc = 0;
  for (const byte of bytes) {
    crc ^= byte << 8;
    for (let bit = 0; bit < 8; bit += 1) {
      crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
    }
  }
  return crc;
}

/** RFC 4648 base32 without padding (strkeys are 35 bytes: 56 characters, no padding needed). */
function base32(bytes) {
  let bits = 0;
  let value = 0;
  let out = "";
  for (const byte of bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += BASE32_ALPHABET[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += BASE32_ALPHABET[(value << (5 - bits)) & 31];
  return out;
}

/** The `G…` strkey of a 32-byte Ed25519 public key: version byte, key, CRC16 little-endian, base32. */
export function accountId(publicKey) {
  const payload = new Uint8Array([ACCOUNT_VERSION_BYTE, ...publicKey]);
  const crc = crc16XModem(payload);
  return base32(new Uint8Array([...payload, crc & 0xff, crc >> 8]));
}

function toBase64(bytes) {
  return btoa(String.fromCharCode(...bytes));
}

function fromBase64(text) {
  return Uint8Array.from(atob(text), (char) => char.charCodeAt(0));
}

/** A development wallet over a 32-byte Ed25519 seed: `{ account, seed, signMessage }`. */
export async function walletFromSeed(seed) {
  const pkcs8 = new Uint8Array([...PKCS8_ED25519_PREFIX, ...seed]);
  const privateKey = await crypto.subtle.importKey("pkcs8", pkcs8, { name: "Ed25519" }, true, ["sign"]);
  // The public key, from the private key's JWK (`x`, base64url): WebCrypto has no derive-public call.
  const { x } = await crypto.subtle.exportKey("jwk", privateKey);
  const publicKey = fromBase64(x.replace(/-/g, "+").replace(/_/g, "/") + "=");
  const account = accountId(publicKey);
  async function signMessage(message) {
    const signed = new TextEncoder().encode(SEP53_PREFIX + message);
    const hash = new Uint8Array(await crypto.subtle.digest("SHA-256", signed));
    const signature = await crypto.subtle.sign({ name: "Ed25519" }, privateKey, hash);
    return toBase64(new Uint8Array(signature));
  }
  return { account, seed, signMessage };
}

/** A development wallet with a new random key. */
export function developmentWallet() {
  return walletFromSeed(crypto.getRandomValues(new Uint8Array(32)));
}
