"""Filters, paging and diversity as the API takes them, derived from ``FILTER_FIELDS``.

Why derived: a filter on an existing column used to be spelled out in the JSON body, the query
parameters, recommend's names and the web page. Here the JSON body (:data:`FilterBody`), the
query parameters of every search endpoint (:func:`search_options`, a dependency whose signature
is built from the declarations) and the page's form (``GET /v1/filters``, :func:`describe`)
all come from :data:`retrieval.search.FILTER_FIELDS`, so a new filter is one entry there.
"""

from __future__ import annotations

import inspect
from typing import Annotated, Any

from fastapi import Path, Query
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, create_model

from retrieval.search import FILTER_FIELDS, FilterField, Filters, SearchOptions

# Track ids are 64-bit in the database, but JSON numbers past 2**53 are not exact in most
# clients (JavaScript) nor in JSON Schema validators: the contract stops where numbers are exact.
MAX_TRACK_ID = 2**53 - 1
MAX_VALUES = 20  # values per filter field: more is a scan in disguise, never a real request
# One non-blank character, blank as JSON Schema's \s means it (retrieval.search.options.BLANK_CHARS),
# spelled out so that pydantic's, Python's and ECMAScript's regex engines all read it alike.
NOT_BLANK = r"[^\t\n\v\f\r \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff]"


def not_bool(value: Any) -> Any:
    """Refuse JSON ``true``/``false`` where a number is expected.

    Pydantic's lax mode reads ``true`` as 1, so ``"positive": [true]`` was track 1. Strict mode
    would also refuse ``5.0`` for an integer, which JSON Schema (and so the OpenAPI contract)
    calls a valid integer; this refuses exactly the booleans.
    """
    if isinstance(value, bool):
        raise ValueError("expected a number, got a boolean")
    return value


def number(kind: type, **bounds: float) -> Any:
    """``kind`` (int or float) within ``bounds``, booleans refused.

    The bounds sit inside the boolean check on purpose: so placed they stay part of the JSON
    schema (a validator wrapped around them would hide them from OpenAPI).
    """
    return Annotated[kind, Field(**bounds), BeforeValidator(not_bool)]


TrackId = number(int, ge=1, le=MAX_TRACK_ID)
TrackIdPath = Annotated[int, Path(ge=1, le=MAX_TRACK_ID, description="Track id.")]


def _body_fields() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in FILTER_FIELDS:
        if f.kind == "range":
            for key in f.keys:
                out[key] = (number(float, ge=f.lo, le=f.hi) | None, Field(None, description=f.help))
        else:
            out[f.name] = (list[str], Field([], max_length=MAX_VALUES, description=f.help))
    return out


FilterBody: type[BaseModel] = create_model(
    "FilterBody", __config__=ConfigDict(extra="forbid"), __doc__="Metadata filters of a JSON "
    "request: values within a field match any of them, fields combine with AND.",
    **_body_fields())


def filters_from_body(body: BaseModel) -> Filters:
    """The service's filters from a parsed :data:`FilterBody`."""
    return Filters.from_values(body.model_dump())


class DiversityBody(BaseModel):
    """Paging, exclusions and diversity of a JSON request (the query-parameter twins below)."""

    model_config = ConfigDict(extra="forbid")

    k: number(int, ge=1, le=100) = Field(10, description="Results per page.")
    offset: number(int, ge=0, le=1000) = Field(0, description="Results to skip.")
    filters: FilterBody = Field(default_factory=FilterBody)  # type: ignore[valid-type]
    exclude: list[TrackId] = Field(default=[], max_length=1000, description="Already seen ids.")
    mmr: number(float, ge=0, le=1) | None = Field(None, description="MMR lambda: 1 = pure "
                                                  "relevance, lower = more diverse.")
    max_per_piece: number(int, ge=1, le=100) | None = None
    max_per_artist: number(int, ge=1, le=100) | None = None

    def options(self) -> SearchOptions:
        """The service's options for this body."""
        return _options(filters_from_body(self.filters), k=self.k, offset=self.offset,
                        exclude=self.exclude, mmr=self.mmr, max_per_piece=self.max_per_piece,
                        max_per_artist=self.max_per_artist)


def _options(filters: Filters, *, k: int, offset: int, exclude: list[int], mmr: float | None,
             max_per_piece: int | None, max_per_artist: int | None) -> SearchOptions:
    """The service's options from the API's names (the JSON body and the query share them)."""
    return SearchOptions(k=k, offset=offset, filters=filters, exclude_ids=frozenset(exclude),
                         mmr_lambda=mmr, max_per_piece=max_per_piece, max_per_artist=max_per_artist)


# ---------------------------------------------------------------------- query parameters

def _filter_parameters() -> list[inspect.Parameter]:
    params = []
    for f in FILTER_FIELDS:
        if f.kind == "range":
            for key in f.keys:
                ann = Annotated[float | None, Query(ge=f.lo, le=f.hi, description=f.help)]
                params.append(inspect.Parameter(key, inspect.Parameter.KEYWORD_ONLY,
                                                default=None, annotation=ann))
        else:
            ann = Annotated[list[str], Query(max_length=MAX_VALUES, description=f.help)]
            params.append(inspect.Parameter(f.query_name, inspect.Parameter.KEYWORD_ONLY,
                                            default=[], annotation=ann))
    return params


_PAGING = [
    ("k", Annotated[int, Query(ge=1, le=100, description="Results per page.")], 10),
    ("offset", Annotated[int, Query(ge=0, le=1000, description="Results to skip.")], 0),
    ("exclude", Annotated[list[TrackId], Query(max_length=1000, description="Already seen ids.")],
     []),
    ("mmr", Annotated[float | None, Query(ge=0, le=1, description="MMR lambda: 1 = pure "
                                          "relevance, lower = more diverse.")], None),
    ("max_per_piece", Annotated[int | None, Query(ge=1, le=100)], None),
    ("max_per_artist", Annotated[int | None, Query(ge=1, le=100)], None),
]


def search_options(**kw: Any) -> SearchOptions:
    """Paging, filters, exclusions and diversity shared by every search endpoint.

    A FastAPI dependency whose signature (below) is built from ``FILTER_FIELDS``.
    """
    values = {key: kw[key if f.kind == "range" else f.query_name] for f in FILTER_FIELDS for key in f.keys}
    paging = {name: kw[name] for name, _, _ in _PAGING}
    return _options(Filters.from_values(values), **paging)


search_options.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
    [*(inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY, default=d, annotation=a) for n, a, d in _PAGING[:2]),
     *_filter_parameters(),
     *(inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY, default=d, annotation=a) for n, a, d in _PAGING[2:])],
    return_annotation=SearchOptions)


def describe(field: FilterField, values: list[str] | None = None) -> dict[str, Any]:
    """One filter as ``GET /v1/filters`` shows it, for the web page's form."""
    out: dict[str, Any] = {"name": field.name, "param": field.query_name, "kind": field.kind,
                           "help": field.help}
    if field.kind == "range":
        out.update(min_param=field.keys[0], max_param=field.keys[1], lo=field.lo, hi=field.hi,
                   unit=field.unit)
    elif values is not None:
        out["values"] = values
    return out
