"""The search page of `searchclip serve` (issue 15), in a real headless Chromium.

A real uvicorn server runs in a thread over a real index: 120 generated scenes indexed with the
bundled shapes model and tagged with its ``shapes`` vocabulary, so that a text search, tags and
"more like this" all have right answers to check against the scenes' labels. Screenshots go to
each test's ``tmp_path`` (and to ``$SEARCHCLIP_SCREENSHOTS`` when set), for a person to look at.

Needs Playwright (the ``test`` extra) and Debian's Chromium (``apt-get install chromium``):
Playwright's own browser download is not used.
"""

from __future__ import annotations

import base64
import os
import shutil
import socket
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import parse_qs, urlsplit

import pytest

from searchclip import _scenes as scenes
from searchclip._demo import BUNDLED_MODEL
from searchclip._quality import read_labels

pytest.importorskip("fastapi", reason="the page needs the serve extra (fastapi)")
pytest.importorskip("uvicorn", reason="the page needs the serve extra (uvicorn)")
sync_api = pytest.importorskip(
    "playwright.sync_api", reason="the page tests need playwright: pip install playwright"
)

CHROMIUM = next(
    (p for p in ("/usr/bin/chromium", shutil.which("chromium")) if p and os.path.exists(p)), None
)
SEED = 777777
PAGE_SIZE = 24  # what the page asks for per request (static/app.js)
# This seed's 120 scenes hold 11 red crosses but only 2 red circles: the query with the most
# right answers is the one whose first 8 results say the most.
QUERY = "a photo of a red cross"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        CHROMIUM is None, reason="no Chromium at /usr/bin/chromium: apt-get install chromium"
    ),
    pytest.mark.skipif(
        not (BUNDLED_MODEL / "model.safetensors").is_file(),
        reason="the bundled shapes model is not in the repository",
    ),
]


# --- the server -------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _Server:
    """uvicorn serving ``app`` on 127.0.0.1 in a background thread."""

    def __init__(self, app) -> None:
        import uvicorn

        self.port = _free_port()
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.05)
        return f"http://127.0.0.1:{self.port}/"

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The indexed, tagged scenes served at ``site.url`` (and at ``site.token_url`` with a
    token); ``site.labels`` maps each path to its scene's labels."""
    from fastapi import FastAPI

    from searchclip import SearchEngine
    from searchclip.server import create_app

    root = tmp_path_factory.mktemp("page")
    labels = read_labels(scenes.write_scenes(root / "gallery", 120, SEED))
    engine = SearchEngine(root / "index", model=str(BUNDLED_MODEL))
    engine.index(root / "gallery")
    engine.tag("shapes")
    probe = scenes.write_scenes(root / "probe", 2, SEED + 1, n_objects=1)
    parent = FastAPI()  # a program of its own, with the page mounted under a prefix
    parent.mount("/photos", create_app(engine))
    with (
        _Server(create_app(engine)) as url,
        _Server(create_app(engine, token="s3cret")) as token_url,
        _Server(parent) as parent_url,
    ):
        yield SimpleNamespace(
            url=url,
            token_url=token_url,
            parent_url=parent_url,
            engine=engine,
            labels=labels,
            probe=read_labels(probe),
        )
    engine.close()


# --- the browser ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM)
        yield launched
        launched.close()


class _Recorder:
    """A page's requests, failed responses and script errors, to assert on at the end."""

    def __init__(self, page) -> None:
        self.requests: list[str] = []
        self.failures: list[str] = []
        self.errors: list[str] = []
        page.on("request", lambda r: self.requests.append(r.url))
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        page.on(
            "response",
            lambda r: r.status >= 400 and self.failures.append(f"{r.status} {r.url}"),
        )


@pytest.fixture
def open_page(browser, site):
    """``open_page(path="", **context options)``: a fresh browser context on ``path`` of the
    site; script errors fail the test unless it says it expects failed requests."""
    contexts = []

    def opener(path: str = "", *, base: str | None = None, **options):
        options.setdefault("viewport", {"width": 1280, "height": 800})
        context = browser.new_context(**options)
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(15_000)
        page.recorder = _Recorder(page)
        page.goto((base or site.url) + path)
        return page

    yield opener
    for context in contexts:
        context.close()


def shoot(page, tmp_path: Path, name: str, *, full_page: bool = True) -> Path:
    """A screenshot into the test's folder, copied to $SEARCHCLIP_SCREENSHOTS when set."""
    path = tmp_path / name
    if full_page:  # the rows below the fold too: lazy thumbnails load only when near the view
        page.evaluate(
            "document.querySelectorAll('img[loading=lazy]').forEach(i => i.loading = 'eager')"
        )
    page.wait_for_function(
        """full => [...document.images].every(img => {
            const box = img.getBoundingClientRect();
            const seen = full || (box.bottom > 0 && box.top < innerHeight && box.width > 0);
            return !img.getAttribute('src') || img.complete || !seen;
        })""",
        arg=full_page,
    )
    page.screenshot(path=str(path), full_page=full_page)
    extra = os.environ.get("SEARCHCLIP_SCREENSHOTS")
    if extra:
        Path(extra).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(extra) / name)
    return path


# --- helpers ----------------------------------------------------------------------------


def search(page, words: str, expect: int | None = PAGE_SIZE) -> None:
    page.locator("#q").fill(words)
    page.locator("#q").press("Enter")
    if expect:
        wait_tiles(page, expect)


def wait_tiles(page, count: int = 1) -> None:
    page.wait_for_function("n => document.querySelectorAll('#grid .tile').length >= n", arg=count)
    page.wait_for_function("() => document.getElementById('loading').hidden")


def tiles(page) -> list[dict]:
    return page.eval_on_selector_all(
        "#grid .tile",
        """tiles => tiles.map(t => ({id: Number(t.dataset.id), path: t.dataset.path,
            alt: t.querySelector('img').alt, lazy: t.querySelector('img').loading}))""",
    )


def params(page) -> dict[str, list[str]]:
    return parse_qs(urlsplit(page.url).query)


def detail_id(page) -> int:
    return int(page.locator("#detail").get_attribute("data-id"))


def wait_detail_loaded(page, image_id: int) -> None:
    page.wait_for_function(
        """id => { const d = document.getElementById('detail');
            return d.open && d.dataset.id == id && !d.classList.contains('busy'); }""",
        arg=image_id,
    )


def focused_id(page) -> str | None:
    """The id of the tile holding the focus."""
    return page.evaluate("document.activeElement.closest('.tile')?.dataset.id ?? null")


def columns(page) -> int:
    """How many tiles a row of the grid holds now."""
    template = page.evaluate(
        "getComputedStyle(document.getElementById('grid')).gridTemplateColumns"
    )
    return len(template.split())


def wait_first(page, image_id: int) -> None:
    """Until the grid's first tile is ``image_id``."""
    page.wait_for_function(
        "id => document.querySelector('#grid .tile')?.dataset.id == id", arg=image_id
    )


def wait_words(page, words: str) -> None:
    page.wait_for_function("w => document.getElementById('q').value === w", arg=words)


def open_filters(page) -> None:
    if not page.locator("#filters").evaluate("d => d.open"):
        page.locator("#filters summary").click()


def tag_names(site, image_id: int) -> set[str]:
    return {tag.label for tag in site.engine.image(image_id).tags}


def assert_clean(page) -> None:
    assert page.recorder.errors == [], page.recorder.errors
    assert page.recorder.failures == [], page.recorder.failures


# --- the scenarios ----------------------------------------------------------------------


def test_a_text_search_shows_what_it_asks_for_in_a_grid(open_page, site, tmp_path):
    page = open_page()
    page.wait_for_function("() => document.getElementById('index-info').textContent")
    assert page.locator("#index-info").inner_text() == "120 photos"
    assert "Search 120 photos" in page.locator("#empty").inner_text()
    shoot(page, tmp_path, "welcome.png")
    search(page, QUERY)
    shown = tiles(page)
    assert len(shown) == PAGE_SIZE
    first = shown[:8]
    assert sum("red cross" in site.labels[t["path"]] for t in first) >= 6, first
    assert all(t["alt"] == Path(t["path"]).name and t["lazy"] == "lazy" for t in shown)
    assert params(page)["q"] == [QUERY]
    assert page.locator("#status").inner_text().startswith(f"{PAGE_SIZE} results for")
    assert page.locator("#empty").is_hidden()
    # every thumbnail on screen decoded (the API's WebP, by a relative URL)
    page.wait_for_function(
        """() => [...document.querySelectorAll('#grid img')].slice(0, 8)
            .every(img => img.complete && img.naturalWidth > 0)"""
    )
    shoot(page, tmp_path, "results-grid.png")

    search(page, "a photo of a red circle")  # every red circle there is comes first
    circles = [p for p, labels in site.labels.items() if "red circle" in labels]
    assert {t["path"] for t in tiles(page)[: len(circles)]} == set(circles)
    assert_clean(page)


def test_the_not_field_and_inline_weights_pass_through(open_page, site):
    page = open_page()
    page.locator("#not").fill("red, 2:a photo of a cross")
    search(page, "3:a photo of a circle")
    assert params(page) == {"q": ["3:a photo of a circle"], "not": ["red", "2:a photo of a cross"]}
    first = [site.labels[t["path"]] for t in tiles(page)[:8]]
    assert sum("circle" in labels and "cross" not in labels for labels in first) >= 6, first
    page.reload()  # the URL brings the fields back as they were
    wait_tiles(page)
    assert page.locator("#not").input_value() == "red, 2:a photo of a cross"
    assert page.locator("#q").input_value() == "3:a photo of a circle"
    assert_clean(page)


def test_slash_focuses_the_search_box(open_page):
    page = open_page()
    page.locator("body").click()
    page.keyboard.press("/")
    assert page.evaluate("document.activeElement.id") == "q"
    assert page.locator("#q").input_value() == ""  # the "/" itself is not typed


def test_the_detail_view_opens_by_click_and_by_keyboard(open_page, site, tmp_path):
    page = open_page()
    search(page, QUERY)
    shown = tiles(page)

    page.locator("#grid .tile-open").first.click()
    wait_detail_loaded(page, shown[0]["id"])
    dialog = page.locator("#detail")
    assert dialog.locator('[data-role="path"]').inner_text() == shown[0]["path"]
    facts = dialog.locator('[data-role="facts"]').inner_text()
    assert "Dimensions" in facts and "Size" in facts and "Taken" in facts
    tags = dialog.locator('[data-role="tags"] li')
    assert tags.count() == 3  # the top 3 of the shapes vocabulary
    assert tags.first.inner_text().split("\n")[0] in tag_names(site, shown[0]["id"])
    page.wait_for_function("() => document.querySelectorAll('.strip-item').length === 12")
    page.wait_for_function(
        "() => { const i = document.querySelector('.detail-figure img');"
        " return i.complete && i.naturalWidth > 0; }"
    )
    assert (
        dialog.locator('[data-role="image"]')
        .get_attribute("src")
        .endswith(f"/api/images/{shown[0]['id']}/file")
    )
    shoot(page, tmp_path, "detail-view.png", full_page=False)
    page.keyboard.press("Escape")
    page.wait_for_function("() => !document.getElementById('detail').open")

    # by keyboard: the closed view gave the focus back to its tile; → moves, Enter opens
    assert focused_id(page) == str(shown[0]["id"])
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowLeft")
    assert focused_id(page) == str(shown[1]["id"])
    row = columns(page)
    page.keyboard.press("ArrowDown")
    assert focused_id(page) == str(shown[1 + row]["id"])
    page.keyboard.press("ArrowUp")
    page.keyboard.press("Enter")
    wait_detail_loaded(page, shown[1]["id"])
    # ← and → go through the results inside the view
    page.keyboard.press("ArrowRight")
    wait_detail_loaded(page, shown[2]["id"])
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("ArrowLeft")
    wait_detail_loaded(page, shown[0]["id"])
    assert page.locator('#detail [data-action="prev"]').is_disabled()
    # a similar photo opens in the same view
    similar = int(page.locator(".strip-item").first.get_attribute("data-id"))
    page.locator(".strip-item").first.click()
    wait_detail_loaded(page, similar)
    page.keyboard.press("Escape")
    page.wait_for_function("() => !document.getElementById('detail').open")
    assert_clean(page)


def test_more_like_this_searches_by_the_image(open_page, site):
    page = open_page()
    search(page, QUERY)
    before = [t["id"] for t in tiles(page)]
    target = before[3]
    page.locator("#grid .tile").nth(3).hover()
    page.locator("#grid .tile").nth(3).locator(".tile-like").click()
    wait_first(page, target)
    wait_tiles(page)
    assert params(page) == {"like": [str(target)]}
    after = [t["id"] for t in tiles(page)]
    assert after != before and after[0] == target  # itself first, at score 1
    assert "like #" in page.locator("#active").inner_text()
    assert page.locator("#q").input_value() == ""

    # and from the detail view of another result
    other = after[5]
    page.locator("#grid .tile-open").nth(5).click()
    wait_detail_loaded(page, other)
    page.locator('#detail [data-action="like"]').click()
    wait_first(page, other)
    assert params(page) == {"like": [str(other)]}
    assert not page.locator("#detail").evaluate("d => d.open")
    # back returns to the first "more like this"
    page.go_back()
    wait_first(page, target)
    assert_clean(page)


def _probe(site) -> tuple[Path, str]:
    """A single-object scene the index has not seen, and its colour-shape pair."""
    path, labels = next(iter(site.probe.items()))
    (pair,) = labels & set(scenes.PAIRS)
    return Path(path), pair


def test_an_uploaded_image_is_searched_by(open_page, site):
    path, pair = _probe(site)
    page = open_page()
    posts = []
    page.on("request", lambda r: r.method == "POST" and posts.append(r.headers["content-type"]))
    page.locator("#image-file").set_input_files(str(path))
    wait_tiles(page)
    assert posts and posts[0].startswith("multipart/form-data")
    first = tiles(page)[:8]
    assert sum(pair in site.labels[t["path"]] for t in first) >= 6, (pair, first)
    assert f"image: {path.name}" in page.locator("#active").inner_text()
    assert "like your image" in page.locator("#status").inner_text()
    # the next page is asked for with the same image (a multipart POST again)
    page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
    wait_tiles(page, 2 * PAGE_SIZE)
    assert len(posts) >= 2
    # removing the image chip ends the image search
    page.locator("#active .active-chip.image .chip-remove").click()
    page.wait_for_function("() => document.querySelectorAll('#grid .tile').length === 0")
    assert_clean(page)


def test_a_dropped_image_is_searched_by(open_page, site):
    path, pair = _probe(site)
    page = open_page()
    search(page, "a photo of a white star")
    before = [t["id"] for t in tiles(page)]
    data = base64.b64encode(path.read_bytes()).decode()
    page.evaluate(
        """([data, name]) => {
            const bytes = Uint8Array.from(atob(data), c => c.charCodeAt(0));
            const file = new File([bytes], name, {type: name.endsWith('.png') ? 'image/png'
                                                                             : 'image/jpeg'});
            const transfer = new DataTransfer();
            transfer.items.add(file);
            for (const type of ['dragenter', 'dragover', 'drop']) {
                document.body.dispatchEvent(new DragEvent(type, {dataTransfer: transfer,
                    bubbles: true, cancelable: true}));
            }
        }""",
        [data, path.name],
    )
    page.wait_for_function("() => document.getElementById('drop').hidden")
    page.wait_for_function(
        "() => document.getElementById('status').textContent.includes('like your image')"
    )
    wait_tiles(page)
    after = tiles(page)
    assert [t["id"] for t in after] != before
    assert sum(pair in site.labels[t["path"]] for t in after[:8]) >= 6
    assert page.locator("#q").input_value() == ""  # the image took the words' place
    assert_clean(page)


def test_a_tag_chip_filters_by_tag_and_a_second_click_excludes(open_page, site, tmp_path):
    page = open_page()
    chip = page.locator('#tag-chips .chip[data-tag="red circle"]')
    chip.click()  # a tag alone lists the images carrying it
    wait_tiles(page)
    assert params(page) == {"tag": ["red circle"]}
    assert chip.get_attribute("aria-pressed") == "true"
    listed = [t["id"] for t in tiles(page)]
    assert all("red circle" in tag_names(site, i) for i in listed)

    search(page, "a photo of a square", expect=1)
    assert params(page) == {"q": ["a photo of a square"], "tag": ["red circle"]}
    assert all("red circle" in tag_names(site, t["id"]) for t in tiles(page))
    shoot(page, tmp_path, "tag-filter.png")

    chip.click()  # the second click excludes the tag
    page.wait_for_function(
        "() => new URLSearchParams(location.search).getAll('no_tag').includes('red circle')"
    )
    wait_tiles(page)
    assert "tag" not in params(page)
    assert all("red circle" not in tag_names(site, t["id"]) for t in tiles(page))
    assert chip.get_attribute("data-state") == "no_tag"

    # shift-click excludes at once; the active chip's × removes it again
    page.locator('#tag-chips .chip[data-tag="blue star"]').click(modifiers=["Shift"])
    page.wait_for_function(
        "() => new URLSearchParams(location.search).getAll('no_tag').includes('blue star')"
    )
    wait_tiles(page)
    assert all(not {"red circle", "blue star"} & tag_names(site, t["id"]) for t in tiles(page))
    page.get_by_role("button", name="Remove no blue star").click()
    page.wait_for_function(
        "() => !new URLSearchParams(location.search).getAll('no_tag').includes('blue star')"
    )
    # the tag filter box narrows the chips
    page.locator("#tag-filter").fill("yellow")
    visible = page.locator("#tag-chips .chip:visible")
    assert visible.count() == 5
    assert_clean(page)


def test_scrolling_down_loads_the_next_pages(open_page):
    page = open_page(viewport={"width": 1280, "height": 600})  # a page of 24 fills more
    offsets = []
    page.on(
        "request",
        lambda r: "/api/search" in r.url and offsets.append(parse_qs(urlsplit(r.url).query)),
    )
    search(page, "a photo of a blue square")
    page.wait_for_timeout(300)  # nothing more is asked for while the sentinel is out of sight
    assert len(tiles(page)) == PAGE_SIZE
    assert "scroll for more" in page.locator("#status").inner_text()
    for pages in range(2, 6):
        page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
        wait_tiles(page, min(120, pages * PAGE_SIZE))
    page.wait_for_function("() => !document.getElementById('status').textContent.includes('more')")
    assert len(tiles(page)) == 120
    assert len({t["id"] for t in tiles(page)}) == 120
    assert [o.get("offset") for o in offsets] == [[str(PAGE_SIZE * i)] for i in range(5)]
    assert all(o["limit"] == [str(PAGE_SIZE)] for o in offsets)
    assert page.locator("#status").inner_text().startswith("120 results")
    assert_clean(page)


def test_a_bookmarked_url_runs_its_search_and_back_and_forward_work(open_page, site):
    page = open_page("?q=a+photo+of+a+green+triangle&orientation=landscape&sort=path&token=x")
    wait_tiles(page, 1)
    assert page.locator("#q").input_value() == "a photo of a green triangle"
    assert page.locator('[data-param="sort"]').input_value() == "path"
    assert page.locator('[data-param="orientation"]').input_value() == "landscape"
    assert page.locator("#filters").evaluate("d => d.open")  # the active filters are shown
    assert "token" not in params(page)  # a token is no search parameter: not kept in the URL
    shown = tiles(page)
    assert [t["path"] for t in shown] == sorted(t["path"] for t in shown)
    for t in shown:
        image = site.engine.image(t["id"])
        assert image.width > image.height

    search(page, "a photo of a purple cross")
    page.go_back()
    wait_words(page, "a photo of a green triangle")
    wait_tiles(page, 1)
    assert params(page)["sort"] == ["path"]
    assert [t["id"] for t in tiles(page)] == [t["id"] for t in shown]
    page.go_forward()
    wait_words(page, "a photo of a purple cross")
    wait_tiles(page, 1)
    assert_clean(page)


def test_a_bad_date_filter_shows_the_api_error_in_a_banner(open_page, tmp_path):
    page = open_page()
    search(page, QUERY)
    open_filters(page)
    after = page.locator('[data-param="after"]')
    after.fill("last tuesday")
    after.press("Enter")
    banner = page.locator("#error")
    banner.wait_for(state="visible")
    assert "'last tuesday'" in banner.inner_text()
    assert banner.get_attribute("role") == "alert"
    assert params(page)["after"] == ["last tuesday"]
    shoot(page, tmp_path, "error-banner.png")
    # the page still works: a good date runs the search again
    after.fill("2000-01")
    after.press("Enter")
    wait_tiles(page)
    assert banner.is_hidden()
    assert page.recorder.errors == [] or all("400" in e for e in page.recorder.errors)


def test_nothing_found_says_why(open_page, tmp_path):
    page = open_page("?q=a+photo+of+a+red+cross&after=2999")
    empty = page.locator("#empty")
    empty.wait_for(state="visible")
    assert "No photo matches these filters" in empty.inner_text()
    assert page.locator("#status").inner_text().startswith("No results")
    assert "after 2999" in page.locator("#active").inner_text()
    shoot(page, tmp_path, "empty-state.png")
    # the filter's chip removes it, and the search runs again
    page.get_by_role("button", name="Remove after 2999").click()
    wait_tiles(page)
    assert "after" not in params(page)
    # "only what stands out" asks for relevant=true; whatever it keeps, the page says so
    open_filters(page)
    page.locator('[data-param="relevant"]').check()
    page.wait_for_function("() => new URLSearchParams(location.search).get('relevant')")
    page.wait_for_function(
        "() => document.querySelector('#grid .tile') || !document.getElementById('empty').hidden"
    )
    assert params(page)["relevant"] == ["true"]
    assert_clean(page)


def test_the_page_makes_no_request_beyond_the_server(open_page, site):
    page = open_page()
    search(page, QUERY)
    page.locator("#grid .tile-open").first.click()
    wait_detail_loaded(page, tiles(page)[0]["id"])
    page.keyboard.press("Escape")
    requests = page.recorder.requests
    assert requests
    assert all(urlsplit(url).hostname == "127.0.0.1" for url in requests), requests
    for asset in ("app.js", "app.css", "state.js", "grid.js", "detail.js"):
        assert any(urlsplit(url).path == f"/static/{asset}" for url in requests), asset
    assert_clean(page)


def test_dark_theme_and_a_phone_screen(open_page, tmp_path):
    page = open_page(color_scheme="dark")
    search(page, QUERY)
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert sum(int(c) for c in background[4:-1].split(",")[:3]) < 3 * 60, background
    shoot(page, tmp_path, "dark-theme.png")
    page.locator("#grid .tile-open").first.click()
    wait_detail_loaded(page, tiles(page)[0]["id"])
    page.wait_for_function("() => document.querySelectorAll('.strip-item').length === 12")
    shoot(page, tmp_path, "dark-detail.png", full_page=False)

    phone = open_page(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    shoot(phone, tmp_path, "mobile-welcome.png")
    search(phone, QUERY)
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390
    assert columns(phone) == 3
    shoot(phone, tmp_path, "mobile-results.png", full_page=False)
    phone.locator("#grid .tile-open").first.click()
    wait_detail_loaded(phone, tiles(phone)[0]["id"])
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390
    shoot(phone, tmp_path, "mobile-detail.png", full_page=False)
    assert_clean(page)
    assert_clean(phone)


def test_a_token_in_the_first_url_is_enough_and_a_missing_one_is_explained(open_page, site):
    page = open_page("?token=s3cret", base=site.token_url)
    wait_detail = page.locator("#index-info")
    page.wait_for_function("() => document.getElementById('index-info').textContent")
    assert wait_detail.inner_text() == "120 photos"
    assert "token" not in params(page)
    search(page, QUERY)
    page.wait_for_function(
        "() => { const i = document.querySelector('#grid img');"
        " return i.complete && i.naturalWidth > 0; }"
    )
    page.context.clear_cookies()  # as a browser does once the session ends
    search(page, "a photo of a blue star", expect=None)
    banner = page.locator("#error")
    banner.wait_for(state="visible")
    assert "needs its access token" in banner.inner_text()
    assert "?token=" in banner.inner_text()


def test_the_page_works_mounted_under_a_prefix(open_page, site):
    page = open_page("photos", base=site.parent_url)
    page.wait_for_url("**/photos/")  # the prefix without its slash is redirected to it
    page.wait_for_function("() => document.getElementById('index-info').textContent")
    search(page, QUERY)
    page.wait_for_function(
        """() => [...document.querySelectorAll('#grid img')].slice(0, 8)
            .every(img => img.complete && img.naturalWidth > 0)"""
    )
    page.locator("#grid .tile-open").first.click()
    wait_detail_loaded(page, tiles(page)[0]["id"])
    paths = [urlsplit(url).path for url in page.recorder.requests]
    assert "/photos/static/app.js" in paths
    assert any(p.startswith("/photos/api/search") for p in paths)
    assert all(p.startswith("/photos") for p in paths), paths
    assert urlsplit(page.url).path == "/photos/"
    assert_clean(page)
