"""Conversations: create one, read it with its history, and apply a turn atomically.

A turn is one unit of work: the user's message, the answer and the new steering state commit
together, or not at all. The state's ``version`` is compared and bumped in the same UPDATE
(optimistic locking), so two messages racing on one conversation never both apply to the same
old state; many conversations run at once without any lock between them.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from index.errors import ConversationConflictError, ConversationNotFoundError
from index.models import Conversation, ConversationMessage

SessionFactory = Callable[[], Session]


@dataclass(frozen=True)
class MessageRecord:
    """One message of a conversation as data (detached from any session)."""

    seq: int
    role: str
    text: str
    payload: dict[str, Any] = field(default_factory=dict)
    created_at: dt.datetime | None = None


@dataclass(frozen=True)
class ConversationRecord:
    """A conversation's state and version, and its messages when they were asked for."""

    id: str
    encoder_id: str
    version: int
    state: dict[str, Any]
    messages: list[MessageRecord] = field(default_factory=list)
    created_at: dt.datetime | None = None


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _aware(t: dt.datetime | None) -> dt.datetime | None:
    """UTC-aware: SQLite hands back naive datetimes for timezone columns (stored in UTC)."""
    return t.replace(tzinfo=dt.UTC) if t is not None and t.tzinfo is None else t


def _message(m: ConversationMessage) -> MessageRecord:
    return MessageRecord(m.seq, m.role, m.text, dict(m.payload or {}), _aware(m.created_at))


def create_conversation(factory: SessionFactory, encoder_id: str, state: dict[str, Any],
                        messages: Sequence[tuple[str, str, dict[str, Any]]]) -> str:
    """Store a new conversation with its first messages ``(role, text, payload)``; its id.

    The id is a random UUID (hex): unguessable, so one user cannot walk another's history.
    """
    cid = uuid.uuid4().hex
    with factory() as session:
        session.add(Conversation(id=cid, encoder_id=encoder_id, version=1, state=state))
        session.flush()
        for seq, (role, text, payload) in enumerate(messages):
            session.add(ConversationMessage(conversation_id=cid, seq=seq, role=role, text=text,
                                            payload=payload))
        session.commit()
    return cid


def get_conversation(factory: SessionFactory, conversation_id: str, *,
                     with_messages: bool = False) -> ConversationRecord:
    """The conversation, with its messages in order when ``with_messages``.

    Raises:
        ConversationNotFoundError: no conversation has this id.
    """
    with factory() as session:
        conv = session.get(Conversation, conversation_id)
        if conv is None:
            raise ConversationNotFoundError(conversation_id)
        messages = []
        if with_messages:
            rows = session.scalars(select(ConversationMessage)
                                   .where(ConversationMessage.conversation_id == conversation_id)
                                   .order_by(ConversationMessage.seq))
            messages = [_message(m) for m in rows]
        return ConversationRecord(conv.id, conv.encoder_id, conv.version, dict(conv.state or {}),
                                  messages, _aware(conv.created_at))


def append_turn(factory: SessionFactory, conversation_id: str, expected_version: int,
                state: dict[str, Any], messages: Sequence[tuple[str, str, dict[str, Any]]]
                ) -> int:
    """Store a turn's messages and the new state if nobody changed the conversation meanwhile.

    Returns:
        The conversation's new version.

    Raises:
        ConversationNotFoundError: no conversation has this id.
        ConversationConflictError: another turn was applied after ``expected_version`` was read.
    """
    with factory() as session:
        done = session.execute(
            update(Conversation)
            .where(Conversation.id == conversation_id, Conversation.version == expected_version)
            .values(version=expected_version + 1, state=state, updated_at=_now()))
        if done.rowcount != 1:
            session.rollback()
            if session.get(Conversation, conversation_id) is None:
                raise ConversationNotFoundError(conversation_id)
            raise ConversationConflictError(
                f"conversation {conversation_id!r} changed while this message was handled "
                "(another message was sent at the same time); send it again")
        last = session.scalar(select(ConversationMessage.seq)
                              .where(ConversationMessage.conversation_id == conversation_id)
                              .order_by(ConversationMessage.seq.desc()).limit(1))
        start = -1 if last is None else int(last)
        for i, (role, text, payload) in enumerate(messages, start=start + 1):
            session.add(ConversationMessage(conversation_id=conversation_id, seq=i, role=role,
                                            text=text, payload=payload))
        session.commit()
    return expected_version + 1
