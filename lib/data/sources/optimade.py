"""OQMD and NOMAD (and any OPTIMADE provider) through the OPTIMADE API, one saved page per request.

Provider fields and units are mapped to the standard columns by ``lib.data.mapping.PROPERTY_MAP``.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Mapping
from pathlib import Path

import pandas as pd
import requests

from lib.data.mapping import PROPERTY_MAP
from lib.data.sources.base import (
    DataUnavailable,
    FetchError,
    Job,
    Request,
    _NoAnswer,
    http_get,
    short,
    tqdm,
)
from lib.paths import atomic_path

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
    nxt = (payload.get("links") or {}).get("next") if isinstance(payload.get("links"), Mapping) else None
    if isinstance(nxt, Mapping):
        nxt = nxt.get("href")
    return nxt if isinstance(nxt, str) and nxt else None


#: the most pages one query may take (page_limit 100: 500,000 entries); more ends with a clear error
OPTIMADE_MAX_PAGES = 5000
#: pages in a row without entries but with a next link that end a fetch (a server paging in circles)
OPTIMADE_MAX_EMPTY = 3


def _full_url(url: str, params: Mapping | None) -> str:
    """The URL a GET of ``url`` with ``params`` asks for (to recognise a next link that points back)."""
    if not params:
        return url

    return requests.Request("GET", url, params=params).prepare().url


def _page_problem(payload) -> str | None:
    """Why ``payload`` is not an OPTIMADE structures page (None if it is one)."""
    if not isinstance(payload, Mapping):
        return f"a JSON {type(payload).__name__}, not an object"
    if payload.get("errors") and not payload.get("data"):
        return f"errors {json.dumps(payload['errors'])[:300]}"
    if not isinstance(payload.get("data"), list):
        return "no 'data' list"
    return None


def _saved_pages(out_dir: Path) -> tuple[list[Path], list[dict]]:
    """The saved pages that can be read, in order; a missing, unreadable or foreign page and every page
    after it are removed (they are fetched again from the last good page's next link)."""
    files = sorted(out_dir.glob("page-*.json")) if out_dir.exists() else []
    good, payloads = [], []
    for i, p in enumerate(files):
        why = None
        if p.name != f"page-{i:05d}.json":
            why = "a page before it is missing"
        else:
            try:
                payload = json.loads(p.read_text(encoding="utf-8"))
                why = _page_problem(payload)
            except (OSError, UnicodeDecodeError, ValueError) as exc:
                why = short(exc)
        if why is not None:
            warnings.warn(f"OPTIMADE page {p} cannot be used ({why}): it and the {len(files) - i - 1} "
                          "page(s) after it are fetched again", stacklevel=3)
            for q in files[i:]:
                q.unlink(missing_ok=True)
            break
        good.append(p)
        payloads.append(payload)
    return good, payloads


def fetch_optimade(
    provider: str,
    base_url: str,
    flt: str,
    out_root: Path,
    max_entries: int | None,
    progress: bool,
    page_limit: int = 100,
    max_pages: int | None = None,
) -> list[Path]:
    """Follow links.next from {base}/v1/structures, one saved page per request; resumes from disk.

    Every request has timeouts and bounded retries (``lib.data.sources.base.http_get``); pages are
    written atomically; a page that cannot be read on resume is fetched again. The loop ends with
    FetchError (pages kept, a later call resumes) after ``max_pages`` pages (:data:`OPTIMADE_MAX_PAGES`),
    when a next link repeats one already followed, or after :data:`OPTIMADE_MAX_EMPTY` empty pages in a row.
    """
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
    max_pages = int(max_pages or OPTIMADE_MAX_PAGES)
    pages, payloads = _saved_pages(out_dir)
    n_entries = sum(len(p["data"]) for p in payloads)
    nxt = _next_link(payloads[-1]) if payloads else None
    if pages and (nxt is None or (max_entries is not None and n_entries >= max_entries)):
        return pages
    followed = {_next_link(p) for p in payloads[:-1]} - {None}
    out_dir.mkdir(parents=True, exist_ok=True)
    bar = tqdm(desc=f"OPTIMADE {provider}", unit="entry", initial=n_entries, disable=not progress)
    request_url, request_params = (nxt, None) if pages else (url, params)
    kept = f"{{}} page(s) are saved under {out_dir} and the same call resumes from there"
    empty = 0
    try:
        while request_url:
            if len(pages) >= max_pages:
                raise FetchError(f"the {provider} OPTIMADE query passed {max_pages:,} pages ({n_entries:,} "
                                 "entries) and was stopped: narrow the filter or set max_entries; "
                                 + kept.format(len(pages)))
            followed.add(_full_url(request_url, request_params))
            try:
                payload = http_get(request_url, params=request_params,
                                   headers={"Accept": "application/vnd.api+json, application/json"})
            except _NoAnswer as exc:
                err = FetchError if exc.reached else DataUnavailable
                raise err(f"the {provider} OPTIMADE endpoint {url} gave no usable answer ({exc}); "
                          + kept.format(len(pages))) from None
            why = _page_problem(payload)
            if why is not None:
                raise FetchError(f"the {provider} OPTIMADE endpoint answered {request_url} with {why}, not "
                                 "a page of structures; " + kept.format(len(pages)))
            page = out_dir / f"page-{len(pages):05d}.json"
            with atomic_path(page) as tmp:
                tmp.write_text(json.dumps(payload), encoding="utf-8")
            pages.append(page)
            n_entries += len(payload["data"])
            bar.update(len(payload["data"]))
            request_url, request_params = _next_link(payload), None
            if max_entries is not None and n_entries >= max_entries:
                break
            empty = empty + 1 if not payload["data"] else 0
            if request_url and empty >= OPTIMADE_MAX_EMPTY:
                raise FetchError(f"the {provider} OPTIMADE endpoint sent {empty} empty pages in a row that "
                                 "still link to a next one; " + kept.format(len(pages)))
            if request_url in followed:
                raise FetchError(f"the {provider} OPTIMADE endpoint links back to a page already fetched "
                                 f"({request_url}): its paging loops; " + kept.format(len(pages)))
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
            try:
                entries.extend(json.loads(p.read_text(encoding="utf-8")).get("data", []))
            except (OSError, ValueError) as exc:
                raise FetchError(f"{p} cannot be read ({short(exc)}): delete it and run the same call again "
                                 "(it is fetched again)") from None
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
