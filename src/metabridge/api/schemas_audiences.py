"""Request and response bodies of the audience API: audiences, members, ad accounts, destinations, jobs."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

AUDIENCE_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$"


class AudiencePut(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200, description="Unique among audiences.")
    description: str | None = Field(default=None, max_length=2000)


class LastSync(BaseModel):
    at: int | None = Field(description="When the last job of this destination ended (ms).")
    result: Literal["ok", "failed"] | None
    error: Any = None


class DestinationOut(BaseModel):
    id: int
    audience: str
    name: str
    ad_account: int
    ad_account_name: str | None = None
    meta_audience_id: str
    created_meta_audience: bool = Field(description="metabridge created the Meta audience.")
    keys: list[str]
    mode: Literal["mirror", "add_only"]
    status: Literal["active", "paused", "detached"]
    paused_reason: str | None = Field(description="What a person must do before syncing resumes.")
    members_in_meta: int | None = Field(default=None, description="Rows metabridge has sent and Meta holds.")
    next_sync_at: int | None
    last_sync: LastSync
    created_at: int
    detached_at: int | None


class AudienceOut(BaseModel):
    id: str
    name: str
    description: str | None
    member_count: int
    destinations: list[DestinationOut] = Field(description="Linked (active or paused) destinations.")
    last_sync: LastSync = Field(description="The most recent sync over all destinations.")
    created_at: int
    updated_at: int


class MemberIssue(BaseModel):
    field: str
    message: str


class RejectedMember(BaseModel):
    index: int
    errors: list[MemberIssue]


class MemberWarning(BaseModel):
    index: int
    warnings: list[MemberIssue]


class MembersChanged(BaseModel):
    received: int
    added: int = 0
    updated: int = 0
    removed: int = 0
    not_found: int = Field(default=0, description="Members to remove that the audience did not hold.")
    emptied: bool = False
    rejected: list[RejectedMember] = Field(default_factory=list)
    warnings: list[MemberWarning] = Field(default_factory=list)
    member_count: int


class MemberOut(BaseModel):
    id: int
    member_key: str = Field(description="external_id:..., email:<sha256> or phone:<sha256>.")
    data: dict[str, Any] = Field(description="The member as given.")
    created_at: int
    updated_at: int


class MemberPage(BaseModel):
    data: list[MemberOut]
    next_after: int | None = Field(description="Pass as ?after= for the next page; null on the last page.")


class AdAccountCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    account_id: str = Field(min_length=1, max_length=70, pattern=r"^(act_)?\d+$", description="Meta ad account id (act_ optional).")
    access_token: str = Field(min_length=1, description="Stored encrypted, never returned.")
    app_secret: str | None = None


class AdAccountUpdate(BaseModel):
    """New credentials resume the account's destinations paused by a token or permission error."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    access_token: str | None = Field(default=None, min_length=1)
    app_secret: str | None = None


class AdAccountOut(BaseModel):
    id: int
    name: str
    account_id: str
    has_app_secret: bool
    throttled_until: int | None
    created_at: int
    updated_at: int


class MetaAudienceOut(BaseModel):
    id: str
    name: str | None = None
    subtype: str | None = None
    description: str | None = None
    approximate_count_lower_bound: int | None = None
    approximate_count_upper_bound: int | None = None
    time_updated: int | None = Field(default=None, description="Unix seconds (metadata).")
    time_content_updated: int | None = Field(default=None, description="Unix seconds (last member update).")
    operation_status: Any = None
    delivery_status: Any = None
    linked_destinations: list[int] = Field(default_factory=list, description="metabridge destinations syncing into it.")


class MetaAudienceList(BaseModel):
    ad_account: int
    count: int
    pages: int
    data: list[MetaAudienceOut]


class DestinationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ad_account: int | str = Field(description="metabridge ad account id or name.")
    keys: list[str] = Field(min_length=1, description='["email"], ["phone"] (SMS contacts), or several keys.')
    mode: Literal["mirror", "add_only"] = "mirror"
    meta_audience_id: str | None = Field(default=None, pattern=r"^\d+$", description="Use this Meta audience; else one is created.")
    name: str | None = Field(default=None, min_length=1, max_length=200)


class JobOut(BaseModel):
    id: int
    audience: str
    destination: int
    kind: Literal["add", "remove", "replace", "rename"]
    scope: Literal["diff", "all"]
    trigger: str
    status: Literal["queued", "running", "done", "failed"]
    rows_sent: int = Field(description="Rows Meta acknowledged.")
    batches: int
    num_received: int = Field(description="Meta's num_received.")
    num_invalid_entries: int = Field(description="Meta's num_invalid_entries.")
    invalid_samples: list[dict[str, Any]] = Field(description="Up to 100 of Meta's invalid entry samples with reasons.")
    rejected_count: int = Field(description="Members metabridge did not send (no usable value for the keys).")
    rejected: dict[str, Any] | None = Field(description="{by_reason, samples}.")
    error: Any = Field(description="Meta's error of the last failed attempt (or why the job failed).")
    attempts: int
    next_attempt_at: int | None
    created_at: int
    started_at: int | None
    finished_at: int | None
    session_id: int | None = Field(description="replace: the usersreplace session id.")
    batch_seq: int
    note: str | None


class SyncStarted(BaseModel):
    destinations: list[int]
