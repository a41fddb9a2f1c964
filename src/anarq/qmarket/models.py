"""Qmarket's request and response bodies.

Prices are integers in the asset's smallest unit, as in Qwallet, and travel as decimal
strings.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from anarq.qmarket.tables import (
    DESCRIPTION_MAX,
    ITEM_MAX,
    NOTE_MAX,
    ORDER_ID_MAX,
    REVIEW_MAX,
    TERMS_MAX,
    TITLE_MAX,
)
from anarq.qwallet.models import AssetCode, Units

Kind = Literal["file", "album", "nft", "service"]
ListingStatus = Literal["active", "paused", "sold_out", "withdrawn"]
OrderStatus = Literal["held", "delivered", "disputed", "settled", "refunded"]

DEFAULT_TERMS = "Personal use by the buyer; not transferable; no resale of copies."
DELIVERY_HOURS_MAX = 90 * 24
STOCK_MAX = 1_000_000
ORDER_ID_PATTERN = r"^[A-Za-z0-9_-]{8,40}$"
assert ORDER_ID_MAX == 40


class ListingCreate(BaseModel):
    """An offer: a Qdrive file, a QpiC album, a unique token, or a service."""

    model_config = ConfigDict(extra="forbid")

    kind: Kind
    item: str | None = Field(
        default=None,
        min_length=1,
        max_length=ITEM_MAX,
        description="The file's, album's or token's id; none for a service.",
    )
    title: str = Field(min_length=1, max_length=TITLE_MAX)
    description: str = Field(default="", max_length=DESCRIPTION_MAX)
    price: Units = Field(gt=0, description="In the asset's smallest unit.")
    asset: AssetCode
    terms: str = Field(default=DEFAULT_TERMS, min_length=1, max_length=TERMS_MAX)
    stock: int | None = Field(
        default=None, ge=1, le=STOCK_MAX, description="Units to sell; none for no limit."
    )
    delivery_hours: int = Field(
        default=72, ge=1, le=DELIVERY_HOURS_MAX, description="A service's time to deliver."
    )

    @model_validator(mode="after")
    def _item_matches_kind(self) -> ListingCreate:
        if self.kind == "service" and self.item is not None:
            raise ValueError("a service listing names no item")
        if self.kind != "service" and self.item is None:
            raise ValueError(f"a {self.kind} listing names its item (the {self.kind}'s id)")
        if self.kind == "nft" and self.stock not in (None, 1):
            raise ValueError("a unique token sells once: leave stock out")
        return self


class ListingChange(BaseModel):
    """What a seller may change; open orders keep the terms they were placed at."""

    model_config = ConfigDict(extra="forbid")

    title: str | None = Field(default=None, min_length=1, max_length=TITLE_MAX)
    description: str | None = Field(default=None, max_length=DESCRIPTION_MAX)
    price: Units | None = Field(default=None, gt=0)
    terms: str | None = Field(default=None, min_length=1, max_length=TERMS_MAX)
    stock: int | None = Field(default=None, ge=0, le=STOCK_MAX)
    status: Literal["active", "paused"] | None = None

    @model_validator(mode="after")
    def _something(self) -> ListingChange:
        if not self.model_fields_set:
            raise ValueError("name at least one field to change")
        return self


class Listing(BaseModel):
    id: str
    seller: str
    kind: Kind
    item_id: str | None
    title: str
    description: str
    price: Units
    asset: str
    terms: str
    stock: int | None
    delivery_hours: int
    status: ListingStatus
    sales: int
    rating: float | None = Field(description="Average of its reviews, 1 to 5.")
    reviews: int
    created_at: datetime
    updated_at: datetime


class ListingPage(BaseModel):
    listings: list[Listing]
    next_cursor: str | None


class OrderCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str | None = Field(
        default=None,
        pattern=ORDER_ID_PATTERN,
        description="Chosen by the buyer (8 to 40 characters): resending it changes nothing.",
    )


class Order(BaseModel):
    id: str
    listing_id: str
    buyer: str
    seller: str
    kind: Kind
    item_id: str | None
    title: str
    terms: str
    price: Units
    asset: str
    fee_bps: int = Field(description="The market's fee, taken from the price.")
    creator: str | None = Field(description="Who the royalty goes to, if any.")
    royalty_bps: int
    status: OrderStatus
    hold_id: str = Field(description="The escrow's pending transfer in Qwallet.")
    deadline: datetime | None = Field(description="When the node acts if nobody does.")
    delivery_note: str | None
    delivery_file: str | None
    dispute: str | None
    disputed_by: str | None
    resolution: str | None
    paid: Units | None = Field(description="What the buyer paid in the end.")
    outcome: str | None = Field(description="How it ended (accepted, expired, resolved, …).")
    licensed: bool = Field(description="A signed licence exists (GET …/licence).")
    created_at: datetime
    updated_at: datetime


class OrderPage(BaseModel):
    orders: list[Order]
    next_cursor: str | None


class DeliverRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: str = Field(min_length=1, max_length=NOTE_MAX, description="What was delivered.")
    file: str | None = Field(
        default=None,
        min_length=1,
        max_length=26,
        description="A Qdrive file of yours handed to the buyer as the deliverable.",
    )


class DisputeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=NOTE_MAX)


class ResolveRequest(BaseModel):
    """A moderator's split: the buyer pays `paid` of the price (0 refunds it all)."""

    model_config = ConfigDict(extra="forbid")

    paid: Units = Field(description="What the buyer pays, in the smallest unit: 0 to the price.")
    note: str = Field(min_length=1, max_length=NOTE_MAX)


class ReviewRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rating: int = Field(ge=1, le=5)
    text: str = Field(default="", max_length=REVIEW_MAX)


class Review(BaseModel):
    order_id: str
    listing_id: str
    seller: str
    buyer: str
    rating: int
    text: str
    created_at: datetime


class LicenceCheck(BaseModel):
    """A licence checked offline: signed by the node it names, for the buyer it names."""

    ok: bool
    licence_id: str
    issuer: str
    licensee: str
    licensor: str
    item: dict[str, Any]
    digest: str


class Moderator(BaseModel):
    did: str
    grant_id: str
