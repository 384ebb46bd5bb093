"""Rendering speed: audio seconds produced per wall second.

Three measurements in one run, on the same pieces:
- ``direct``: our path, score -> note events -> tinysoundfont (``generation.symbolic.render``);
- ``midi detour`` (baseline): the conventional path, music21 writes a MIDI file, pretty_midi
  reads it back into notes, then the same synthesizer plays them — what we avoid;
- ``catalog``: ``build_catalog`` end to end (parse + render + FLAC) on all cores;
- ``engines``: the FluidSynth engine without and with reverb + chorus, against tinysoundfont in
  the same run (the baseline), and the cost of the arrangements and performance variation.

Run: ``python -m benchmarks.bench_render [--pieces N] [--engines-only]``.
"""

from __future__ import annotations

import argparse
import copy
import os
import tempfile
import time
from pathlib import Path

import numpy as np


def _pieces(n: int):
    from generation.demo.catalog import _quiet_music21, plan_catalog
    from generation.symbolic.corpus import corpus_root
    from generation.symbolic.render import load_score

    _quiet_music21()
    plan = [s for s in plan_catalog(n * 3, seed=11) if s.family != "quartet"][:n]
    return [(s, load_score(corpus_root() / s.path, s.abc)) for s in plan]


def _spec(ev, soundfont: str, seconds: float):
    from generation.symbolic.render import RenderSpec

    progs = tuple((40,) for _ in range(ev.n_voices))
    octs = tuple((0,) for _ in range(ev.n_voices))
    return RenderSpec(programs=progs, octave_shift=octs, qbpm=100.0, start_ql=0.0, duration_s=seconds,
                      soundfont=soundfont)


def _events_via_midi(score):
    """The MIDI detour: music21 MIDI export, pretty_midi import, back to our event arrays."""
    import pretty_midi

    from generation.symbolic.render import Events

    pretty_midi.pretty_midi.MAX_TICK = 1e9  # music21 files trip pretty_midi's corruption guard
    with tempfile.NamedTemporaryFile(suffix=".mid", delete=False) as f:
        path = f.name
    try:
        score.write("midi", fp=path)
        pm = pretty_midi.PrettyMIDI(path)
    finally:
        os.unlink(path)
    qps = 60.0 / pm.get_tempo_changes()[1][0] if len(pm.get_tempo_changes()[1]) else 0.5
    on, du, pi, vo = [], [], [], []
    for v, inst in enumerate(pm.instruments):
        for n in inst.notes:
            on.append(n.start / qps)
            du.append((n.end - n.start) / qps)
            pi.append(n.pitch)
            vo.append(v)
    order = np.argsort(on)
    return Events(np.asarray(on)[order], np.asarray(du)[order], np.asarray(pi, np.int16)[order],
                  np.asarray(vo, np.int16)[order], np.zeros(len(on), np.float32), float(max(on) + 1),
                  max(1, len(pm.instruments)), 4.0, 1.0)


def _engines(pieces, seconds: float, sr: int) -> None:
    """FluidSynth against tinysoundfont (baseline, same run), TimGM6mb, and the arrangements' cost."""
    from generation.symbolic import arrange, perform
    from generation.symbolic.fluid import FluidSettings, fluid_available
    from generation.symbolic.render import render, score_to_events

    evs = [score_to_events(score) for _, score in pieces]
    audio = seconds * len(evs)
    arms = [("tinysoundfont (baseline)", {})]
    if fluid_available():
        arms += [("fluidsynth, no reverb", {"engine": "fluidsynth", "fluid": FluidSettings()}),
                 ("fluidsynth, reverb", {"engine": "fluidsynth", "fluid": FluidSettings(reverb=True)}),
                 ("fluidsynth, reverb+chorus", {"engine": "fluidsynth",
                                                "fluid": FluidSettings(reverb=True, chorus=True)})]
    else:
        print("  (FluidSynth not installed: only the baseline)")
    base = None
    for name, kw in arms:
        render(evs[0], _spec(evs[0], "TimGM6mb", 1.0), sr, **kw)  # warm
        t = time.perf_counter()
        for ev in evs:
            render(ev, _spec(ev, "TimGM6mb", seconds), sr, **kw)
        wall = time.perf_counter() - t
        base = base or wall
        print(f"{name:26s}: {audio / wall:7.0f} audio s/s ({base / wall:.2f}x the baseline)")
    melodies = [ev for ev in evs if ev.n_voices == 1] or evs
    for style in sorted(arrange.ACCOMPANIMENT_PROGRAMS):
        t = time.perf_counter()
        for ev in melodies:
            arrange.accompany(ev, style, seed=1)
        print(f"accompany {style:8s}: {1e3 * (time.perf_counter() - t) / len(melodies):6.2f} ms per piece")
    t = time.perf_counter()
    for ev in evs:
        perform.velocity_curve(perform.jitter(perform.swing(perform.rubato(ev, seed=1)), seed=1), "random", seed=1)
        arrange.keyboard_reduction(arrange.double_octaves(ev))
    ms = 1e3 * (time.perf_counter() - t) / len(evs)
    print(f"rubato+swing+jitter+dynamics+reduction+octaves: {ms:6.2f} ms per piece"
          f" ({len(evs)} pieces, {len(melodies)} melodies)")


def main(argv: list[str] | None = None) -> None:
    from generation.demo.catalog import build_catalog
    from generation.symbolic.render import render, score_to_events, training_soundfonts

    p = argparse.ArgumentParser(prog="bench_render")
    p.add_argument("--pieces", type=int, default=24)
    p.add_argument("--seconds", type=float, default=25.0)
    p.add_argument("--sample-rate", type=int, default=22050)
    p.add_argument("--engines-only", action="store_true", help="only the FluidSynth/arrangement case")
    args = p.parse_args(argv)
    pieces = _pieces(args.pieces)
    sr = args.sample_rate
    if args.engines_only:
        _engines(pieces, args.seconds, sr)
        return
    for sf in training_soundfonts():
        render(score_to_events(pieces[0][1]), _spec(score_to_events(pieces[0][1]), sf, 1.0), sr)  # load once
        t = time.perf_counter()
        for _, score in pieces:
            ev = score_to_events(score)
            render(ev, _spec(ev, sf, args.seconds), sr)
        direct = time.perf_counter() - t
        audio = args.seconds * len(pieces)
        print(f"direct  {sf:9s}: {audio / direct:7.0f} audio s per wall s ({len(pieces)} x {args.seconds:.0f} s)")
    sf = "TimGM6mb"
    exportable = []
    for s, score in pieces:  # music21's MIDI writer rejects some ABC-derived streams
        try:
            _events_via_midi(copy.deepcopy(score))
            exportable.append(score)
        except Exception as e:  # noqa: BLE001 - any music21 failure excludes the piece from both arms
            print(f"  (MIDI export failed for {s.piece_id}: {type(e).__name__}; excluded from the comparison)")
    t = time.perf_counter()
    for score in exportable:
        ev = score_to_events(score)
        render(ev, _spec(ev, sf, args.seconds), sr)
    direct = time.perf_counter() - t
    t = time.perf_counter()
    for score in exportable:
        ev = _events_via_midi(score)
        render(ev, _spec(ev, sf, args.seconds), sr)
    detour = time.perf_counter() - t
    audio = args.seconds * len(exportable)
    print(f"direct (events)      : {audio / direct:7.0f} audio s/s")
    print(f"baseline (MIDI file) : {audio / detour:7.0f} audio s/s   -> direct is {detour / direct:.1f}x faster")
    with tempfile.TemporaryDirectory() as tmp:
        n = max(20, args.pieces * 2)
        t = time.perf_counter()
        summary = build_catalog(Path(tmp), size=n, seed=3, sample_rate=sr, workers=os.cpu_count())
        wall = time.perf_counter() - t
        import json

        dur = sum(json.loads(line)["duration_s"] for line in (Path(tmp) / "metadata.jsonl").read_text().splitlines())
        print(f"catalog build ({summary['tracks']} tracks, {os.cpu_count()} workers, parse+render+FLAC): "
              f"{dur / wall:.0f} audio s/s, {summary['tracks'] / wall:.1f} tracks/s")
    _engines(pieces, args.seconds, sr)


if __name__ == "__main__":
    main()
