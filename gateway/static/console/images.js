// A channel's images: the paged grid (GetImages) with thumbnails (thumbnails.js), adding by
// drop or file picker (AddImage), editing metadata (SetMetadata) and removing (RemoveImage).

import { call, explain } from "./api.js";
import { identifierFor } from "./identifier.js";
import { Thumbnails } from "./thumbnails.js";

const $ = (id) => document.getElementById(id);

// Call ``take`` with the files dropped on ``zone``, which is marked while files are over it.
export function dropZone(zone, take) {
  for (const kind of ["dragenter", "dragover"]) {
    zone.addEventListener(kind, (e) => {
      e.preventDefault();
      zone.classList.add("over");
    });
  }
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    take([...e.dataTransfer.files]);
  });
}

// a file dropped beside a zone is ignored, rather than opened in place of the console
for (const kind of ["dragover", "drop"]) window.addEventListener(kind, (e) => e.preventDefault());

const PAGE = 100; // GetImages answers 100 images a page
const LEVELS = ["", "hard to find: close, sharp photos only", "found in good photos",
  "found in most photos", "found easily", "found very easily"];

export class Images {
  // ``changed`` is called after images were added or removed (the counts changed).
  constructor(changed) {
    this.changed = changed;
    this.channel = null;
    this.position = 0;
    this.total = 0;
    this.view = 0; // raised on every load: answers for an older view are dropped
    this.thumbnails = new Thumbnails();
    this.wire();
  }

  wire() {
    $("previous").addEventListener("click", () => this.load(this.position - PAGE));
    $("next").addEventListener("click", () => this.load(this.position + PAGE));
    $("add-files").addEventListener("change", (e) => {
      this.add([...e.target.files]);
      e.target.value = "";
    });
    dropZone($("drop"), (files) => this.add(files));
    $("grid").addEventListener("click", (e) => {
      const tile = e.target.closest(".tile");
      if (!tile) return;
      if (e.target.closest(".edit")) this.edit(tile.image);
      if (e.target.closest(".remove")) this.open("remove", tile.image);
    });
    for (const button of document.querySelectorAll("dialog [data-close]")) {
      button.addEventListener("click", () => button.closest("dialog").close());
    }
    $("edit-form").addEventListener("submit", (e) => this.saveMetadata(e));
    $("remove-form").addEventListener("submit", (e) => this.remove(e));
  }

  show(channel) {
    this.channel = channel;
    $("uploads").replaceChildren();
    return this.load(0);
  }

  async load(position) {
    const view = ++this.view;
    const channel = this.channel;
    $("images-error").textContent = "";
    let page;
    try {
      page = await call("GetImages", { channel, position: String(Math.max(0, position)) });
    } catch (e) {
      if (view === this.view) $("images-error").textContent = explain(e);
      return;
    }
    if (view !== this.view) return;
    if (page.images.length === 0 && position > 0 && page.totalcount > 0) {
      return this.load(Math.max(0, Math.floor((page.totalcount - 1) / PAGE) * PAGE));
    }
    this.position = Math.max(0, position);
    this.total = page.totalcount;
    this.render(page.images);
  }

  render(images) {
    this.thumbnails.reset(this.channel);
    const tiles = images.map((image) => this.tile(image));
    $("grid").replaceChildren(...tiles);
    const last = this.position + images.length;
    $("range").textContent = images.length
      ? `${this.position + 1}-${last} of ${this.total}` : "";
    $("previous").disabled = this.position === 0;
    $("next").disabled = last >= this.total;
    $("images-empty").hidden = this.total > 0;
    tiles.forEach((tile) => this.thumbnails.show(tile));
  }

  tile(image) {
    const tile = $("tile").content.firstElementChild.cloneNode(true);
    tile.image = image;
    tile.dataset.identifier = image.identifier;
    tile.querySelector(".identifier").textContent = image.identifier;
    tile.querySelector(".pips").textContent = "●".repeat(image.level) + "○".repeat(5 - image.level);
    const level = tile.querySelector(".level-text");
    const outOf = document.createElement("span");
    outOf.className = "unseen"; // the pips show it
    outOf.textContent = " of 5";
    level.replaceChildren(`Level ${image.level}`, outOf);
    tile.querySelector(".level").title = LEVELS[image.level];
    tile.querySelector(".ratio").textContent =
      `Match ratio ${(100 * image.matchratio).toFixed(1)} %`;
    tile.querySelector(".ratio").title = "Its share of the channel's matches";
    tile.querySelector(".placeholder").textContent = image.identifier.slice(0, 2);
    tile.querySelector(".edit").setAttribute("aria-label", `Edit metadata of ${image.identifier}`);
    tile.querySelector(".remove").setAttribute("aria-label", `Remove ${image.identifier}`);
    return tile;
  }

  async add(files) {
    if (!files.length || !this.channel) return;
    const channel = this.channel;
    const metadata = $("add-metadata").value.trim() || null;
    let added = 0;
    for (const file of files) {
      const identifier = identifierFor(file.name);
      const row = document.createElement("li");
      const name = document.createElement("span");
      name.className = "name";
      name.textContent = file.name === identifier ? identifier : `${file.name} → ${identifier}`;
      const outcome = document.createElement("span");
      outcome.textContent = "adding…";
      row.append(name, ": ", outcome);
      $("uploads").prepend(row);
      try {
        const answer = await call("AddImage", { channel, identifier, metadata }, file);
        row.className = "added";
        row.dataset.level = answer.level;
        outcome.textContent = `added, level ${answer.level} of 5: ${LEVELS[answer.level]}`;
        added++;
      } catch (e) {
        row.className = "refused";
        row.dataset.code = e.code ?? "";
        outcome.textContent = explain(e);
      }
    }
    const refused = files.length - added;
    document.getElementById("status").textContent =
      `Added ${added} of ${files.length} image${files.length === 1 ? "" : "s"} to ${channel}` +
      (refused ? `; ${refused} refused (see why in the list).` : ".");
    if (added && channel === this.channel) {
      await this.load(this.position);
      this.changed();
    }
  }

  // Open dialog ``name`` (edit or remove) on ``image``.
  open(name, image) {
    $(`${name}-name`).textContent = image.identifier;
    $(`${name}-error`).textContent = "";
    $(`${name}-dialog`).image = image;
    $(`${name}-dialog`).showModal();
  }

  // Run ``work`` on dialog ``name``'s image; close it and say ``done`` when it succeeds,
  // else keep it open with the code and what it means.
  async confirm(event, name, work, done) {
    event.preventDefault();
    const image = $(`${name}-dialog`).image;
    try {
      await work({ channel: this.channel, identifier: image.identifier });
    } catch (e) {
      $(`${name}-error`).textContent = explain(e);
      return;
    }
    $(`${name}-dialog`).close();
    document.getElementById("status").textContent = done(image.identifier);
    await this.load(this.position);
  }

  edit(image) {
    $("edit-metadata").value = image.metadata ?? "";
    this.open("edit", image);
  }

  saveMetadata(event) {
    const metadata = $("edit-metadata").value.trim() || null;
    return this.confirm(event, "edit", (image) => call("SetMetadata", { ...image, metadata }),
      (identifier) => `Saved the metadata of ${identifier}.`);
  }

  async remove(event) {
    await this.confirm(event, "remove", (image) => call("RemoveImage", image),
      (identifier) => `Removed ${identifier}.`);
    if (!$("remove-dialog").open) {
      $("images-title").focus();
      this.changed();
    }
  }

  clear() {
    this.view++;
    this.channel = null;
    this.render([]);
    this.thumbnails.forget();
    $("uploads").replaceChildren();
  }
}
