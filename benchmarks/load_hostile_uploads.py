"""Load a running server with hostile search uploads and watch its memory.

Four client threads post hour-long silent FLACs (~670 KB, 1.4 GB decoded) and MP3s (~14 MB) to
``POST /v1/search/audio`` for ``--seconds``, while the server's RSS is sampled every 0.2 s.
PASS means the server stayed under ``--max-rss-gb`` and answered every request with a 4xx
within ``--max-latency-s``: such an upload must be refused from its header, not decoded.

    python benchmarks/load_hostile_uploads.py --pid 12345
    python benchmarks/load_hostile_uploads.py --spawn --seconds 20
"""

from __future__ import annotations

import argparse
import collections
import io
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field

import numpy as np
import requests
import soundfile as sf

_MP3_KBPS = {1: 32, 2: 40, 3: 48, 4: 56, 5: 64, 6: 80, 7: 96, 8: 112, 9: 128, 10: 160,
             11: 192, 12: 224, 13: 256, 14: 320}


def hour_flac() -> bytes:
    """An hour of 48 kHz stereo digital silence as FLAC, written a minute at a time."""
    buf = io.BytesIO()
    minute = np.zeros((48000 * 60, 2), dtype=np.int16)
    with sf.SoundFile(buf, "w", 48000, 2, format="FLAC", subtype="PCM_16") as f:
        for _ in range(60):
            f.write(minute)
    return buf.getvalue()


def hour_mp3() -> bytes:
    """An hour of 48 kHz stereo silence as MP3: one silent frame repeated (encoding an hour
    takes minutes); without a Xing header the decoder estimates an hour from the size."""
    buf = io.BytesIO()
    sf.write(buf, np.zeros((96000, 2), dtype=np.float32), 48000, format="MP3")
    data, frames, i = buf.getvalue(), [], 0
    while i + 4 <= len(data):
        size = 144 * _MP3_KBPS[data[i + 2] >> 4] * 1000 // 48000 + ((data[i + 2] >> 1) & 1)
        frames.append(data[i:i + size])
        i += size
    return frames[10] * (3600 * 48000 // 1152)


def rss_bytes(pid: int) -> int:
    """Resident set size of ``pid`` (psutil when installed, else /proc)."""
    try:
        import psutil
    except ImportError:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        return 0
    return int(psutil.Process(pid).memory_info().rss)


@dataclass
class Tally:
    """What the client threads saw; one lock, appended to from every thread."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    codes: collections.Counter[str] = field(default_factory=collections.Counter)
    max_latency_s: float = 0.0
    slow_or_not_4xx: int = 0

    def add(self, code: str, latency_s: float, ok: bool) -> None:
        with self.lock:
            self.codes[code] += 1
            self.max_latency_s = max(self.max_latency_s, latency_s)
            self.slow_or_not_4xx += not ok


def client(url: str, uploads: list[tuple[str, bytes, str]], stop: threading.Event, tally: Tally,
           max_latency_s: float, timeout_s: float) -> None:
    """Post the uploads in turn until ``stop``; a timeout or a refused connection counts."""
    session = requests.Session()
    i = 0
    while not stop.is_set():
        name, data, ctype = uploads[i % len(uploads)]
        i += 1
        t0 = time.perf_counter()
        try:
            r = session.post(f"{url}/v1/search/audio", files={"file": (name, data, ctype)},
                             timeout=timeout_s)
            code = str(r.status_code)
        except requests.RequestException as e:
            code = type(e).__name__
        latency = time.perf_counter() - t0
        tally.add(code, latency, code.startswith("4") and latency <= max_latency_s)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def spawn_server(home: str) -> tuple[subprocess.Popen[bytes], str]:
    """Start ``tunescope serve`` on a free port with an empty catalog in ``home``; wait for it."""
    port = free_port()
    env = {**os.environ, "TUNESCOPE_HOME": home}
    proc = subprocess.Popen([sys.executable, "-m", "api.cli", "serve", "--host", "127.0.0.1",
                             "--port", str(port)], env=env)
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        if proc.poll() is not None:
            raise SystemExit(f"the server exited with {proc.returncode} before answering")
        try:
            requests.get(f"{url}/docs", timeout=1)
            return proc, url
        except requests.RequestException:
            time.sleep(0.2)
    proc.terminate()
    raise SystemExit("the server did not answer within 120 s")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", default="http://127.0.0.1:8000", help="server base URL")
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--pid", type=int, help="the server's process id (for its RSS)")
    who.add_argument("--spawn", action="store_true",
                     help="start `tunescope serve` on a free port with a temp TUNESCOPE_HOME")
    p.add_argument("--seconds", type=float, default=60.0, help="how long to load (default 60)")
    p.add_argument("--threads", type=int, default=4, help="client threads (default 4)")
    p.add_argument("--max-rss-gb", type=float, default=1.0, help="PASS bound on peak RSS")
    p.add_argument("--max-latency-s", type=float, default=1.0, help="PASS bound per answer")
    return p.parse_args(argv)


def run(args: argparse.Namespace, url: str, pid: int) -> bool:
    """Load ``url`` while sampling ``pid``'s RSS; print the figures; return PASS."""
    print("building an hour of silence as FLAC and MP3...", flush=True)
    uploads = [("hour.flac", hour_flac(), "audio/flac"), ("hour.mp3", hour_mp3(), "audio/mpeg")]
    stop, tally = threading.Event(), Tally()
    threads = [threading.Thread(target=client, daemon=True,
                                args=(url, uploads, stop, tally, args.max_latency_s,
                                      max(10.0, 10 * args.max_latency_s)))
               for _ in range(args.threads)]
    peak_rss = rss_bytes(pid)
    for t in threads:
        t.start()
    deadline = time.monotonic() + args.seconds
    while time.monotonic() < deadline:
        peak_rss = max(peak_rss, rss_bytes(pid))
        time.sleep(0.2)
    stop.set()
    for t in threads:
        t.join()
    requests_n = sum(tally.codes.values())
    ok = (requests_n > 0 and tally.slow_or_not_4xx == 0
          and peak_rss < args.max_rss_gb * 2**30)
    print(f"requests:       {requests_n}")
    print(f"status codes:   {dict(sorted(tally.codes.items()))}")
    print(f"max latency:    {tally.max_latency_s:.3f} s")
    print(f"peak RSS:       {peak_rss / 2**30:.2f} GiB")
    print(f"{'PASS' if ok else 'FAIL'}: RSS < {args.max_rss_gb:g} GiB and every answer a 4xx "
          f"within {args.max_latency_s:g} s ({tally.slow_or_not_4xx} were not)")
    return ok


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not args.spawn:
        return 0 if run(args, args.url.rstrip("/"), args.pid) else 1
    with tempfile.TemporaryDirectory(prefix="tunescope-load-") as home:
        proc, url = spawn_server(home)
        try:
            return 0 if run(args, url, proc.pid) else 1
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:  # a server still decoding hour-long uploads
                proc.kill()
                proc.wait(timeout=30)


if __name__ == "__main__":
    raise SystemExit(main())
