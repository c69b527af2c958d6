"""Schemathesis hooks for the REST contract run (tests/contract/run.sh).

The OpenAPI document declares three string formats JSON Schema cannot
check (ISCC-IDs, ISCC-CODEs, ISCC-UNITs: a pattern only says which
characters). Here they get generators that draw valid values from the
shared test corpus, so "schema-valid" requests are valid ISCC input. One
entry rule the schema states only in words (an entry holds at most one unit
per unit type) is applied to generated schema-valid `/add` bodies.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

import schemathesis
from hypothesis import strategies as st

_CORPUS = os.environ["IVDB_CORPUS"]

with open(_CORPUS, encoding="utf-8") as f:
    _RECORDS = [json.loads(line) for line in f if line.strip()]

_IDS = sorted({r["iscc_id"] for r in _RECORDS})
_CODES = sorted({r["iscc_code"] for r in _RECORDS if r.get("iscc_code")})
_UNITS = sorted({u for r in _RECORDS for u in r.get("units") or []})


def _id_variants(iscc_id: str) -> st.SearchStrategy[str]:
    body = iscc_id.split(":", 1)[1]
    return st.sampled_from([iscc_id, body, "iscc:" + body.lower()])


schemathesis.openapi.format(
    "iscc-id", st.sampled_from(_IDS).flatmap(_id_variants)
)
schemathesis.openapi.format(
    "iscc-code", st.sampled_from(_CODES) | st.sampled_from(_UNITS)
)
schemathesis.openapi.format("iscc-unit", st.sampled_from(_UNITS))


def _unit_type(unit: str) -> str:
    """The unit type part of a unit's header (its first two characters
    after the prefix hold MainType and SubType, enough to tell types
    apart within the corpus's units)."""
    return unit.split(":", 1)[-1][:2].upper()


_UNIT_SHAPE = re.compile(r"^(ISCC:)?[A-Z2-7]{16,}$", re.IGNORECASE)


def _one_unit_per_type(entry: Any) -> Any:
    if not isinstance(entry, dict) or not isinstance(entry.get("units"), list):
        return entry
    seen: set[str] = set()
    kept = []
    for unit in entry["units"]:
        if isinstance(unit, str) and _UNIT_SHAPE.match(unit):
            kind = _unit_type(unit)
            if kind in seen:
                continue
            seen.add(kind)
        kept.append(unit)
    return {**entry, "units": kept}


def _positive(case: Any) -> bool:
    meta = getattr(case, "meta", None)
    return meta is None or meta.generation.mode.is_positive


@schemathesis.hook
def map_case(ctx: schemathesis.HookContext, case: Any) -> Any:
    """Schema-valid `/add` bodies keep one unit per unit type per entry
    (the rule the document states in words). Schema-violating cases are
    left as generated."""
    if case.operation.path != "/add" or not _positive(case) or not isinstance(case.body, dict):
        return case
    entries = case.body.get("entries")
    if isinstance(entries, list):
        case.body = {**case.body, "entries": [_one_unit_per_type(e) for e in entries]}
    else:
        case.body = {**case.body, "entries": _one_unit_per_type(entries)}
    return case
