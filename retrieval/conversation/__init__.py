"""The conversational recommender: understand a critique, steer the search, explain the page.

Modules: :mod:`~retrieval.conversation.critique` (the structured critique),
:mod:`~retrieval.conversation.parser` (the offline understander),
:mod:`~retrieval.conversation.llm` (an optional OpenAI-compatible understander),
:mod:`~retrieval.conversation.attributes` and :mod:`~retrieval.conversation.catalog` (what a
track is, from its metadata), :mod:`~retrieval.conversation.directions` (relative attributes
as learned directions), :mod:`~retrieval.conversation.state` (the conversation's memory),
:mod:`~retrieval.conversation.steering` (the engine) and
:mod:`~retrieval.conversation.replies` (what the answer says).
"""
