// The search page: holds the query (state.js), keeps the address bar, the form and the
// results in step with it, and wires the parts (grid, detail view, chips, uploads).

import * as api from "./api.js";
import { activeChips, renderActive, TagBar } from "./chips.js";
import { Detail } from "./detail.js";
import { Grid } from "./grid.js";
import { describe, emptyMessage, idleMessage, statusLine } from "./messages.js";
import * as S from "./state.js";
import { watchImages } from "./upload.js";

const PAGE_SIZE = 24; // hits per request: a few screens of thumbnails
const $ = (id) => document.getElementById(id);

const page = {
  query: S.fromUrl(location.search),
  image: null, // an uploaded image to search by: {file, name, url}; not in the URL
  offset: 0,
  more: false,
  loading: false,
  last: null, // the last response (for its cutoff and missing count)
  controller: null, // aborts the request in flight when a new search starts
  files: null, // the index's file count, from /api/info
  detailIndex: null, // the result shown in the detail view, when it is one
};

const grid = new Grid($("grid"), $("sentinel"), {
  open: (index) => openResult(index),
  like: (hit) => moreLike(hit.id),
  more: () => loadMore(),
});

const detail = new Detail($("detail"), {
  step: (delta) => stepDetail(delta),
  like: (id) => moreLike(id),
  pick: (hit) => pickSimilar(hit),
  closed: (id) => grid.focus(grid.indexOf(id)),
});

const tagBar = new TagBar($("tag-bar"), $("tag-chips"), $("tag-filter"), (label, state) => {
  let query = S.toggled(page.query, "tag", label, state === "tag");
  query = S.toggled(query, "no_tag", label, state === "no_tag");
  setQuery(query);
});

// --- the query and the address bar ---------------------------------------------------

/** Makes `query` the search: the URL (a new history entry unless `history` is "replace"
 * or "none"), the controls, and the results follow. */
function setQuery(query, { history = "push" } = {}) {
  page.query = query;
  if (history !== "none") writeUrl(history);
  syncControls();
  runSearch();
}

function writeUrl(mode) {
  const params = S.toParams(page.query).toString();
  const url = location.pathname + (params ? `?${params}` : "");
  if (url === location.pathname + location.search) return;
  if (mode === "replace") window.history.replaceState(null, "", url);
  else window.history.pushState(null, "", url);
}

window.addEventListener("popstate", () => {
  detail.close();
  forgetImage();
  setQuery(S.fromUrl(location.search), { history: "none" });
});

/** Shows the query in the form, the chips and the title. */
function syncControls() {
  const query = page.query;
  $("q").value = S.first(query, "q");
  $("not").value = (query.not ?? []).join(", ");
  for (const control of document.querySelectorAll("[data-param]")) {
    const value = S.first(query, control.dataset.param);
    if (control.type === "checkbox") control.checked = value === "true";
    else if (control.tagName === "SELECT") selectValue(control, value);
    else control.value = value;
  }
  const filtered = document.querySelectorAll("[data-param]");
  if ([...filtered].some((c) => (c.type === "checkbox" ? c.checked : c.value && c.value !== "score"))) {
    $("filters").open = true;
  }
  tagBar.sync(query);
  const chips = activeChips(query, page.image);
  renderActive($("active"), chips, (which) => removeChip(which));
  const words = S.first(query, "q");
  document.title = words ? `${words} · searchclip` : "searchclip";
}

/** Selects `value`, adding it as an option when the URL holds one the list lacks. */
function selectValue(select, value) {
  const wanted = value || select.options[0].value;
  if (![...select.options].some((o) => o.value === wanted)) select.add(new Option(wanted, wanted));
  select.value = wanted;
}

function removeChip({ key, value }) {
  if (key === "image") {
    forgetImage();
    setQuery(page.query, { history: "replace" });
    return;
  }
  const query = value === undefined ? S.withValue(page.query, key, []) : S.toggled(page.query, key, String(value), false);
  setQuery(query);
}

// --- searching ------------------------------------------------------------------------

function runSearch() {
  page.controller?.abort();
  page.controller = new AbortController();
  grid.clear();
  hideError();
  $("empty").hidden = true;
  page.more = false;
  page.last = null;
  if (!S.runnable(page.query, page.image)) {
    showEmpty(idleMessage(page.files, !$("tag-bar").hidden));
    setStatus("");
    return;
  }
  setStatus(`Searching ${describe(page.query, page.image)}…`);
  loadPage(0, page.controller);
}

async function loadPage(offset, controller) {
  page.loading = true;
  $("loading").hidden = offset === 0;
  try {
    const found = await api.search(page.query, {
      offset, limit: PAGE_SIZE, image: page.image?.file, signal: controller.signal,
    });
    if (controller !== page.controller) return; // a newer search replaced this one
    page.offset = offset;
    page.more = found.more;
    page.last = found;
    grid.append(found.hits);
    if (grid.hits.length === 0) showEmpty(emptyMessage(page.query, found));
    setStatus(statusLine(grid.hits.length, found, page.query, page.image));
  } catch (err) {
    if (err.name === "AbortError" || controller !== page.controller) return;
    if (!(err instanceof api.ApiError)) throw err;
    showError(err);
    setStatus(grid.hits.length ? `${grid.hits.length} shown; the next page failed.` : "");
  } finally {
    if (controller === page.controller) {
      page.loading = false;
      $("loading").hidden = true;
      if (page.more) grid.recheck(); // the page may not have filled the screen
    }
  }
}

function loadMore() {
  if (!page.more || page.loading) return Promise.resolve();
  return loadPage(page.offset + PAGE_SIZE, page.controller);
}

/** More like an indexed image: its id as the query, the filters and tags kept. */
function moreLike(id) {
  forgetImage();
  let query = S.withValue(page.query, "like", [String(id)]);
  for (const key of ["q", "not", "not_like"]) query = S.withValue(query, key, []);
  setQuery(query);
  $("results").focus({ preventScroll: true });
  window.scrollTo({ top: 0 });
}

/** An uploaded (dropped, pasted, chosen) image: searched by in place of the words. */
function searchByImage(file) {
  forgetImage();
  page.image = { file, name: file.name, url: URL.createObjectURL(file) };
  let query = S.withValue(page.query, "q", "");
  query = S.withValue(query, "like", []);
  setQuery(query);
}

function forgetImage() {
  if (page.image) URL.revokeObjectURL(page.image.url);
  page.image = null;
}

// --- the detail view ------------------------------------------------------------------

function openResult(index) {
  const hit = grid.hits[index];
  if (!hit) return;
  page.detailIndex = index;
  detail.show(hit.id, hit, { hasPrev: index > 0, hasNext: index < grid.hits.length - 1 || page.more });
}

async function stepDetail(delta) {
  if (page.detailIndex === null) return;
  const target = page.detailIndex + delta;
  if (target >= grid.hits.length && page.more) await loadMore(); // the next page first
  if (target >= 0 && target < grid.hits.length) openResult(target);
}

/** A similar photo picked in the detail view: shown there, as a result when it is one. */
function pickSimilar(hit) {
  const index = grid.indexOf(hit.id);
  if (index >= 0) return openResult(index);
  page.detailIndex = null;
  detail.show(hit.id, hit);
}

// --- status, errors, empty states -----------------------------------------------------

function setStatus(text) {
  $("status").textContent = text;
}

function showEmpty(content) {
  const box = $("empty");
  box.replaceChildren(content);
  box.hidden = false;
}

function showError(err) {
  const { title, text } = api.explain(err);
  $("error-title").textContent = title;
  $("error-text").textContent = text;
  $("error").hidden = false;
  $("error").dataset.status = err.status;
}

function hideError() {
  $("error").hidden = true;
}

// --- the controls -----------------------------------------------------------------------

$("search-form").addEventListener("submit", (event) => {
  event.preventDefault();
  let query = S.withValue(page.query, "q", $("q").value.trim());
  query = S.withValue(query, "not", S.splitNot($("not").value));
  // the same search again (Enter twice) reruns it, e.g. after the index grew
  if (S.sameQuery(query, page.query)) runSearch();
  else setQuery(query);
});

for (const control of document.querySelectorAll("[data-param]")) {
  const apply = () => {
    const value = control.type === "checkbox" ? (control.checked ? "true" : "") : control.value.trim();
    if (S.first(page.query, control.dataset.param) === value) return;
    setQuery(S.withValue(page.query, control.dataset.param, value));
  };
  control.addEventListener("change", apply);
  if (control.tagName === "INPUT") {
    control.addEventListener("keydown", (event) => event.key === "Enter" && apply());
  }
}

$("error-close").addEventListener("click", hideError);

document.addEventListener("keydown", (event) => {
  if (event.key !== "/" || event.ctrlKey || event.metaKey || event.altKey || detail.isOpen) return;
  const target = event.target;
  if (target.closest?.("input, textarea, select, [contenteditable]")) return; // typing a "/"
  event.preventDefault();
  $("q").focus();
  $("q").select();
});

watchImages({
  overlay: $("drop"),
  input: $("image-file"),
  file: (file) => searchByImage(file),
  like: (id) => moreLike(id),
  refused: (message) => showError(new api.ApiError(400, message)),
});

// --- start ------------------------------------------------------------------------------

async function start() {
  syncControls();
  writeUrl("replace"); // drops what is no search parameter (a ?token= already set its cookie)
  runSearch();
  const [info, tags] = await Promise.allSettled([api.getInfo(), api.getTags()]);
  if (info.status === "fulfilled") {
    page.files = info.value.files;
    const text = `${info.value.files.toLocaleString()} photo${info.value.files === 1 ? "" : "s"}`;
    $("index-info").textContent = text;
    $("index-info").title = `${info.value.index_dir}\nmodel: ${info.value.model}`;
  }
  if (tags.status === "fulfilled") tagBar.setLabels(tags.value.labels);
  tagBar.sync(page.query);
  const failed = [info, tags].find((r) => r.status === "rejected");
  if (failed && failed.reason instanceof api.ApiError) showError(failed.reason);
  else if (failed) throw failed.reason;
  // the welcome text names the file count and the tags, known only now
  if (!S.runnable(page.query, page.image) && !failed) runSearch();
}

start();
