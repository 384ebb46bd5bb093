"""Audio features of the embedded default encoder, in torch (no librosa, no torchaudio).

Three views of a mono 16 kHz waveform, all at 50 frames per second so they align:
- ``logmel`` [64, T]: timbre and texture (what instruments, how dense);
- ``chroma`` [24, T]: a 12-bin pitch-class profile over the full range and another over the
  low range (60-400 Hz) only. Mode is a relation between the tonic (often in the bass) and its third,
  which a log-mel CNN at this budget does not find by itself (see FIELD-NOTES' probe);
- ``onset`` [T]: positive spectral flux, whose periodicity is the tempo and the meter.

The same function computes features for training (in worker processes) and for inference,
so the two cannot drift apart.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch

SAMPLE_RATE = 16000
HOP = 320  # 20 ms: 50 frames per second
N_FFT = 1024
N_FFT_CHROMA = 4096
N_MELS = 64
FPS = SAMPLE_RATE / HOP
#: Bumped whenever feature computation changes: cached training renders built with another
#: version are stale (``api.encoder_jobs.cached_feature_set`` checks it).
FEATURE_VERSION = 2


def _hz_to_mel(f: np.ndarray) -> np.ndarray:
    return 2595.0 * np.log10(1.0 + f / 700.0)


def _mel_to_hz(m: np.ndarray) -> np.ndarray:
    return 700.0 * (10 ** (m / 2595.0) - 1.0)


@functools.lru_cache(maxsize=4)
def mel_filters(n_mels: int = N_MELS, n_fft: int = N_FFT, sr: int = SAMPLE_RATE,
                fmin: float = 30.0, fmax: float = 8000.0) -> torch.Tensor:
    """Triangular HTK mel filterbank, ``[n_mels, n_fft // 2 + 1]``, area-normalised."""
    freqs = np.linspace(0, sr / 2, n_fft // 2 + 1)
    pts = _mel_to_hz(np.linspace(_hz_to_mel(np.array(fmin)), _hz_to_mel(np.array(fmax)), n_mels + 2))
    fb = np.zeros((n_mels, len(freqs)), dtype=np.float32)
    for i in range(n_mels):
        lo, c, hi = pts[i], pts[i + 1], pts[i + 2]
        up = (freqs - lo) / max(c - lo, 1e-6)
        down = (hi - freqs) / max(hi - c, 1e-6)
        fb[i] = np.maximum(0, np.minimum(up, down)) * (2.0 / max(hi - lo, 1e-6))
    return torch.from_numpy(fb)


@functools.lru_cache(maxsize=4)
def chroma_filters(n_fft: int = N_FFT_CHROMA, sr: int = SAMPLE_RATE, fmin: float = 50.0,
                   fmax: float = 2100.0) -> torch.Tensor:
    """Pitch-class weights ``[12, n_fft // 2 + 1]`` over the STFT bins between ``fmin`` and ``fmax``.

    A Gaussian (0.3 semitone) around each equal-tempered pitch, folded onto its pitch class
    (index 0 = C).
    """
    freqs = np.linspace(0, sr / 2, n_fft // 2 + 1)
    fb = np.zeros((12, len(freqs)), dtype=np.float32)
    ok = (freqs >= fmin) & (freqs <= fmax)
    midi = 69 + 12 * np.log2(np.where(ok, freqs, 1.0) / 440.0)
    nearest = np.round(midi)
    w = np.exp(-0.5 * ((midi - nearest) / 0.3) ** 2) * ok
    pcs = (nearest.astype(int) % 12)
    for pc in range(12):
        fb[pc] = np.where(pcs == pc, w, 0.0)
    return torch.from_numpy(fb)


@functools.lru_cache(maxsize=4)
def _window(n: int) -> torch.Tensor:
    return torch.hann_window(n)


@torch.no_grad()
def compute_features(wave: torch.Tensor) -> dict[str, torch.Tensor]:
    """Features of a batch of waveforms.

    Args:
        wave: float32 ``[B, samples]`` mono at 16 kHz.

    Returns:
        ``logmel`` [B, 64, T], ``chroma`` [B, 24, T], ``onset`` [B, T] with T = samples // 320 + 1.
    """
    if wave.dim() == 1:
        wave = wave[None]
    spec = torch.stft(wave, N_FFT, HOP, window=_window(N_FFT), center=True,
                      pad_mode="constant", return_complex=True).abs() ** 2
    mel = mel_filters().to(wave.device) @ spec
    logmel = 10.0 * torch.log10(mel + 1e-10)
    # per-clip level normalisation: the loudness of a render is not a property of the music
    logmel = logmel - logmel.amax(dim=(1, 2), keepdim=True)
    logmel = torch.clamp(logmel, min=-80.0) / 20.0 + 2.0
    cspec = torch.stft(wave, N_FFT_CHROMA, HOP, window=_window(N_FFT_CHROMA), center=True,
                       pad_mode="constant", return_complex=True).abs()
    full = chroma_filters().to(wave.device) @ cspec
    bass = chroma_filters(fmin=60.0, fmax=400.0).to(wave.device) @ cspec
    chroma = torch.cat([_norm_chroma(full), _norm_chroma(bass)], dim=1)
    flux = torch.relu(logmel[:, :, 1:] - logmel[:, :, :-1]).mean(dim=1)
    onset = torch.cat([torch.zeros_like(flux[:, :1]), flux], dim=1)
    onset = onset / (onset.amax(dim=1, keepdim=True) + 1e-6)
    return {"logmel": logmel.float(), "chroma": chroma.float(), "onset": onset.float()}


def _norm_chroma(c: torch.Tensor) -> torch.Tensor:
    """Log-compressed chroma ``[B, 12, T]`` (full or bass), normalised per clip, not per frame.

    A per-frame normalisation gives rests and reverb tails the weight of full chords, which
    blurs the key profile.
    """
    c = c / (c.amax(dim=(1, 2), keepdim=True) + 1e-8)
    return torch.log1p(20.0 * c) / math.log1p(20.0)


def frames_for(seconds: float) -> int:
    """Number of feature frames that ``seconds`` of audio give."""
    return int(math.floor(seconds * SAMPLE_RATE / HOP)) + 1
