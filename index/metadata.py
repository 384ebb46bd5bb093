"""Catalog metadata files (``.jsonl`` or ``.csv``) matched to audio files at ingestion.

A row is matched to an audio file by its ``path`` (relative to the metadata file's folder, or
absolute); failing that, by the file name alone when exactly one row carries that name. Known
keys fill Track columns; every other key is kept in ``Track.extra`` so nothing a catalog
provides is lost.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from index.errors import CatalogError
from index.models import Track

STRING_COLUMNS = (
    "title", "artist", "collection", "piece_id", "ensemble", "tune_type", "region", "key", "mode",
    "meter", "license", "split", "origin",
)
LIST_COLUMNS = ("tags", "instruments")
KNOWN_KEYS = frozenset((*STRING_COLUMNS, *LIST_COLUMNS, "tempo_bpm", "provenance"))


def _split_list(value: Any, key: str, where: str) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [part.strip() for part in value.split(";") if part.strip()]
    if isinstance(value, list | tuple):
        return [str(v) for v in value]
    raise CatalogError(f"{where}: {key} must be a list or a ';'-separated string, got {value!r}")


def track_fields(row: Mapping[str, Any], where: str = "metadata") -> dict[str, Any]:
    """Map one metadata row to Track column values (``extra`` holds the unknown keys).

    ``artist`` falls back to ``composer`` (which is also kept in ``extra``). Strings longer than
    their column are refused here, naming the value, rather than failing a whole database batch.

    Raises:
        CatalogError: a value of the wrong type or too long for its column.
    """
    fields: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for key, value in row.items():
        if key == "path":
            continue
        if key not in KNOWN_KEYS:
            extra[key] = value
            continue
        if key in LIST_COLUMNS:
            fields[key] = _split_list(value, key, where)
        elif key == "tempo_bpm":
            if value is None or value == "":
                continue
            try:
                fields[key] = float(value)
            except (TypeError, ValueError) as e:
                raise CatalogError(f"{where}: tempo_bpm must be a number, got {value!r}") from e
        elif key == "provenance":
            if isinstance(value, str) and value:
                try:
                    value = json.loads(value)
                except json.JSONDecodeError:
                    value = {"note": value}
            if value and not isinstance(value, dict):
                raise CatalogError(f"{where}: provenance must be an object, got {value!r}")
            fields[key] = value or {}
        elif value is not None and value != "":
            text = str(value)
            limit = Track.__table__.columns[key].type.length
            if limit is not None and len(text) > limit:
                raise CatalogError(f"{where}: {key} is longer than {limit} characters: {text!r}")
            fields[key] = text
    if not fields.get("artist") and row.get("composer"):
        fields["artist"] = str(row["composer"])[:512]
    fields["extra"] = extra
    return fields


def _read_rows(path: Path) -> list[tuple[str, dict[str, Any]]]:
    suffix = path.suffix.lower()
    rows: list[tuple[str, dict[str, Any]]] = []
    if suffix in (".jsonl", ".ndjson"):
        with open(path, encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                where = f"{path}:{lineno}"
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as e:
                    raise CatalogError(f"{where}: invalid JSON ({e.msg})") from e
                if not isinstance(row, dict):
                    raise CatalogError(f"{where}: expected a JSON object, got {type(row).__name__}")
                rows.append((where, row))
    elif suffix == ".csv":
        with open(path, encoding="utf-8", newline="") as fh:
            for lineno, row in enumerate(csv.DictReader(fh), 2):
                clean = {k.strip(): (v if v != "" else None) for k, v in row.items() if k}
                rows.append((f"{path}:{lineno}", clean))
    else:
        raise CatalogError(f"metadata file must be .jsonl or .csv, got {path.name!r}")
    return rows


class MetadataIndex:
    """Metadata rows looked up by audio file path (then by unique file name)."""

    def __init__(self, source: Path, rows: list[tuple[str, dict[str, Any]]]) -> None:
        self.source = source
        self._by_path: dict[str, dict[str, Any]] = {}
        by_name: dict[str, list[dict[str, Any]]] = {}
        base = source.resolve().parent
        for where, row in rows:
            fields = track_fields(row, where)
            raw_path = row.get("path")
            if not raw_path:
                raise CatalogError(f"{where}: row has no 'path'")
            resolved = Path(os.path.normpath(base / Path(str(raw_path)).expanduser()))
            self._by_path[str(resolved)] = fields
            by_name.setdefault(resolved.name, []).append(fields)
        # A bare file name only identifies a row when no other row shares it.
        self._by_name = {name: found[0] for name, found in by_name.items() if len(found) == 1}

    def __len__(self) -> int:
        return len(self._by_path)

    def lookup(self, audio_path: Path) -> dict[str, Any] | None:
        """Track fields for ``audio_path``, or None when no row matches it."""
        resolved = str(Path(os.path.normpath(audio_path.resolve())))
        found = self._by_path.get(resolved) or self._by_name.get(audio_path.name)
        if found is None:
            return None
        return {k: (dict(v) if isinstance(v, dict) else list(v) if isinstance(v, list) else v)
                for k, v in found.items()}


def load_metadata(path: str | os.PathLike[str]) -> MetadataIndex:
    """Read a ``.jsonl``/``.csv`` metadata file.

    Raises:
        CatalogError: unreadable file, bad line (named by ``file:line``), wrong value types.
    """
    source = Path(path)
    try:
        rows = _read_rows(source)
    except OSError as e:
        raise CatalogError(f"cannot read metadata file {source}: {e.strerror or e}") from e
    return MetadataIndex(source, rows)
