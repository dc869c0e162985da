"""Shapes shared by every resource: a page of results."""

from __future__ import annotations

from typing import Generic, TypeVar

from pydantic import BaseModel, Field

Item = TypeVar("Item")


class Page(BaseModel, Generic[Item]):
    """One page of a list, with the total so a client can draw a pager."""

    items: list[Item] = Field(description="The rows of this page, in the requested order.")
    total: int | None = Field(
        description="Rows matching the filters, over all pages; null on a cursor page unless count=true "
        "was asked (/cases, /events)."
    )
    limit: int = Field(description="Largest number of rows a page holds.")
    offset: int = Field(description="Rows skipped before this page.")
    next_cursor: str | None = Field(
        default=None,
        description="Where the next page starts (pass as ?cursor=); null on the last page or where "
        "the list pages by offset only.",
    )
