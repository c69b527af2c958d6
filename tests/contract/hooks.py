"""Schemathesis hooks for the REST contract run (tests/contract/run.sh).

The OpenAPI document declares three string formats JSON Schema cannot
check (ISCC-IDs, ISCC-CODEs, ISCC-UNITs: a pattern only says which
characters). Here they get generators that draw valid values from the
shared test corpus, so "schema-valid" requests are valid ISCC input. One
entry rule the schema states only in words (an entry holds at most one unit
per unit type) is applied to generated schema-valid `/add` bodies, and so
are the granular-feature rules stated in words: simprints are drawn as
valid 64-bit base64url values (one bit length per type), a feature set's
offsets and sizes are as long as its simprints, a simprint type is given
once per entry or query, features go with one query (not a batch of codes
or unit lists), `iscc_id` ("more like this") stands alone, and `queries`
holds every query field of a batch.
"""

from __future__ import annotations

import base64
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


schemathesis.openapi.format("iscc-id", st.sampled_from(_IDS).flatmap(_id_variants))
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


schemathesis.openapi.format(
    "simprint",
    st.binary(min_size=8, max_size=8).map(
        lambda b: base64.urlsafe_b64encode(b).decode().rstrip("=")
    ),
)


def _type_name(maintype: Any, subtype: Any, version: Any) -> str:
    """A simprint type as the engine names it (`0_0_V00` is `0-0-V0`)."""
    try:
        version = int(version)
    except (TypeError, ValueError):
        pass
    return f"{maintype}-{subtype}-V{version}".upper()


def _features_rules(obj: Any) -> Any:
    """One entry's or query's granular features as the engine takes them:
    offsets and sizes as long as the simprints (else left out), each
    simprint type once (over `features` and `simprints`)."""
    if not isinstance(obj, dict):
        return obj
    seen: set[str] = set()
    out = dict(obj)
    features = obj.get("features")
    if isinstance(features, list):
        kept = []
        for fs in features:
            if not isinstance(fs, dict):
                kept.append(fs)
                continue
            name = _type_name(
                fs.get("maintype"), fs.get("subtype"), fs.get("version", 0)
            )
            if name in seen:
                continue
            seen.add(name)
            n = len(fs.get("simprints") or [])
            kept.append(
                {
                    k: v
                    for k, v in fs.items()
                    if k not in ("offsets", "sizes")
                    or not isinstance(v, list)
                    or len(v) == n
                }
            )
        out["features"] = kept
    simprints = obj.get("simprints")
    if isinstance(simprints, dict):
        kept_sp = {}
        for key, chunks in simprints.items():
            parts = re.split(r"[-_]", key)
            name = (
                _type_name(parts[0], parts[1], parts[2][1:])
                if len(parts) == 3 and parts[2][:1] in ("V", "v")
                else key.upper()
            )
            if name not in seen:
                seen.add(name)
                kept_sp[key] = chunks
        out["simprints"] = kept_sp
    return out


_QUERY_FIELDS = ("iscc_codes", "iscc_code", "units", "features", "simprints")


def _query_rules(query: Any) -> Any:
    """A query object: `iscc_id` alone, features rules otherwise."""
    if not isinstance(query, dict):
        return query
    if query.get("iscc_id") is not None:
        return {k: v for k, v in query.items() if k not in _QUERY_FIELDS}
    return _features_rules(query)


def _search_rules(body: dict[str, Any]) -> dict[str, Any]:
    if isinstance(body.get("queries"), list):
        rest = {
            k: v for k, v in body.items() if k not in _QUERY_FIELDS and k != "iscc_id"
        }
        return {**rest, "queries": [_query_rules(q) for q in body["queries"]]}
    body = _query_rules(body)
    batch = isinstance(body.get("iscc_codes"), list) or (
        isinstance(body.get("units"), list)
        and any(isinstance(u, list) for u in body["units"])
    )
    if batch:
        body = {k: v for k, v in body.items() if k not in ("features", "simprints")}
    return body


@schemathesis.hook
def map_case(ctx: schemathesis.HookContext, case: Any) -> Any:
    """Schema-valid `/add` bodies keep one unit per unit type per entry and
    the feature rules; schema-valid `/search` bodies keep the query rules
    (see the module docs). Schema-violating cases are left as generated."""
    if not _positive(case) or not isinstance(case.body, dict):
        return case
    if case.operation.path == "/search":
        case.body = _search_rules(case.body)
        return case
    if case.operation.path != "/add":
        return case
    entries = case.body.get("entries")
    if isinstance(entries, list):
        fixed = [_features_rules(_one_unit_per_type(e)) for e in entries]
        case.body = {**case.body, "entries": fixed}
    else:
        case.body = {
            **case.body,
            "entries": _features_rules(_one_unit_per_type(entries)),
        }
    return case
