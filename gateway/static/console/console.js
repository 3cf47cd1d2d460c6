// The console: sign in and out, the channels (GetChannels), and the selected channel's
// images (images.js), photo search (photo.js) and daily matches (Statistics, chart.js).

import { call, explain, session } from "./api.js";
import { dailyTotals, dayLabel, drawChart, lastDays } from "./chart.js";
import { dropZone, Images } from "./images.js";
import { clearPhoto, tryPhoto } from "./photo.js";

const $ = (id) => document.getElementById(id);
const MAX_STATISTICS_PAGES = 20; // 200,000 records: far past any chart worth drawing

const images = new Images(() => listChannels().catch((e) => {
  $("channels-error").textContent = explain(e);
}));
let channel = null;
let chartView = 0; // raised by each chart drawn: an older one's answer is dropped

function status(text) {
  $("status").textContent = text;
}

async function signIn(username, secretkey) {
  session.set(username, secretkey);
  try {
    await listChannels();
  } catch (e) {
    session.clear();
    throw e;
  }
  $("sign-in-view").hidden = true;
  $("workspace").hidden = false;
  $("who").hidden = false;
  $("who-name").textContent = username;
  let wanted = null;
  try {
    wanted = decodeURIComponent(location.hash.slice(1));
  } catch {
    // a hash not written by the console: open the first channel
  }
  const names = [...$("channels").querySelectorAll("button")].map((b) => b.dataset.channel);
  if (names.includes(wanted)) await select(wanted);
  else if (names.length) await select(names[0]);
  else $("channels-error").textContent = "You have no channels yet: an operator creates " +
    "them with `cloudreco channel create`.";
}

function signOut() {
  session.clear();
  channel = null;
  images.clear();
  clearPhoto();
  $("channels").replaceChildren();
  $("workspace").hidden = true;
  $("channel-view").hidden = true;
  $("who").hidden = true;
  $("sign-in-view").hidden = false;
  $("secretkey").value = "";
  $("username").focus();
  status("Signed out.");
}

// The channels, each with its image count; raises an ApiError when the service refuses.
async function listChannels() {
  const answer = await call("GetChannels");
  const items = answer.channels.map((c) => {
    const item = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.dataset.channel = c.channel;
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = c.channel;
    const count = document.createElement("span");
    count.className = "count";
    count.textContent = `${c.imagecount} image${c.imagecount === 1 ? "" : "s"} of ${c.maximages}`;
    button.append(name, count);
    if (c.channel === channel) button.setAttribute("aria-current", "page");
    button.addEventListener("click", () => select(c.channel));
    item.append(button);
    return item;
  });
  $("channels").replaceChildren(...items);
  $("channels-error").textContent = "";
}

async function select(name) {
  channel = name;
  history.replaceState(null, "", `#${encodeURIComponent(name)}`);
  for (const button of $("channels").querySelectorAll("button")) {
    if (button.dataset.channel === name) button.setAttribute("aria-current", "page");
    else button.removeAttribute("aria-current");
  }
  for (const span of document.querySelectorAll(".channel-name")) span.textContent = name;
  $("channel-view").hidden = false;
  clearPhoto();
  await Promise.all([images.show(name), drawMatches()]);
}

async function drawMatches() {
  const view = ++chartView;
  const days = lastDays(Number($("chart-days").value));
  const records = [];
  $("chart-error").textContent = "";
  try {
    for (let page = 0, position = 0; page < MAX_STATISTICS_PAGES; page++) {
      const answer = await call("Statistics", {
        channel, startdate: days[0], enddate: days.at(-1), position: String(position),
      });
      records.push(...answer.records);
      if (!answer.truncated) break;
      position += answer.records.length;
    }
  } catch (e) {
    if (view === chartView) $("chart-error").textContent = explain(e);
    return;
  }
  if (view !== chartView) return;
  const totals = dailyTotals(records, days);
  $("chart-summary").textContent = drawChart($("chart"), totals);
  $("chart-table").replaceChildren(...totals.filter((t) => t.count).map((t) => {
    const row = document.createElement("tr");
    for (const text of [dayLabel(t.date), String(t.count)]) {
      const cell = document.createElement("td");
      cell.textContent = text;
      row.append(cell);
    }
    return row;
  }));
}

$("sign-in").addEventListener("submit", async (event) => {
  event.preventDefault();
  const error = $("sign-in-error");
  error.textContent = "";
  try {
    await signIn($("username").value.trim(), $("secretkey").value);
    status("");
  } catch (e) {
    error.textContent = explain(e);
  }
});
$("sign-out").addEventListener("click", signOut);
$("chart-days").addEventListener("change", drawMatches);
async function search(file) {
  if (!file) return;
  const found = await tryPhoto(file, $("try-everywhere").checked ? null : channel);
  if (found) await Promise.all([drawMatches(), images.load(images.position)]);
}

$("try-file").addEventListener("change", (event) => {
  search(event.target.files[0]);
  event.target.value = ""; // so that the same photo chosen again is searched again
});
dropZone($("try-drop"), (files) => search(files[0]));

const saved = session.get();
if (saved) {
  signIn(saved.username, saved.secretkey).catch((e) => {
    session.clear();
    $("sign-in-error").textContent = explain(e);
  });
} else {
  $("username").focus();
}
