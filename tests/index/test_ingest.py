"""Ingestion into a real catalog (SQLite and PostgreSQL): formats, duplicates, quarantine,
metadata matching, the on_batch hook and run bookkeeping."""

from __future__ import annotations

import csv
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import func, select

from index.db import session_scope
from index.errors import CatalogError
from index.ingest import ingest
from index.models import IngestRun, Quarantine, Track
from tests.index.test_audio import make_zoo


def _tracks(factory) -> list[Track]:
    with session_scope(factory) as session:
        return list(session.scalars(select(Track).order_by(Track.id)))


def test_ingest_folder_with_metadata(factory, store, tiny_audio_dir: Path) -> None:
    summary = ingest([tiny_audio_dir], factory, store, metadata=tiny_audio_dir / "metadata.jsonl",
                     progress=False, batch_size=2)
    assert (summary.ingested, summary.duplicates, summary.quarantined) == (5, 0, [])
    assert summary.skipped == 2  # README.txt and metadata.jsonl
    tracks = {Path(t.source_path).name: t for t in _tracks(factory)}
    assert set(tracks) == {"a440.wav", "cmajor.flac", "e330.ogg", "gminor.mp3", "d294.opus"}
    a = tracks["a440.wav"]
    assert a.title == "Tone a440.wav" and a.collection == "Test Tones" and a.piece_id == "test/0"
    assert a.instruments == ["fiddle", "flute"] and a.tags == ["test", "tone"]
    assert a.tempo_bpm == 116.0 and a.split == "train" and a.origin == "catalog"
    assert a.extra["soundfont"] == "TimGM6mb" and a.extra["captions"] == ["a test tone 0"]
    assert "composer" in a.extra and "title" not in a.extra and "path" not in a.extra
    assert tracks["cmajor.flac"].piece_id == "test/1"  # matched by bare file name
    assert tracks["cmajor.flac"].channels == 2 and tracks["cmajor.flac"].audio_format == "flac"
    opus = tracks["d294.opus"]  # no metadata row: defaults
    assert opus.title == "d294" and opus.audio_format == "ogg" and opus.extra == {}
    for t in tracks.values():
        assert store.exists(t.audio_path)
        assert t.audio_path.endswith(f"{t.content_hash}.{t.audio_format}")
        assert t.loudness_db is not None and t.loudness_db < 0
        assert t.ingest_run_id == summary.run_id
    with session_scope(factory) as session:
        run = session.get(IngestRun, summary.run_id)
        assert (run.status, run.n_seen, run.n_ingested, run.pid) == ("done", 5, 5, os.getpid())


def test_duplicates_within_and_across_runs(factory, store, tiny_audio_dir: Path,
                                           tmp_path: Path) -> None:
    copy = tmp_path / "copy-of-a440.wav"
    shutil.copy(tiny_audio_dir / "audio" / "a440.wav", copy)
    first = ingest([tiny_audio_dir, copy], factory, store, progress=False)
    assert (first.ingested, first.duplicates) == (5, 1)
    second = ingest([tiny_audio_dir, copy], factory, store, progress=False)
    assert (second.ingested, second.duplicates, second.quarantined) == (0, 6, [])
    with session_scope(factory) as session:
        assert session.scalar(select(func.count(Track.id))) == 5


def test_bad_files_are_quarantined_never_fatal(factory, store, tone_writer, tmp_path: Path,
                                               rng: np.random.Generator) -> None:
    zoo = tmp_path / "zoo"
    expected = make_zoo(zoo, tone_writer, rng)
    tone_writer(zoo / "good.wav", (523.25,), 2.0)
    summary = ingest([zoo / name for name in [*expected, "good.wav"]], factory, store,
                     min_duration_s=1.0, max_duration_s=5.0, progress=False, batch_size=3)
    assert summary.ingested == 1
    reasons = {Path(q.path).name: q.reason for q in summary.quarantined}
    assert set(reasons) == set(expected)
    for name, pattern in expected.items():
        assert re.search(pattern, reasons[name]), (name, reasons[name])
    for name in expected:
        assert (zoo / name).exists()  # left where it was
    # Re-running re-quarantines nothing twice.
    again = ingest([zoo], factory, store, min_duration_s=1.0, max_duration_s=5.0, progress=False)
    assert again.ingested == 0 and len(again.quarantined) == len(expected)
    with session_scope(factory) as session:
        rows = session.scalars(select(Quarantine)).all()
        assert len(rows) == len(expected)
        assert all(r.run_id == again.run_id for r in rows)


def test_metadata_csv(factory, store, tone_writer, tmp_path: Path) -> None:
    tone_writer(tmp_path / "music" / "one.wav", (440.0,), 2.0)
    tone_writer(tmp_path / "music" / "two.flac", (660.0,), 2.0)
    meta = tmp_path / "meta.csv"
    with open(meta, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["path", "title", "composer", "tags", "instruments", "tempo_bpm",
                         "soundfont"])
        writer.writerow(["music/one.wav", "One", "Bach", "chorale;baroque", "organ", "80", "X"])
        writer.writerow(["two.flac", "", "", "", "", "", ""])
    summary = ingest([tmp_path / "music"], factory, store, metadata=meta, progress=False)
    assert summary.ingested == 2
    one, two = _tracks(factory)
    assert (one.title, one.artist) == ("One", "Bach")
    assert (one.tags, one.instruments) == (["chorale", "baroque"], ["organ"])
    assert one.tempo_bpm == 80.0 and one.extra == {"composer": "Bach", "soundfont": "X"}
    assert two.title == "two" and two.tags == [] and two.tempo_bpm is None


def test_bad_metadata_is_refused_before_the_run(factory, store, tmp_path: Path) -> None:
    meta = tmp_path / "m.jsonl"
    meta.write_text('{"path": "a.wav", "tempo_bpm": 100}\n{"path": "b.wav", "tempo_bpm": "fast"}\n')
    with pytest.raises(CatalogError, match=r"m.jsonl:2: tempo_bpm must be a number, got 'fast'"):
        ingest([tmp_path], factory, store, metadata=meta, progress=False)
    meta.write_text('{"path": "a.wav", "key": "' + "x" * 40 + '"}\n')
    with pytest.raises(CatalogError, match="key is longer than 16"):
        ingest([tmp_path], factory, store, metadata=meta, progress=False)
    with pytest.raises(CatalogError, match="no such file"):
        ingest([tmp_path / "missing"], factory, store, progress=False)


def test_on_batch_runs_inside_the_transaction(factory, store, tiny_audio_dir: Path) -> None:
    calls: list[list[int]] = []

    def hook(session, tracks) -> None:
        assert all(t.id is not None for t in tracks)  # flushed: ids exist for embeddings
        calls.append([t.id for t in tracks])

    summary = ingest([tiny_audio_dir], factory, store, batch_size=2, on_batch=hook, progress=False)
    assert [i for batch in calls for i in batch] == summary.track_ids and len(calls) == 3

    def failing(session, tracks) -> None:
        raise RuntimeError("encoder exploded")

    tone = tiny_audio_dir / "audio" / "a440.wav"
    other = tiny_audio_dir.parent / "new.wav"
    other.write_bytes(tone.read_bytes()[:-2000] + bytes(2000))  # new content, still valid
    with pytest.raises(RuntimeError, match="encoder exploded"):
        ingest([other], factory, store, on_batch=failing, progress=False)
    with session_scope(factory) as session:
        assert session.scalar(select(func.count(Track.id))) == 5  # batch rolled back
        statuses = session.scalars(select(IngestRun.status).order_by(IngestRun.id)).all()
        assert statuses == ["done", "failed"]
