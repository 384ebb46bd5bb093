"""Conversations: a session that understands critiques, steers the results and says why.

``POST /v1/conversations`` (words and/or example tracks; a clip goes to
``POST /v1/conversations/audio``) starts one; ``POST /v1/conversations/{id}/messages`` is a
turn; ``GET /v1/conversations/{id}`` is the history. The state lives in the database
(:mod:`index.repo.conversations`), so a conversation survives a restart; a turn commits its
messages and its state at once, refused with 409 if another turn won the race.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Body, File, Form, Path, Response, UploadFile

from api.backfill_queue import backfill_for
from api.deps import StateDep
from api.routes.common import weak_detail
from api.schemas.backfill import BackfillStatus
from api.schemas.conversations import (
    MAX_MESSAGE_CHARS,
    ConversationHistory,
    ConversationMessageIn,
    ConversationResult,
    ConversationStart,
    ConversationTurn,
    HistoryMessage,
)
from api.schemas.errors import ERRORS, error_responses
from api.schemas.filters import MAX_TRACK_ID
from api.schemas.tracks import TrackPublic
from api.uploads import MAX_QUERY_UPLOAD_BYTES, read_query_clip
from api.wiring import AppState
from index.repo.conversations import append_turn, create_conversation, get_conversation
from index.repo.tracks import load_tracks
from retrieval.conversation.state import chips
from retrieval.conversation.steering import TurnResult
from retrieval.search import InvalidQueryError

router = APIRouter(tags=["conversations"], responses={**ERRORS, **error_responses(409)})

# A UUID path converter, not a string pattern: ``/v1/conversations/audio`` must not match the
# history route (a GET there is a 405, not "bad conversation id"), and an id that is no UUID
# names no conversation (404).
ConversationId = Annotated[uuid.UUID, Path(description="The id the conversation was started with.")]


# OpenAPI links: the id a start answers with is the path parameter of the turn and history
# operations (clients and schemathesis' stateful tests follow them).
_LINKS = {201: {"description": "Started", "links": {
    "SendMessage": {"operationId": "send_message",
                    "parameters": {"conversation_id": "$response.body#/id"}},
    "ReadConversation": {"operationId": "read_conversation",
                         "parameters": {"conversation_id": "$response.body#/id"}}}}}


def _turn_body(state: AppState, cid: str, turn: TurnResult) -> ConversationTurn:
    tracks = load_tracks(state.session_factory, [h.track_id for h in turn.hits])
    results = [ConversationResult(position=i + 1, score=round(h.score, 6),
                                  track=TrackPublic.of(tracks[h.track_id]), why=why)
               for i, (h, why) in enumerate(zip(turn.hits, turn.reasons, strict=True))
               if h.track_id in tracks]
    weak = turn.weak is not None and turn.weak.weak
    return ConversationTurn(id=cid, reply=turn.reply, results=results,
                            understood=turn.understood(),  # type: ignore[arg-type]
                            weak_match=weak, weak_match_detail=weak_detail(turn.weak, weak),
                            backfill=_backfill(state, turn))


def _backfill(state: AppState, turn: TurnResult) -> BackfillStatus | None:
    """A weak turn queues generation for what the conversation asked in words so far.

    The query is the conversation's texts (the request and the free words of its critiques);
    the filters are its active constraints. A conversation without words (a clip, example
    tracks) queues nothing: there is no prompt to generate from.
    """
    texts = turn.state.get("texts") or []
    if not texts or turn.weak is None or not turn.weak.weak:
        return None
    options = state.get_conversations().options(turn.state)
    return backfill_for(state, ", ".join(texts), turn.weak, options)


def _answer_payload(turn: TurnResult) -> dict[str, Any]:
    return {"understood": turn.understood(), "results": [h.track_id for h in turn.hits],
            "why": turn.reasons}


def _start(state: AppState, text: str, track_ids: list[int], clip: Any = None,
           filename: str | None = None) -> ConversationTurn:
    engine = state.get_conversations()
    turn = engine.start(text or None, clip, track_ids)
    user = {"track_ids": list(track_ids), **({"clip": filename or "clip"} if clip is not None
                                              else {})}
    cid = create_conversation(state.session_factory, engine.service.encoder.id, turn.state,
                              [("user", text, user), ("assistant", turn.reply,
                                                      _answer_payload(turn))])
    return _turn_body(state, cid, turn)


@router.post("/v1/conversations", response_model=ConversationTurn, status_code=201,
             summary="Start a conversation", responses=_LINKS)
def start_conversation(body: Annotated[ConversationStart, Body()], state: StateDep,
                       response: Response) -> ConversationTurn:
    """Open a conversation from a request in words and/or example track ids."""
    turn = _start(state, body.text, list(body.track_ids))
    response.headers["Location"] = f"/v1/conversations/{turn.id}"
    return turn


@router.post("/v1/conversations/audio", response_model=ConversationTurn, status_code=201,
             summary="Start a conversation from a clip", responses=_LINKS)
def start_conversation_audio(
    state: StateDep,
    response: Response,
    file: Annotated[UploadFile, File(description="A clip (wav, flac, ogg, mp3; at most "
                                     f"{MAX_QUERY_UPLOAD_BYTES // 2**20} MiB).")],
    text: Annotated[str, Form(max_length=MAX_MESSAGE_CHARS)] = "",
    track_ids: Annotated[list[int], Form(max_length=20)] = [],  # noqa: B006
) -> ConversationTurn:
    """Open a conversation from a clip (plus optional words and example tracks)."""
    if any(not 1 <= t <= MAX_TRACK_ID for t in track_ids):
        raise InvalidQueryError(f"track ids must be between 1 and {MAX_TRACK_ID}")
    service = state.service
    wave = read_query_clip(file, service.encoder.sample_rate)
    vector = service.encoder.embed_audio([wave])[0]
    turn = _start(state, text, track_ids, vector, file.filename)
    response.headers["Location"] = f"/v1/conversations/{turn.id}"
    return turn


@router.post("/v1/conversations/{conversation_id:uuid}/messages", response_model=ConversationTurn,
             summary="Send a message", operation_id="send_message")
def send_message(conversation_id: ConversationId,
                 body: Annotated[ConversationMessageIn, Body()], state: StateDep
                 ) -> ConversationTurn:
    """One turn: the critique is understood, the results steered, the reply says what changed.

    A reference that names nothing (#40 of a 10-result page) or a contradiction ("faster but
    slower") is answered with a reply that says what could not be done, not an error.
    """
    cid = conversation_id.hex
    record = get_conversation(state.session_factory, cid)
    engine = state.get_conversations()
    turn = engine.step(record.state, body.text, body.liked, body.disliked, body.remove,
                       body.repeat)
    user = {"liked": list(body.liked), "disliked": list(body.disliked),
            "remove": list(body.remove), "repeat": body.repeat}
    append_turn(state.session_factory, cid, record.version, turn.state,
                [("user", body.text, user), ("assistant", turn.reply, _answer_payload(turn))])
    return _turn_body(state, cid, turn)


@router.get("/v1/conversations/{conversation_id:uuid}", response_model=ConversationHistory,
            summary="A conversation's history", operation_id="read_conversation")
def read_conversation(conversation_id: ConversationId, state: StateDep) -> ConversationHistory:
    """Every message in order (each answer with its understood critique and result ids)."""
    record = get_conversation(state.session_factory, conversation_id.hex, with_messages=True)
    return ConversationHistory(
        id=record.id, created_at=record.created_at, chips=chips(record.state),  # type: ignore[arg-type]
        messages=[HistoryMessage(seq=m.seq, role=m.role, text=m.text, payload=m.payload,
                                 created_at=m.created_at) for m in record.messages])
