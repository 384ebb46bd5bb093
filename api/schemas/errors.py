"""The one JSON error format every endpoint answers with."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class ErrorResponse(BaseModel):
    """``{"error": code, "detail": message}``: a stable code for programs, a sentence for people."""

    error: str = Field(description="A stable code: not_found, invalid_request, unauthorized...")
    detail: str = Field(description="What is wrong, naming the bad value.")


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for the given status codes, all in the error format."""
    return {code: {"model": ErrorResponse} for code in codes}


# What any endpoint may answer besides success: bad input, auth, missing things, size limits.
ERRORS = error_responses(400, 401, 403, 404, 413, 416, 422)
