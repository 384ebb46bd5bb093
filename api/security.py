"""API keys: who may read and who may write.

Writes always need the configured key (``TUNESCOPE_API_KEY``); reads need it only when
``TUNESCOPE_READ_REQUIRES_KEY`` is set. Keys are compared in constant time.
"""

from __future__ import annotations

import hmac

from fastapi import HTTPException

from api.settings import Settings


def check_key(settings: Settings, given: str | None) -> None:
    """Accept the caller's ``X-API-Key`` or raise the 401/403 that says why not.

    Raises:
        HTTPException: 403 when the server has no key (writes disabled) or the key is wrong,
            401 when the header is missing.
    """
    if not settings.api_key:
        raise HTTPException(403, "writes are disabled: the server has no API key "
                                 "configured (set TUNESCOPE_API_KEY)")
    if not given:
        raise HTTPException(401, "missing X-API-Key header")
    if not hmac.compare_digest(given.encode(), settings.api_key.encode()):
        raise HTTPException(403, "invalid API key")
