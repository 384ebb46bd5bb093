"""The demo catalog: real corpus pieces rendered as 20-30 s excerpts with metadata.

Pipeline: plan (pick pieces per family, deterministic per seed) -> render in worker processes
(parse once, then one or more renders with their own ensemble, soundfont, tempo, transposition
and excerpt) -> ``audio/*.flac`` plus ``metadata.jsonl`` written atomically at the end.

The split is a function of the piece id alone (a stable hash), so every catalog built from the
corpus — the demo catalog, the encoder's training renders, the evaluation renders with a
held-out soundfont — agrees on which pieces are test pieces, whatever the seed or size.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import tempfile
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from generation.demo.variety import Variety, accompaniment_instruments, prepare
from generation.errors import GenerationError
from generation.symbolic.corpus import Source, corpus_root, list_sources
from generation.symbolic.ensembles import FAMILY_ENSEMBLES, Ensemble, ensemble
from generation.symbolic.render import Events, RenderSpec, load_score, render, score_to_events, training_soundfonts
from retrieval.captions import (
    meter_class,
    mode_family,
    paraphrase_captions,
    tempo_bucket,
    training_captions,
)

if TYPE_CHECKING:
    from music21 import stream

#: Share of the catalog per corpus family (quartets are capped by the corpus: 40 movements).
FAMILY_SHARE = {
    "irish": 0.21, "scottish": 0.17, "essen": 0.24, "chorale": 0.15, "quartet": 0.03,
    "renaissance": 0.12, "medieval": 0.04, "folk": 0.04,
}

#: Heard note rate (distinct onsets per second) by tune type or family: the tempo a player
#: would choose, before a +-25 % per-render variation.
NOTE_RATE = {
    "reel": (6.5, 8.0), "jig": (5.5, 7.0), "slip jig": (5.5, 7.0), "hornpipe": (4.5, 6.0),
    "strathspey": (3.5, 5.0), "air": (1.6, 3.0), "march": (3.5, 5.0), "clog": (4.5, 6.0),
    "highland fling": (4.0, 5.5), "waltz": (3.0, 4.5), "polka": (4.0, 5.5), "slide": (5.0, 6.5),
    "folk song": (2.0, 4.5), "chorale": (1.6, 3.2), "quartet movement": (2.5, 6.0),
    "mass movement": (1.3, 3.0), "madrigal": (1.5, 3.5), "motet": (1.3, 3.0),
    "trecento song": (2.0, 4.5),
}

_PERIOD = {"chorale": "Baroque", "quartet": "Classical-era", "renaissance": "Renaissance",
           "medieval": "medieval"}
_ADJ = {"Ireland": "Irish", "Scotland": "Scottish", "Ireland and Scotland": "Celtic",
        "Germany": "German folk", "China": "Chinese folk", "Luxembourg": "Luxembourgish folk",
        "Lorraine": "Lorraine folk", "Central Europe": "Central European folk",
        "Switzerland": "Swiss folk", "Austria": "Austrian folk", "Alsace": "Alsatian folk",
        "Netherlands": "Dutch folk", "Eastern Europe": "Eastern European folk",
        "South-Eastern Europe": "Balkan folk", "Hungary": "Hungarian folk", "Poland": "Polish folk",
        "America": "American folk", "Northumberland, England": "English folk"}
_NAMES = ["C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B"]
_PC = {"C": 0, "C#": 1, "Db": 1, "D": 2, "D#": 3, "Eb": 3, "E": 4, "F": 5, "F#": 6, "Gb": 6,
       "G": 7, "G#": 8, "Ab": 8, "A": 9, "A#": 10, "Bb": 10, "B": 11, "Cb": 11}
LICENSE = "public domain composition (music21 corpus); rendering CC0"


def split_of(piece_id: str) -> str:
    """The piece's split: train (80 %), validation (10 %) or test (10 %).

    A function of the piece id alone (the first 32 bits of its SHA-256), so every catalog and
    training set agrees on it whatever its seed, size or soundfonts.
    """
    h = int(hashlib.sha256(piece_id.encode()).hexdigest()[:8], 16) % 100
    return "train" if h < 80 else ("validation" if h < 90 else "test")


@dataclass(frozen=True)
class RenderJob:
    """Everything a worker needs to render one piece (picklable)."""

    index: int
    source: Source
    renders: int
    seed: int
    sample_rate: int
    out_dir: str
    soundfonts: tuple[str, ...]
    write_audio: bool = True
    paraphrases: bool = False
    max_duration_s: float | None = None  # training sets only need the first 20 s
    variety: str | None = None  # None (v1), "train" or "heldout": see generation.demo.variety


@dataclass
class RenderResult:
    """What a worker sends back for one :class:`RenderJob`.

    Attributes:
        index: the job's index (results are put back in plan order by it).
        rows: one metadata row per render (a ``metadata.jsonl`` line).
        audio: float32 mono ``[samples]`` per render, only when the job did not write audio.
        error: why the piece was given up (parse or render failure), else None.
    """

    index: int
    rows: list[dict[str, Any]] = field(default_factory=list)
    audio: list[np.ndarray] = field(default_factory=list)
    error: str | None = None


def plan_catalog(size: int, seed: int, sources: Sequence[Source] | None = None,
                 splits: Sequence[str] | None = None) -> list[Source]:
    """Pick pieces per family and, within a family, round-robin over tune types or regions.

    Returns ``size`` sources followed by a reserve (up to 10 % more) used when a piece fails to
    parse or render, so the catalog still reaches ``size`` deterministically.
    """
    if size < 1:
        raise GenerationError(f"catalog size must be >= 1, got {size}")
    rng = random.Random(seed)
    sources = list(sources if sources is not None else list_sources())
    if splits is not None:
        sources = [s for s in sources if split_of(s.piece_id) in splits]
    by_family: dict[str, list[Source]] = defaultdict(list)
    for s in sources:
        if s.family in ("irish", "scottish", "folk") and not s.facts.get("tune_type"):
            continue  # dance books without a rhythm field: the tune type would be a guess
        by_family[s.family].append(s)
    present = sum(FAMILY_SHARE.get(f, 0.0) for f in by_family) or 1.0
    shares = {f: FAMILY_SHARE.get(f, 0.0) / present for f in by_family}
    want = {f: max(1, round(size * share * 1.1)) for f, share in shares.items()}
    picked: list[Source] = []
    for fam in sorted(by_family):
        pool = by_family[fam]
        strata: dict[str, list[Source]] = defaultdict(list)
        for s in pool:
            key = s.facts.get("region") if fam == "essen" else s.facts.get("tune_type")
            strata[str(key)].append(s)
        for lst in strata.values():
            rng.shuffle(lst)
        names = sorted(strata)
        take: list[Source] = []
        while len(take) < want.get(fam, 0) and any(strata[n] for n in names):
            for n in names:
                if strata[n] and len(take) < want.get(fam, 0):
                    take.append(strata[n].pop())
        picked.extend(take)
    rng.shuffle(picked)
    # interleave so that the first `size` keep the family proportions
    primary = _proportional_prefix(picked, size, shares)
    chosen = {s.piece_id for s in primary}
    reserve = [s for s in picked if s.piece_id not in chosen][: max(10, size // 10)]
    return primary + reserve


def _proportional_prefix(picked: list[Source], size: int, shares: dict[str, float]) -> list[Source]:
    by_fam: dict[str, list[Source]] = defaultdict(list)
    for s in picked:
        by_fam[s.family].append(s)
    quota = {f: int(round(size * shares.get(f, 0.0))) for f in by_fam}
    out: list[Source] = []
    for f, lst in by_fam.items():
        out.extend(lst[: quota[f]])
    chosen = {s.piece_id for s in out}
    rest = [s for s in picked if s.piece_id not in chosen]
    out.extend(rest[: max(0, size - len(out))])
    order = {s.piece_id: i for i, s in enumerate(picked)}
    return sorted(out[:size], key=lambda s: order[s.piece_id])


def _finalis_mode(ev: Events, tonic_pc: int | None = None) -> tuple[int, str]:
    """(tonic pitch class, major|minor) from the final bass note and the thirds above it.

    Folk melodies and modal polyphony end on their tonic; whether the third above it is
    major or minor (weighted by duration over the whole piece) is what the ear calls mode.
    """
    if tonic_pc is None:
        last = ev.onset.max()
        final = ev.pitch[np.isclose(ev.onset, last)]
        tonic_pc = int(final.min()) % 12
    pcs = ev.pitch.astype(int) % 12
    w_minor = float(ev.dur[pcs == (tonic_pc + 3) % 12].sum())
    w_major = float(ev.dur[pcs == (tonic_pc + 4) % 12].sum())
    return tonic_pc, ("minor" if w_minor > w_major else "major")


def _score_meter(score: stream.Stream) -> str | None:
    from music21 import meter as m21meter

    ts = score.recurse().getElementsByClass(m21meter.TimeSignature).first()
    return ts.ratioString if ts is not None else None


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40] or "piece"


def render_job(job: RenderJob) -> RenderResult:
    """Parse one piece and render it ``job.renders`` times (runs in a worker process)."""
    _quiet_music21()
    src = job.source
    try:
        score = load_score(corpus_root() / src.path, src.abc)
        ev = score_to_events(score)
        facts = dict(src.facts)
        facts["meter"] = facts.get("meter") or _score_meter(score)
        written_tonic = _PC.get(facts["key"]) if facts.get("key") else None
        if facts.get("mode") is None:
            tonic_pc, mode = _finalis_mode(ev, None)
            facts["mode"] = mode
        else:
            tonic_pc = written_tonic if written_tonic is not None else _finalis_mode(ev)[0]
        return _render_views(job, ev, facts, tonic_pc)
    except GenerationError as e:
        return RenderResult(job.index, error=str(e))
    except Exception as e:  # a malformed score must not kill a 1,500-piece build
        return RenderResult(job.index, error=f"{type(e).__name__}: {e}")


def _render_views(job: RenderJob, ev: Events, facts: dict[str, Any], tonic_pc: int) -> RenderResult:
    src = job.source
    rng = random.Random(f"{job.seed}:{src.piece_id}")
    res = RenderResult(job.index)
    mclass = meter_class(facts.get("meter"))
    typical_ioi = ev.heard_beat_ql(mclass == "compound") / (3.0 if mclass == "compound" else 2.0)
    polyphonic = ev.n_voices > 1
    weights = FAMILY_ENSEMBLES[src.family]
    names = [n for n in weights if weights[n] > 0]
    for r in range(job.renders):
        ens_name = rng.choices(names, weights=[weights[n] for n in names])[0]
        ens = ensemble(ens_name, polyphonic)
        played, ens, progs, octs, variety = prepare(job.variety, f"variety:{job.seed}:{src.piece_id}:{r}",
                                                    ev, ens, facts.get("tune_type"))
        how = variety or Variety()  # the defaults are v1's render: tinysoundfont, accent 16
        lo, hi = NOTE_RATE.get(facts.get("tune_type") or "", (2.5, 5.0))
        rate = rng.uniform(lo, hi) * rng.uniform(0.78, 1.28)
        qbpm = float(np.clip(rate * typical_ioi * 60.0, 20.0, 400.0))
        sec_per_ql = 60.0 / qbpm
        heard_beat_ql = typical_ioi * (3.0 if mclass == "compound" else 2.0)
        bpm = round(qbpm / heard_beat_ql, 1)
        duration = round(rng.uniform(20.0, 30.0), 2)
        if job.max_duration_s:
            duration = min(duration, job.max_duration_s)
        n_bars = max(1, int(ev.length_ql // ev.bar_ql))
        piece_s = ev.length_ql * sec_per_ql
        start_bar = 0 if (r == 0 or piece_s <= duration * 1.2) else rng.randrange(
            0, max(1, n_bars - int(duration / (ev.bar_ql * sec_per_ql))))
        transpose = 0 if (r == 0 and rng.random() < 0.5) else rng.randint(-4, 4)
        soundfont = rng.choice(job.soundfonts)
        spec = RenderSpec(
            programs=progs, octave_shift=octs, qbpm=qbpm, start_ql=start_bar * ev.bar_ql,
            duration_s=duration, transpose=transpose, velocity=rng.randint(72, 104),
            soundfont=soundfont, drone=ens.drone, drone_pitch=48 + tonic_pc,
            seed=rng.randrange(2**31), accent=how.accent,
        )
        audio = render(played, spec, job.sample_rate, engine=how.engine, fluid=how.fluid)
        key = _NAMES[(tonic_pc + transpose) % 12]
        row = _row(job, facts, ens, r, bpm, duration, key, soundfont, transpose,
                   start_bar * ev.bar_ql * sec_per_ql)
        if variety:
            row["variety"] = variety.describe()
            row["instruments"] = row["instruments"] + accompaniment_instruments(variety)
        if job.write_audio:
            path = Path(job.out_dir) / row["path"]
            _write_flac(path, audio, job.sample_rate)
        else:
            res.audio.append(audio)
        res.rows.append(row)
    return res


def _row(job: RenderJob, facts: dict[str, Any], ens: Ensemble, r: int, bpm: float, duration: float,
         key: str, soundfont: str, transpose: int, start_s: float) -> dict[str, Any]:
    src = job.source
    region = facts.get("region")
    period = _PERIOD.get(src.family)
    tradition = period or _ADJ.get(region or "", None)
    mode = facts.get("mode")
    cap_facts = {
        "ensemble": ens.name, "family": ens.family, "instruments": list(ens.instruments),
        "tune_type": facts.get("tune_type"), "tempo_bpm": bpm, "tempo_bucket": tempo_bucket(bpm),
        "mode": mode, "key": key, "meter": facts.get("meter"),
        "meter_class": meter_class(facts.get("meter")), "region": tradition,
        "composer": facts.get("composer"), "collection": src.collection, "period": period,
    }
    cseed = int(hashlib.sha256(f"{job.seed}:{src.piece_id}:{r}".encode()).hexdigest()[:8], 16)
    captions = training_captions(cap_facts, 4, cseed)
    tags = [t for t in {src.family, facts.get("tune_type"), (tradition or "").lower() or None,
                        mode_family(mode), tempo_bucket(bpm), meter_class(facts.get("meter")),
                        ens.family} if t]
    row: dict[str, Any] = {
        "path": f"audio/{job.index:05d}-{_slug(src.piece_id)}-r{r}.flac",
        "piece_id": src.piece_id,
        "title": facts.get("title"),
        "artist": facts.get("composer") or "Traditional",
        "composer": facts.get("composer"),
        "collection": src.collection,
        "corpus_family": src.family,
        "tune_type": facts.get("tune_type"),
        "region": region,
        "tradition": tradition,
        "key": key,
        "mode": mode,
        "mode_family": mode_family(mode),
        "meter": facts.get("meter"),
        "meter_class": meter_class(facts.get("meter")),
        "tempo_bpm": bpm,
        "tempo_bucket": tempo_bucket(bpm),
        "instruments": list(ens.instruments),
        "ensemble": ens.name,
        "instrument_family": ens.family,
        "soundfont": soundfont,
        "transpose": transpose,
        "excerpt_start_s": round(start_s, 2),
        "render_index": r,
        "split": split_of(src.piece_id),
        "captions": captions,
        "tags": sorted(tags),
        "license": LICENSE,
        "duration_s": duration,
        "sample_rate": job.sample_rate,
    }
    if job.paraphrases:
        row["paraphrases"] = paraphrase_captions(cap_facts, 3, cseed)
    return row


def _write_flac(path: Path, audio: np.ndarray, sample_rate: int) -> None:
    import soundfile as sf

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.flac")
    sf.write(str(tmp), audio, sample_rate, format="FLAC", subtype="PCM_16")
    os.replace(tmp, path)


_M21_READY = False


def _quiet_music21() -> None:
    """Point music21 at a private scratch folder, in memory: never write ~/.music21rc."""
    global _M21_READY
    if _M21_READY:
        return
    from music21 import environment

    env = environment.Environment()
    scratch = Path(tempfile.gettempdir()) / f"tunescope-music21-{os.getuid()}"
    scratch.mkdir(exist_ok=True)
    env["directoryScratch"] = str(scratch)
    env["autoDownload"] = "deny"
    env["warnings"] = 0
    _M21_READY = True


def run_jobs(jobs: Sequence[RenderJob], workers: int,
             on_result: Callable[[RenderResult], None] | None = None) -> Iterator[RenderResult]:
    """Render jobs on ``workers`` processes; results come back in job order."""
    if workers <= 1:
        for job in jobs:
            res = render_job(job)
            if on_result:
                on_result(res)
            yield res
        return
    with ProcessPoolExecutor(max_workers=workers, initializer=_quiet_music21) as pool:
        for res in pool.map(render_job, jobs, chunksize=4):
            if on_result:
                on_result(res)
            yield res


def build_catalog(out_dir: Path, size: int = 1500, seed: int = 0, *, renders: int = 1,
                  sample_rate: int = 22050, workers: int | None = None,
                  soundfonts: Sequence[str] | None = None, splits: Sequence[str] | None = None,
                  paraphrases: bool = False, progress: Callable[[int, int], None] | None = None,
                  sources: Sequence[Source] | None = None, variety: str | None = None) -> dict[str, Any]:
    """Render a catalog of ``size`` pieces into ``out_dir`` (``audio/`` + ``metadata.jsonl``).

    Args:
        out_dir: destination; created if missing.
        size: number of pieces (each rendered ``renders`` times).
        seed: everything (pieces, ensembles, tempi, captions) is a function of it.
        renders: renders per piece (different ensembles, tempi, excerpts).
        sample_rate: of the FLAC files.
        workers: processes (default: all cores).
        soundfonts: names to draw from (default: every training soundfont installed).
        splits: keep only pieces of these splits (e.g. ``["test"]`` for an evaluation set).
        paraphrases: also write evaluation-only paraphrased captions.
        progress: called with (pieces done, pieces wanted).
        sources: draw from these pieces only (default: the whole corpus).
        variety: render variety (:mod:`generation.demo.variety`), e.g. "heldout" for the
            held-out render variant's evaluation catalog; None renders as v1 did.

    Returns:
        A summary: pieces, tracks, failures (piece id -> reason), counts per family.
    """
    if renders < 1 or renders > 16:
        raise GenerationError(f"renders per piece must be 1..16, got {renders}")
    if not 8000 <= sample_rate <= 96000:
        raise GenerationError(f"sample rate must be 8000..96000 Hz, got {sample_rate}")
    sfs = tuple(soundfonts or training_soundfonts())
    out_dir = Path(out_dir)
    (out_dir / "audio").mkdir(parents=True, exist_ok=True)
    plan = plan_catalog(size, seed, sources, splits=splits)
    workers = workers or os.cpu_count() or 1

    def make_job(index: int, source: Source) -> RenderJob:
        return RenderJob(index, source, renders, seed, sample_rate, str(out_dir), sfs,
                         paraphrases=paraphrases, variety=variety)

    rows_by_index, failures = _render_plan(plan, size, make_job, workers, progress)
    rows = [row for i in sorted(rows_by_index) for row in rows_by_index[i]]
    _write_metadata(out_dir, rows)
    counts: dict[str, int] = defaultdict(int)
    for row in rows:
        counts[row["corpus_family"]] += 1
    return {"pieces": len(rows_by_index), "tracks": len(rows), "failures": failures,
            "families": dict(counts), "soundfonts": list(sfs)}


def _render_plan(plan: Sequence[Source], size: int, make_job: Callable[[int, Source], RenderJob],
                 workers: int, progress: Callable[[int, int], None] | None,
                 ) -> tuple[dict[int, list[dict[str, Any]]], dict[str, str]]:
    """Render the plan's first ``size`` pieces, then reserve pieces until ``size`` succeeded.

    Reserve pieces are taken in plan order, as many at a time as are still missing, so a seed
    always yields the same catalog (a piece that fails, fails every time). Job indexes follow
    plan order too (they name the audio files).

    Args:
        plan: from :func:`plan_catalog`: ``size`` pieces, then the reserve.
        size: pieces wanted.
        make_job: the job for (index, piece).
        workers: processes for :func:`run_jobs`.
        progress: called with (pieces done, ``size``) after each success.

    Returns:
        Metadata rows by job index (successes only) and failures (piece id -> reason).
    """
    primary, reserve = list(plan[:size]), list(plan[size:])
    rows_by_index: dict[int, list[dict[str, Any]]] = {}
    failures: dict[str, str] = {}
    done = 0

    def consume(batch: list[Source], offset: int) -> int:
        nonlocal done
        jobs = [make_job(offset + i, s) for i, s in enumerate(batch)]
        ok = 0
        for res in run_jobs(jobs, workers):
            if res.error:
                failures[jobs[res.index - offset].source.piece_id] = res.error
                continue
            rows_by_index[res.index] = res.rows
            ok += 1
            done += 1
            if progress:
                progress(done, size)
        return ok

    got = consume(primary, 0)
    offset = len(primary)
    while got < size and reserve:
        take, reserve = reserve[: size - got], reserve[size - got:]
        got += consume(take, offset)
        offset += len(take)
    return rows_by_index, failures


def _write_metadata(out_dir: Path, rows: list[dict[str, Any]]) -> None:
    """Write ``metadata.jsonl`` (one JSON row per track) atomically: readers never see half of it."""
    tmp = out_dir / "metadata.jsonl.tmp"
    with open(tmp, "w") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    os.replace(tmp, out_dir / "metadata.jsonl")
