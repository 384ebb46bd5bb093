"""Conversations in the catalog database (SQLite and PostgreSQL): history, versions, races."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy.orm import Session, sessionmaker

from index.errors import ConversationConflictError, ConversationNotFoundError
from index.repo.conversations import append_turn, create_conversation, get_conversation


def test_create_read_append(factory: sessionmaker[Session]) -> None:
    cid = create_conversation(factory, "enc", {"turn": 0, "shown": [1, 2]},
                              [("user", "a jig", {}), ("assistant", "Here.", {"results": [1, 2]})])
    rec = get_conversation(factory, cid, with_messages=True)
    assert rec.version == 1 and rec.state["shown"] == [1, 2]
    assert [(m.seq, m.role) for m in rec.messages] == [(0, "user"), (1, "assistant")]
    assert append_turn(factory, cid, 1, {"turn": 1}, [("user", "faster", {"liked": [3]}),
                                                      ("assistant", "Faster.", {})]) == 2
    rec = get_conversation(factory, cid, with_messages=True)
    assert rec.state == {"turn": 1} and [m.text for m in rec.messages][2:] == ["faster", "Faster."]
    assert rec.messages[2].payload == {"liked": [3]}


def test_unknown_and_stale(factory: sessionmaker[Session]) -> None:
    with pytest.raises(ConversationNotFoundError):
        get_conversation(factory, "0" * 32)
    with pytest.raises(ConversationNotFoundError):
        append_turn(factory, "0" * 32, 1, {}, [])
    cid = create_conversation(factory, "enc", {}, [])
    append_turn(factory, cid, 1, {"a": 1}, [("user", "x", {})])
    with pytest.raises(ConversationConflictError):
        append_turn(factory, cid, 1, {"a": 2}, [("user", "y", {})])  # read before the first
    assert get_conversation(factory, cid).state == {"a": 1}


def test_racing_turns_one_wins(factory: sessionmaker[Session]) -> None:
    cid = create_conversation(factory, "enc", {}, [])
    outcomes: list[str] = []

    def turn(i: int) -> None:
        try:
            append_turn(factory, cid, 1, {"by": i}, [("user", str(i), {})])
            outcomes.append("ok")
        except ConversationConflictError:
            outcomes.append("conflict")

    threads = [threading.Thread(target=turn, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["conflict"] * 3 + ["ok"]
    rec = get_conversation(factory, cid, with_messages=True)
    assert rec.version == 2 and len(rec.messages) == 1
