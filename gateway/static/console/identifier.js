// A file's identifier, by the rule `cloudreco add` follows (cloudreco/cli/sources.py), so
// that the console and the command line name one file alike: the name without its
// extension, accents dropped, each run of other characters outside A-Z a-z 0-9 @ _ . made
// one _, padded with _ to 3 characters, and a name over 50 cut to 41 characters, _ and the
// first 8 hex digits of the SHA-1 of the whole name.

const MIN_LENGTH = 3;
const MAX_LENGTH = 50;
const DIGEST_HEX = 8;

export function identifierFor(filename) {
  const dot = filename.lastIndexOf("."); // a suffix as Python's pathlib sees one
  const stem = dot > 0 && dot < filename.length - 1 ? filename.slice(0, dot) : filename;
  const plain = stem.normalize("NFKD").replace(/\p{Mn}/gu, "");
  const name = plain.replace(/[^A-Za-z0-9@_.]+/g, "_").padEnd(MIN_LENGTH, "_");
  if (name.length <= MAX_LENGTH) return name;
  const digest = sha1(new TextEncoder().encode(stem)).slice(0, DIGEST_HEX);
  return `${name.slice(0, MAX_LENGTH - DIGEST_HEX - 1)}_${digest}`;
}

// SHA-1 (FIPS 180-4) of bytes, as hex. Written out because crypto.subtle exists only on
// secure origins, and a console is often reached over plain HTTP inside a network.
function sha1(bytes) {
  const length = bytes.length;
  const padded = new Uint8Array((((length + 8) >> 6) + 1) << 6);
  padded.set(bytes);
  padded[length] = 0x80;
  const view = new DataView(padded.buffer);
  view.setUint32(padded.length - 8, Math.floor(length / 0x20000000));
  view.setUint32(padded.length - 4, (length << 3) >>> 0);
  const h = [0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476, 0xc3d2e1f0];
  const w = new Uint32Array(80);
  for (let block = 0; block < padded.length; block += 64) {
    for (let i = 0; i < 16; i++) w[i] = view.getUint32(block + 4 * i);
    for (let i = 16; i < 80; i++) {
      const x = w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16];
      w[i] = (x << 1) | (x >>> 31);
    }
    let [a, b, c, d, e] = h;
    for (let i = 0; i < 80; i++) {
      const [f, k] = i < 20 ? [(b & c) | (~b & d), 0x5a827999]
        : i < 40 ? [b ^ c ^ d, 0x6ed9eba1]
          : i < 60 ? [(b & c) | (b & d) | (c & d), 0x8f1bbcdc]
            : [b ^ c ^ d, 0xca62c1d6];
      const t = (((a << 5) | (a >>> 27)) + f + e + k + w[i]) >>> 0;
      [e, d, c, b, a] = [d, c, (b << 30) | (b >>> 2), a, t];
    }
    h[0] = (h[0] + a) >>> 0;
    h[1] = (h[1] + b) >>> 0;
    h[2] = (h[2] + c) >>> 0;
    h[3] = (h[3] + d) >>> 0;
    h[4] = (h[4] + e) >>> 0;
  }
  return h.map((x) => x.toString(16).padStart(8, "0")).join("");
}
