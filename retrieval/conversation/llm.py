"""An optional understander: any OpenAI-compatible chat endpoint turns a message into a Critique.

Off by default (the offline parser is the default). The request asks for JSON constrained by
the critique's JSON schema (``response_format``: ``json_schema``, which llama.cpp's server,
vLLM and OpenAI honour); the answer is validated with pydantic and then by
:meth:`Critique.from_dict`. Anything else — a timeout, a refused connection, a non-200, prose
instead of JSON, a value outside the vocabulary — falls back to the offline parser, and the
critique's notes say so, so a bad or slow model never costs the user their turn.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from retrieval.conversation.critique import Critique

log = logging.getLogger(__name__)

Attr = Literal["tempo", "energy", "mood", "brightness", "density", "register"]
CField = Literal["mode", "meter", "instrument", "family"]
EField = Literal["artist", "collection", "tune_type", "title"]


class _Pair(BaseModel):
    model_config = ConfigDict(extra="forbid")
    field: CField
    value: str = Field(max_length=64)


class _Entity(BaseModel):
    model_config = ConfigDict(extra="forbid")
    field: EField
    value: str = Field(max_length=200)


class _Relative(BaseModel):
    model_config = ConfigDict(extra="forbid")
    attribute: Attr
    direction: Literal[-1, 1]


class CritiqueSchema(BaseModel):
    """The JSON the model must answer with (its schema is sent as the response format)."""

    model_config = ConfigDict(extra="forbid")
    relative: list[_Relative] = Field(default=[], max_length=6)
    tempo: Literal["slow", "moderate", "fast"] | None = None
    include: list[_Pair] = Field(default=[], max_length=10)
    exclude: list[_Pair] = Field(default=[], max_length=10)
    more_like: list[int] = Field(default=[], max_length=10)
    less_like: list[int] = Field(default=[], max_length=10)
    entities: list[_Entity] = Field(default=[], max_length=10)
    free_text: str = Field(default="", max_length=500)

    def to_critique(self) -> Critique:
        """The engine's critique (validated once more against its vocabulary)."""
        return Critique.from_dict({
            "relative": {r.attribute: r.direction for r in self.relative}, "tempo": self.tempo,
            "include": [(p.field, p.value) for p in self.include],
            "exclude": [(p.field, p.value) for p in self.exclude],
            "more_like": self.more_like, "less_like": self.less_like,
            "entities": [(e.field, e.value) for e in self.entities], "free_text": self.free_text})


SYSTEM_PROMPT = (
    "You turn a music listener's message into JSON matching the given schema. relative: "
    "attribute tempo(+1 faster), energy(+1 more energetic), mood(+1 happier), brightness, "
    "density(+1 busier), register(+1 higher). include/exclude: mode major|minor, meter "
    "duple|triple|compound, instrument names, family strings|woodwind|brass|keyboard|voice|"
    "plucked. more_like/less_like: 1-based result numbers the message refers to. Answer JSON only.")


@dataclass(frozen=True)
class LLMConfig:
    """Where the model is: an OpenAI-compatible base URL (``.../v1``), model name, limits."""

    url: str
    model: str = "smollm2"
    timeout_s: float = 5.0
    api_key: str | None = None
    max_tokens: int = 256


class LLMUnderstander:
    """``understand(message, page_size)`` through the model, the offline parser as fallback."""

    def __init__(self, config: LLMConfig, fallback: Callable[[str, int | None], Critique]) -> None:
        self.config = config
        self.fallback = fallback
        headers = {"Authorization": f"Bearer {config.api_key}"} if config.api_key else {}
        self._client = httpx.Client(base_url=config.url.rstrip("/"), timeout=config.timeout_s,
                                    headers=headers)

    def request_body(self, message: str) -> dict[str, object]:
        """The chat-completions request for one message (schema-constrained JSON)."""
        return {"model": self.config.model, "temperature": 0, "max_tokens": self.config.max_tokens,
                "messages": [{"role": "system", "content": SYSTEM_PROMPT},
                             {"role": "user", "content": message[:2000]}],
                "response_format": {"type": "json_schema", "json_schema": {
                    "name": "critique", "strict": True,
                    "schema": CritiqueSchema.model_json_schema()}}}

    def __call__(self, message: str, page_size: int | None) -> Critique:
        """The model's critique, or the offline parser's with a note saying why."""
        try:
            r = self._client.post("/chat/completions", json=self.request_body(message))
            r.raise_for_status()
            content = r.json()["choices"][0]["message"]["content"]
            critique = CritiqueSchema.model_validate(json.loads(content)).to_critique()
        except (httpx.HTTPError, KeyError, IndexError, TypeError, ValueError,
                ValidationError) as e:
            log.info("LLM understander fell back to the offline parser: %s", e)
            c = self.fallback(message, page_size)
            c.notes.append("the language model did not answer usably, so the offline parser "
                           "read this message")
            return c
        if page_size is not None:
            bad = [p for p in critique.more_like + critique.less_like if not 1 <= p <= page_size]
            critique.more_like = [p for p in critique.more_like if p not in bad]
            critique.less_like = [p for p in critique.less_like if p not in bad]
            critique.notes += [f"there is no #{p}: the last page showed {page_size} results"
                               for p in bad]
        return critique

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._client.close()
