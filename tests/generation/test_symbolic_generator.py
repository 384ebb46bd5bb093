"""The symbolic generator: its model trains, conditioning matters, seeds reproduce, search works,
and the committed weights generate through the registry with the committed encoder."""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from generation.errors import GenerationError
from generation.generators import GenerationRequest, load_generator
from generation.generators.symbolic import SymbolicGenerator
from generation.generators.symbolic_model import MelodyModel, ModelConfig, sample
from generation.generators.symbolic_training import (
    DEFAULT_WEIGHTS,
    Item,
    TrainConfig,
    batch_loss,
    save_weights,
)
from generation.symbolic import tokens as T
from generation.symbolic.render import Events

TINY = ModelConfig(dim=8, layers=1, cond_dim=16, prefix=2, dropout=0.0)


class StubEncoder:
    """A deterministic stand-in encoder: audio -> its RMS-shaped unit vector, text -> a hash vector."""

    def __init__(self, id: str, dim: int = 16) -> None:
        self.id, self.dim, self.sample_rate = id, dim, 22050

    def embed_text(self, texts: list[str]) -> np.ndarray:
        rows = [np.random.default_rng(sum(map(ord, t))).normal(size=self.dim) for t in texts]
        return np.asarray([r / np.linalg.norm(r) for r in rows], np.float32)

    def embed_audio(self, waves: list[np.ndarray]) -> np.ndarray:
        out = []
        for w in waves:
            chunks = np.array_split(np.abs(w), self.dim)
            v = np.array([c.mean() for c in chunks]) + 1e-6
            out.append(v / np.linalg.norm(v))
        return np.asarray(out, np.float32)


def _melody(rng: np.random.Generator, bars: int = 4) -> Events:
    on = np.arange(bars * 4, dtype=float)
    return Events(onset=on, dur=np.ones(len(on)), pitch=rng.integers(60, 72, len(on)).astype(np.int16),
                  voice=np.zeros(len(on), np.int16),
                  strength=np.where(on % 4 == 0, 1.0, 0.5).astype(np.float32),
                  length_ql=float(len(on)), n_voices=1, bar_ql=4.0, beat_ql=1.0)


def _items(rng: np.random.Generator, n: int = 6) -> list[Item]:
    items = []
    for i in range(n):
        toks = np.asarray(T.encode(_melody(rng), "4/4", {"mode": "major", "ensemble": "harp"}), np.int64)
        c = rng.normal(size=TINY.cond_dim).astype(np.float32)
        items.append(Item(toks, c / np.linalg.norm(c), "train", f"p{i}"))
    return items


def test_the_model_trains_and_its_loss_drops(rng: np.random.Generator) -> None:
    torch.manual_seed(0)
    model = MelodyModel(TINY)
    items = _items(rng)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-2)
    first = float(batch_loss(model, items).detach())
    for _ in range(40):
        loss = batch_loss(model, items)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(batch_loss(model, items).detach()) < 0.7 * first


def test_sampling_obeys_the_grammar_forced_attributes_and_seeds() -> None:
    torch.manual_seed(0)
    model = MelodyModel(TINY)
    seqs = sample(model, None, n=3, seed=5, forced={"meter": "3/4", "mode": "minor"}, bars=4)
    for s in seqs:
        mel = T.decode(s)  # every sampled sequence decodes
        assert mel.attributes["meter"] == "3/4" and mel.attributes["mode"] == "minor"
        assert (np.mod(mel.events.onset, 3.0) < 3.0).all() and s.count(T.BAR) <= 4
    assert sample(model, None, n=3, seed=5, forced={"meter": "3/4", "mode": "minor"}, bars=4) == seqs
    assert sample(model, None, n=1, seed=6, bars=4) != sample(model, None, n=1, seed=7, bars=4)


def test_the_condition_changes_what_is_sampled(rng: np.random.Generator) -> None:
    torch.manual_seed(0)
    model = MelodyModel(TINY)
    a, b = (v / np.linalg.norm(v) for v in rng.normal(size=(2, TINY.cond_dim)).astype(np.float32))
    sa = sample(model, a, n=2, seed=3, bars=6)
    assert sa == sample(model, a, n=2, seed=3, bars=6)
    assert sa != sample(model, b, n=2, seed=3, bars=6)
    assert sa != sample(model, None, n=2, seed=3, bars=6)


@pytest.fixture
def tiny_weights(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    path = tmp_path / "symbolic.safetensors"
    save_weights(MelodyModel(TINY), path, {"config": TrainConfig(model=TINY).to_dict(),
                                            "encoder_id": "stub@1", "metrics": {}})
    return path


def test_search_returns_best_first_reproducibly_with_full_records(tiny_weights: Path) -> None:
    gen = SymbolicGenerator(tiny_weights, encoder=StubEncoder("stub@1"), search_rounds=2, pool=4, bars=4)
    targets = StubEncoder("stub@1").embed_text(["a", "b", "c"])
    req = GenerationRequest(text="a slow waltz for harp", target_embeddings=targets, duration_s=2.0,
                            n_candidates=3, seed=11)
    cands = gen.generate(req)
    assert len(cands) == 3 and gen.weights_id.startswith("symbolic@")
    scores = [c.conditioning["search"]["score"] for c in cands]
    assert scores[1:] == sorted(scores[1:], reverse=True)  # after the query's lead: best first
    for c in cands:
        assert c.audio.size == 2 * 22050 and c.generator_id == "symbolic" and c.weights_id == gen.weights_id
        assert c.conditioning["variant"] == "prior samples" and c.conditioning["ensemble"] == "harp"
        assert c.score["meter"] == "3/4" and c.conditioning["tempo_class"] == "slow"
        assert 11 <= c.seed < 11 + 8  # pool members draw seed + j
    again = gen.generate(req)
    assert [c.seed for c in again] == [c.seed for c in cands]
    np.testing.assert_array_equal(again[0].audio, cands[0].audio)


def test_the_staged_search_hands_on_its_best_so_far_then_exactly_what_generate_returns(tiny_weights: Path) -> None:
    gen = SymbolicGenerator(tiny_weights, encoder=StubEncoder("stub@1"), search_rounds=3, early_round=1,
                            pool=4, bars=4)
    req = GenerationRequest(text="a jig for fiddle", duration_s=2.0, n_candidates=2, seed=3)
    stages = list(gen.generate_staged(req))
    assert [final for _, final in stages] == [False, True]
    early, final = stages[0][0], stages[1][0]
    assert [c.conditioning["search"]["rounds"] for c in early] == [1, 1]
    assert all(3 <= c.seed < 3 + 4 for c in early)  # round 1's pool only
    assert [c.conditioning["search"]["made"] for c in final] == [12, 12]
    assert [c.seed for c in final] == [c.seed for c in gen.generate(req)]
    assert max(c.conditioning["search"]["score"] for c in final) >= max(
        c.conditioning["search"]["score"] for c in early)  # later rounds can only add better ones
    with pytest.raises(GenerationError, match="early_round"):
        SymbolicGenerator(tiny_weights, encoder=StubEncoder("stub@1"), early_round=0)


def test_the_list_leads_with_the_candidate_closest_to_the_query_and_elites_keep_it(tiny_weights: Path) -> None:
    from types import SimpleNamespace

    from generation.generators.symbolic import _elite

    enc = StubEncoder("stub@1")
    gen = SymbolicGenerator(tiny_weights, encoder=enc, search_rounds=2, early_round=None, pool=8, bars=4)
    targets = enc.embed_text(["x", "y"])
    req = GenerationRequest(text="a reel for flute", target_embeddings=targets, duration_s=2.0,
                            n_candidates=4, seed=21)
    cands = gen.generate(req)
    from generation.generators.rerank import embed_candidates

    q = embed_candidates(cands, enc) @ enc.embed_text(["a reel for flute"])[0]
    assert int(np.argmax(q)) == 0  # the closest to the query's text leads the list
    scores = [c.conditioning["search"]["score"] for c in cands[1:]]
    assert scores == sorted(scores, reverse=True)  # the rest: the combined score, best first
    batch = [SimpleNamespace(score=s, query=v) for s, v in [(0.9, 0.1), (0.8, 0.2), (0.1, 0.9), (0.2, 0.8), (0.5, 0.5)]]
    assert [m.score for m in _elite(batch, 2)] == [0.9, 0.8, 0.1, 0.2]  # best 2 by score + best 2 by query
    assert len(_elite(batch, 5)) == 5  # no candidate twice


def test_the_search_steers_away_from_what_it_must_avoid(tiny_weights: Path) -> None:
    """With the catalog to avoid, the returned candidates sit further from it than without."""
    from generation.errors import GenerationError
    from generation.generators.rerank import embed_candidates

    enc = StubEncoder("stub@1")
    gen = SymbolicGenerator(tiny_weights, encoder=enc, search_rounds=2, pool=8, bars=4)
    targets = enc.embed_text(["a", "b"])
    base = dict(text="a reel", target_embeddings=targets, duration_s=2.0, n_candidates=2, seed=3)
    free = gen.generate(GenerationRequest(**base))
    # Avoid exactly what the free search liked best: every candidate now pays for closeness.
    avoid = embed_candidates(free, enc)
    steered = gen.generate(GenerationRequest(**base, avoid_embeddings=avoid, avoid_threshold=-1.0))
    near_free = (embed_candidates(free, enc) @ avoid.T).max(1)
    near_steered = np.array([c.conditioning["nearest_avoid"] for c in steered])
    assert near_steered.mean() < near_free.mean() - 1e-6
    with pytest.raises(GenerationError, match="both or neither"):
        GenerationRequest(**base, avoid_embeddings=avoid)
    with pytest.raises(GenerationError, match="cosine"):
        GenerationRequest(**base, avoid_embeddings=avoid, avoid_threshold=2.0)


def test_the_search_prefers_candidates_whose_notes_honour_the_forced_mode(tiny_weights: Path) -> None:
    """An untrained model's melodies under a "minor" header read minor only by chance; the search
    pays for a miss, so the returned ones read minor (by key finding over their notes) more often
    than a search that does not look."""
    from generation.generators import symbolic as S
    from generation.generators.symbolic_render import score_mode

    enc = StubEncoder("stub@1")
    req = GenerationRequest(text="a tune in a minor key", target_embeddings=enc.embed_text(["x"]),
                            duration_s=1.0, n_candidates=4, seed=2)
    looking = SymbolicGenerator(tiny_weights, encoder=enc, search_rounds=2, pool=16, bars=4).generate(req)
    assert all(c.conditioning["forced"]["mode"] == "minor" for c in looking)
    assert all(c.conditioning["melody_mode"] == score_mode(c.score) for c in looking)
    search = looking[0].conditioning["search"]
    assert search["made"] == 32 and 0 < search["attribute_misses"] < 32  # both kinds were made
    hits = sum(c.conditioning["melody_mode"] == "minor" for c in looking)
    old, S.ATTRIBUTE_PENALTY = S.ATTRIBUTE_PENALTY, 0.0
    try:
        blind = SymbolicGenerator(tiny_weights, encoder=enc, search_rounds=2, pool=16, bars=4).generate(req)
    finally:
        S.ATTRIBUTE_PENALTY = old
    assert hits == 4 and hits > sum(c.conditioning["melody_mode"] == "minor" for c in blind)


def test_candidates_above_the_bar_are_returned_only_when_nothing_else_is_left(tiny_weights: Path) -> None:
    from generation.generators.rerank import embed_candidates

    enc = StubEncoder("stub@1")
    gen = SymbolicGenerator(tiny_weights, encoder=enc, search_rounds=1, pool=12, bars=4)
    base = dict(text="a reel", target_embeddings=enc.embed_text(["a"]), duration_s=2.0, n_candidates=3, seed=9)
    free = gen.generate(GenerationRequest(**base))
    avoid = embed_candidates(free, enc)[:1]
    near = [float(e @ avoid[0]) for e in embed_candidates(free, enc)]
    bar = float(np.median(near))  # the free search's best sits above it
    steered = gen.generate(GenerationRequest(**base, avoid_embeddings=avoid, avoid_threshold=bar))
    above = steered[0].conditioning["search"]["above_bar"]
    assert above >= 1
    passing = [c for c in steered if c.conditioning["nearest_avoid"] <= bar]
    assert len(passing) == min(3, 12 - above)  # every passing candidate the pool had comes first
    assert steered[: len(passing)] == passing


def test_one_round_keeps_the_seed_contract(tiny_weights: Path) -> None:
    gen = SymbolicGenerator(tiny_weights, encoder=StubEncoder("stub@1"), search_rounds=1, bars=2)
    cands = gen.generate(GenerationRequest(attributes={"meter": "6/8"}, duration_s=1.0, n_candidates=2, seed=4))
    assert sorted(c.seed for c in cands) == [4, 5]
    assert all(c.conditioning["variant"] == "attributes only" for c in cands)
    with pytest.raises(GenerationError, match="width 3"):
        gen.generate(GenerationRequest(target_embeddings=np.ones((1, 3)), duration_s=1.0, n_candidates=1))


def test_a_different_encoder_is_refused_or_ignored_with_a_warning(tiny_weights: Path,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(GenerationError, match="trained on embeddings of encoder 'stub@1'.*train-generator"):
        SymbolicGenerator(tiny_weights, encoder=StubEncoder("stub@2"))
    with caplog.at_level(logging.WARNING):
        gen = SymbolicGenerator(tiny_weights, encoder=StubEncoder("stub@2"), on_encoder_mismatch="attributes",
                                search_rounds=1, bars=2)
    assert "attributes only" in caplog.text
    req = GenerationRequest(target_embeddings=np.ones((2, 16)), duration_s=1.0, n_candidates=1)
    assert gen.generate(req)[0].conditioning["variant"] == "attributes only"


def test_missing_weights_say_how_to_make_them(tmp_path: Path) -> None:
    from generation.errors import GeneratorWeightsNotFound

    with pytest.raises(GeneratorWeightsNotFound, match="train-generator"):
        SymbolicGenerator(tmp_path / "none.safetensors")


@pytest.mark.skipif(not DEFAULT_WEIGHTS.is_file(), reason="no committed symbolic weights")
def test_committed_weights_generate_through_the_registry_with_the_committed_encoder() -> None:
    from retrieval.encoders import load_encoder

    encoder = load_encoder("default", device="cpu")
    meta = json.loads(DEFAULT_WEIGHTS.with_suffix(".json").read_text())
    assert meta["encoder_id"] == encoder.id  # the weights were trained on this encoder's space
    assert DEFAULT_WEIGHTS.stat().st_size <= 15 * 2**20 and meta["metrics"]["params"] <= 3_000_000
    gen = load_generator("symbolic", encoder=encoder, search_rounds=1)
    target = encoder.embed_text(["a lively jig on the fiddle"])
    req = GenerationRequest(text="a lively jig on the fiddle", target_embeddings=target,
                            duration_s=3.0, n_candidates=1, seed=0)
    (cand,) = gen.generate(req)
    assert cand.duration_s == pytest.approx(3.0) and np.abs(cand.audio).max() > 0.01
    assert cand.score["meter"] == "6/8" and cand.conditioning["ensemble"] == "solo fiddle"
    assert cand.weights_id == meta["weights_id"]



def test_embeddings_sent_back_keep_twins_of_a_kept_candidate_out_of_later_lists(tiny_weights: Path) -> None:
    from generation.generators.rerank import embed_candidates

    enc = StubEncoder("stub@1")
    gen = SymbolicGenerator(tiny_weights, encoder=enc, search_rounds=2, early_round=1, pool=6, bars=4)
    away = -np.ones((1, enc.dim), np.float32) / np.sqrt(enc.dim)  # nothing is near it: no penalty
    req = GenerationRequest(text="a march for brass", duration_s=2.0, n_candidates=3, seed=2,
                            avoid_embeddings=away, avoid_threshold=0.995)

    def final_seeds(send: bool) -> tuple[int, list[int]]:
        stages = gen.generate_staged(req)
        early, _ = next(stages)
        kept = embed_candidates(early[:1], enc)
        final, is_final = stages.send(list(kept) if send else None)
        assert is_final
        return early[0].seed, [c.seed for c in final]

    lead, without = final_seeds(False)
    assert lead in without  # control: the final list would hand the kept candidate on again
    lead, with_sent = final_seeds(True)
    assert lead not in with_sent and len(with_sent) == 3


def test_the_search_distribution_refits_soundfonts_and_prior_rows_with_full_support() -> None:
    from generation.generators.symbolic_search import SearchDistribution

    dist = SearchDistribution({}, 3, ("A", "B", "C"), refit_targets=True)
    first = [dist.draw(s) for s in range(60)]
    assert {p.soundfont for p in first} == {"A", "B", "C"} and {p.target for p in first} == {0, 1, 2}
    assert [dist.draw(5) for _ in range(2)] == [first[5]] * 2  # a seed gives one point
    elite = [p for p in first if p.soundfont == "B" and p.target == 2][:4]
    assert len(elite) == 4
    new = dist.refit(elite, ["harp"] * 4, ["slow"] * 4)
    assert new.soundfonts["B"] > 0.6 and 0 < new.soundfonts["A"] == new.soundfonts["C"]  # A, C may come back
    assert new.targets[2] > 0.6 and 0 < new.targets[0] == new.targets[1]
    assert new.ensembles == {"harp": 1.0} and new.tempi == {"slow": 1.0}  # only values the model used
    drawn = [new.draw(1000 + s) for s in range(200)]
    assert 0.55 < np.mean([p.soundfont == "B" for p in drawn]) < 0.9
    assert all(p.ensemble == "harp" for p in drawn)
    fixed_rows = SearchDistribution({}, 3, ("A", "B", "C")).refit(elite, ["harp"] * 4, ["slow"] * 4)
    assert fixed_rows.targets is None  # the default (measured better): rows stay uniform
    assert {fixed_rows.draw(1000 + s).target for s in range(60)} == {0, 1, 2}
    with pytest.raises(ValueError, match="soundfont"):
        SearchDistribution({}, 0, ())


def test_candidates_are_rendered_with_the_searched_soundfonts_only(tiny_weights: Path) -> None:
    from generation.symbolic.render import training_soundfonts

    enc = StubEncoder("stub@1")
    req = GenerationRequest(text="a reel for flute", duration_s=2.0, n_candidates=8, seed=2)
    one = SymbolicGenerator(tiny_weights, encoder=enc, search_rounds=1, pool=8, bars=4)
    assert one.soundfonts == ("TimGM6mb",)  # the default: searching soundfonts measured worse
    assert {c.conditioning["soundfont"] for c in one.generate(req)} == {"TimGM6mb"}
    every = SymbolicGenerator(tiny_weights, encoder=enc, search_rounds=1, pool=16, bars=4, soundfonts=None)
    assert every.soundfonts == tuple(training_soundfonts())
    used = {c.conditioning["soundfont"] for c in every.generate(replace(req, n_candidates=16))}  # all 16 made
    assert used <= set(training_soundfonts()) and (len(used) > 1 or len(training_soundfonts()) == 1)
    with pytest.raises(GenerationError, match="NoSuchFont.*not installed"):
        SymbolicGenerator(tiny_weights, encoder=enc, soundfonts=["TimGM6mb", "NoSuchFont"])
