"""Re-ranking with an encoder: a small band-energy encoder stands in for clap-mini, so which
candidate should win is known from the audio itself (a tone lands in its band's axis)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from generation.errors import GenerationError
from generation.generators import Candidate
from generation.generators.rerank import rerank, score_candidates
from retrieval.encoders.base import Encoder, l2_normalize

SR = 16000
BANDS = 8  # 0-8 kHz in 1 kHz bands: a tone at 1.5 kHz -> axis 1


class BandEncoder:
    """Energy per 1 kHz band of the spectrum, unit length (a real, if crude, audio embedding)."""

    id, dim, sample_rate = "bands@test", BANDS, SR

    def embed_text(self, texts: Sequence[str]) -> np.ndarray:
        raise NotImplementedError

    def embed_audio(self, waveforms: Sequence[np.ndarray]) -> np.ndarray:
        out = []
        for w in waveforms:
            power = np.abs(np.fft.rfft(w)) ** 2
            freqs = np.fft.rfftfreq(w.size, 1 / SR)
            idx = np.minimum((freqs // 1000).astype(int), BANDS - 1)
            out.append(np.sqrt(np.bincount(idx, weights=power, minlength=BANDS)))
        return l2_normalize(np.array(out))


def _tone(*bands: int, sr: int = SR, seed: int = 0) -> Candidate:
    t = np.arange(sr // 2) / sr
    audio = sum(np.sin(2 * np.pi * (b * 1000 + 500) * t) for b in bands) / len(bands)
    return Candidate(audio.astype(np.float32), sr, None, {"bands": bands}, "test", seed, "t@0")


def _axis(b: int) -> np.ndarray:
    return np.eye(BANDS, dtype=np.float32)[b]


def _mode(b: int, rng: np.random.Generator, k: int = 4) -> np.ndarray:
    return np.abs(_axis(b) + 0.05 * rng.standard_normal((k, BANDS))).astype(np.float32)


def test_the_candidate_near_the_prior_wins(rng: np.random.Generator) -> None:
    enc = BandEncoder()
    assert isinstance(enc, Encoder)
    cands = [_tone(0, seed=0), _tone(2, seed=1), _tone(5, seed=2)]
    ranked = rerank(cands, enc, _mode(2, rng), None, 0.0)
    assert ranked[0][0].seed == 1
    assert ranked[0][1] > 0.95 and ranked[1][1] < 0.2


def test_max_prefers_a_mode_mean_prefers_the_blend(rng: np.random.Generator) -> None:
    """Two-mode prior (band 1 or band 5): 'mean' picks the mixture no mode sounds like."""
    enc = BandEncoder()
    targets = np.concatenate([_mode(1, rng), _mode(5, rng)])
    cands = [_tone(1, seed=0), _tone(5, seed=1), _tone(1, 5, seed=2)]
    by_max = [c.seed for c, _ in rerank(cands, enc, targets, None, 0.0, aggregate="max")]
    by_mean = [c.seed for c, _ in rerank(cands, enc, targets, None, 0.0, aggregate="mean")]
    by_top = [c.seed for c, _ in rerank(cands, enc, targets, None, 0.0)]  # the default
    assert by_max[-1] == 2 and by_top[-1] == 2 and by_mean[0] == 2


def test_one_stray_sample_carries_max_but_not_the_default(rng: np.random.Generator) -> None:
    """Seven samples around band 1, one stray at band 6: the band-6 tone should not win."""
    enc = BandEncoder()
    targets = np.concatenate([_mode(1, rng, k=7), _axis(6)[None]])
    cands = [_tone(1, 2, seed=0), _tone(6, seed=1)]  # near the mode / exactly on the stray one
    assert rerank(cands, enc, targets, None, 0.0, aggregate="max")[0][0].seed == 1
    assert rerank(cands, enc, targets, None, 0.0)[0][0].seed == 0


def test_the_query_term_moves_the_ranking(rng: np.random.Generator) -> None:
    enc = BandEncoder()
    cands = [_tone(1, seed=0), _tone(5, seed=1)]
    targets, query = _mode(1, rng), _axis(5)
    assert rerank(cands, enc, targets, query, 0.0)[0][0].seed == 0
    assert rerank(cands, enc, targets, query, 1.0)[0][0].seed == 1
    s = score_candidates(cands, enc, targets, query, 0.25)
    np.testing.assert_allclose(s.total, 0.75 * s.target + 0.25 * s.query, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(s.embeddings, axis=1), 1.0, atol=1e-5)


def test_candidates_are_resampled_to_the_encoder_rate(rng: np.random.Generator) -> None:
    enc = BandEncoder()
    s = score_candidates([_tone(2, sr=SR), _tone(2, sr=8000)], enc, _mode(2, rng))
    np.testing.assert_allclose(s.embeddings[0], s.embeddings[1], atol=0.02)


def test_bad_inputs(rng: np.random.Generator) -> None:
    enc, cands = BandEncoder(), [_tone(1)]
    assert rerank([], enc, _mode(1, rng), None, 0.5) == []
    with pytest.raises(GenerationError, match=r"targets must have shape \[k >= 1, 8\]"):
        rerank(cands, enc, np.ones((2, 4)), None, 0.5)
    with pytest.raises(GenerationError, match="query_vec"):
        rerank(cands, enc, _mode(1, rng), np.ones(4), 0.5)
    with pytest.raises(GenerationError, match="weight"):
        rerank(cands, enc, _mode(1, rng), _axis(1), 1.5)
    with pytest.raises(GenerationError, match="aggregate"):
        rerank(cands, enc, _mode(1, rng), None, 0.5, aggregate="median")
    with pytest.raises(GenerationError, match="non-zero"):
        rerank(cands, enc, np.zeros((1, BANDS)), None, 0.5)
