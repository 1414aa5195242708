"""GET /api/v1/items and GET /api/v1/items/{id}: the service catalog."""

from __future__ import annotations

from typing import Any, Dict, List, Optional

from fastapi import APIRouter, HTTPException, Path, Query

from assistant.api.deps import CatalogDep
from assistant.api.schemas import ErrorResponse, ItemSummary
from knowledge.answers import record_card

router = APIRouter(prefix="/api/v1/items", tags=["catalog"])


@router.get("", response_model=List[ItemSummary])
async def list_items(
    catalog: CatalogDep,
    kind: Optional[str] = Query(None, regex="^(item|bundle)$", description="item | bundle"),
) -> List[ItemSummary]:
    return [
        ItemSummary(
            id=r.id, kind=r.kind, name=r.name, department=r.department, verified=r.verified.isoformat()
        )
        for r in catalog.items()
        if kind is None or r.kind == kind
    ]


@router.get("/{item_id}", responses={404: {"model": ErrorResponse}})
async def get_item(
    catalog: CatalogDep, item_id: str = Path(..., max_length=64, regex=r"^[A-Za-z0-9_]+$")
) -> Dict[str, Any]:
    """The full knowledge card with the sources of its facts; a bundle's materials are its own reviewed list."""
    if item_id not in catalog:
        raise HTTPException(status_code=404, detail=f"没有找到该事项：{item_id}")
    return record_card(catalog, item_id)
