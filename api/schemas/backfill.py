"""Weak matches, backfill jobs, generation requests and the provenance of generated tracks."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from api.schemas.filters import NOT_BLANK, TrackId, number
from api.schemas.tracks import TrackPublic
from retrieval.search.weak_match import WeakMatch

#: Statuses of a job; ``limited`` is a backfill that was not queued (the hourly cap).
JobStatus = Literal["queued", "running", "done", "failed"]
BackfillState = Literal["queued", "running", "done", "failed", "limited"]
MIN_CANDIDATES, MAX_CANDIDATES = 1, 16
MIN_DURATION_S, MAX_DURATION_S = 5.0, 60.0
#: Modes a request may ask for; the generator maps the church modes onto major/minor.
MODES = ("major", "minor", "ionian", "dorian", "phrygian", "lydian", "mixolydian", "aeolian",
         "locrian")
Word = Annotated[str, Field(min_length=1, max_length=64, pattern=NOT_BLANK)]


class WeakMatchDetail(BaseModel):
    """Why a result is (or is not) a weak match: the detector's score and its inputs."""

    score: float = Field(description="The detector's probability that the catalog lacks what "
                                     "was asked for, in [0, 1].")
    threshold: float = Field(description="``weak_match`` is ``score >= threshold``.")
    reason: str = Field(description="One sentence a person can read.")
    signals: dict[str, float] = Field(description="The signals the verdict was made from: "
                                      "top1, top10, gap, and prior_nn when the prior was sampled.")

    @classmethod
    def of(cls, w: WeakMatch) -> WeakMatchDetail:
        """The public view of a verdict (rounded as in provenance records)."""
        d = w.as_dict()
        return cls(score=d["score"], threshold=d["threshold"], reason=d["reason"],
                   signals=d["signals"])


class BackfillStatus(BaseModel):
    """The generation queued (or found already queued) for a weak match."""

    model_config = ConfigDict(json_schema_extra={"example": {
        "job_id": 7, "status": "queued", "created": True}})

    job_id: int | None = Field(description="Poll GET /v1/jobs/{job_id}; null when nothing "
                                           "was queued (status 'limited').")
    status: BackfillState = Field(description="The job's status, or 'limited' when the hourly "
                                              "cap on generated tracks refused a new job.")
    created: bool = Field(description="True when this request queued the job; false when an "
                                      "equivalent job was pending or had just finished.")


class GenerateAttributes(BaseModel):
    """Explicit musical attributes; they override what the query's words imply."""

    model_config = ConfigDict(extra="forbid")

    meter: Annotated[str, Field(pattern=r"^[1-9][0-9]?/(1|2|4|8|16)$",
                                description="Time signature, e.g. 3/4 or 6/8.")] | None = None
    mode: Literal[MODES] | None = None  # type: ignore[valid-type]
    tempo_class: Literal["slow", "moderate", "fast"] | None = None
    tune_type: Word | None = Field(None, description="e.g. reel, jig, waltz, air, chorale.")
    ensemble: Word | None = Field(None, description="e.g. accordion, solo fiddle, string "
                                                    "quartet.")


class GenerateRequest(BaseModel):
    """Ask for new tracks for a query, whatever the catalog holds."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"example": {
        "query": "a waltz for accordion", "n": 4, "duration_s": 20,
        "attributes": {"meter": "3/4"}, "like_track_id": None}})

    query: Annotated[str, Field(min_length=1, max_length=500, pattern=NOT_BLANK,
                                description="What to make (not blank).")]
    n: number(int, ge=MIN_CANDIDATES, le=MAX_CANDIDATES) = Field(  # type: ignore[valid-type]
        4, description="Candidates to generate (the keepers are stored).")
    duration_s: number(float, ge=MIN_DURATION_S, le=MAX_DURATION_S) = Field(  # type: ignore[valid-type]
        20.0, description="Seconds of audio per candidate.")
    attributes: GenerateAttributes = Field(default_factory=GenerateAttributes)
    like_track_id: TrackId | None = Field(None, description="A catalog track the result "  # type: ignore[valid-type]
                                          "should resemble (must exist).")


class JobAccepted(BaseModel):
    """A generation request was queued (or an equivalent one found)."""

    job_id: int
    status: JobStatus
    created: bool = Field(description="False when an equivalent job was pending or had just "
                                      "finished: that job is the answer.")


class JobPublic(BaseModel):
    """A backfill job: its state, progress and the tracks stored so far."""

    id: int
    status: JobStatus
    query: str
    attempts: int
    max_attempts: int
    progress: dict[str, Any] = Field(description="The worker's counters: stage, stored, "
                                     "n_candidates...")
    error: str | None = None
    created_at: dt.datetime
    updated_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None
    tracks: list[TrackPublic] = Field(description="Tracks stored for the job so far, by "
                                                  "candidate index (a deleted one is left out).")


class ProvenancePublic(BaseModel):
    """How a generated track was made: enough to reproduce it and audit its novelty."""

    track_id: int
    job_id: int | None
    candidate_index: int
    prompt: str
    generator_id: str
    weights_id: str | None = None
    seed: int | None = None
    scores: dict[str, Any]
    gates: dict[str, Any]
    neighbour_track_ids: list[int]
    prior_samples_shape: list[int] = Field(description="[count, dim] of the prior samples "
                                           "that conditioned it ([0, 0]: none).")
