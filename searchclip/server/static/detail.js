// The detail view: a modal <dialog> with the full image, its facts and tags, and a strip of
// similar photos. <dialog> gives the focus trap and Esc-to-close for free.

import { ApiError, getImage, getSimilar } from "./api.js";
import { formatScore } from "./grid.js";

const SOURCES = { exif: "EXIF", mtime: "file time" };

export class Detail {
  /**
   * @param {HTMLDialogElement} dialog
   * @param {{step: Function, like: Function, pick: Function, closed: Function}} on
   *   step(+1/-1) moves through the results, like(id) searches for more like the image,
   *   pick(hit) when a similar photo is clicked, closed(id) after closing
   */
  constructor(dialog, on) {
    this.dialog = dialog;
    this.on = on;
    this.id = null;
    this.part = (role) => dialog.querySelector(`[data-role="${role}"]`);
    dialog.addEventListener("click", (event) => this.onClick(event));
    dialog.addEventListener("keydown", (event) => this.onKey(event));
    // closed by the browser itself (a close watcher: Android's back): tell the page too
    dialog.addEventListener("close", () => {
      if (!this.closedHere) this.on.closed(this.id);
      this.closedHere = false;
    });
    this.part("image").addEventListener("error", (event) => this.fallBack(event.target));
    // the thumbnail behind the loading file goes once it is there (or a PNG's transparent
    // parts would show it)
    this.part("image").addEventListener("load", (event) => {
      event.target.style.backgroundImage = "";
    });
  }

  get isOpen() {
    return this.dialog.open;
  }

  /** Shows image `id`; `hit` (a search result, when known) fills the view at once. */
  async show(id, hit = null, { hasPrev = false, hasNext = false } = {}) {
    this.id = id;
    this.ticket = (this.ticket ?? 0) + 1;
    const ticket = this.ticket;
    this.dialog.querySelector('[data-action="prev"]').disabled = !hasPrev;
    this.dialog.querySelector('[data-action="next"]').disabled = !hasNext;
    this.dialog.dataset.id = id;
    this.dialog.classList.add("busy");
    if (hit) this.fill({ ...hit, tags: null });
    this.part("similar").replaceChildren(item("Finding similar photos…", "muted", "p"));
    if (!this.dialog.open) this.dialog.showModal();
    try {
      const [image, similar] = await Promise.all([getImage(id), getSimilar(id, 12)]);
      if (ticket !== this.ticket) return; // another image was asked for meanwhile
      this.fill(image);
      this.fillSimilar(similar.hits);
    } catch (err) {
      if (ticket !== this.ticket || !(err instanceof ApiError)) throw err;
      // the view stays open (arrows still move on); it says why this one is missing
      this.part("path").textContent = `This image cannot be shown: ${err.message}`;
      this.part("similar").replaceChildren();
    } finally {
      if (ticket === this.ticket) this.dialog.classList.remove("busy");
    }
  }

  /** Closes the view and, at once, lets the page move the focus (to the last result shown):
   * done on the close event instead, it could land after the next keys were pressed. */
  close() {
    if (!this.dialog.open) return;
    this.closedHere = true; // the close event, which comes later, has nothing left to do
    this.dialog.close();
    this.on.closed(this.id);
  }

  fill(image) {
    this.dialog.querySelector("#detail-name").textContent = image.name;
    const img = this.part("image");
    img.dataset.fallback = image.thumbnail;
    if (img.getAttribute("src") !== image.file) {
      // the thumbnail (likely cached) shows until the full file has loaded
      img.style.backgroundImage = `url("${image.thumbnail}")`;
      img.src = image.file;
    }
    img.alt = image.name;
    img.width = image.width;
    img.height = image.height;
    this.part("open").href = image.file;
    this.part("path").textContent = image.path;
    this.part("facts").replaceChildren(...facts(image));
    if (image.tags) this.fillTags(image.tags);
    else this.part("tags").replaceChildren(item("…", "muted"));
  }

  /** A browser that cannot decode the file (HEIC in most) still shows the thumbnail. */
  fallBack(img) {
    if (img.dataset.fallback && img.getAttribute("src") !== img.dataset.fallback) {
      img.src = img.dataset.fallback;
    }
  }

  fillTags(tags) {
    const list = this.part("tags");
    if (!tags.length) {
      list.replaceChildren(item("none", "muted"));
      return;
    }
    list.replaceChildren(
      ...tags.map((tag) => {
        const li = document.createElement("li");
        const label = document.createElement("span");
        label.textContent = tag.label;
        label.title = `vocabulary: ${tag.vocabulary}`;
        const bar = document.createElement("span");
        bar.className = "bar";
        bar.style.setProperty("--value", Math.max(0, Math.min(1, tag.score)));
        const score = document.createElement("span");
        score.className = "num";
        score.textContent = formatScore(tag.score);
        li.append(label, bar, score);
        return li;
      }),
    );
  }

  fillSimilar(hits) {
    const strip = this.part("similar");
    if (!hits.length) {
      strip.replaceChildren(item("No similar photos.", "muted", "p"));
      return;
    }
    strip.replaceChildren(
      ...hits.map((hit) => {
        const button = document.createElement("button");
        button.type = "button";
        button.className = "strip-item";
        button.dataset.id = hit.id;
        button.title = `${hit.name} (${formatScore(hit.score)})`;
        const img = document.createElement("img");
        img.src = hit.thumbnail;
        img.alt = hit.name;
        img.loading = "lazy";
        button.append(img);
        button.addEventListener("click", () => this.on.pick(hit));
        return button;
      }),
    );
  }

  onClick(event) {
    // a click on the backdrop (the dialog itself, outside its content) closes it
    if (event.target === this.dialog) return this.close();
    const action = event.target.closest("[data-action]")?.dataset.action;
    if (action === "close") this.close();
    if (action === "prev") this.on.step(-1);
    if (action === "next") this.on.step(1);
    if (action === "like") {
      const id = this.id;
      this.close();
      this.on.like(id);
    }
  }

  onKey(event) {
    if (event.altKey || event.ctrlKey || event.metaKey) return;
    if (event.key === "Escape") {
      event.preventDefault(); // our close, not the dialog's own (see close())
      this.close();
      return;
    }
    if (event.key === "ArrowLeft" || event.key === "ArrowRight") {
      // in the similar strip the arrows stay with the strip's own scrolling
      if (event.target.closest?.(".strip")) return;
      event.preventDefault();
      this.on.step(event.key === "ArrowLeft" ? -1 : 1);
    }
  }
}

function item(text, className, tag = "li") {
  const element = document.createElement(tag);
  element.className = className;
  element.textContent = text;
  return element;
}

/** The <dt>/<dd> pairs for what is known of an image; unknown facts are left out. */
function facts(image) {
  const meta = image.metadata ?? {};
  const rows = [
    ["Size", formatBytes(image.size)],
    ["Dimensions", `${image.width} × ${image.height}`],
    ["Format", meta.format],
    ["Taken", formatTaken(meta)],
    ["Camera", [meta.camera_make, meta.camera_model].filter(Boolean).join(" ")],
    ["Lens", meta.lens],
    ["GPS", formatGps(meta)],
    ["Id", String(image.id)],
  ];
  return rows
    .filter(([, value]) => value)
    .flatMap(([name, value]) => {
      const dt = document.createElement("dt");
      dt.textContent = name;
      const dd = document.createElement("dd");
      dd.textContent = value;
      return [dt, dd];
    });
}

function formatBytes(size) {
  if (size < 1024) return `${size} B`;
  const units = ["KB", "MB", "GB"];
  let value = size / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

/** The time as the camera wrote it (no conversion to this browser's zone: a photo's local
 * time is what its owner remembers), with its UTC offset when known. */
function formatTaken(meta) {
  if (!meta.taken_at) return "";
  const match = /^(\d{4}-\d\d-\d\d)T(\d\d:\d\d)(?::\d\d(?:\.\d+)?)?(Z|[+-]\d\d:\d\d)?$/.exec(meta.taken_at);
  if (!match) return meta.taken_at;
  const offset = match[3] === "Z" ? " UTC" : match[3] ? ` ${match[3]}` : "";
  const source = SOURCES[meta.taken_at_source] ?? meta.taken_at_source;
  return `${match[1]} ${match[2]}${offset}${source ? ` (${source})` : ""}`;
}

function formatGps(meta) {
  if (meta.latitude == null || meta.longitude == null) return "";
  const lat = `${Math.abs(meta.latitude).toFixed(5)}° ${meta.latitude >= 0 ? "N" : "S"}`;
  const lon = `${Math.abs(meta.longitude).toFixed(5)}° ${meta.longitude >= 0 ? "E" : "W"}`;
  return `${lat}, ${lon}`;
}
