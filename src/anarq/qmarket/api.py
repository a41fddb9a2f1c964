"""HTTP routes of Qmarket, mounted at `/qmarket`."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Body, Depends, Path, Query, Request, Response

from anarq.gateway.auth import caller
from anarq.kernel.guard import Context
from anarq.qindex.models import QUERY_MAX_CHARS
from anarq.qmarket.models import (
    DeliverRequest,
    DisputeRequest,
    Kind,
    LicenceCheck,
    Listing,
    ListingChange,
    ListingCreate,
    ListingPage,
    Moderator,
    Order,
    OrderCreate,
    OrderPage,
    OrderStatus,
    ResolveRequest,
    Review,
    ReviewRequest,
)
from anarq.qmarket.service import PAGE_MAX, MarketService
from anarq.qmarket.tables import DID_MAX
from anarq.qwallet.models import ASSET_PATTERN

router = APIRouter()

LISTING = Path(..., min_length=26, max_length=26, pattern=r"^[0-9A-Z]{26}$")
ORDER = Path(..., min_length=8, max_length=40, pattern=r"^[A-Za-z0-9_-]+$")
CURSOR = Query(None, min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_-]+$")


async def service(request: Request) -> MarketService:
    svc: MarketService = request.app.state.node.service("qmarket")
    return svc


@router.get("/listings", response_model=ListingPage, summary="Listings for sale, or a search")
def listings(
    q: str | None = Query(None, min_length=1, max_length=QUERY_MAX_CHARS, description="Search."),
    kind: Kind | None = Query(None),
    seller: str | None = Query(None, min_length=8, max_length=DID_MAX),
    asset: str | None = Query(None, min_length=2, max_length=16, pattern=ASSET_PATTERN),
    mine: bool = Query(False, description="Your own listings, whatever their status."),
    cursor: str | None = Query(None, min_length=1, max_length=512),
    limit: int = Query(20, ge=1, le=50),
    ctx: Context = Depends(caller),
    svc: MarketService = Depends(service),
) -> ListingPage:
    return svc.listings(
        ctx, q=q, kind=kind, seller=seller, asset=asset, mine=mine, cursor=cursor, limit=limit
    )


@router.post("/listings", status_code=201, response_model=Listing, summary="Offer something")
def create_listing(
    body: ListingCreate, ctx: Context = Depends(caller), svc: MarketService = Depends(service)
) -> Listing:
    return svc.create_listing(ctx, body)


@router.get("/listings/{listing_id}", response_model=Listing, summary="One listing")
def listing(
    listing_id: str = LISTING, ctx: Context = Depends(caller), svc: MarketService = Depends(service)
) -> Listing:
    return svc.listing(ctx, listing_id)


@router.patch("/listings/{listing_id}", response_model=Listing, summary="Change your listing")
def change_listing(
    body: ListingChange,
    listing_id: str = LISTING,
    ctx: Context = Depends(caller),
    svc: MarketService = Depends(service),
) -> Listing:
    return svc.change_listing(ctx, listing_id, body)


@router.delete("/listings/{listing_id}", response_model=Listing, summary="Withdraw your listing")
def withdraw_listing(
    listing_id: str = LISTING, ctx: Context = Depends(caller), svc: MarketService = Depends(service)
) -> Listing:
    return svc.withdraw_listing(ctx, listing_id)


@router.get(
    "/listings/{listing_id}/reviews", response_model=list[Review], summary="A listing's reviews"
)
def reviews(
    listing_id: str = LISTING,
    limit: int = Query(50, ge=1, le=PAGE_MAX),
    svc: MarketService = Depends(service),
) -> list[Review]:
    return svc.reviews(listing_id, limit=limit)


@router.post(
    "/listings/{listing_id}/orders",
    status_code=201,
    response_model=Order,
    summary="Buy: the price is held in escrow (201 placed, 200 placed before)",
)
def buy(
    response: Response,
    body: OrderCreate = Body(default_factory=OrderCreate),
    listing_id: str = LISTING,
    ctx: Context = Depends(caller),
    svc: MarketService = Depends(service),
) -> Order:
    order, created = svc.buy(ctx, listing_id, body)
    response.status_code = 201 if created else 200
    return order


@router.get("/orders", response_model=OrderPage, summary="Your purchases, sales, or disputes")
def orders(
    role: Literal["buyer", "seller", "moderator"] = Query("buyer"),
    status: OrderStatus | None = Query(None),
    cursor: str | None = CURSOR,
    limit: int = Query(50, ge=1, le=PAGE_MAX),
    ctx: Context = Depends(caller),
    svc: MarketService = Depends(service),
) -> OrderPage:
    return svc.orders(ctx, role=role, status=status, cursor=cursor, limit=limit)


@router.get("/orders/{order_id}", response_model=Order, summary="One order")
def order(
    order_id: str = ORDER, ctx: Context = Depends(caller), svc: MarketService = Depends(service)
) -> Order:
    return svc.order(ctx, order_id)


@router.post("/orders/{order_id}/deliver", response_model=Order, summary="Deliver a service")
def deliver(
    body: DeliverRequest,
    order_id: str = ORDER,
    ctx: Context = Depends(caller),
    svc: MarketService = Depends(service),
) -> Order:
    return svc.deliver(ctx, order_id, body)


@router.post("/orders/{order_id}/accept", response_model=Order, summary="Accept: it settles")
def accept(
    order_id: str = ORDER, ctx: Context = Depends(caller), svc: MarketService = Depends(service)
) -> Order:
    return svc.accept(ctx, order_id)


@router.post("/orders/{order_id}/refund", response_model=Order, summary="Refund the buyer")
def refund(
    order_id: str = ORDER, ctx: Context = Depends(caller), svc: MarketService = Depends(service)
) -> Order:
    return svc.refund(ctx, order_id)


@router.post("/orders/{order_id}/dispute", response_model=Order, summary="Ask a moderator")
def dispute(
    body: DisputeRequest,
    order_id: str = ORDER,
    ctx: Context = Depends(caller),
    svc: MarketService = Depends(service),
) -> Order:
    return svc.dispute(ctx, order_id, body)


@router.post(
    "/orders/{order_id}/resolve", response_model=Order, summary="Split a dispute (moderators)"
)
def resolve(
    body: ResolveRequest,
    order_id: str = ORDER,
    ctx: Context = Depends(caller),
    svc: MarketService = Depends(service),
) -> Order:
    return svc.resolve(ctx, order_id, body)


@router.post(
    "/orders/{order_id}/review", status_code=201, response_model=Review, summary="Review it"
)
def review(
    body: ReviewRequest,
    order_id: str = ORDER,
    ctx: Context = Depends(caller),
    svc: MarketService = Depends(service),
) -> Review:
    return svc.review(ctx, order_id, body)


@router.get("/orders/{order_id}/licence", summary="The signed licence of a settled order")
def order_licence(
    order_id: str = ORDER, ctx: Context = Depends(caller), svc: MarketService = Depends(service)
) -> dict[str, Any]:
    return svc.licence(ctx, order_id)


@router.post(
    "/licences/verify", response_model=LicenceCheck, summary="Check a licence (as offline)"
)
def verify_licence(
    body: dict[str, Any] = Body(..., description="The licence document."),
    licensee: str | None = Query(None, min_length=8, max_length=DID_MAX),
    svc: MarketService = Depends(service),
) -> LicenceCheck:
    return svc.verify_licence(body, licensee)


@router.get("/moderators", response_model=list[Moderator], summary="Who moderates disputes")
def moderators(
    ctx: Context = Depends(caller), svc: MarketService = Depends(service)
) -> list[Moderator]:
    return svc.moderators(ctx)


@router.put(
    "/moderators/{did}", status_code=201, response_model=Moderator, summary="Name a moderator"
)
def add_moderator(
    did: str = Path(..., min_length=8, max_length=DID_MAX),
    ctx: Context = Depends(caller),
    svc: MarketService = Depends(service),
) -> Moderator:
    return svc.add_moderator(ctx, did)


@router.delete("/moderators/{did}", status_code=204, summary="Remove a moderator")
def remove_moderator(
    did: str = Path(..., min_length=8, max_length=DID_MAX),
    ctx: Context = Depends(caller),
    svc: MarketService = Depends(service),
) -> Response:
    svc.remove_moderator(ctx, did)
    return Response(status_code=204)
