"""Embedding catalog tracks: inside the ingest transaction, and the resumable `embed` job."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session, sessionmaker

from index.ingest import ingest
from index.models import Embedding, Track
from index.store import AudioStore
from index.vectors import load_embeddings
from retrieval.embedding import embed_missing, make_embedding_stage, missing_track_ids
from retrieval.encoders.default import ClapMini, DefaultEncoder
from retrieval.encoders.training import save_weights


@pytest.fixture(scope="module")
def encoder(tmp_path_factory: pytest.TempPathFactory) -> DefaultEncoder:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("enc") / "tiny.safetensors"
    save_weights(ClapMini(dim=8, width=2), path, {})
    return DefaultEncoder(path, device="cpu")


def test_ingest_embeds_in_the_same_transaction(factory: sessionmaker[Session], store: AudioStore,
                                               tiny_audio_dir: Path, encoder: DefaultEncoder) -> None:
    summary = ingest([tiny_audio_dir], factory, store, metadata=tiny_audio_dir / "metadata.jsonl",
                     min_duration_s=1.0, on_batch=make_embedding_stage(encoder, store), progress=False)
    assert summary.ingested == 5
    with factory() as s:
        ids, vecs = load_embeddings(s, encoder.id, encoder.dim)
        n_tracks = s.scalar(select(func.count()).select_from(Track))
    assert n_tracks == 5 and len(ids) == 5 and vecs.shape == (5, 8)
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    # stored vectors are exactly what the encoder gives for the stored audio
    from index.audio import decode

    with factory() as s:
        t = s.get(Track, int(ids[0]))
        wave = decode(store.path_for(t.audio_path), encoder.sample_rate)
    np.testing.assert_allclose(vecs[0], encoder.embed_audio([wave])[0], atol=1e-5)


def test_failing_embedding_stage_rolls_back_the_batch(factory: sessionmaker[Session], store: AudioStore,
                                                      tiny_audio_dir: Path) -> None:
    def boom(session: Session, tracks: list[Track]) -> None:
        raise RuntimeError("encoder exploded")

    with pytest.raises(RuntimeError, match="exploded"):
        ingest([tiny_audio_dir], factory, store, on_batch=boom, progress=False)
    with factory() as s:
        assert s.scalar(select(func.count()).select_from(Track)) == 0  # no track without its vector


def test_embed_missing_is_resumable(factory: sessionmaker[Session], store: AudioStore,
                                    tiny_audio_dir: Path, encoder: DefaultEncoder) -> None:
    ingest([tiny_audio_dir], factory, store, progress=False)
    with factory() as s:
        assert len(missing_track_ids(s, encoder.id)) == 5
    calls: list[tuple[int, int]] = []
    assert embed_missing(factory, encoder, store, batch_size=2, progress=lambda d, t: calls.append((d, t))) == 5
    assert calls[-1] == (5, 5) and len(calls) == 3
    # lose two embeddings (as if a run was killed): only those are recomputed
    with factory() as s, s.begin():
        victims = list(s.scalars(select(Embedding.id).order_by(Embedding.id).limit(2)))
        s.execute(delete(Embedding).where(Embedding.id.in_(victims)))
    assert embed_missing(factory, encoder, store) == 2
    assert embed_missing(factory, encoder, store) == 0
    with factory() as s:
        assert s.scalar(select(func.count()).select_from(Embedding)) == 5
