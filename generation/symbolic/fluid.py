"""A second synthesis engine: FluidSynth, for training audio that is not all one renderer.

:func:`generation.symbolic.render.render` plays note events into tinysoundfont by default;
``render(ev, spec, sr, engine="fluidsynth", fluid=FluidSettings(...))`` plays the same events
through FluidSynth instead (pyfluidsynth + ``libfluidsynth3``). FluidSynth differs in ways an
encoder can latch onto: its own sample interpolation, envelope and filter implementation, and
a reverb and chorus that tinysoundfont does not have.

The adapter below gives FluidSynth the small interface ``render`` drives (``program_select``,
``noteon``, ``noteoff``, ``generate``, ``notes_off``, ``sounds_off``), so both engines share the
same channel assignment, humanisation and mastering. Two facts about FluidSynth matter:

- audio is read with ``fluid_synth_write_float`` (not pyfluidsynth's ``get_samples``, which
  writes dithered 16-bit: the dither state carries over between calls, so the same render would
  not give the same samples twice);
- every render gets a fresh synthesizer (see :func:`fluid_engine`), so the same events, spec
  and settings give the same samples whatever ran before;
- FluidSynth renders in internal blocks of 64 samples and applies a note event at the next block,
  so onsets are accurate to 64 samples (2.9 ms at 22.05 kHz), below the 8 ms onset jitter that
  ``render`` adds anyway. tinysoundfont is exact to the sample.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass
from typing import Any

import numpy as np

from generation.errors import GenerationError

#: FluidSynth's interpolation methods (``fluid_interp``), by name.
INTERPOLATION = {"none": 0, "linear": 1, "4th": 4, "7th": 7}

INSTALL_HINT = ("FluidSynth is not available: `pip install 'pyfluidsynth>=1.3'` and "
                "`apt-get install -y libfluidsynth3` (both done by `make soundfonts`)")


@dataclass(frozen=True)
class FluidSettings:
    """How FluidSynth plays: interpolation, reverb and chorus (FluidSynth's own ranges).

    Attributes:
        interpolation: a key of :data:`INTERPOLATION` (FluidSynth's default is "4th").
        reverb: reverb on or off.
        reverb_room: room size 0..1.
        reverb_damping: high-frequency damping 0..1.
        reverb_width: stereo width 0..100.
        reverb_level: wet level 0..1.
        chorus: chorus on or off.
        chorus_voices: chorus voice count 0..99.
        chorus_level: 0..10.
        chorus_speed: LFO rate in Hz, 0.1..5.
        chorus_depth_ms: 0..21.
        gain: FluidSynth's master gain (the render is peak-normalised afterwards, so this only
            matters for how hard polyphony drives the reverb; 0.2 is FluidSynth's default).
    """

    interpolation: str = "4th"
    reverb: bool = False
    reverb_room: float = 0.5
    reverb_damping: float = 0.3
    reverb_width: float = 0.8
    reverb_level: float = 0.5
    chorus: bool = False
    chorus_voices: int = 3
    chorus_level: float = 1.5
    chorus_speed: float = 0.3
    chorus_depth_ms: float = 6.0
    gain: float = 0.4

    def __post_init__(self) -> None:
        if self.interpolation not in INTERPOLATION:
            raise GenerationError(f"interpolation must be one of {sorted(INTERPOLATION)}, "
                                  f"got {self.interpolation!r}")


def _import_fluidsynth() -> Any:
    """pyfluidsynth, or a :class:`GenerationError` that says what to install."""
    try:
        import fluidsynth
    except (ImportError, OSError) as e:  # no package, or the package without libfluidsynth
        raise GenerationError(f"{INSTALL_HINT} ({type(e).__name__}: {e})") from e
    return fluidsynth


class FluidSynthEngine:
    """One FluidSynth synthesizer behind the interface that ``render`` drives.

    Args:
        soundfont_path: the .sf2/.sf3 file to load.
        sample_rate: output rate in Hz.
        reverb: create the synthesizer with its reverb unit active.
        chorus: likewise the chorus unit.

    Raises:
        GenerationError: FluidSynth is not installed, or it could not load the soundfont.
    """

    cached = False  # a process-wide engine (SF3 banks, see _cached_engine): render must not close it

    def __init__(self, soundfont_path: str, sample_rate: int, reverb: bool, chorus: bool) -> None:
        fs = _import_fluidsynth()
        self._fs = fs
        self.synth = fs.Synth(gain=0.2, samplerate=float(sample_rate),
                              **{"synth.reverb.active": int(reverb), "synth.chorus.active": int(chorus)})
        self.sfid = self.synth.sfload(soundfont_path)
        if self.sfid < 0:
            raise GenerationError(f"FluidSynth could not load {soundfont_path}")
        fl = fs._fl
        self._write = fl.fluid_synth_write_float
        self._write.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_int,
                                ctypes.c_int, ctypes.c_void_p, ctypes.c_int, ctypes.c_int]
        self._write.restype = ctypes.c_int
        self._interp = fl.fluid_synth_set_interp_method
        self._interp.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int]
        self._gain = fl.fluid_synth_set_gain
        self._gain.argtypes = [ctypes.c_void_p, ctypes.c_float]

    def configure(self, settings: FluidSettings) -> None:
        """Apply one render's settings."""
        self._interp(self.synth.synth, -1, INTERPOLATION[settings.interpolation])
        self._gain(self.synth.synth, float(settings.gain))
        if settings.reverb:
            self.synth.set_reverb(settings.reverb_room, settings.reverb_damping,
                                  settings.reverb_width, settings.reverb_level)
        if settings.chorus:
            self.synth.set_chorus(int(settings.chorus_voices), settings.chorus_level,
                                  settings.chorus_speed, settings.chorus_depth_ms, 0)

    def program_select(self, chan: int, sfid: int, bank: int, preset: int) -> None:
        """Select a preset on a channel."""
        self.synth.program_select(chan, sfid, bank, preset)

    def noteon(self, chan: int, key: int, vel: int) -> None:
        """Start a note."""
        self.synth.noteon(chan, key, vel)

    def noteoff(self, chan: int, key: int) -> None:
        """Release a note."""
        self.synth.noteoff(chan, key)

    def generate(self, n: int) -> np.ndarray:
        """``n`` stereo frames as interleaved float32 ``[2n]``."""
        out = np.empty(2 * n, dtype=np.float32)
        ptr = out.ctypes.data
        if self._write(self.synth.synth, n, ptr, 0, 2, ptr, 1, 2) != 0:
            raise GenerationError("FluidSynth failed to write audio")
        return out

    def notes_off(self) -> None:
        """Release every note on every channel."""
        for c in range(16):
            self.synth.all_notes_off(c)

    def sounds_off(self) -> None:
        """Silence everything and reset the synthesizer, reverb and chorus buffers included."""
        self.synth.system_reset()

    def close(self) -> None:
        """Free the synthesizer and its copy of the soundfont."""
        self.synth.delete()


def fluid_engine(soundfont: str, sample_rate: int, reverb: bool, chorus: bool) -> FluidSynthEngine:
    """A fresh FluidSynth for one render (the caller closes it).

    Not cached, unlike tinysoundfont's synthesizer: FluidSynth keeps per-sample state that it
    fills in the first time a sample sounds, and a note played on a fresh sample differs (up to
    ~2e-4 of full scale, measured with TimGM6mb) from the same note played later, so a cached
    synthesizer would make each render depend on what the process rendered before. A fresh one
    costs 35 ms with TimGM6mb and 0.27 s with FluidR3 (loading the bank) on this machine.
    """
    from generation.symbolic.render import soundfont_paths

    _import_fluidsynth()
    paths = soundfont_paths()
    if soundfont not in paths:
        raise GenerationError(
            f"soundfont {soundfont!r} is not installed (have {sorted(paths)}); "
            "run `make soundfonts` for the Debian banks"
        )
    path = paths[soundfont]
    if path.endswith(".sf3"):
        return _cached_engine(path, sample_rate, reverb, chorus)
    return FluidSynthEngine(path, sample_rate, reverb, chorus)


_CACHED: dict[tuple[str, int, bool, bool], FluidSynthEngine] = {}


def _cached_engine(path: str, sample_rate: int, reverb: bool, chorus: bool) -> FluidSynthEngine:
    """One engine per process for a compressed (SF3) bank, reused across renders.

    FluidSynth decodes every Ogg sample of an SF3 bank when it loads it: 7.4 s for
    MuseScore_General_Lite.sf3 here, against 0.1-0.7 s for the SF2 banks. A fresh engine per
    render would make the held-out evaluation set cost an hour, so SF3 engines are kept, at
    the price the docstring above names: a render may differ by ~2e-4 of full scale depending
    on what the process played before (far below anything an encoder hears). ``render``
    leaves a cached engine open.
    """
    key = (path, sample_rate, reverb, chorus)
    if key not in _CACHED:
        engine = FluidSynthEngine(path, sample_rate, reverb, chorus)
        engine.cached = True
        _CACHED[key] = engine
    return _CACHED[key]


def fluid_available() -> bool:
    """Whether pyfluidsynth and libfluidsynth import here."""
    try:
        _import_fluidsynth()
    except GenerationError:
        return False
    return True
