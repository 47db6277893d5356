"""Pagination of Lambda's list calls, at Lambda's page sizes (moto 5.2.5 answers every item at once and ignores
`Marker` and `MaxItems`).

Lambda API reference:
  - ListVersionsByFunction: "Lambda returns up to 50 versions per call"; MaxItems "Note that ListVersionsByFunction
    returns a maximum of 50 items in each response, even if you set the number higher";
  - ListFunctions: likewise, up to 50 per response whatever MaxItems says;
  - ListAliases: MaxItems "Limit the number of aliases returned"; no default is documented: 50 here, as the others;
  - MaxItems: 1 to 10000 (the MaxListItems shape); `Marker` is the `NextMarker` of the page before, an opaque token.
A marker here names the last item of the page it ends, so that items added or removed between two pages neither
repeat nor vanish from the items not yet listed. Versions are listed `$LATEST` first, then by number; aliases and
functions by name.
"""
from __future__ import annotations

import base64
import json
from dataclasses import dataclass

MAX_ITEMS = 10000
DEFAULT_PAGE = 50


@dataclass(frozen=True)
class Listing:
    field: str          # the answer's list: "Versions", "Aliases", "Functions"
    name: str           # the field naming an item
    capped: bool        # at most 50 a page whatever MaxItems says


LISTINGS = {
    "ListVersionsByFunction": Listing("Versions", "Version", capped=True),
    "ListFunctions": Listing("Functions", "FunctionName", capped=True),
    "ListAliases": Listing("Aliases", "Name", capped=False),
}


class BadRequest(Exception):
    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind, self.message = kind, message


def page_size(operation: str, query: dict[str, list[str]]) -> int:
    raw = (query.get("MaxItems") or [None])[0]
    if raw is None:
        return DEFAULT_PAGE
    try:
        wanted = int(raw)
    except ValueError:
        raise BadRequest("ValidationException", f"1 validation error detected: Value '{raw}' at 'maxItems' failed "
                                                "to satisfy constraint: Member must be a number") from None
    if not 1 <= wanted <= MAX_ITEMS:
        bound = "greater than or equal to 1" if wanted < 1 else f"less than or equal to {MAX_ITEMS}"
        raise BadRequest("ValidationException", f"1 validation error detected: Value '{wanted}' at 'maxItems' "
                                                f"failed to satisfy constraint: Member must have value {bound}")
    return min(wanted, DEFAULT_PAGE) if LISTINGS[operation].capped else wanted


def _order(listing: Listing, name: str) -> tuple:
    if listing.name == "Version":
        return (0, 0, "") if name == "$LATEST" else (1, int(name) if name.isdigit() else 0, name)
    return (0, 0, name)


def encode_marker(name: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"after": name}).encode()).decode()


def decode_marker(marker: str) -> str:
    try:
        after = json.loads(base64.urlsafe_b64decode(marker.encode()))["after"]
    except (ValueError, KeyError, TypeError):
        raise BadRequest("InvalidParameterValueException", f"Invalid marker: {marker}") from None
    if not isinstance(after, str):
        raise BadRequest("InvalidParameterValueException", f"Invalid marker: {marker}")
    return after


def paginate(operation: str, answer: dict, query: dict[str, list[str]]) -> dict:
    """moto's whole listing → the page the request asks for, with `NextMarker` when more items follow."""
    listing = LISTINGS[operation]
    size = page_size(operation, query)
    items = sorted(answer.get(listing.field) or [], key=lambda i: _order(listing, str(i.get(listing.name))))
    marker = (query.get("Marker") or [None])[0]
    if marker:
        after = _order(listing, decode_marker(marker))
        items = [i for i in items if _order(listing, str(i.get(listing.name))) > after]
    page, more = items[:size], len(items) > size
    out = {k: v for k, v in answer.items() if k not in (listing.field, "NextMarker")}
    out[listing.field] = page
    if more:
        out["NextMarker"] = encode_marker(str(page[-1].get(listing.name)))
    return out
