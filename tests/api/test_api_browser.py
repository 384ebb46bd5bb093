"""End to end in headless Chromium: a real uvicorn server on loopback, the real page.

Text query, audio upload, "more like this", thumbs up -> recommendations, generative mode
(seed spread shown, thumbs up steering the prior), the chat panel, and the catalog map with a
generated track (its badge, its score links, the origin filter). Skips, saying why,
when Playwright's Python package or the Debian ``chromium`` binary is missing (``make browser``
installs the browser where it can).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from api.app import create_app
from api.settings import Settings
from tests.api.browser import chromium_page
from tests.api.conftest import API_KEY, build_catalog, serve_in_thread, tiny_prior, wav_bytes
from tests.api.routes.test_catalog_map import store_generated_tone
from tests.api.tiny_encoder import TinyEncoder

pytestmark = pytest.mark.browser
SCREENSHOT = Path("/tmp/tunescope-map.png")
# Canvas pixels by colour: opaque amber (generated points, and where they are, in CSS pixels)
# and anything drawn at all.
PIXELS = """c => { const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let amber = 0, drawn = 0, sx = 0, sy = 0;
  for (let i = 0; i < d.length; i += 4) {
    if (d[i + 3] > 0) drawn++;
    if (d[i + 3] > 200 && Math.abs(d[i] - 217) < 20 && Math.abs(d[i + 1] - 130) < 25
        && Math.abs(d[i + 2] - 43) < 30) { amber++; sx += (i / 4) % c.width; sy += Math.floor(i / 4 / c.width); }
  }
  const k = c.getBoundingClientRect().width / c.width;
  return { amber, drawn, size: c.width * c.height, x: k * sx / amber, y: k * sy / amber }; }"""


@pytest.fixture(scope="module")
def server(catalog_home: Path) -> Iterator[str]:
    encoder = TinyEncoder()
    app = create_app(Settings(home=catalog_home, api_key=API_KEY), encoder=encoder,
                     prior=tiny_prior(encoder, mean_head=True))
    with serve_in_thread(app) as url:
        yield url


def test_page_end_to_end(server: str, tmp_path: Path) -> None:
    clip = tmp_path / "clip.wav"
    clip.write_bytes(wav_bytes(1.0, 110 * 2 ** (7 / 6)))
    with chromium_page() as (page, errors):
        page.goto(server + "/")

        # Text query.
        page.fill("#q", "a lively reel")
        page.click("#search-btn")
        page.wait_for_selector("#results li.result")
        assert page.locator("#results li.result").count() == 10
        first = page.locator("#results li.result").first
        assert first.locator("audio").get_attribute("src").startswith("/v1/tracks/")
        assert "results" in page.inner_text("#status")

        # The filter form is built from GET /v1/filters: a collection filter narrows the page.
        page.click("#filters > summary")
        page.fill("#f-collection", "bach")
        with page.expect_response(lambda r: "collection=bach" in r.url) as resp:
            page.click("#search-btn")
        found = resp.value.json()["results"]
        assert found and all(i["track"]["collection"] == "bach" for i in found)
        page.fill("#f-collection", "")
        page.click("#filters > summary")  # closed again, as the steps below expect

        # Audio upload: the clip is tune_07's tone, track 8.
        page.set_input_files("#upload", str(clip))
        # (Selectors, not wait_for_function: the page's CSP forbids the eval it needs.)
        page.wait_for_selector("#results li.result:first-child[data-id='8']")

        # More like this.
        page.locator("#results li.result").first.locator(".more-like-this").click()
        page.wait_for_selector("#results li.result[data-id='8']", state="detached")
        page.wait_for_selector("#results li.result")

        # Thumbs up feeds /v1/recommend.
        liked = page.locator("#results li.result").first.get_attribute("data-id")
        with page.expect_response(lambda r: r.url.endswith("/v1/recommend")) as resp:
            page.locator("#results li.result").first.locator(".thumb-up").click()
        assert resp.value.status == 200
        body = resp.value.json()
        assert body["query"]["positive"] == [int(liked)]
        page.wait_for_selector("#feedback:not([hidden])")
        ids = page.eval_on_selector_all("#results li.result",
                                        "els => els.map(e => e.dataset.id)")
        assert ids and liked not in ids

        # Generative mode: the prior's seed spread is shown, and a thumbs up steers the
        # prior with the liked track (/v1/search/generative?like=...) instead of /v1/recommend.
        page.click("#clear-feedback")
        page.click("#filters > summary")  # the options live in a collapsed <details>
        page.check("#f-generative")
        page.fill("#q", "a lively reel")
        with page.expect_response(lambda r: "/v1/search/generative?" in r.url) as resp:
            page.click("#search-btn")
        assert resp.value.status == 200, resp.value.text()
        page.wait_for_selector("#status:has-text('seed spread')")
        liked = page.locator("#results li.result").first.get_attribute("data-id")
        with page.expect_response(lambda r: f"like={liked}" in r.url) as resp:
            page.locator("#results li.result").first.locator(".thumb-up").click()
        assert resp.value.status == 200, resp.value.text()
        assert resp.value.json()["query"]["like"] == [int(liked)]
        assert not errors, errors


def test_chat_panel_end_to_end_and_after_a_restart(catalog_home: Path) -> None:
    """Talk in the chat panel, like, ask for more like one, remove a chip; restart; resume."""
    settings = Settings(home=catalog_home, api_key=API_KEY)
    with chromium_page() as (page, errors):
        with serve_in_thread(create_app(settings, encoder=TinyEncoder())) as url:
            page.goto(url + "/")
            page.fill("#chat-input", "a tune in a major key")
            with page.expect_response(lambda r: r.url.endswith("/v1/conversations")) as resp:
                page.click("#chat-send")
            assert resp.value.status == 201, resp.value.text()
            page.wait_for_selector("#conv-results li.conv-result")
            assert "major key" in page.inner_text("#chips")
            first = page.locator("#conv-results li.conv-result").first
            assert "major key" in first.locator(".why").inner_text()
            shown = set(page.eval_on_selector_all("#conv-results li", "els => els.map(e => e.dataset.id)"))

            # "More like this" on #2 is a critique the server reads as a reference.
            with page.expect_response(lambda r: r.url.endswith("/messages")) as resp:
                page.locator("#conv-results li.conv-result").nth(1).locator(".conv-more").click()
            assert resp.value.json()["understood"]["labels"] == ["like #2"]
            page.wait_for_selector("#chips .chip:has-text('like #2')")
            now = set(page.eval_on_selector_all("#conv-results li", "els => els.map(e => e.dataset.id)"))
            assert now and not now & shown

            # A chip's × removes the constraint; a thumbs up is a like.
            with page.expect_response(lambda r: r.url.endswith("/messages")) as resp:
                page.locator("#chips .chip:has-text('major key') .chip-x").click()
            assert resp.value.request.post_data_json["remove"] == ["include:mode:major"]
            page.wait_for_selector("#chips .chip:has-text('major key')", state="detached")
            liked = page.locator("#conv-results li.conv-result").first.get_attribute("data-id")
            with page.expect_response(lambda r: r.url.endswith("/messages")) as resp:
                page.locator("#conv-results li.conv-result").first.locator(".conv-like").click()
            assert resp.value.request.post_data_json["liked"] == [int(liked)]
            link = page.url
            assert "#c=" in link
        # A new server over the same catalog: the link resumes the conversation.
        with serve_in_thread(create_app(settings, encoder=TinyEncoder())) as url:
            page.goto(url + "/" + link[link.index("#"):])
            page.wait_for_selector("#chat[data-resumed='yes']")
            assert "a tune in a major key" in page.inner_text("#chat-log")
            page.fill("#chat-input", "faster")
            with page.expect_response(lambda r: r.url.endswith("/messages")) as resp:
                page.click("#chat-send")
            assert resp.value.status == 200, resp.value.text()
            assert resp.value.json()["understood"]["labels"] == ["faster"]
            page.wait_for_selector("#chat-log li.bot:has-text('Faster')")
        assert not errors, errors


def test_catalog_map_and_a_generated_track(tmp_path: Path) -> None:
    """The map draws every track (the generated one in amber), the query and the prior's
    samples; the origin filter finds the generated track, shown with its badge and score links."""
    build_catalog(tmp_path)
    gen_id, _ = store_generated_tone(tmp_path, 523.0)  # the backfill's own store_generated
    encoder = TinyEncoder()
    app = create_app(Settings(home=tmp_path, api_key=API_KEY), encoder=encoder,
                     prior=tiny_prior(encoder, mean_head=True))
    with chromium_page(viewport={"width": 1400, "height": 900}) as (page, errors), serve_in_thread(app) as url:
        page.goto(url + "/")

        # The map draws all 19 indexed tracks; the generated one is an amber dot.
        canvas = page.wait_for_selector("#map[data-points='19']")
        assert canvas.get_attribute("data-generated") == "1"
        px = page.eval_on_selector("#map", PIXELS)
        assert px["amber"] > 10 and px["drawn"] > 0.2 * px["size"], px
        assert "19 tracks · 1 generated" in page.inner_text("#map-info")
        # Hovering the amber dot names the track; clicking it asks for more like it.
        box = canvas.bounding_box()
        page.mouse.move(box["x"] + px["x"], box["y"] + px["y"])
        page.wait_for_selector("#map-tip:has-text('Waltz for a gap #1')")
        assert "generated" in page.inner_text("#map-tip")
        with page.expect_response(lambda r: f"/v1/tracks/{gen_id}/similar" in r.url) as sim:
            page.mouse.click(box["x"] + px["x"], box["y"] + px["y"])
        assert sim.value.status == 200
        page.wait_for_selector("#map[data-query='track']")

        # A text search places the query and the prior's 8 samples, and rings the results.
        page.fill("#q", "a lively reel")
        with page.expect_response(lambda r: "/v1/catalog/map/locate?" in r.url) as loc:
            page.click("#search-btn")
        assert loc.value.status == 200 and len(loc.value.json()["prior"]) == 8
        page.wait_for_selector("#map[data-query='text'][data-prior='8'][data-results='10']")
        assert page.inner_text("#map-note")  # what the landing says about the catalog

        # The origin filter (all / catalog / generated) reruns the search at once.
        page.click("#filters > summary")
        with page.expect_response(lambda r: "origin=generated" in r.url) as resp:
            page.click("label[for='f-origin-generated']")
        assert [i["track"]["id"] for i in resp.value.json()["results"]] == [gen_id]
        card = page.wait_for_selector(f"#results li.result[data-id='{gen_id}']")
        page.wait_for_selector("#results li.result:nth-child(2)", state="detached")
        assert card.get_attribute("data-origin") == "generated"
        assert page.is_visible(f"#results li[data-id='{gen_id}'] .badge.gen")
        assert page.get_attribute(f"#results li[data-id='{gen_id}'] .score-midi", "href") \
            == f"/v1/tracks/{gen_id}/score?format=midi"
        assert page.is_visible(f"#results li[data-id='{gen_id}'] .provenance summary")
        page.wait_for_selector("#map[data-results='1']")
        page.screenshot(path=str(SCREENSHOT), full_page=True)

        # Catalog only: no generated badge anywhere.
        with page.expect_response(lambda r: "origin=catalog" in r.url):
            page.click("label[for='f-origin-catalog']")
        page.wait_for_selector(f"#results li.result[data-id='{gen_id}']", state="detached")
        assert page.locator("#results li.result").count() == 10
        assert page.locator("#results .badge.gen:visible").count() == 0

        # "Make more like this" without a key asks for it instead of sending a write.
        sent: list[str] = []
        page.on("request", lambda r: sent.append(r.url) if "/v1/generate" in r.url else None)
        page.locator("#results li.result").first.locator(".make-more").click()
        page.wait_for_selector("#status:has-text('API key')")
        assert page.is_visible("#api-key") and page.locator("#api-key:focus").count() == 1
        assert not sent
        assert not errors, errors
