"""Conversation requests and answers: start, send a message, read the history."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from api.schemas.backfill import BackfillStatus, WeakMatchDetail
from api.schemas.filters import TrackId
from api.schemas.tracks import TrackPublic

MAX_MESSAGE_CHARS = 2000
Message = Annotated[str, Field(max_length=MAX_MESSAGE_CHARS,
                               description="What the user said (may be empty with likes).")]
ChipKey = Annotated[str, Field(min_length=1, max_length=200)]


class ConversationStart(BaseModel):
    """The opening request: words and/or example tracks (a clip: ``/v1/conversations/audio``)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"example": {
        "text": "a lively reel on the fiddle", "track_ids": []}})

    text: Message = ""
    track_ids: list[TrackId] = Field(default=[], max_length=20)


class ConversationMessageIn(BaseModel):
    """A turn: a critique in words, liked and disliked track ids, chips the user removed."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"example": {
        "text": "faster, no piano, more like #2", "liked": [], "disliked": [], "remove": []}})

    text: Message = ""
    liked: list[TrackId] = Field(default=[], max_length=20)
    disliked: list[TrackId] = Field(default=[], max_length=20)
    remove: list[ChipKey] = Field(default=[], max_length=50,
                                  description="Keys of understood chips to forget.")
    repeat: bool = Field(False, description="Allow tracks already shown to come back.")


class ConversationResult(BaseModel):
    """One result of a turn: its position, score, track and why it is there."""

    position: int = Field(description="1-based, as critiques refer to it (#2).")
    score: float
    track: TrackPublic
    why: list[str] = Field(description="The constraints it obeys, what it shares with likes.")


class Chip(BaseModel):
    """One active, removable thing the conversation remembers (send its key in ``remove``)."""

    key: str
    label: str
    kind: str


class Understood(BaseModel):
    """What the message was read as, so a misreading is visible."""

    critique: dict[str, Any]
    labels: list[str]
    chips: list[Chip]
    notes: list[str] = Field(description="What could not be understood or done.")


class ConversationTurn(BaseModel):
    """The answer to a turn."""

    id: str
    reply: str
    results: list[ConversationResult]
    understood: Understood
    weak_match: bool = Field(description="True when the catalog probably lacks what the "
                                         "conversation asks for now.")
    weak_match_detail: WeakMatchDetail
    backfill: BackfillStatus | None = Field(None, description="The generation queued for a "
                                            "weak turn when backfill is enabled; null otherwise.")


class HistoryMessage(BaseModel):
    """One message of the history."""

    seq: int
    role: str
    text: str
    payload: dict[str, Any]
    created_at: dt.datetime | None = None


class ConversationHistory(BaseModel):
    """The whole conversation: every message in order and what is active now."""

    id: str
    created_at: dt.datetime | None = None
    messages: list[HistoryMessage]
    chips: list[Chip]
