// The grid's thumbnails (GetOriginal with maxside): each fetched once its tile scrolls into
// view, a few at a time, and kept by the SHA-256 of its original (GetImages lists it), so a
// page drawn again shows them at once and two images of one file share one.

import { callForImage, explain } from "./api.js";

const SIDE = 240; // pixels: a tile's picture at twice its CSS size
const REQUESTS = 4; // fetched at once
const KEPT = 400; // thumbnails kept (some 15 KB each) before the oldest are let go

function place(tile, url) {
  const img = document.createElement("img");
  img.src = url;
  img.alt = ""; // the identifier beside it names the image
  tile.querySelector(".thumb").replaceChildren(img);
}

export class Thumbnails {
  constructor() {
    this.urls = new Map(); // SHA-256 of an original → object URL of its thumbnail
    this.waiting = []; // tiles in view, to fetch
    this.fetching = 0;
    this.channel = null;
    this.observer = new IntersectionObserver((entries) => this.visible(entries));
  }

  // New tiles of ``channel`` follow: the old ones' are fetched no more.
  reset(channel) {
    this.observer.disconnect();
    this.waiting = [];
    this.channel = channel;
  }

  // Picture ``tile`` (its ``image`` from GetImages): at once if kept, else once in view.
  show(tile) {
    const { sha256 } = tile.image;
    if (!sha256) {
      tile.querySelector(".thumb").title =
        "No picture: the image was added before the service kept originals.";
    } else if (this.urls.has(sha256)) {
      place(tile, this.urls.get(sha256));
    } else {
      this.observer.observe(tile);
    }
  }

  visible(entries) {
    for (const entry of entries) {
      if (!entry.isIntersecting) continue;
      this.observer.unobserve(entry.target);
      this.waiting.push(entry.target);
    }
    this.pump();
  }

  pump() {
    while (this.fetching < REQUESTS && this.waiting.length) {
      this.fetching++;
      this.fetch(this.waiting.shift()).finally(() => {
        this.fetching--;
        this.pump();
      });
    }
  }

  async fetch(tile) {
    const { sha256, identifier } = tile.image;
    const channel = this.channel;
    let blob;
    try {
      blob = await callForImage("GetOriginal", { channel, identifier, maxside: String(SIDE) });
    } catch (e) {
      tile.querySelector(".thumb").title = `No picture: ${explain(e)}`;
      return;
    }
    if (!(blob instanceof Blob)) return;
    if (!this.urls.has(sha256)) {
      this.urls.set(sha256, URL.createObjectURL(blob));
      for (const [key, url] of this.urls) {
        if (this.urls.size <= KEPT) break;
        URL.revokeObjectURL(url);
        this.urls.delete(key);
      }
    }
    if (tile.isConnected) place(tile, this.urls.get(sha256));
  }

  // Let every thumbnail go (on signing out).
  forget() {
    this.reset(null);
    for (const url of this.urls.values()) URL.revokeObjectURL(url);
    this.urls.clear();
  }
}
