"""Symbolic rendering: music21 scores to audio through a General MIDI soundfont.

We do not go through MIDI files: a score becomes a flat array of note events
(onset and duration in quarter notes, pitch, voice) that we play straight into
tinysoundfont, sample-accurately. That skips music21's slow MIDI writer, lets every render
choose its own tempo, instruments, transposition and dynamics, and gives exact facts about
what was played (the beat rate actually heard, the notes actually sounding).
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from generation.errors import GenerationError

if TYPE_CHECKING:
    import tinysoundfont
    from music21 import stream

    from generation.symbolic.fluid import FluidSettings

#: Where Debian's soundfont packages put extra General MIDI banks (``make soundfonts``).
SYSTEM_SOUNDFONTS = {
    "FluidR3": "/usr/share/sounds/sf2/FluidR3_GM.sf2",
    "CsoundGM": "/usr/share/sounds/sf2/sf_GMbank.sf2",
    "MuseScoreGeneral": "/usr/share/sounds/sf3/MuseScore_General_Lite.sf3",
}

#: Never used to render training data: evaluation renders test pieces with it to check that
#: the encoder hears instruments rather than one soundfont's samples.
HELDOUT_SOUNDFONT = "MuseScoreGeneral"

#: Always installed (it ships in pretty_midi): the renderer's and the generator's default.
DEFAULT_SOUNDFONT = "TimGM6mb"


def soundfont_paths() -> dict[str, str]:
    """Available soundfonts by name: pretty_midi's TimGM6mb always, Debian's when installed."""
    import pretty_midi

    found = {DEFAULT_SOUNDFONT: os.path.join(os.path.dirname(pretty_midi.__file__), "TimGM6mb.sf2")}
    for name, path in SYSTEM_SOUNDFONTS.items():
        if os.path.isfile(path):
            found[name] = path
    return found


def training_soundfonts() -> list[str]:
    """Soundfonts that may be used to render catalog and training audio (never the held-out one)."""
    return [n for n in soundfont_paths() if n != HELDOUT_SOUNDFONT]


@dataclass
class Events:
    """A score flattened to note events, sorted by onset.

    Attributes:
        onset: float64 ``[n]`` onsets in quarter notes from the start of the piece.
        dur: float64 ``[n]`` durations in quarter notes.
        pitch: int16 ``[n]`` MIDI pitches as written.
        voice: int16 ``[n]`` part index (0 = top part).
        strength: float32 ``[n]`` metrical strength from music21 (1 = downbeat, 0.5 = strong beat...),
            which places accents correctly even after a pickup bar.
        length_ql: total length of the piece in quarter notes.
        n_voices: number of parts.
        bar_ql: length of a bar in quarter notes (for downbeat accents and excerpt starts).
        beat_ql: the notated beat in quarter notes (dotted quarter in 6/8, half in 2/2...).
        vel_offset: float32 ``[n]`` MIDI velocity added to each note's rendered velocity (a
            dynamics curve from :mod:`generation.symbolic.perform`), or None for none.
    """

    onset: np.ndarray
    dur: np.ndarray
    pitch: np.ndarray
    voice: np.ndarray
    strength: np.ndarray
    length_ql: float
    n_voices: int
    bar_ql: float
    beat_ql: float
    vel_offset: np.ndarray | None = None

    def heard_beat_ql(self, compound: bool) -> float:
        """The beat a listener taps, in quarter notes, from what is played.

        Notated beats are unreliable (a reel in 2/2 and one in 4/4 sound alike; an air in
        2/4 written in sixteenths sounds like one in eighths), so the beat is taken as two
        typical inter-onset intervals in simple meters and three in compound ones.
        """
        ons = np.unique(np.round(self.onset, 4))
        if len(ons) < 3:
            return self.beat_ql
        ioi = np.diff(ons)
        ioi = ioi[ioi > 1e-3]
        typical = float(np.median(ioi))
        return typical * (3.0 if compound else 2.0)


def score_to_events(score: stream.Stream) -> Events:
    """Flatten a music21 score (ties merged, chords split) into note events.

    Args:
        score: a Score, read part by part (voice 0 = its top part), or any other stream (a
            Part) read as a single voice.

    Returns:
        The events sorted by onset (stable, so simultaneous notes keep part order).

    Raises:
        GenerationError: the score has no sounding notes (grace notes do not count).
    """
    from music21 import meter as m21meter

    parts = list(score.parts) if hasattr(score, "parts") and len(score.parts) else [score]
    onset: list[float] = []
    dur: list[float] = []
    pitch: list[int] = []
    voice: list[int] = []
    strength: list[float] = []
    for vi, part in enumerate(parts):
        flat = part.stripTies().flatten()
        for n in flat.notes:
            o = float(n.offset)
            d = float(n.quarterLength)
            if d <= 0:
                continue  # grace notes
            try:
                bs = float(n.beatStrength)
            except Exception:  # notes outside a measure have no metrical position
                bs = 0.0
            for p in n.pitches:
                strength.append(bs)
                onset.append(o)
                dur.append(d)
                pitch.append(int(p.midi))
                voice.append(vi)
    if not onset:
        raise GenerationError("score has no notes")
    ts = score.recurse().getElementsByClass(m21meter.TimeSignature).first()
    bar_ql = float(ts.barDuration.quarterLength) if ts is not None else 4.0
    beat_ql = float(ts.beatDuration.quarterLength) if ts is not None else 1.0
    o = np.asarray(onset)
    d = np.asarray(dur)
    order = np.argsort(o, kind="stable")
    return Events(
        onset=o[order], dur=d[order], pitch=np.asarray(pitch, np.int16)[order],
        voice=np.asarray(voice, np.int16)[order],
        strength=np.asarray(strength, np.float32)[order], length_ql=float((o + d).max()),
        n_voices=len(parts), bar_ql=bar_ql, beat_ql=beat_ql,
    )


@dataclass(frozen=True)
class RenderSpec:
    """What one render plays: which window, how fast, on what, how loud.

    Attributes:
        programs: GM program per voice (a melody may be doubled: one voice, several programs).
        octave_shift: per-program octave shift (e.g. a cello plays a fiddle tune an octave down).
        qbpm: quarter notes per minute.
        start_ql: where the excerpt starts (a bar line), in quarter notes.
        duration_s: excerpt length in seconds.
        transpose: semitones.
        velocity: base MIDI velocity; downbeats are accented, notes jittered.
        soundfont: a name from :func:`soundfont_paths`.
        drone: GM program of a tonic+fifth drone under a melody, or None.
        drone_pitch: MIDI pitch of the drone's root.
        seed: for humanisation jitter.
        accent: velocity added on a downbeat (scaled by metrical strength). Our players stress
            the meter by 16; other tools choose other accents or none, so training varies it
            (an encoder must not hear metre only from our accents).
    """

    programs: tuple[tuple[int, ...], ...]
    octave_shift: tuple[tuple[int, ...], ...]
    qbpm: float
    start_ql: float
    duration_s: float
    transpose: int = 0
    velocity: int = 88
    soundfont: str = DEFAULT_SOUNDFONT
    drone: int | None = None
    drone_pitch: int = 50
    seed: int = 0
    accent: float = 16.0


@functools.lru_cache(maxsize=8)
def _synth(soundfont: str, sample_rate: int) -> tuple[tinysoundfont.Synth, int]:
    """One synthesizer per (soundfont, rate) and process: loading FluidR3 costs 0.6 s.

    Returns:
        The synthesizer and the id of the loaded soundfont (for ``program_select``).
    """
    import tinysoundfont

    paths = soundfont_paths()
    if soundfont not in paths:
        raise GenerationError(
            f"soundfont {soundfont!r} is not installed (have {sorted(paths)}); "
            "run `make soundfonts` for the Debian banks"
        )
    synth = tinysoundfont.Synth(samplerate=sample_rate, gain=-3)
    sfid = synth.sfload(paths[soundfont])
    return synth, sfid


def preload_soundfont(soundfont: str, sample_rate: int) -> None:
    """Load ``soundfont``'s synthesizer now, so the first render with it does not pay the load.

    Raises:
        GenerationError: the soundfont is not installed.
    """
    _synth(soundfont, sample_rate)


def _window(ev: Events, start_ql: float, need_ql: float) -> tuple[np.ndarray, ...]:
    """Events in ``[start_ql, start_ql + need_ql)``, looping the piece when it is too short."""
    reps = int(np.ceil((start_ql + need_ql) / max(ev.length_ql, 1e-6))) + 1
    on = np.concatenate([ev.onset + r * ev.length_ql for r in range(reps)])
    du = np.tile(ev.dur, reps)
    pi = np.tile(ev.pitch, reps)
    vo = np.tile(ev.voice, reps)
    st = np.tile(ev.strength, reps)
    vx = np.tile(ev.vel_offset, reps) if ev.vel_offset is not None else np.zeros(len(on), np.float32)
    sel = (on >= start_ql - 1e-6) & (on < start_ql + need_ql - 1e-6)
    return on[sel] - start_ql, du[sel], pi[sel], vo[sel], st[sel], vx[sel]


#: A MIDI event for tinysoundfont: (sample, kind, channel, key, velocity), kind 1 = note-on and
#: 0 = note-off, so that sorting the tuples puts a note-off before a note-on at the same sample.
_MidiEvent = tuple[int, int, int, int, int]


def render(ev: Events, spec: RenderSpec, sample_rate: int = 22050, *,
           engine: str = "tinysoundfont", fluid: FluidSettings | None = None) -> np.ndarray:
    """Play an excerpt of ``ev`` as ``spec`` says. Returns float32 mono ``[samples]``.

    ``engine="fluidsynth"`` plays the same events through FluidSynth
    (:mod:`generation.symbolic.fluid`) with ``fluid`` settings (interpolation, reverb, chorus;
    default :class:`FluidSettings`); the default engine, tinysoundfont, ignores ``fluid``.

    Each (voice, program) pair gets its own MIDI channel (drums channel 9 skipped), and the
    note events are fed to tinysoundfont between ``generate`` calls at their exact sample.
    The same (events, spec, rate) always give the same samples: every random draw comes from
    ``spec.seed``, in a fixed order (onset jitter, per-note velocity, output level).

    Raises:
        GenerationError: the soundfont or the engine is not installed, the engine is unknown,
            or no note of the excerpt is playable.
    """
    if engine == "tinysoundfont":
        synth, sfid = _synth(spec.soundfont, sample_rate)
    elif engine == "fluidsynth":
        from generation.symbolic.fluid import FluidSettings, fluid_engine

        fluid = fluid or FluidSettings()
        synth = fluid_engine(spec.soundfont, sample_rate, fluid.reverb, fluid.chorus)
        synth.configure(fluid)
        sfid = synth.sfid
    else:
        raise GenerationError(f"engine must be 'tinysoundfont' or 'fluidsynth', got {engine!r}")
    try:
        return _render_on(synth, sfid, ev, spec, sample_rate)
    finally:
        if engine == "fluidsynth" and not synth.cached:
            synth.close()


def _render_on(synth: tinysoundfont.Synth, sfid: int, ev: Events, spec: RenderSpec,
               sample_rate: int) -> np.ndarray:
    """The body of :func:`render` on a given synthesizer (tinysoundfont or FluidSynth's adapter)."""
    rng = np.random.default_rng(spec.seed)
    sec_per_ql = 60.0 / spec.qbpm
    need_ql = spec.duration_s / sec_per_ql
    window = _window(ev, spec.start_ql, need_ql)
    channels, chan = _assign_channels(synth, sfid, spec)
    n_total = int(round(spec.duration_s * sample_rate))
    events = _note_events(window, spec, channels, sec_per_ql, sample_rate, rng)
    if spec.drone is not None and chan <= 15:
        events.extend(_drone_events(synth, sfid, spec, chan, n_total))
    out = _play(synth, events, n_total, sample_rate)
    return _master(out.mean(axis=1), sample_rate, rng)


def _assign_channels(synth: tinysoundfont.Synth, sfid: int,
                     spec: RenderSpec) -> tuple[dict[tuple[int, int], tuple[int, int]], int]:
    """Give each (voice, program index) its own MIDI channel and select its program there.

    Channels are handed out in order, skipping 9 (General MIDI drums); pairs beyond channel 15
    are not played.

    Returns:
        ``(voice, k) -> (channel, octave shift)``, and the next unused channel number (which
        may be 9 or above 15; the drone decides what to do with it).
    """
    channels: dict[tuple[int, int], tuple[int, int]] = {}
    chan = 0
    for v, progs in enumerate(spec.programs):
        for k, prog in enumerate(progs):
            if chan == 9:
                chan += 1
            if chan > 15:
                break
            synth.program_select(chan, sfid, 0, int(prog))
            channels[(v, k)] = (chan, spec.octave_shift[v][k])
            chan += 1
    return channels, chan


def _note_events(window: tuple[np.ndarray, ...], spec: RenderSpec,
                 channels: dict[tuple[int, int], tuple[int, int]], sec_per_ql: float,
                 sample_rate: int, rng: np.random.Generator) -> list[_MidiEvent]:
    """Note-on and note-off events of the excerpt, humanised.

    Args:
        window: the excerpt from :func:`_window`: onset, duration (quarter notes from the
            excerpt start), pitch, voice, metrical strength and velocity offset, each ``[n]``.
        spec: programs, transposition and base velocity.
        channels: from :func:`_assign_channels`; pairs without a channel stay silent.
        sec_per_ql: seconds per quarter note at the render's tempo.
        sample_rate: to turn seconds into sample positions.
        rng: the render's generator; draws ``n`` onset jitters, then one velocity per note.

    Returns:
        Unsorted events; keys outside 12..115 after transposition and octave shift are dropped.
    """
    on, du, pi, vo, st, vx = window
    events: list[_MidiEvent] = []
    jitter = rng.normal(0.0, 0.008, size=len(on))
    for i in range(len(on)):
        v = int(vo[i]) % len(spec.programs)
        start = max(0.0, on[i] * sec_per_ql + jitter[i])
        end = start + max(0.05, du[i] * sec_per_ql * 0.92)
        accent = spec.accent * float(st[i])  # players stress the meter: downbeats most, then beats
        # + 0.0 when there is no velocity curve: the same float, so old renders are unchanged
        vel = int(np.clip(spec.velocity + accent + rng.normal(0, 5) - 4 * v + float(vx[i]), 20, 127))
        for k in range(len(spec.programs[v])):
            if (v, k) not in channels:
                continue
            c, octv = channels[(v, k)]
            key = int(pi[i]) + spec.transpose + 12 * octv
            if not 12 <= key <= 115:
                continue
            events.append((int(start * sample_rate), 1, c, key, vel))
            events.append((int(end * sample_rate), 0, c, key, 0))
    return events


def _drone_events(synth: tinysoundfont.Synth, sfid: int, spec: RenderSpec, chan: int,
                  n_total: int) -> list[_MidiEvent]:
    """A tonic and fifth held for the whole excerpt on channel ``chan`` (10 when that is 9)."""
    dc = chan if chan != 9 else 10
    synth.program_select(dc, sfid, 0, int(spec.drone))
    root = spec.drone_pitch + spec.transpose
    events: list[_MidiEvent] = []
    for key in (root, root + 7):
        events.append((0, 1, dc, key, max(30, spec.velocity - 30)))
        events.append((n_total - 1, 0, dc, key, 0))
    return events


def _play(synth: tinysoundfont.Synth, events: list[_MidiEvent], n_total: int,
          sample_rate: int) -> np.ndarray:
    """Generate ``n_total`` samples, sending each event at its sample. Returns float32 ``[n_total, 2]``.

    Events past the end are sent at the end. Afterwards every note and sound is stopped and the
    release tails are flushed, so the cached synthesizer starts the next render silent.
    """
    events.sort()
    out = np.zeros((n_total, 2), dtype=np.float32)
    pos = 0
    for sample, kind, c, key, vel in events:
        sample = min(sample, n_total)
        if sample > pos:
            out[pos:sample] = np.frombuffer(synth.generate(sample - pos), dtype=np.float32).reshape(-1, 2)
            pos = sample
        if kind == 1:
            synth.noteon(c, key, vel)
        else:
            synth.noteoff(c, key)
    if pos < n_total:
        out[pos:] = np.frombuffer(synth.generate(n_total - pos), dtype=np.float32).reshape(-1, 2)
    synth.notes_off()
    synth.sounds_off()
    # flush the release tails so the next render starts silent
    synth.generate(int(0.5 * sample_rate))
    return out


def _master(mono: np.ndarray, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """Fade out the last 0.3 s and normalise to a peak of 0.5, then a random -6..0 dB level.

    Args:
        mono: float32 ``[samples]``; faded in place.
        sample_rate: for the fade length.
        rng: the render's generator (its last draw is the level).

    Returns:
        float32 ``[samples]``.

    Raises:
        GenerationError: the excerpt is silent (no playable notes).
    """
    fade = min(len(mono), int(0.3 * sample_rate))
    mono[-fade:] *= np.linspace(1.0, 0.0, fade, dtype=np.float32)
    peak = float(np.abs(mono).max())
    if peak < 1e-5:
        raise GenerationError("render is silent (no playable notes in the excerpt)")
    return (mono / peak * 0.5 * 10 ** (rng.uniform(-6, 0) / 20)).astype(np.float32)


def load_score(source_path: Path, abc: str | None) -> stream.Score | stream.Part | stream.Opus:
    """Parse one piece with music21 (ABC text of a single tune, or a corpus file).

    Args:
        source_path: the corpus file; parsed when ``abc`` is None, named in errors either way.
        abc: the text of one tune cut out of an ABC collection, or None.

    Returns:
        What music21 makes of it (a Score for the corpus's tunes and works).

    Raises:
        GenerationError: music21 could not parse it (whatever it raised is chained).
    """
    from music21 import converter

    try:
        if abc is not None:
            return converter.parse(abc, format="abc", forceSource=True)
        return converter.parse(str(source_path), forceSource=True)
    except Exception as e:  # music21 raises many unrelated types on malformed scores
        raise GenerationError(f"cannot parse {source_path}: {e}") from e
