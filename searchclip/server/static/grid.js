// The results grid: tiles of thumbnails, arrow-key moves between them, and the sentinel
// whose coming into view asks for the next page (infinite scroll).

const NUMBER = new Intl.NumberFormat(undefined, { minimumFractionDigits: 3, maximumFractionDigits: 3 });

export function formatScore(score) {
  return NUMBER.format(score);
}

export class Grid {
  /**
   * @param {HTMLElement} element the grid container
   * @param {HTMLElement} sentinel an element just below the grid
   * @param {{open: Function, like: Function, more: Function}} on callbacks: open(index),
   *   like(hit), more() when the sentinel nears the viewport
   */
  constructor(element, sentinel, on) {
    this.element = element;
    this.sentinel = sentinel;
    this.on = on;
    this.hits = [];
    element.addEventListener("keydown", (event) => this.onKey(event));
    // A margin so the next page is on its way before the last row is in view.
    this.observer = new IntersectionObserver(
      (entries) => entries.some((e) => e.isIntersecting) && this.on.more(),
      { rootMargin: "0px 0px 300px 0px" },
    );
    this.observer.observe(sentinel);
  }

  clear() {
    this.hits = [];
    this.element.replaceChildren();
  }

  /** Adds a page of hits; ids already shown are skipped (a page may shift while indexing). */
  append(hits) {
    const shown = new Set(this.hits.map((h) => h.id));
    const fresh = hits.filter((h) => !shown.has(h.id));
    const start = this.hits.length;
    this.hits.push(...fresh);
    this.element.append(...fresh.map((hit, i) => this.tile(hit, start + i)));
    this.recheck();
  }

  /** Observing anew reports the sentinel's state at once: if a page did not fill the
   * screen, the sentinel is still in view and the next page is asked for. */
  recheck() {
    this.observer.unobserve(this.sentinel);
    this.observer.observe(this.sentinel);
  }

  indexOf(id) {
    return this.hits.findIndex((h) => h.id === id);
  }

  focus(index) {
    const link = this.element.children[index]?.querySelector(".tile-open");
    if (!link) return;
    link.focus();
    link.scrollIntoView({ block: "nearest" });
  }

  tile(hit, index) {
    const figure = document.createElement("figure");
    figure.className = "tile";
    figure.dataset.id = hit.id;
    figure.dataset.path = hit.path;
    figure.dataset.score = hit.score;

    // A real link to the file (middle-click opens it); a plain click opens the detail view.
    const link = document.createElement("a");
    link.className = "tile-open";
    link.href = hit.file;
    link.title = hit.path;
    link.addEventListener("click", (event) => {
      if (event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey) return;
      event.preventDefault();
      this.on.open(index);
    });
    const img = document.createElement("img");
    img.src = hit.thumbnail;
    img.alt = hit.name;
    img.loading = "lazy";
    img.decoding = "async";
    img.width = 320;
    img.height = 320;
    img.addEventListener("error", () => figure.classList.add("broken"), { once: true });
    link.append(img);

    const like = document.createElement("button");
    like.type = "button";
    like.className = "tile-like";
    // markup of our own, no data in it: the icon, and a word that narrow screens hide
    like.innerHTML =
      '<svg viewBox="0 0 24 24" aria-hidden="true"><rect x="3" y="3" width="12" height="12" rx="2"/>' +
      '<path d="M9 21h10a2 2 0 0 0 2-2V9"/></svg><span>Similar</span>';
    like.setAttribute("aria-label", `More like ${hit.name}`);
    like.addEventListener("click", () => this.on.like(hit));

    const caption = document.createElement("figcaption");
    const name = document.createElement("span");
    name.className = "tile-name";
    name.textContent = hit.name;
    const score = document.createElement("span");
    score.className = "tile-score";
    score.textContent = formatScore(hit.score);
    score.title = "similarity score";
    caption.append(name, score);

    figure.append(link, like, caption);
    return figure;
  }

  /** How many tiles a row holds now (the grid's columns follow the window's width). */
  columns() {
    const template = getComputedStyle(this.element).gridTemplateColumns;
    return Math.max(1, template.split(" ").filter(Boolean).length);
  }

  onKey(event) {
    const tile = event.target.closest?.(".tile");
    if (!tile || !event.target.classList.contains("tile-open")) return;
    if (event.altKey || event.ctrlKey || event.metaKey) return;
    const index = [...this.element.children].indexOf(tile);
    const step = { ArrowLeft: -1, ArrowRight: 1, ArrowUp: -this.columns(), ArrowDown: this.columns(),
      Home: -index, End: this.hits.length - 1 - index }[event.key];
    if (step === undefined) return;
    event.preventDefault(); // the arrows would scroll the page instead
    const target = Math.min(this.hits.length - 1, Math.max(0, index + step));
    this.focus(target);
  }
}
