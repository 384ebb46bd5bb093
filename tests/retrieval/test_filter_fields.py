"""One declaration of the filter fields: ``Filters``, ``TrackMeta`` and ``TrackTable`` follow it.

The point of :data:`FILTER_FIELDS` is that a filter on an existing catalog column is one
entry; the last tests declare extra fields and check every derived piece picks them up.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import create_engine
from sqlalchemy.orm import sessionmaker

from index.models import Base, Embedding, Track
from index.vectors import VectorIndex
from retrieval.errors import InvalidQueryError
from retrieval.search import (
    FILTER_FIELDS,
    Filters,
    SearchOptions,
    SearchService,
    TrackMeta,
    TrackTable,
)
from retrieval.search.fields import FilterField
from retrieval.search.filters import make_filters_type
from retrieval.search.table import make_track_meta_type
from tests.api.tiny_encoder import TinyEncoder


def test_the_declared_fields_in_todays_order() -> None:
    assert [f.name for f in FILTER_FIELDS][:10] == [
        "collection", "tags", "instruments", "key", "mode", "meter", "origin", "artist", "tempo",
        "duration"]
    by_name = {f.name: f for f in FILTER_FIELDS}
    assert by_name["instruments"].query_name == "instrument"
    assert by_name["mode"].query_name == "mode"
    assert (by_name["tempo"].column, by_name["tempo"].hi, by_name["tempo"].unit) == (
        "tempo_bpm", 1000.0, "BPM")
    assert (by_name["duration"].column, by_name["duration"].unit) == ("duration_s", "s")
    assert {f.column for f in FILTER_FIELDS} <= set(Track.__table__.columns.keys())


def test_filters_is_a_frozen_dataclass_of_the_keys() -> None:
    keys = [f.name for f in dataclasses.fields(Filters)]
    assert keys[:12] == ["collection", "tags", "instruments", "key", "mode", "meter", "origin",
                         "artist", "tempo_min", "tempo_max", "duration_min", "duration_max"]
    f = Filters(mode=("minor",), tempo_min=90)
    assert f.mode == ("minor",) and f.tempo_min == 90 and f.tags == () and f.tempo_max is None
    assert dataclasses.replace(f, mode=("major",)).mode == ("major",)
    assert f == Filters(mode=("minor",), tempo_min=90) and f != Filters(mode=("minor",))
    assert hash(f) == hash(Filters(mode=("minor",), tempo_min=90))
    with pytest.raises(dataclasses.FrozenInstanceError):
        f.mode = ("major",)  # type: ignore[misc]
    assert Filters().is_empty() and not f.is_empty() and not Filters(duration_max=3).is_empty()
    assert SearchOptions().filters == Filters()


def test_filters_from_values() -> None:
    f = Filters.from_values({"mode": ["minor"], "instruments": ("fiddle", "flute"), "key": "D",
                             "tempo_min": 90.0, "tempo_max": None, "tags": []})
    assert f == Filters(mode=("minor",), instruments=("fiddle", "flute"), key=("D",),
                        tempo_min=90.0)
    assert Filters.from_values({}) == Filters()
    with pytest.raises(InvalidQueryError, match="unknown filter 'instrument'"):
        Filters.from_values({"instrument": ["fiddle"]})


def test_tune_type_and_ensemble_are_filters() -> None:
    """Both were one entry each in FILTER_FIELDS: the table answers them from TrackMeta."""
    table = TrackTable([TrackMeta(id=1, tune_type="jig", ensemble="solo fiddle"),
                        TrackMeta(id=2, tune_type="Reel", ensemble="solo flute"),
                        TrackMeta(id=3, tune_type="reel")])
    assert table.match(Filters(tune_type=("reel",))).tolist() == [2, 3]
    assert table.match(Filters(tune_type=("reel", "jig"), ensemble=("Solo Flute",))).tolist() == [2]
    assert Filters.from_values({"ensemble": "solo fiddle"}) == Filters(ensemble=("solo fiddle",))


def test_track_meta_from_a_track() -> None:
    t = Track(id=3, collection="ryan", tags=None, instruments=["fiddle"], key="D", mode="major",
              meter="6/8", origin="catalog", artist="trad", piece_id="p1", tempo_bpm=120.0,
              duration_s=30.0)
    t.tune_type = "jig"
    m = TrackMeta.from_track(t)
    assert m == TrackMeta(id=3, collection="ryan", tags=(), instruments=("fiddle",), key="D",
                          mode="major", meter="6/8", origin="catalog", artist="trad",
                          piece_id="p1", tempo_bpm=120.0, duration_s=30.0, tune_type="jig")


EXTRA = (*FILTER_FIELDS,
         FilterField("region", "region", "categorical", "Region of origin."),
         FilterField("loudness", "loudness_db", "range", "Loudness.", lo=-100, hi=0, unit="dB"))


def _extra_db(tmp_path: Path) -> tuple[TinyEncoder, sessionmaker]:
    engine = create_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    Base.metadata.create_all(engine)
    factory = sessionmaker(engine, expire_on_commit=False)
    enc = TinyEncoder(16)
    x = enc.embed_text([f"tune {i}" for i in range(12)])
    with factory() as s:
        for i, v in enumerate(x, start=1):
            s.add(Track(id=i, content_hash=f"h{i}", title=f"t{i}", duration_s=3.0,
                        sample_rate=16000, audio_format="wav", source_path="x", audio_path="x",
                        region="Ireland" if i % 3 == 0 else "Germany",
                        loudness_db=-float(i)))
            s.add(Embedding(track_id=i, encoder_id=enc.id, dim=16, vector=v.tobytes()))
        s.commit()
    return enc, factory


def test_an_extra_field_is_one_declaration(tmp_path: Path) -> None:
    """Declaring ``region`` and ``loudness`` gives their Filters keys, TrackMeta columns,
    inverted list / numeric column, the loader's SELECT and the empty-range check."""
    filters_type = make_filters_type(EXTRA)
    meta_type = make_track_meta_type(EXTRA)
    assert {"region", "loudness_min", "loudness_max"} <= {
        f.name for f in dataclasses.fields(filters_type)}
    assert {"region", "loudness_db"} <= {f.name for f in dataclasses.fields(meta_type)}
    enc, factory = _extra_db(tmp_path)
    with factory() as s:
        table = TrackTable.load(s, enc.id, meta_type)
    assert table.get(3).region == "Ireland" and table.get(3).loudness_db == -3.0
    assert table.match(filters_type(region=("ireland",))).tolist() == [3, 6, 9, 12]
    assert table.match(filters_type(region=("ireland",), loudness_min=-7.5)).tolist() == [3, 6]
    assert table.match(filters_type(loudness_max=-10)).tolist() == [10, 11, 12]
    # The service filters through the new range like the others (an empty one passes nothing).
    x = enc.embed_text([f"tune {i}" for i in range(12)])
    index = VectorIndex.build(enc.id, np.arange(1, 13, dtype=np.int64), x, factory="Flat")
    svc = SearchService(enc, index, table)
    empty = svc.search_text("tune", SearchOptions(filters=filters_type(loudness_min=-1,
                                                                       loudness_max=-5)))
    assert empty.hits == [] and empty.weak_match
    hits = svc.search_text("tune 5", SearchOptions(k=5, filters=filters_type(
        region=("Germany",), loudness_min=-6))).hits
    assert sorted(h.track_id for h in hits) == [1, 2, 4, 5]
