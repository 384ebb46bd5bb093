"""One router per resource. ``create_app`` includes every router in :data:`ROUTERS`.

A new resource is a new module here plus one line in the list. ``read`` routers carry the
read-key dependency when the server requires keys for reads; write routes declare the key
themselves.
"""

from __future__ import annotations

from fastapi import APIRouter

from api.routes import catalog_map, conversations, generated, jobs, ops, recommend, search, tracks

#: (router, is a read router)
ROUTERS: tuple[tuple[APIRouter, bool], ...] = (
    (search.router, True),
    (tracks.router, True),
    (recommend.router, True),
    (conversations.router, True),
    (jobs.router, True),
    (generated.router, True),
    (catalog_map.router, True),
    (ops.router, False),
)
