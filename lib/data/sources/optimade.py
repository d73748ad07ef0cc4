"""OQMD and NOMAD (and any OPTIMADE provider) through the OPTIMADE API, one saved page per request.

Provider fields and units are mapped to the standard columns by ``lib.data.mapping.PROPERTY_MAP``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from lib.data.mapping import PROPERTY_MAP
from lib.data.sources.base import DataUnavailable, FetchError, Job, Request, short, tqdm

OPTIMADE_PROVIDERS: dict[str, str] = {
    "oqmd": "https://oqmd.org/optimade",
    "nomad": "https://nomad-lab.eu/prod/v1/optimade",
}
OPTIMADE_STRUCTURE_FIELDS = (
    "lattice_vectors",
    "cartesian_site_positions",
    "species_at_sites",
    "species",
    "dimension_types",
    "chemical_formula_reduced",
)


def plan(req: Request) -> Job:
    """Every page of the filter's results from each provider (resumed from disk), then their records."""
    if not req.optimade_filter:
        raise ValueError(
            "source='optimade' needs optimade_filter=, e.g. "
            '\'elements HAS ALL "Li","O" AND nelements=3\''
        )
    providers = req.providers
    if isinstance(providers, str):
        providers = (providers,)
    unknown = [p for p in providers if not isinstance(providers, Mapping) and p not in OPTIMADE_PROVIDERS]
    if unknown:
        raise ValueError(
            f"unknown OPTIMADE provider(s) {unknown}: known {list(OPTIMADE_PROVIDERS)}, "
            "or pass providers={name: base_url}"
        )
    prov = (dict(providers) if isinstance(providers, Mapping)
            else {p: OPTIMADE_PROVIDERS[p] for p in providers})
    page_files = {pname: fetch_optimade(pname, base, req.optimade_filter, req.raw_dir / "optimade",
                                        req.max_entries, req.progress)
                  for pname, base in prov.items()}
    files = [f for fs in page_files.values() for f in fs]
    return Job("optimade", files, lambda: records_optimade(page_files, req.max_entries),
               f"OPTIMADE {', '.join(prov)}: {req.optimade_filter}",
               {"filter": req.optimade_filter, "max_entries": req.max_entries})


def _next_link(payload: Mapping) -> str | None:
    nxt = (payload.get("links") or {}).get("next")
    if isinstance(nxt, Mapping):
        nxt = nxt.get("href")
    return nxt or None


def fetch_optimade(
    provider: str,
    base_url: str,
    flt: str,
    out_root: Path,
    max_entries: int | None,
    progress: bool,
    page_limit: int = 100,
) -> list[Path]:
    """Follow links.next from {base}/v1/structures, one saved page per request; resumes from disk."""
    import requests

    fields = [*OPTIMADE_STRUCTURE_FIELDS, *(m.field for m in PROPERTY_MAP if m.provider == provider)]
    fields += [
        m.field[: -len("_value")] + "_type"
        for m in PROPERTY_MAP
        if m.provider == provider and m.pick == "vrh"
    ]
    url = base_url.rstrip("/") + "/v1/structures"
    params = {"filter": flt, "response_fields": ",".join(dict.fromkeys(fields)), "page_limit": page_limit}
    digest = hashlib.sha256(json.dumps([url, params, max_entries], sort_keys=True).encode()).hexdigest()[:12]
    out_dir = out_root / provider / digest
    pages = sorted(out_dir.glob("page-*.json")) if out_dir.exists() else []
    n_entries, nxt = 0, None
    for p in pages:
        payload = json.loads(p.read_text(encoding="utf-8"))
        n_entries += len(payload.get("data", []))
        nxt = _next_link(payload)
    if pages and (nxt is None or (max_entries is not None and n_entries >= max_entries)):
        return pages
    out_dir.mkdir(parents=True, exist_ok=True)
    bar = tqdm(desc=f"OPTIMADE {provider}", unit="entry", initial=n_entries, disable=not progress)
    request_url, request_params = (nxt, None) if pages else (url, params)
    try:
        while request_url:
            try:
                resp = requests.get(
                    request_url,
                    params=request_params,
                    timeout=60,
                    headers={"Accept": "application/vnd.api+json, application/json"},
                )
            except requests.RequestException as exc:
                raise DataUnavailable(
                    f"cannot reach the {provider} OPTIMADE endpoint {url} ({short(exc)}); "
                    f"{len(pages)} page(s) are saved under {out_dir} and a later call resumes"
                ) from None
            if resp.status_code != 200:
                raise FetchError(
                    f"{provider} OPTIMADE answered HTTP {resp.status_code} for {resp.url}: "
                    f"{resp.text[:300]!r}; {len(pages)} page(s) kept under {out_dir}"
                )
            payload = resp.json()
            page = out_dir / f"page-{len(pages):05d}.json"
            page.write_text(json.dumps(payload), encoding="utf-8")
            pages.append(page)
            n_entries += len(payload.get("data", []))
            bar.update(len(payload.get("data", [])))
            request_url, request_params = _next_link(payload), None
            if max_entries is not None and n_entries >= max_entries:
                break
    finally:
        bar.close()
    return pages


def records_optimade(
    page_files: dict[str, list[Path]], max_entries: int | None
) -> tuple[pd.DataFrame, dict]:
    rows, provider, notes = [], [], []
    for pname, pages in page_files.items():
        entries = []
        for p in pages:
            entries.extend(json.loads(p.read_text(encoding="utf-8")).get("data", []))
        if max_entries is not None:
            entries = entries[:max_entries]
        for e in entries:
            attrs = dict(e.get("attributes") or {})
            row = {k: v for k, v in attrs.items() if k.startswith("_")}
            row["material_id"] = f"{pname}:{e.get('id')}"
            row["optimade"] = attrs
            rows.append(row)
            provider.append(pname)
        notes.append(f"{len(entries):,} entries from {pname}")
    records = pd.DataFrame(rows) if rows else pd.DataFrame(columns=["material_id", "optimade"])
    return records, {"provider": provider, "source": [f"optimade:{p}" for p in provider], "notes": notes}
