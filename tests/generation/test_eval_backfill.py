"""eval-backfill's parts: holes and the detector's rows, KAD, the n-gram baseline, the audio
reader, the symbolic statistics, and one small end-to-end run on a real SQLite catalog."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from generation.backfill import evaluation as E
from generation.backfill.symbolic_stats import groove_consistency, pitch_class_entropy, scale_consistency

DIM = 16


def _catalog(rng: np.random.Generator, n: int = 60) -> E.Catalog:
    types = ["waltz", "reel", "jig", "hornpipe", "march", "polka"]
    rows, vecs = [], []
    centres = {t: rng.standard_normal(DIM) for t in types}
    for i in range(n):
        t = types[i % len(types)]
        v = centres[t] + 0.3 * rng.standard_normal(DIM)
        vecs.append(v / np.linalg.norm(v))
        rows.append({"id": i + 1, "piece_id": f"p{i}", "tune_type": t, "ensemble": "solo fiddle",
                     "mode": "minor" if i % 4 == 0 else "major", "meter": "3/4" if t == "waltz" else "4/4",
                     "tempo_bpm": 100.0, "instruments": ["fiddle"], "split": "test", "collection": "c"})
    return E.Catalog(np.arange(1, n + 1), np.array(vecs, np.float32), rows, [None] * n), centres


def test_detector_rows_label_holes_and_covered(rng: np.random.Generator) -> None:
    cat, centres = _catalog(rng)
    texts = {q.text: (centres.get(q.area, rng.standard_normal(DIM))) for q in E.QUERIES}
    texts = {k: (v / np.linalg.norm(v)).astype(np.float32) for k, v in texts.items()}
    samples = {k: v[None].repeat(3, 0) for k, v in texts.items()}
    rows = E.detector_rows(cat, texts, samples, holes=("waltz",))
    by = {r.query: r for r in rows}
    assert by["a waltz"].weak and not by["a reel on the fiddle"].weak
    assert "a tune on the highland pipes" not in by  # no bagpipes at all: neither hole nor covered
    # With the waltzes gone, a waltz query's prior samples find only other dances.
    assert by["a waltz"].signals["prior_nn"] < by["a reel on the fiddle"].signals["prior_nn"]
    both = E.detector_rows(cat, texts, samples, holes=("waltz", "jig"))
    figures = E.detector_auroc(both, "enc@1")
    assert figures["hole_queries"] == 5 and figures["auroc"] > 0.9


def test_kad_is_zero_in_expectation_and_grows_with_shift(rng: np.random.Generator) -> None:
    a, b = rng.standard_normal((80, 8)), rng.standard_normal((80, 8))
    assert abs(E.kad(a, b)) < 1.0
    assert E.kad(a, b + 2.0) > 10 * max(abs(E.kad(a, b)), 0.1)
    assert np.isnan(E.kad(a[:1], b))


def test_ngram_model_samples_corpus_like_steps() -> None:
    mel = [(np.array([60, 62, 64, 65, 67, 65, 64, 62, 60]), np.full(9, 0.5))]
    ev = E.NgramMelodyModel(mel).sample(16.0, seed=1)
    steps = np.abs(np.diff(ev.pitch.astype(int)))
    assert ev.onset[-1] >= 16.0 - 1e-9 and set(steps.tolist()) <= {0, 1, 2}
    assert np.allclose(np.diff(ev.onset), 0.5)


def test_symbolic_stats_match_their_definitions() -> None:
    assert pitch_class_entropy(np.array([60, 72, 60])) == 0.0
    assert pitch_class_entropy(np.arange(12)) == pytest.approx(np.log2(12))
    assert scale_consistency(np.array([60, 62, 64, 65, 67, 69, 71])) == 1.0
    assert scale_consistency(np.arange(60, 72)) == pytest.approx(7 / 12)
    same = np.concatenate([np.array([0.0, 1.0, 2.0]) + 4 * b for b in range(4)])
    assert groove_consistency(same, 4.0) == 1.0
    assert groove_consistency(np.array([0.0, 1.0, 4.0, 4.5, 5.0]), 4.0) < 1.0


def test_audio_reader_hears_mode_and_tempo() -> None:
    from retrieval.encoders import load_encoder

    enc = load_encoder("default", device="cpu")
    reader = E.AudioReader(enc, ["solo fiddle", "church organ"])
    sr = 16000
    beat = 60.0 / 150  # fast
    notes = [57, 60, 64, 57, 60, 64, 69, 64]  # A minor arpeggios
    t = np.arange(int(beat * sr)) / sr
    env = np.exp(-t * 8)
    wave = np.concatenate([env * np.sin(2 * np.pi * 440 * 2 ** ((n - 69) / 12) * t) for n in notes * 3])
    got = reader.read(wave.astype(np.float32), sr, enc.embed_audio([wave.astype(np.float32)])[0])
    assert got["mode"] == "minor" and got["tempo_class"] == "fast"
    assert got["meter"] in E.AudioReader.METER_TEXT and got["ensemble"] in ("solo fiddle", "church organ")


def test_run_eval_end_to_end_on_a_sqlite_catalog(tmp_path: Path) -> None:
    """Real encoder, prior, generator, gates and baselines on a 24-track catalog."""
    from api.wiring import load_prior
    from generation.backfill.novelty import build_ngram_index
    from generation.symbolic.corpus import list_sources
    from index.db import create_engine_for, migrate, open_catalog, session_scope
    from index.models import Track
    from index.repo.tracks import add_embedding
    from retrieval.encoders import load_encoder

    enc = load_encoder("default", device="cpu")
    url = f"sqlite:///{tmp_path / 'c.db'}"
    migrate(create_engine_for(url))
    factory = open_catalog(url)
    rng = np.random.default_rng(0)
    kinds = [("waltz", "3/4", "accordion"), ("reel", "4/4", "solo fiddle"), ("march", "2/4", "solo flute")]
    with session_scope(factory) as s:
        for i in range(24):
            tt, meter, ens = kinds[i % 3]
            wave = (0.2 * np.sin(2 * np.pi * (220 + 40 * (i % 3)) * np.arange(16000) / 16000)).astype(np.float32)
            path = tmp_path / f"{i}.wav"
            sf.write(path, wave, 16000)
            t = Track(content_hash=f"{i:064d}", title=f"t{i}", piece_id=f"p{i}", tune_type=tt, meter=meter,
                      ensemble=ens, mode="major", tempo_bpm=100.0, duration_s=1.0, sample_rate=16000,
                      audio_format="wav", source_path=str(path), audio_path=f"{i}.wav", split="test")
            s.add(t)
            s.flush()
            v = enc.embed_audio([wave])[0] + 0.05 * rng.standard_normal(enc.dim).astype(np.float32)
            add_embedding(s, t.id, enc.id, v / np.linalg.norm(v))
    ngram = build_ngram_index(list_sources()[:5], workers=1)
    cfg = E.EvalConfig(n_candidates=2, duration_s=2.0, prior_samples=2, search_rounds=1, pool=2,
                       corpus_pieces=20, holes=("waltz",), max_queries_per_hole=1)
    report = E.run_eval(url, enc, load_prior(enc.id), ngram, config=cfg)
    assert report["catalog_tracks"] == 24
    assert [q["query"] for q in report["queries"]] == ["a waltz"]
    s = report["summary"]
    assert set(s) == {"generated", "nearest track", "crossfade of two neighbours", "n-gram model",
                      "unconditional model", "random attributes"}
    assert s["nearest track"]["above_gate"] == 1.0 and s["nearest track"]["win_rate"] == 0.0
    g = report["queries"][0]["methods"]["generated"]
    # The pipeline oversamples (2 per keeper) and stops at 2 keepers.
    assert 2 <= g["made"] <= 4 and g["kept"] <= 2 and 0.0 <= g["above_gate"] <= 1.0
    assert 0.0 <= s["generated"]["attr_score"] <= 1.0
    assert report["detector"]["hole_queries"] == 3  # the detector sees every query


def test_attribute_probes_read_what_they_were_fitted_on_and_report_their_own_error() -> None:
    """Probes fitted on labelled embeddings read held-out ones; the accuracy is measured, not assumed."""
    rng = np.random.default_rng(0)
    centres = {"slow": rng.normal(size=16), "fast": rng.normal(size=16), "moderate": rng.normal(size=16)}

    def draw(n: int) -> tuple[np.ndarray, list[str]]:
        y = [list(centres)[i % 3] for i in range(n)]
        x = np.stack([centres[c] + 0.3 * rng.normal(size=16) for c in y])
        return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32), y

    x, y = draw(60)
    probes = E.AttributeProbes.fit(x, {"tempo_class": y, "mode": [""] * 60})
    assert set(probes.models) == {"tempo_class"}  # an attribute with no labels gets no probe
    xt, yt = draw(30)
    assert np.mean([probes.predict(v)["tempo_class"] == c for v, c in zip(xt, yt, strict=True)]) > 0.9

    class _Enc:  # zero-shot texts are only embedded here; the probe decides tempo
        def embed_text(self, texts: list[str]) -> np.ndarray:
            return np.eye(len(texts), 16, dtype=np.float32)

    reader = E.AudioReader(_Enc(), ["solo fiddle", "church organ"], probes)  # type: ignore[arg-type]
    bpm = {"slow": 60.0, "moderate": 100.0, "fast": 140.0}
    acc = E.reader_accuracy(reader, xt, [{"tempo_bpm": bpm[c], "meter": "3/4"} for c in yt])
    assert acc["tempo_class"]["reader"] == "probe" and acc["tempo_class"]["accuracy"] > 0.9
    assert acc["tempo_class"]["tracks"] == 30 and acc["meter"]["reader"] == "zero-shot"
    assert 0.0 <= acc["meter"]["accuracy"] <= 1.0 and "ensemble" not in acc  # no ensemble labels
