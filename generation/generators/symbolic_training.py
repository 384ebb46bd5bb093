"""Training the symbolic generator: token sequences + render embeddings -> committed weights.

:func:`train_generator` is the whole recipe (``tunescope train-generator`` and ``train-all``
call it): parse (or load the cached) corpus melodies, read each catalog render's embedding of
the *current* encoder from the catalog database, tokenise, train with early stopping on the
validation pieces, and write ``symbolic.safetensors`` + ``symbolic.json`` (config, data,
metrics, the encoder id) + ``symbolic.md`` (the model card with the command).

The sequence of a catalog piece is its melody from the start, which is what its render played
(the demo catalog's renders start at bar 0 and loop a short piece): its embedding is the
condition. The extra pieces train with the null condition, as do ``cond_dropout`` of the
catalog pieces, so the one network serves every conditioning variant.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from generation.errors import GenerationError
from generation.generators.symbolic_data import ParsedPiece
from generation.generators.symbolic_model import MelodyModel, ModelConfig, n_params
from generation.symbolic import tokens as T

log = logging.getLogger(__name__)
WEIGHTS_DIR = Path(__file__).parent / "weights"
DEFAULT_WEIGHTS = WEIGHTS_DIR / "symbolic.safetensors"


@dataclass(frozen=True)
class Item:
    """One training sequence: tokens and (maybe) the embedding of its render."""

    tokens: np.ndarray  # int64 [L]
    cond: np.ndarray | None  # float32 [cond_dim]
    split: str
    piece_id: str


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings (saved in the sidecar)."""

    max_tokens: int = 256
    batch_size: int = 32
    lr: float = 2e-3
    weight_decay: float = 0.01
    cond_dropout: float = 0.2
    budget_s: float = 15 * 60
    max_steps: int = 100_000
    eval_every: int = 100
    patience: int = 6
    seed: int = 0
    model: ModelConfig = field(default_factory=ModelConfig)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        d = {k: getattr(self, k) for k in self.__dataclass_fields__ if k != "model"}
        d["model"] = self.model.to_dict()
        return d


def header_of(piece: ParsedPiece, row: Mapping[str, Any] | None) -> dict[str, str | None]:
    """The attribute header of a piece: the render's facts for a catalog piece, else the corpus's."""
    attrs: dict[str, str | None] = {"mode": "minor" if piece.minor else "major",
                                    "tune_type": piece.tune_type}
    if row is not None:
        attrs["tempo_class"] = row.get("tempo_bucket")
        attrs["ensemble"] = row.get("ensemble")
        attrs["tune_type"] = row.get("tune_type") or piece.tune_type
    return attrs


def piece_tokens(piece: ParsedPiece, attrs: Mapping[str, str | None], max_tokens: int) -> np.ndarray | None:
    """Key-normalised tokens of a piece (None when its meter is outside the vocabulary)."""
    if piece.meter not in T.METERS:
        return None
    shift = T.normalising_shift(piece.tonic_pc, piece.minor)
    try:
        toks = T.encode(piece.events, piece.meter, attrs, shift, max_tokens=max_tokens)
    except GenerationError:
        return None
    return np.asarray(toks, np.int64) if len(toks) > T.HEADER_LEN + 4 else None


def build_items(pieces: Sequence[ParsedPiece], rows: Mapping[str, Mapping[str, Any]],
                embeddings: Mapping[str, np.ndarray], max_tokens: int) -> list[Item]:
    """Items of every piece: catalog pieces with their row's split and embedding, extras as train.

    Args:
        pieces: parsed pieces (catalog and extra).
        rows: catalog row by piece id.
        embeddings: the render's embedding by piece id (catalog pieces that have one).
        max_tokens: sequence cap (complete bars only).
    """
    items: list[Item] = []
    for p in pieces:
        row = rows.get(p.piece_id)
        toks = piece_tokens(p, header_of(p, row), max_tokens)
        if toks is None:
            continue
        split = str(row.get("split")) if row is not None else "train"
        items.append(Item(toks, embeddings.get(p.piece_id), split, p.piece_id))
    return items


def _batch(items: Sequence[Item], cond_dim: int, drop: np.ndarray | None = None
           ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(cond ``[B, d]``, has ``[B]``, tokens ``[B, L]`` PAD-padded) of a list of items."""
    # Lengths padded to a multiple of 64: the CPU GRU kernels cache a primitive and its
    # workspace per input shape, and one shape per batch length grew the process past 12 GB.
    length = -(-max(len(it.tokens) for it in items) // 64) * 64
    toks = np.full((len(items), length), T.PAD, np.int64)
    cond = np.zeros((len(items), cond_dim), np.float32)
    has = np.zeros(len(items), bool)
    for i, it in enumerate(items):
        toks[i, :len(it.tokens)] = it.tokens
        if it.cond is not None and (drop is None or not drop[i]):
            cond[i] = it.cond
            has[i] = True
    return torch.from_numpy(cond), torch.from_numpy(has), torch.from_numpy(toks)


def batch_loss(model: MelodyModel, items: Sequence[Item], drop: np.ndarray | None = None) -> torch.Tensor:
    """Mean next-token cross-entropy over the non-PAD targets (BOS is never a target)."""
    cond, has, toks = _batch(items, model.config.cond_dim, drop)
    logits = model(cond, has, toks)
    return torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                             toks[:, 1:].reshape(-1), ignore_index=T.PAD)


@torch.no_grad()
def evaluate(model: MelodyModel, items: Sequence[Item], null: bool = False, batch_size: int = 64) -> float:
    """Token-weighted mean cross-entropy (nats) of ``items``, with their condition or the null one."""
    model.eval()
    total, count = 0.0, 0
    for s in range(0, len(items), batch_size):
        chunk = items[s:s + batch_size]
        drop = np.ones(len(chunk), bool) if null else None
        n = sum(len(it.tokens) - 1 for it in chunk)
        total += float(batch_loss(model, chunk, drop)) * n
        count += n
    return total / max(count, 1)


def train(train_items: Sequence[Item], val_items: Sequence[Item], config: TrainConfig,
          progress: Callable[[dict[str, float]], None] | None = None
          ) -> tuple[MelodyModel, dict[str, Any]]:
    """Train a :class:`MelodyModel`, keeping the state with the best conditioned validation loss.

    Stops at ``budget_s`` seconds, ``max_steps`` steps, or after ``patience`` evaluations
    without improvement.

    Returns:
        The best model (eval mode) and the metrics: steps, seconds, train/validation losses.
    """
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    model = MelodyModel(config.model)
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    val = [it for it in val_items if it.cond is not None] or list(val_items)
    order = np.argsort([len(it.tokens) for it in train_items])  # length buckets: little padding
    buckets = [order[i:i + config.batch_size] for i in range(0, len(order), config.batch_size)]
    t0, step, best, bad, history = time.monotonic(), 0, math.inf, 0, []
    best_state = {k: v.clone() for k, v in model.state_dict().items()}
    while step < config.max_steps and time.monotonic() - t0 < config.budget_s and bad < config.patience:
        for b in rng.permutation(len(buckets)):
            model.train()
            chunk = [train_items[i] for i in buckets[b]]
            lr = config.lr * min(1.0, (step + 1) / 100)  # warm-up, then constant (early stopping decides)
            for g in opt.param_groups:
                g["lr"] = lr
            loss = batch_loss(model, chunk, rng.random(len(chunk)) < config.cond_dropout)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            step += 1
            if step % config.eval_every == 0:
                v = evaluate(model, val)
                history.append({"step": step, "train": float(loss.detach()), "val": v,
                                "seconds": round(time.monotonic() - t0, 1)})
                if progress:
                    progress(history[-1])
                if v < best - 1e-4:
                    best, bad = v, 0
                    best_state = {k: t.clone() for k, t in model.state_dict().items()}
                else:
                    bad += 1
            if step >= config.max_steps or time.monotonic() - t0 >= config.budget_s or bad >= config.patience:
                break
    if not history or history[-1]["step"] != step:  # the last steps were never evaluated
        v = evaluate(model, val)
        history.append({"step": step, "train": float(loss.detach()), "val": v,
                        "seconds": round(time.monotonic() - t0, 1)})
        if v < best - 1e-4:
            best_state = {k: t.clone() for k, t in model.state_dict().items()}
    model.load_state_dict(best_state)
    model.eval()
    metrics = {"steps": step, "seconds": round(time.monotonic() - t0, 1), "history": history,
               "stopped_by": "patience" if bad >= config.patience else
               ("steps" if step >= config.max_steps else "budget"),
               "params": n_params(model)}
    return model, metrics


def save_weights(model: MelodyModel, path: Path, sidecar: Mapping[str, Any]) -> str:
    """Write ``path`` (safetensors) and ``path.with_suffix('.json')``; returns the weights id."""
    from safetensors.torch import save_file

    from retrieval.encoders.common import weights_digest

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.safetensors")
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp))
    tmp.replace(path)
    wid = f"symbolic@{weights_digest([path])}"
    meta = dict(sidecar)
    meta["weights_id"] = wid
    path.with_suffix(".json").write_text(json.dumps(meta, indent=2) + "\n")
    return wid


def load_model(path: Path) -> tuple[MelodyModel, dict[str, Any]]:
    """The network and its sidecar from ``path`` (``.safetensors``) and ``path.with_suffix('.json')``.

    Raises:
        GeneratorWeightsNotFound: either file is missing.
    """
    from safetensors.torch import load_file

    from generation.errors import GeneratorWeightsNotFound

    side = path.with_suffix(".json")
    if not path.is_file() or not side.is_file():
        raise GeneratorWeightsNotFound(
            f"symbolic generator weights not found at {path} (+ {side.name}); they ship with "
            "tunescope, and `tunescope train-generator` makes them again")
    meta = json.loads(side.read_text())
    model = MelodyModel(ModelConfig(**meta["config"]["model"]))
    model.load_state_dict(load_file(str(path)))
    model.eval()
    return model, meta


def catalog_embeddings(catalog_dir: Path, rows: Sequence[Mapping[str, Any]], database_url: str,
                       encoder_id: str, dim: int) -> dict[str, np.ndarray]:
    """Piece id -> the stored embedding of its render (by the file's content hash).

    Raises:
        GenerationError: the database holds no embedding of ``encoder_id`` for these files
            (run ``tunescope embed`` after changing the encoder).
    """
    from index.store import hash_file

    stored = _stored_vectors(database_url, encoder_id, dim)
    out: dict[str, np.ndarray] = {}
    for r in rows:
        path = catalog_dir / r["path"]
        if path.is_file() and (v := stored.get(hash_file(path))) is not None:
            out[r["piece_id"]] = np.asarray(v, np.float32)
    if not out:
        raise GenerationError(
            f"no stored embedding of encoder {encoder_id!r} for the catalog in {catalog_dir}; "
            "ingest it and run `tunescope embed` with that encoder first")
    return out


def _stored_vectors(database_url: str, encoder_id: str, dim: int) -> dict[str, np.ndarray]:
    """Content hash -> stored vector, read straight from the two tables it needs.

    Not through ``open_catalog``: that checks the schema revision, and a database migrated by a
    newer tunescope (tables this code does not know) must not stop a read of ``tracks`` and
    ``embeddings``, whose columns used here do not change. Read-only; creates nothing.
    """
    from sqlalchemy import create_engine, select
    from sqlalchemy.engine import make_url
    from sqlalchemy.orm import Session

    from index.models import Track
    from index.vectors import load_embeddings

    url = make_url(database_url)
    if url.get_backend_name() == "sqlite" and not Path(url.database or "").is_file():
        return {}
    engine = create_engine(url)
    try:
        with Session(engine) as session:
            ids, vecs = load_embeddings(session, encoder_id, dim)
            hashes = dict(session.execute(select(Track.id, Track.content_hash)).tuples().all())
    finally:
        engine.dispose()
    return {hashes[int(t)]: v for t, v in zip(ids, vecs, strict=True) if int(t) in hashes}


def train_generator(catalog_dir: str | Path, database_url: str, encoder_id: str, *,
                    cache_dir: str | Path, out: Path = DEFAULT_WEIGHTS, extra_pieces: int = 2500,
                    config: TrainConfig | None = None, workers: int = 1, command: str = "",
                    progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """The whole recipe: data, training, weights + sidecar + model card (module docstring).

    Args:
        catalog_dir: the demo catalog (``metadata.jsonl`` + audio).
        database_url: the catalog database holding the renders' embeddings.
        encoder_id: the encoder whose embeddings condition the model (recorded in the sidecar).
        cache_dir: where parsed melodies are cached (``$TUNESCOPE_HOME/generator-data``).
        out: the weights file; the sidecar and the card go beside it.
        extra_pieces: train-split corpus tunes without embeddings (null condition).
        config: training settings.
        workers: parsing processes.
        command: the command line that ran this (written into the card).
        progress: receives one line per stage and evaluation.

    Returns:
        The sidecar (config, data, metrics, encoder id, weights id).
    """
    from generation.generators.symbolic_data import extra_sources, parse_sources, sources_by_id
    from retrieval.prior.data import load_rows

    config = config or TrainConfig()
    say = progress or (lambda s: None)
    torch.set_num_threads(1)  # the machine is shared: one core, predictable wall time
    catalog_dir = Path(catalog_dir)
    rows = load_rows(catalog_dir)
    by_piece = {r["piece_id"]: r for r in rows}
    emb = catalog_embeddings(catalog_dir, rows, database_url, encoder_id, config.model.cond_dim)
    say(f"{len(emb)} of {len(rows)} catalog renders have an embedding of {encoder_id}")
    cat_sources = sources_by_id(list(by_piece))
    pieces = parse_sources(cat_sources, cache_dir, workers)
    if extra_pieces:
        pieces += parse_sources(extra_sources(set(by_piece), extra_pieces, config.seed), cache_dir, workers)
    items = build_items(pieces, by_piece, emb, config.max_tokens)
    split = {s: [it for it in items if it.split == s] for s in ("train", "validation", "test")}
    say(f"items: {', '.join(f'{k} {len(v)}' for k, v in split.items())} "
        f"({sum(it.cond is not None for it in split['train'])} conditioned train)")
    model, metrics = train(split["train"], split["validation"], config,
                           lambda h: say(f"step {h['step']}: train {h['train']:.3f} val {h['val']:.3f} "
                                         f"({h['seconds']:.0f} s)"))
    test_cond = [it for it in split["test"] if it.cond is not None]
    metrics["test_nll_conditioned"] = evaluate(model, test_cond)
    metrics["test_nll_null"] = evaluate(model, test_cond, null=True)
    metrics["val_nll_conditioned"] = evaluate(model, [it for it in split["validation"] if it.cond is not None])
    sidecar = {"config": config.to_dict(), "encoder_id": encoder_id, "vocab": len(T.VOCAB),
               "data": {"catalog": str(catalog_dir), "catalog_rows": len(rows),
                        "conditioned_train": sum(it.cond is not None for it in split["train"]),
                        "null_train": sum(it.cond is None for it in split["train"]),
                        "validation": len(split["validation"]), "test": len(split["test"])},
               "metrics": metrics, "command": command}
    sidecar["weights_id"] = save_weights(model, Path(out), sidecar)
    write_card(Path(out).with_suffix(".md"), sidecar)
    return sidecar


def write_card(path: Path, sidecar: Mapping[str, Any]) -> None:
    """The model card: what it is, the data, the metrics, the exact command."""
    m, d, c = sidecar["metrics"], sidecar["data"], sidecar["config"]
    lines = [
        "# symbolic: the embedded default generator", "",
        "A GRU over key-normalised melody tokens (`generation/symbolic/tokens.py`), conditioned on",
        "the clap-mini audio embedding of each piece's render through a learned prefix projection",
        "(MusicLM-style), with interpretable attribute tokens (meter, mode, tempo class, tune type,",
        "ensemble) that the request can force. Accompaniment comes from",
        "`generation.symbolic.arrange.accompany`; audio from the soundfont renderer.", "",
        f"- weights id: `{sidecar['weights_id']}`; {m['params']:,} parameters",
        f"- conditioned on encoder `{sidecar['encoder_id']}` (the generator warns or refuses when",
        "  the configured encoder differs: retrain with the command below after `tunescope embed`)",
        f"- data: {d['conditioned_train']} catalog train renders with their embedding, "
        f"{d['null_train']} sequences with the null condition (extra train-split corpus tunes and",
        f"  catalog pieces without an embedding); validation {d['validation']} pieces (early "
        f"stopping), test {d['test']} pieces",
        f"- training: {m['steps']} steps in {m['seconds']} s on one thread (stopped by "
        f"{m['stopped_by']}); batch {c['batch_size']}, lr {c['lr']}, condition dropout {c['cond_dropout']}",
        f"- held-out token NLL (nats/token): validation {m['val_nll_conditioned']:.3f}; test "
        f"{m['test_nll_conditioned']:.3f} conditioned vs {m['test_nll_null']:.3f} with the null "
        "condition (the gap is what the embedding tells the model)", "",
        "Reproduce (with `TUNESCOPE_HOME` holding the demo catalog and its database, whose stored",
        "embeddings of the configured encoder are the conditions; parsed melodies are cached in",
        "`$TUNESCOPE_HOME/generator-data/`):", "",
        "```bash", sidecar.get("command") or "tunescope train-generator", "```", "",
    ]
    path.write_text("\n".join(lines))
