"""HTTP routes of Qwallet, mounted at `/qwallet`."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from anarq.gateway.auth import caller
from anarq.kernel.guard import Context
from anarq.qwallet.models import (
    ASSET_PATTERN,
    ID_PATTERN,
    AccountInfo,
    AccountRef,
    AssetInfo,
    BatchRequest,
    BatchResult,
    BooksReport,
    BurnRequest,
    FeeRequest,
    HistoryPage,
    IssueRequest,
    MintRequest,
    NftInfo,
    NftMintRequest,
    NftSendRequest,
    OpenAccountRequest,
    PayRequest,
    TransferInfo,
    TransferRequest,
)
from anarq.qwallet.service import HISTORY_MAX, WalletService
from anarq.qwallet.tables import DID_MAX, ID_MAX

router = APIRouter()

ASSET = Path(..., min_length=2, max_length=16, pattern=ASSET_PATTERN, description="An asset code.")
ACCOUNT = Path(..., ge=1, le=2**63 - 1, description="An account id.")


async def service(request: Request) -> WalletService:
    svc: WalletService = request.app.state.node.service("qwallet")
    return svc


def _created(info: TransferInfo, response: Response) -> TransferInfo:
    response.status_code = 201 if info.result == "ok" else 200
    return info


@router.get("/assets", response_model=list[AssetInfo], summary="Assets on this node")
def assets(svc: WalletService = Depends(service)) -> list[AssetInfo]:
    return svc.assets()


@router.post("/assets", status_code=201, response_model=AssetInfo, summary="Issue a new asset")
def issue(
    body: IssueRequest, ctx: Context = Depends(caller), svc: WalletService = Depends(service)
) -> AssetInfo:
    return svc.issue(ctx, body)


@router.get("/assets/{code}", response_model=AssetInfo, summary="One asset, with its supply")
def asset(code: str = ASSET, svc: WalletService = Depends(service)) -> AssetInfo:
    return svc.asset(code)


@router.put("/assets/{code}/fees", response_model=AssetInfo, summary="Set an asset's fees")
def set_fees(
    body: FeeRequest,
    code: str = ASSET,
    ctx: Context = Depends(caller),
    svc: WalletService = Depends(service),
) -> AssetInfo:
    return svc.set_fees(ctx, code, body)


@router.post(
    "/assets/{code}/mint",
    status_code=201,
    response_model=TransferInfo,
    summary="Mint to an identity (the issuer only)",
)
def mint(
    body: MintRequest,
    response: Response,
    code: str = ASSET,
    ctx: Context = Depends(caller),
    svc: WalletService = Depends(service),
) -> TransferInfo:
    return _created(svc.mint(ctx, code, body), response)


@router.post(
    "/assets/{code}/burn",
    status_code=201,
    response_model=TransferInfo,
    summary="Burn from your own account (the issuer only)",
)
def burn(
    body: BurnRequest,
    response: Response,
    code: str = ASSET,
    ctx: Context = Depends(caller),
    svc: WalletService = Depends(service),
) -> TransferInfo:
    return _created(svc.burn(ctx, code, body), response)


@router.get("/accounts", response_model=list[AccountInfo], summary="Your accounts")
def accounts(
    asset: str | None = Query(None, min_length=2, max_length=16, pattern=ASSET_PATTERN),
    ctx: Context = Depends(caller),
    svc: WalletService = Depends(service),
) -> list[AccountInfo]:
    return svc.accounts(ctx, asset)


@router.post(
    "/accounts",
    status_code=201,
    response_model=AccountInfo,
    summary="Open an account (or get the one you have)",
)
def open_account(
    body: OpenAccountRequest, ctx: Context = Depends(caller), svc: WalletService = Depends(service)
) -> AccountInfo:
    return svc.open_account(ctx, body)


@router.get(
    "/accounts/lookup", response_model=AccountRef, summary="Where to pay an identity in an asset"
)
def lookup(
    owner: str = Query(..., min_length=8, max_length=DID_MAX),
    asset: str = Query(..., min_length=2, max_length=16, pattern=ASSET_PATTERN),
    svc: WalletService = Depends(service),
) -> AccountRef:
    return svc.lookup(owner, asset)


@router.get("/accounts/{account_id}", response_model=AccountInfo, summary="One account")
def account(
    account_id: int = ACCOUNT, ctx: Context = Depends(caller), svc: WalletService = Depends(service)
) -> AccountInfo:
    return svc.account(ctx, account_id)


@router.get(
    "/accounts/{account_id}/transfers",
    response_model=HistoryPage,
    summary="An account's transfers, newest first",
)
def history(
    account_id: int = ACCOUNT,
    before: int | None = Query(None, ge=0, le=2**63 - 1),
    limit: int = Query(50, ge=1, le=HISTORY_MAX),
    ctx: Context = Depends(caller),
    svc: WalletService = Depends(service),
) -> HistoryPage:
    return svc.history(ctx, account_id, before=before, limit=limit)


@router.post(
    "/batches",
    response_model=BatchResult,
    summary="Apply up to 8,190 transfers in order; lists those not created",
)
def batch(
    body: BatchRequest, ctx: Context = Depends(caller), svc: WalletService = Depends(service)
) -> BatchResult:
    return svc.submit(ctx, body.transfers)


@router.post(
    "/transfers",
    status_code=201,
    response_model=TransferInfo,
    summary="One transfer (201 made, 200 already made; a refusal is a problem)",
)
def transfer(
    body: TransferRequest,
    response: Response,
    ctx: Context = Depends(caller),
    svc: WalletService = Depends(service),
) -> TransferInfo:
    return _created(svc.transfer_one(ctx, body), response)


@router.post(
    "/pay",
    status_code=201,
    response_model=TransferInfo,
    summary="Pay an identity by DID from your main account",
)
def pay(
    body: PayRequest,
    response: Response,
    ctx: Context = Depends(caller),
    svc: WalletService = Depends(service),
) -> TransferInfo:
    return _created(svc.pay(ctx, body), response)


@router.get("/transfers/{transfer_id}", response_model=TransferInfo, summary="One transfer")
def get_transfer(
    transfer_id: str = Path(..., min_length=1, max_length=ID_MAX + 4, pattern=r"^[A-Za-z0-9_.-]+$"),
    ctx: Context = Depends(caller),
    svc: WalletService = Depends(service),
) -> TransferInfo:
    return svc.transfer(ctx, transfer_id)


@router.get("/books", response_model=BooksReport, summary="Check the whole ledger (operator)")
def books(ctx: Context = Depends(caller), svc: WalletService = Depends(service)) -> BooksReport:
    return svc.verify_books(ctx)


@router.get("/nfts", response_model=list[NftInfo], summary="Your unique tokens")
def nfts(ctx: Context = Depends(caller), svc: WalletService = Depends(service)) -> list[NftInfo]:
    return svc.nfts(ctx)


@router.post("/nfts", status_code=201, response_model=NftInfo, summary="Mint a unique token")
def nft_mint(
    body: NftMintRequest, ctx: Context = Depends(caller), svc: WalletService = Depends(service)
) -> NftInfo:
    return svc.nft_mint(ctx, body)


NFT_ID = Path(..., min_length=1, max_length=26, pattern=ID_PATTERN)


@router.get("/nfts/{nft_id}", response_model=NftInfo, summary="A token and its provenance")
def nft(
    nft_id: str = NFT_ID, ctx: Context = Depends(caller), svc: WalletService = Depends(service)
) -> NftInfo:
    return svc.nft(ctx, nft_id)


@router.post("/nfts/{nft_id}/send", response_model=NftInfo, summary="Give a token to someone")
def nft_send(
    body: NftSendRequest,
    nft_id: str = NFT_ID,
    ctx: Context = Depends(caller),
    svc: WalletService = Depends(service),
) -> NftInfo:
    return svc.nft_send(ctx, nft_id, body.to)
