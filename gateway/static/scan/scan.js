// The WebAR page: camera frames go to FindImage one at a time, and the target found is
// outlined over the video at the corners the answer gives, its metadata shown beside it.
//
// The app key comes from the page's address (/scan#username=ak_...&secretkey=...&channel=...,
// or the same after "?") or from the form. Only app keys (usernames "ak_...") are taken: a
// user's own secret key can change and delete the catalog, and a web page gives it away.

const LONG_SIDE = 640; // px of a frame's long side: recognition searches at 320 px
const JPEG_QUALITY = 0.8;
const EVERY_MS = 300; // pause between one answer and the next request
const BACKOFF_MAX_MS = 8000; // the longest pause after 20015, 20022 or a network failure
const KEEP_MS = 1500; // an outline stays this long after the last answer that found it
const BUSY = new Set([20015, 20022]); // asking less often helps
const FINAL = new Set([20001, 20003, 20004, 20023]); // the key or channel is wrong: stop
const NOTHING_TO_SEE = 20013; // a dark or blank frame: not an error, keep looking

const $ = (id) => document.getElementById(id);
const video = $("video");
const overlay = $("overlay");
const outline = $("outline");
const form = $("key");

let session = 0; // counts starts and stops: a loop of an earlier session ends at its next turn
let target = null; // {identifier, corners (video px), at (ms)} of the last answer that found one

function addressed() {
  const given = new URLSearchParams(location.search);
  for (const [name, value] of new URLSearchParams(location.hash.slice(1))) {
    given.set(name, value);
  }
  return given;
}

function show(state, status, error = null) {
  document.body.dataset.state = state;
  $("status").textContent = status;
  $("error").hidden = error === null;
  $("error").textContent = error ?? "";
}

function problem(answer) {
  return `${answer.returncode} ${answer.message}`;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function openCamera() {
  if (!navigator.mediaDevices?.getUserMedia) {
    throw new Error("this browser gives no camera here: the page needs https (or localhost)");
  }
  const stream = await navigator.mediaDevices.getUserMedia({
    audio: false,
    // the rear camera where there is one; any camera otherwise
    video: { facingMode: { ideal: "environment" }, width: { ideal: 1280 }, height: { ideal: 720 } },
  });
  video.srcObject = stream;
  await video.play();
  overlay.setAttribute("viewBox", `0 0 ${video.videoWidth} ${video.videoHeight}`);
  video.parentElement.style.aspectRatio = `${video.videoWidth} / ${video.videoHeight}`;
}

function closeCamera() {
  for (const track of video.srcObject?.getTracks() ?? []) track.stop();
  video.srcObject = null;
}

// The current frame as a JPEG whose long side is at most LONG_SIDE px, and the factor that
// takes its pixels back to the video's.
async function frame() {
  const width = video.videoWidth;
  const height = video.videoHeight;
  const scale = Math.min(1, LONG_SIDE / Math.max(width, height));
  const canvas = document.createElement("canvas");
  canvas.width = Math.round(width * scale);
  canvas.height = Math.round(height * scale);
  canvas.getContext("2d").drawImage(video, 0, 0, canvas.width, canvas.height);
  const jpeg = await new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", JPEG_QUALITY));
  return { jpeg, back: width / canvas.width };
}

async function findImage(key, jpeg) {
  const body = new FormData();
  body.append("username", key.username);
  body.append("secretkey", key.secretkey);
  if (key.channel) body.append("channel", key.channel);
  body.append("image", jpeg, "frame.jpg");
  const response = await fetch("/FindImage", { method: "POST", body });
  const type = response.headers.get("Content-Type") ?? "";
  if (!type.startsWith("application/json")) {
    throw new Error(`HTTP ${response.status} ${response.statusText}`);
  }
  return response.json();
}

function prettyMetadata(text) {
  if (!text) return "(no metadata)";
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
}

function found(answer, back) {
  target = {
    identifier: answer.identifier,
    corners: answer.corners.map(([x, y]) => [x * back, y * back]),
    at: performance.now(),
  };
  $("identifier").textContent = answer.identifier;
  $("channel").textContent = answer.channel;
  $("score").textContent = String(answer.score);
  $("metadata").textContent = prettyMetadata(answer.metadata);
  $("found").hidden = false;
  show("found", `Found ${answer.identifier}.`);
}

// One FindImage and what it says; the pause before the next, or null to stop.
async function step(key, backoff, mine) {
  const { jpeg, back } = await frame();
  let answer;
  try {
    answer = await findImage(key, jpeg);
  } catch (error) {
    if (session !== mine) return null;
    show("error", "Retrying…", `FindImage failed: ${error.message}`);
    return Math.min(BACKOFF_MAX_MS, backoff * 2);
  }
  if (session !== mine) return null; // stopped while it was asked
  if (answer.returncode === 0 && answer.identifier) {
    found(answer, back);
  } else if (answer.returncode === 0 || answer.returncode === NOTHING_TO_SEE) {
    if (!target) show("looking", "Looking for a target…");
  } else if (BUSY.has(answer.returncode)) {
    show("busy", "The service is busy: asking less often.", problem(answer));
    return Math.min(BACKOFF_MAX_MS, backoff * 2);
  } else if (FINAL.has(answer.returncode)) {
    show("stopped", "Stopped.", problem(answer));
    return null;
  } else {
    show("error", "Looking for a target…", problem(answer));
  }
  return EVERY_MS;
}

// Requests one after another, never two at once; backing off doubles the pause each time.
async function scan(key, mine) {
  let pause = EVERY_MS;
  while (session === mine) {
    const next = await step(key, pause, mine);
    if (next === null) break;
    pause = next;
    await sleep(pause);
  }
  if (session === mine) stop();
}

function draw(mine) {
  const fresh = target && performance.now() - target.at < KEEP_MS;
  if (fresh) {
    const points = target.corners.map(([x, y]) => `${x.toFixed(1)},${y.toFixed(1)}`);
    outline.setAttribute("points", points.join(" "));
  } else if (target) {
    target = null;
    outline.setAttribute("points", "");
    $("found").hidden = true;
    if (document.body.dataset.state === "found") show("looking", "Looking for a target…");
  }
  if (session === mine) requestAnimationFrame(() => draw(mine));
}

async function start(key) {
  if (!key.username.startsWith("ak_")) {
    show("stopped", "Not started.", "Use an app key (its username starts with ak_): cloudreco "
      + "key create USER --find-only. A user's own secret key must not be put in a web page.");
    return;
  }
  form.hidden = true;
  show("starting", "Opening the camera…");
  try {
    await openCamera();
  } catch (error) {
    form.hidden = false;
    const why = error.name === "NotAllowedError" ? "permission refused" : error.message;
    show("stopped", "Not started.", `Camera: ${why}`);
    return;
  }
  const mine = ++session;
  $("stop").hidden = false;
  show("looking", "Looking for a target…");
  draw(mine);
  scan(key, mine);
}

function stop() {
  session += 1;
  target = null;
  outline.setAttribute("points", "");
  $("found").hidden = true;
  closeCamera();
  $("stop").hidden = true;
  form.hidden = false;
  if (document.body.dataset.state !== "stopped") show("stopped", "Stopped.");
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  const fields = new FormData(form);
  start({
    username: fields.get("username").trim(),
    secretkey: fields.get("secretkey"),
    channel: fields.get("channel").trim(),
  });
});
$("stop").addEventListener("click", stop);

const given = addressed();
for (const name of ["username", "secretkey", "channel"]) {
  if (given.has(name)) form.elements[name].value = given.get(name);
}
if (given.get("username") && given.get("secretkey")) form.requestSubmit();
