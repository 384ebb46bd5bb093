"""Generative backfill end to end in headless Chromium, with every real part.

The committed encoder, prior and symbolic generator; the default pipeline factory
(``api.backfill_pipeline:from_settings``) running in the server's own worker thread; a real
SQLite catalog of a few tones (nothing like bagpipes); a real melodic n-gram index of some
corpus tunes. A hole query ("bagpipe music") must answer at once with ``weak_match`` and a
queued job; the page shows the banner, the new tracks appear in the results with the
"generated" badge, playable, with their provenance, and searching again ranks a generated
track above every catalog track. How long it takes is measured by
``benchmarks/bench_generator.py``, not here (tests check correctness, not speed): the waits
below are generous bounds for a loaded CI machine.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from api.app import create_app
from api.settings import Settings
from tests.api.browser import chromium_page
from tests.api.conftest import API_KEY, ingest_embedded, serve_in_thread, tone

pytestmark = [pytest.mark.browser, pytest.mark.timeout(600)]
SCREENSHOT = Path("/tmp/tunescope-backfill.png")


def _catalog(home: Path, encoder: object) -> None:
    """Six tones, six works, ingested and embedded by ``encoder`` into ``home``'s catalog."""
    import soundfile as sf

    src = home / "src"
    src.mkdir(parents=True)
    rows = []
    for i in range(6):
        sf.write(src / f"tone{i}.wav", tone(110 * 2 ** (i / 4), 4.0, 16_000, harmonics=2 + i % 3), 16_000)
        rows.append({"path": f"tone{i}.wav", "title": f"Tone {i}", "piece_id": f"work/{i}",
                     "meter": "4/4", "mode": "major", "instruments": ["synth"]})
    (src / "metadata.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    summary = ingest_embedded(home, src, encoder)
    assert summary.ingested == 6, summary


def test_a_hole_query_is_filled_while_the_user_watches(tmp_path: Path) -> None:
    from generation.backfill.novelty import build_ngram_index
    from generation.symbolic.corpus import list_sources
    from retrieval.encoders import load_encoder

    encoder = load_encoder("default", device="cpu")
    home = tmp_path / "home"
    _catalog(home, encoder)
    settings = Settings(home=home, api_key=API_KEY, backfill_generate="api.backfill_pipeline:from_settings",
                        backfill_candidates=2, backfill_duration_s=10.0, worker_poll_s=0.2)
    build_ngram_index([s for s in list_sources() if s.family == "irish"][:20]).save(settings.novelty_index_path)

    with serve_in_thread(create_app(settings, encoder=encoder)) as url, chromium_page() as (page, errors):
        page.goto(url + "/")
        page.fill("#q", "bagpipe music")
        with page.expect_response(lambda r: "/v1/search" in r.url and "bagpipe" in r.url) as resp:
            page.click("#search-btn")
        body = resp.value.json()
        # At once: the page of (poor) catalog matches, the verdict and the queued job.
        assert body["weak_match"] is True and body["weak_match_detail"]["reason"]
        assert body["backfill"]["job_id"] and body["backfill"]["status"] in ("queued", "running")
        assert all(r["track"]["origin"] == "catalog" for r in body["results"])
        page.wait_for_selector("#backfill:not([hidden])")
        assert "generating" in page.inner_text("#backfill").lower()

        # The worker in the server generates; the page inserts each stored track.
        page.wait_for_selector("#results li.result.generated", timeout=300_000)
        # Pinned by id: the job's later keepers are prepended above it while we look (staged search).
        tid = page.locator("#results li.result.generated").first.get_attribute("data-id")
        fresh = page.locator(f"#results li.result[data-id='{tid}']")
        assert fresh.locator(".badge.gen").is_visible()
        assert fresh.locator("audio").get_attribute("src").startswith("/v1/tracks/")
        fresh.locator(".provenance summary").click()
        page.wait_for_function(f"() => document.querySelector(\"#results li.result[data-id='{tid}'] "
                               f".prov-body\")?.textContent.includes('symbolic')", timeout=30_000)
        page.wait_for_selector("#backfill[data-state='done']", timeout=300_000)
        page.screenshot(path=str(SCREENSHOT), full_page=True)

        # Searching again: a generated track now ranks above every catalog track.
        with page.expect_response(lambda r: "/v1/search" in r.url and "bagpipe" in r.url) as again:
            page.click("#search-btn")
        results = again.value.json()["results"]
        assert results[0]["track"]["origin"] == "generated", [r["track"]["origin"] for r in results]
        best_catalog = max(r["score"] for r in results if r["track"]["origin"] == "catalog")
        assert results[0]["score"] > best_catalog
        audio = page.request.get(url + results[0]["track"]["audio_url"])
        assert audio.ok and len(audio.body()) > 1000
        assert not errors, errors
