// The API as the console calls it: POST /<Name> with multipart form fields, and the JSON
// answer's returncode. Every refusal becomes an ApiError carrying the code and the message
// the service sent, so that the page always says what happened.

const KEY = "cloudreco.console";

export class ApiError extends Error {
  constructor(code, message) {
    super(code === null ? message : `${code} ${message}`);
    this.code = code; // null when no answer of the API arrived
    this.apiMessage = message;
  }
}

// What a code means for the person at the console, beside the service's own message.
const HELP = {
  20001: "Check the username and the secret key (an app key cannot sign in here).",
  20003: "No channel has this name any more.",
  20004: "This channel belongs to another user.",
  20006: "The file is too large: the service takes images up to its size and pixel limits.",
  20007: "Only JPEG and PNG images are taken, whole and undamaged.",
  20010: "Identifiers have 3 to 50 characters from A-Z, a-z, 0-9, @, _ and the dot.",
  20012: "The channel is full. Remove images, or ask the operator to raise its limit.",
  20014: "The image is not in the channel (any more).",
  20015: "The service is busy or part of it is down. Try again in a moment.",
  20016: "The channel already has an image with this identifier. Rename the file, or " +
    "remove the other image first.",
  20018: 'Metadata must be JSON text, such as {"url": "https://example.com"}, of at most 64 KiB.',
  20019: "Dates are yyyy, yyyyMM or yyyyMMdd.",
  20022: "Too many searches in one second. Wait a moment.",
  20023: "Too many failed sign-ins from here or for this user. Wait a minute.",
  20024: "The image was added before the service kept originals, so it has no picture here.",
};
const HELP_TARGET_20013 =
  "Too few distinct details to recognise this image in a photo: it is too plain, too " +
  "small, too blurred or mostly empty. Use a larger, sharper picture with more texture, " +
  "print or contrast.";
const HELP_PHOTO_20013 =
  "Too few details in this photo to search it: take it closer, sharper or in more light.";

// The words to show for an error: code, message and what it means; ``photo`` when the
// image was a photo to search rather than a target to add.
export function explain(error, { photo = false } = {}) {
  if (!(error instanceof ApiError)) return String(error);
  const help = error.code === 20013 ? (photo ? HELP_PHOTO_20013 : HELP_TARGET_20013)
    : HELP[error.code];
  return help ? `${error.message}. ${help}` : error.message;
}

// The signed-in user's credentials, kept in this tab's sessionStorage only.
export const session = {
  get() {
    const saved = sessionStorage.getItem(KEY);
    return saved ? JSON.parse(saved) : null;
  },
  set(username, secretkey) {
    sessionStorage.setItem(KEY, JSON.stringify({ username, secretkey }));
  },
  clear() {
    sessionStorage.removeItem(KEY);
  },
};

function form(fields, image) {
  const body = new FormData();
  for (const [name, value] of Object.entries({ ...session.get(), ...fields })) {
    if (value !== undefined && value !== null) body.append(name, value);
  }
  if (image) body.append("image", image, image.name || "image");
  return body;
}

async function post(endpoint, fields, image) {
  try {
    return await fetch(`/${endpoint}`, { method: "POST", body: form(fields, image) });
  } catch (e) {
    throw new ApiError(null, `The service did not answer (${e.message}).`);
  }
}

async function answer(resp) {
  let body;
  try {
    body = await resp.json();
  } catch {
    throw new ApiError(null, `HTTP ${resp.status}: the answer is not the API's JSON.`);
  }
  if (typeof body.returncode !== "number") {
    throw new ApiError(null, `HTTP ${resp.status}: the answer has no returncode.`);
  }
  if (body.returncode !== 0) throw new ApiError(body.returncode, body.message);
  return body;
}

// Call ``endpoint`` as the signed-in user; the answer's fields, or an ApiError.
export async function call(endpoint, fields = {}, image = null) {
  return answer(await post(endpoint, fields, image));
}

// Call an endpoint that answers an image (GetOriginal): a Blob, or an ApiError.
export async function callForImage(endpoint, fields) {
  const resp = await post(endpoint, fields, null);
  const type = resp.headers.get("Content-Type") || "";
  if (resp.ok && type.startsWith("image/")) return resp.blob();
  return answer(resp);
}
