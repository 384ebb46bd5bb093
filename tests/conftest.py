"""Shared fixtures: a seeded rng, catalog databases (SQLite always, PostgreSQL when reachable),
an audio store and a tiny catalog of synthetic tones written in every supported format."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import typer
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session, sessionmaker

from index.db import open_catalog
from index.store import AudioStore

POSTGRES_URL = os.environ.get(
    "TUNESCOPE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
_postgres_error: list[str | None] = []  # cached reachability: [] unknown, [None] ok, [msg] down


def _postgres_unreachable() -> str | None:
    if not _postgres_error:
        try:
            engine = create_engine(POSTGRES_URL, connect_args={"connect_timeout": 2})
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            engine.dispose()
            _postgres_error.append(None)
        except Exception as e:  # noqa: BLE001 - any failure means "skip", with the reason
            _postgres_error.append(f"{type(e).__name__}: {str(e).splitlines()[0]}")
    return _postgres_error[0]


@pytest.fixture
def rng() -> np.random.Generator:
    """A seeded generator: every test's random data is reproducible."""
    return np.random.default_rng(1234)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty catalog database URL: a SQLite file, or a new PostgreSQL schema.

    The PostgreSQL variant creates a schema per test and points ``search_path`` at it through
    the URL, so the URL works unchanged in subprocesses; the schema is dropped afterwards.
    """
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'catalog.db'}"
        return
    reason = _postgres_unreachable()
    if reason:
        pytest.skip(f"PostgreSQL at {POSTGRES_URL} unreachable ({reason})")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def factory(db_url: str) -> Iterator[sessionmaker[Session]]:
    """A session factory on a freshly migrated catalog."""
    maker = open_catalog(db_url)
    yield maker
    bind = maker.kw["bind"]
    bind.dispose()


@pytest.fixture
def settings_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[dict[str, str]], None]]:
    """``apply(env)``: set TUNESCOPE_* variables for this test and drop the cached settings
    (before, so the CLI sees them, and after, so the next test does not)."""
    from api.settings import get_settings

    def apply(env: dict[str, str]) -> None:
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        get_settings.cache_clear()

    yield apply
    get_settings.cache_clear()


def cli_app(*registers: Callable[[typer.Typer], None]) -> typer.Typer:
    """A Typer app with the given command modules' ``register`` functions applied.

    A Typer app with a single command runs it without its name; a hidden no-op second command
    keeps ``app <command> ...`` invocations the same as in the real CLI."""
    app = typer.Typer()
    for register in registers:
        register(app)
    app.command("_noop", hidden=True)(lambda: None)
    return app


@pytest.fixture
def store(tmp_path: Path) -> AudioStore:
    """An empty audio store in the test's temp folder."""
    return AudioStore(tmp_path / "store")


ToneWriter = Callable[..., Path]


def write_tone(path: Path, freqs: tuple[float, ...] = (440.0,), seconds: float = 2.0,
               sample_rate: int = 22050, channels: int = 1, amplitude: float = 0.3,
               noise: float = 0.0, rng: np.random.Generator | None = None) -> Path:
    """Write a sine or chord (format from the extension; ``.opus`` means Ogg Opus at 48 kHz)."""
    subtype, fmt = None, None
    if path.suffix == ".opus":
        subtype, fmt, sample_rate = "OPUS", "OGG", 48000
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    wave = sum(np.sin(2 * np.pi * f * t) for f in freqs) * (amplitude / len(freqs))
    if noise:
        wave = wave + noise * (rng or np.random.default_rng(0)).standard_normal(len(t))
    data = np.repeat(wave[:, None], channels, axis=1) if channels > 1 else wave
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, data.astype(np.float32), sample_rate, subtype=subtype, format=fmt)
    return path


@pytest.fixture
def tone_writer() -> ToneWriter:
    """:func:`write_tone`, as a fixture so tests need not import conftest."""
    return write_tone


# (file name, chord frequencies, seconds, sample rate, channels)
TINY_TONES = (
    ("a440.wav", (440.0,), 2.0, 22050, 1),
    ("cmajor.flac", (261.63, 329.63, 392.0), 3.0, 44100, 2),
    ("e330.ogg", (330.0,), 2.5, 22050, 1),
    ("gminor.mp3", (196.0, 233.08, 293.66), 4.0, 22050, 1),
    ("d294.opus", (293.66,), 2.0, 48000, 1),
)


@pytest.fixture
def tiny_audio_dir(tmp_path: Path) -> Path:
    """A catalog folder: ``audio/`` with one short tone per format, plus ``metadata.jsonl``.

    Metadata rows exist for all files but ``d294.opus``; ``a440.wav`` is matched by a relative
    path, ``cmajor.flac`` by its bare file name, the others by relative path too.
    """
    root = tmp_path / "catalog"
    rows = []
    for i, (name, freqs, seconds, sr, channels) in enumerate(TINY_TONES):
        write_tone(root / "audio" / name, freqs, seconds, sr, channels)
        if name == "d294.opus":
            continue
        rows.append({
            "path": name if name == "cmajor.flac" else f"audio/{name}",
            "piece_id": f"test/{i}",
            "title": f"Tone {name}",
            "artist": "Traditional",
            "composer": None,
            "collection": "Test Tones",
            "tune_type": "jig" if i % 2 == 0 else "reel",
            "key": "G",
            "mode": "major",
            "meter": "6/8",
            "tempo_bpm": 116.0,
            "instruments": ["fiddle", "flute"],
            "ensemble": "fiddle and flute",
            "instrument_family": "strings",
            "soundfont": "TimGM6mb",
            "split": "train" if i < 3 else "test",
            "captions": [f"a test tone {i}"],
            "tags": ["test", "tone"],
            "license": "public domain",
            "duration_s": seconds,
        })
    (root / "metadata.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (root / "README.txt").write_text("not audio: skipped when the folder is walked\n")
    return root
