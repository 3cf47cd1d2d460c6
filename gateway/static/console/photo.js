// "Try a photo": FindImage on a photo, and the found target's outline drawn over it from the
// answer's corners (the target's (0,0), (w,0), (w,h), (0,h) in the photo's pixels).

import { call, explain } from "./api.js";

const $ = (id) => document.getElementById(id);
let shown = null; // the object URL of the photo on the page
let attempt = 0; // raised by each photo tried: an older photo's answer is dropped

// Search ``file`` in ``channel`` (every channel of the user when null) and show the answer;
// answers whether a target was found.
export async function tryPhoto(file, channel) {
  const mine = ++attempt;
  const result = $("try-result");
  const outline = $("outline");
  outline.removeAttribute("points");
  outline.removeAttribute("data-found");
  result.className = "result";
  result.textContent = `Searching ${channel ?? "all your channels"}…`;
  if (shown) URL.revokeObjectURL(shown);
  shown = URL.createObjectURL(file);
  const photo = $("try-photo");
  photo.src = shown;
  $("try-figure").hidden = false;
  const decoded = photo.decode().then(() => true, () => false);
  let answer;
  try {
    answer = await call("FindImage", { channel }, file);
  } catch (e) {
    if (mine !== attempt) return false;
    result.classList.add("refused");
    result.textContent = explain(e, { photo: true });
    return false;
  }
  if (mine !== attempt) return false;
  const level = answer.level ? ` The photo's level is ${answer.level} of 5.` : "";
  if (!answer.identifier) {
    result.textContent = `No target of ${channel ?? "your channels"} is in this photo.${level}`;
    return false;
  }
  result.classList.add("found");
  const metadata = answer.metadata ? ` Metadata: ${answer.metadata}` : " It has no metadata.";
  result.textContent = `Found ${answer.identifier} in ${answer.channel} ` +
    `(${answer.score} matching features).${level}${metadata}`;
  if (!(await decoded) || mine !== attempt) {
    if (mine === attempt) result.textContent += " (This browser cannot show the photo.)";
    return true;
  }
  // the photo's pixels as the service counts them: as shown, turned by its EXIF orientation
  $("try-overlay").setAttribute("viewBox", `0 0 ${photo.naturalWidth} ${photo.naturalHeight}`);
  outline.setAttribute("points", answer.corners.map(([x, y]) => `${x},${y}`).join(" "));
  outline.dataset.found = answer.identifier;
  return true;
}

export function clearPhoto() {
  attempt++;
  if (shown) URL.revokeObjectURL(shown);
  shown = null;
  $("try-photo").removeAttribute("src");
  $("try-figure").hidden = true;
  $("try-result").textContent = "";
  $("outline").removeAttribute("points");
}
