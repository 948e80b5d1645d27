// Chips: the bar of the index's tags (click to require a tag, click again or shift/alt-click
// to exclude it, once more to let it go), and the row of what the search holds now, each
// removable with its ×.

import { first } from "./state.js";

/** A tag's next state on a click: "" → tag → no_tag → ""; shift/alt jumps to no_tag. */
export function nextTagState(current, exclude) {
  if (exclude) return current === "no_tag" ? "" : "no_tag";
  return { "": "tag", tag: "no_tag", no_tag: "" }[current];
}

export class TagBar {
  /**
   * @param {HTMLElement} bar the whole bar (hidden while the index has no tags)
   * @param {HTMLElement} chips the chips' container
   * @param {HTMLInputElement} filter narrows the chips shown by their text
   * @param {(label: string, state: string) => void} change a chip's new state
   */
  constructor(bar, chips, filter, change) {
    this.bar = bar;
    this.chips = chips;
    this.filter = filter;
    this.change = change;
    filter.addEventListener("input", () => this.narrow());
    chips.addEventListener("click", (event) => {
      const chip = event.target.closest(".chip");
      if (!chip) return;
      const state = nextTagState(chip.dataset.state, event.shiftKey || event.altKey);
      this.change(chip.dataset.tag, state);
    });
  }

  setLabels(labels) {
    this.bar.hidden = labels.length === 0;
    this.chips.replaceChildren(
      ...labels.map((label) => {
        const chip = document.createElement("button");
        chip.type = "button";
        chip.className = "chip";
        chip.dataset.tag = label;
        chip.dataset.state = "";
        chip.textContent = label;
        return chip;
      }),
    );
    this.narrow();
  }

  /** Marks each chip with the query's use of it (aria-pressed for screen readers). */
  sync(query) {
    const required = new Set(query.tag ?? []);
    const excluded = new Set(query.no_tag ?? []);
    for (const chip of this.chips.children) {
      const label = chip.dataset.tag;
      const state = required.has(label) ? "tag" : excluded.has(label) ? "no_tag" : "";
      chip.dataset.state = state;
      chip.setAttribute("aria-pressed", state ? "true" : "false");
      chip.title = state === "no_tag" ? `excluding ${label}` : state ? `only ${label}` : `only ${label} (shift: exclude)`;
    }
  }

  narrow() {
    const words = this.filter.value.trim().toLowerCase();
    for (const chip of this.chips.children) {
      chip.hidden = Boolean(words) && !chip.dataset.tag.toLowerCase().includes(words);
    }
  }
}

const FILTER_NAMES = {
  after: "after", before: "before", camera: "camera", lens: "lens", orientation: "",
  min_score: "score ≥", format: "format", in: "in", path: "path", near: "near",
  within: "within km", min_width: "width ≥", min_height: "height ≥",
};

/**
 * The chips of what `query` (and an uploaded `image`) holds beside the words of the two
 * text fields (which show those themselves).
 * @returns {{label: string, kind: string, remove: {key: string, value?: string}, thumb?: string}[]}
 */
export function activeChips(query, image) {
  const chips = [];
  if (image) chips.push({ label: `image: ${image.name || "pasted"}`, kind: "image", remove: { key: "image" }, thumb: image.url });
  for (const id of query.like ?? []) {
    chips.push({ label: `like #${id}`, kind: "like", remove: { key: "like", value: id }, thumb: `api/images/${id}/thumbnail` });
  }
  for (const id of query.not_like ?? []) {
    chips.push({ label: `unlike #${id}`, kind: "no", remove: { key: "not_like", value: id }, thumb: `api/images/${id}/thumbnail` });
  }
  for (const tag of query.tag ?? []) chips.push({ label: tag, kind: "tag", remove: { key: "tag", value: tag } });
  for (const tag of query.no_tag ?? []) chips.push({ label: `no ${tag}`, kind: "no", remove: { key: "no_tag", value: tag } });
  for (const [key, name] of Object.entries(FILTER_NAMES)) {
    for (const value of query[key] ?? []) {
      chips.push({ label: name ? `${name} ${value}` : value, kind: "filter", remove: { key, value } });
    }
  }
  const gps = first(query, "has_gps");
  if (gps) chips.push({ label: gps === "true" ? "has GPS" : "no GPS", kind: "filter", remove: { key: "has_gps" } });
  if (first(query, "relevant") === "true") chips.push({ label: "stands out", kind: "filter", remove: { key: "relevant" } });
  return chips;
}

/** Renders `chips` into `element`; `remove(chip.remove)` on a click on one's ×. */
export function renderActive(element, chips, remove) {
  element.replaceChildren(
    ...chips.map((chip) => {
      const item = document.createElement("span");
      item.className = `active-chip ${chip.kind}`;
      if (chip.thumb) {
        const img = document.createElement("img");
        img.src = chip.thumb;
        img.alt = "";
        item.append(img);
      }
      const text = document.createElement("span");
      text.textContent = chip.label;
      const button = document.createElement("button");
      button.type = "button";
      button.className = "chip-remove";
      button.setAttribute("aria-label", `Remove ${chip.label}`);
      button.textContent = "×";
      button.addEventListener("click", () => remove(chip.remove));
      item.append(text, button);
      return item;
    }),
  );
  element.hidden = chips.length === 0;
}
