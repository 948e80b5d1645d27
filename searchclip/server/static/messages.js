// The page's words: the status line, and what the results area says when it has no
// results (nothing asked yet, or nothing found).

import { first } from "./state.js";

const FILTERS = ["after", "before", "camera", "lens", "format", "orientation", "has_gps",
  "min_score", "in", "path", "near", "min_width", "min_height", "no_tag"];

/** The search in a few words: “for “red car”, like #12, tagged dog”. */
export function describe(query, image) {
  const parts = [];
  const words = first(query, "q").trim();
  if (words) parts.push(`for “${words}”`);
  if (image) parts.push("like your image");
  if (query.like?.length) parts.push(`like #${query.like.join(", #")}`);
  if (query.tag?.length) parts.push(`tagged ${query.tag.join(" and ")}`);
  return parts.join(", ");
}

/** “24 results for “red car” · scroll for more”, with the relevance cut and files gone. */
export function statusLine(count, found, query, image) {
  if (count === 0) return `No results ${describe(query, image)}.`;
  let line = `${count.toLocaleString()} result${count === 1 ? "" : "s"} ${describe(query, image)}`;
  if (found.more) line += " · scroll for more";
  const cut = found.cutoff;
  if (cut && cut.min_score !== null) line += ` · score ≥ ${cut.min_score.toFixed(3)}`;
  if (found.missing) line += ` · ${found.missing} indexed file${found.missing === 1 ? "" : "s"} no longer found`;
  return line;
}

function element(tag, text, className) {
  const node = document.createElement(tag);
  if (text) node.textContent = text;
  if (className) node.className = className;
  return node;
}

/** What to say when a search found nothing, and what to try instead. */
export function emptyMessage(query, found) {
  const box = element("div");
  box.append(element("h2", "Nothing found"));
  const cut = found.cutoff;
  if (first(query, "relevant") === "true" && cut && !cut.stands_out) {
    box.append(element("p",
      "No photo stands out from the rest for this search, so “Only what stands out” leaves " +
      "nothing. Turn it off to see the closest photos anyway."));
  } else if (FILTERS.some((key) => query[key]?.length)) {
    box.append(element("p", "No photo matches these filters. Remove one above to widen the search."));
  } else {
    box.append(element("p", "No photo matches. Try other words, or a photo like the one you want."));
  }
  return box;
}

/** The welcome: what can be asked, before anything is. */
export function idleMessage(files, hasTags) {
  const box = element("div", "", "welcome");
  const count = files === null ? "your photos" : `${files.toLocaleString()} photo${files === 1 ? "" : "s"}`;
  box.append(element("h2", `Search ${count} by what is in them`));
  const tips = element("ul");
  const lines = [
    ["Describe a photo", " and press Enter: “a dog on a beach”. A weight goes in front: “2:sunset”."],
    ["Not", ": words to push down, comma separated: “people, night”."],
    ["Drop or paste an image", " anywhere on this page, or use Image…, to find photos like it."],
    ["Similar", " on any result finds more like it."],
  ];
  if (hasTags) lines.push(["A tag", " above lists the photos carrying it; click it again to exclude it."]);
  lines.push(["Keys", ": / search · arrows move · Enter opens · ← → next · Esc closes."]);
  for (const [strong, rest] of lines) {
    const li = element("li");
    li.append(element("strong", strong), rest);
    tips.append(li);
  }
  box.append(tips);
  return box;
}
