"""What every source shares: the request it is given, the job it returns, errors, HTTP helpers.

A source module (mirror, folder, megnet, mp, optimade) has one function, ``plan(request) -> Job``: it
fetches what must be fetched (resumably, under ``request.raw_dir``) and returns the input files (which key
the processed cache) and a ``build()`` that turns them into *records*: a DataFrame with ``material_id``,
one structure column (``cif``: CIF text, ``pmg``: pymatgen Structure dict, ``optimade``: OPTIMADE
attributes, ``crystal``: exact arrays), the provider's property fields, and optionally source/retrieved;
plus meta = {"provider": name or a per-row list, "source": label or list, "notes": [...], "rejected":
[...], "expect": [...], "mappings": [...], "energy_reference": column}. ``lib.data.table.build_table``
makes the standard table of them.
"""

from __future__ import annotations

import email.utils
import json
import threading
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import requests

from lib.paths import atomic_path

with warnings.catch_warnings():  # tqdm.auto warns when a notebook has no ipywidgets; text bars are fine
    warnings.simplefilter("ignore")
    from tqdm.auto import tqdm

try:  # orjson (an mp-api dependency) reads the JSON Lines mirror ~3x faster
    import orjson as _orjson

    json_loads = _orjson.loads
except ImportError:  # pragma: no cover
    _orjson = None
    json_loads = json.loads

MP_KEY_URL = "https://next-gen.materialsproject.org/api"


class DataUnavailable(RuntimeError):
    """No source can be read (no mirror, no key, no network): the message says what to do."""


class FetchError(RuntimeError):
    """A download stopped part-way; what was fetched is kept and the same call resumes."""


@dataclass(frozen=True)
class Request:
    """What ``load_dataset`` was asked for (see its docstring for each field)."""
    name: str
    mirror: Path | None
    path: Path | None
    target: str | None
    api_key: str | None
    ids: Sequence[str] | None
    optimade_filter: str | None
    providers: Sequence[str] | Mapping[str, str]
    max_entries: int | None
    chunk_size: int
    download: bool
    raw_dir: Path
    progress: bool


@dataclass
class Job:
    """A source's answer: the input files (they key the cache) and how to turn them into records."""
    source: str  # the concrete source, as recorded in the table's attrs ("mirror", "figshare", ...)
    files: list[Path]
    build: Callable[[], tuple[pd.DataFrame, dict]]
    origin: str  # where the data came from, in words (a path, "MP API, 46,744 ids", an OPTIMADE query)
    params: dict = field(default_factory=dict)  # what else keys the cache (a folder's target, a filter)


def short(exc: BaseException) -> str:
    """An exception as one short line (network errors nest long reprs)."""
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:160]}{'...' if len(text) > 160 else ''}"


def no_data_message(name: str) -> str:
    return (
        f"no data source for {name!r}: no mirror was given or found and MP_API_KEY is not set. Either\n"
        f"  - use the offline mirror: load_dataset({name!r}, mirror='/path/to/shared/data') or "
        "`export COMPENDIUM_MIRROR=/path/to/shared/data` (the folder with mp_cgcnn_2020.jsonl.xz; "
        "the project looks at ../shared/data by default), or\n"
        f"  - fetch from the Materials Project: get an API key at {MP_KEY_URL}, "
        "`export MP_API_KEY=<your key>`, and run again (downloads resume), or\n"
        "  - give your own data: a CGCNN folder (source='folder', path=..., target=...) or a "
        "snapshot file (source='mirror', mirror='file.jsonl.xz')."
    )


# ----------------------------------------------------------------------------------------------
# HTTP: every request has a timeout, bounded retries with backoff, and an overall deadline
# ----------------------------------------------------------------------------------------------

#: (connect, read) timeouts of one HTTP request, in s (read: between two packets)
HTTP_TIMEOUT = (10.0, 60.0)
#: retries after the first try, on a connection error, a timeout, HTTP 429 or 5xx, or malformed JSON
HTTP_RETRIES = 4
#: the first wait between tries (s), doubled after each; a server's Retry-After is honoured instead
HTTP_BACKOFF = 1.0
#: the longest single wait (s): a larger Retry-After is cut to this
HTTP_MAX_WAIT = 60.0
#: one request, its retries and waits included, ends within this many seconds (downloads: ``deadline=``)
HTTP_DEADLINE = 300.0
#: the largest JSON answer read (bytes)
HTTP_MAX_JSON = 256 << 20


class _NoAnswer(Exception):
    """Every try failed; ``reached`` says whether the server answered at all (HTTP) or never did."""
    def __init__(self, message: str, reached: bool) -> None:
        super().__init__(message)
        self.reached = reached


def _retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (seconds or an HTTP date), None if absent or unreadable."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def http_get(url: str, params=None, *, headers=None, timeout=None, retries: int | None = None,
             deadline: float | None = None, on_body: Callable | None = None, max_bytes: int | None = None):
    """GET ``url`` with bounded tries: the JSON body, or what ``on_body(resp, end_time)`` makes of it.

    Retries (``retries`` after the first, waits HTTP_BACKOFF x 2^k or the server's Retry-After, each at
    most HTTP_MAX_WAIT) on connection errors, timeouts, HTTP 429 and 5xx, and when ``on_body`` raises
    ValueError (a malformed or cut-off answer). Gives up with ``_NoAnswer`` when the tries are spent or
    the next wait would pass ``deadline`` seconds from the start; other HTTP errors (4xx) end at once
    with FetchError. Without ``on_body`` the JSON body is read (at most ``max_bytes``) and returned.
    None: the module's HTTP_TIMEOUT, HTTP_RETRIES, HTTP_DEADLINE (read at each call, so they can be set).
    """
    timeout = HTTP_TIMEOUT if timeout is None else timeout
    retries = HTTP_RETRIES if retries is None else retries
    deadline = HTTP_DEADLINE if deadline is None else deadline
    end = time.monotonic() + deadline
    last, reached = "no try", False
    for attempt in range(retries + 1):
        wait = None
        try:
            with requests.get(url, params=params, headers=headers, timeout=timeout, stream=True) as resp:
                reached = True
                if resp.status_code == 429 or resp.status_code >= 500:
                    last = f"HTTP {resp.status_code} {resp.reason}"
                    wait = _retry_after(resp.headers.get("Retry-After"))
                    if wait is not None:
                        last += f" (Retry-After: {resp.headers.get('Retry-After')})"
                elif resp.status_code != 200:
                    text = resp.raw.read(300, decode_content=True).decode("utf-8", "replace")
                    raise FetchError(f"HTTP {resp.status_code} {resp.reason} for {resp.url}: {text!r}")
                else:
                    try:
                        return (on_body or _json_body(max_bytes or HTTP_MAX_JSON))(resp, end)
                    except ValueError as exc:
                        last = str(exc)
        except (requests.ConnectionError, requests.Timeout) as exc:
            last = short(exc)
        except requests.RequestException as exc:  # a broken answer (chunked encoding, decoding)
            reached, last = True, short(exc)
        if attempt == retries:
            break
        delay = min(HTTP_MAX_WAIT, wait if wait is not None else HTTP_BACKOFF * 2**attempt)
        if time.monotonic() + delay > end:
            last += f"; the next try would pass the {deadline:g} s deadline"
            break
        time.sleep(delay)
    tries = f"{attempt + 1} {'try' if attempt == 0 else 'tries'}"
    raise _NoAnswer(f"{tries} failed (last: {last})", reached)


def _blocks(resp, size: int = 1 << 16):
    """The body as it arrives: each block is what one read returned (read1), so that a caller can check a
    deadline between reads even when the server trickles bytes (iter_content waits for a full block)."""
    raw = resp.raw
    if not hasattr(raw, "read1"):  # pragma: no cover - urllib3 < 2
        yield from resp.iter_content(size)
        return
    while True:
        block = raw.read1(size, decode_content=True)
        if not block:
            return
        yield block


def _json_body(max_bytes: int) -> Callable:
    def read(resp, end: float):
        chunks, size = [], 0
        for block in _blocks(resp):
            chunks.append(block)
            size += len(block)
            if size > max_bytes:
                raise FetchError(f"the answer from {resp.url} is larger than {max_bytes >> 20} MB")
            if time.monotonic() > end:
                raise ValueError(f"the answer from {resp.url} was still coming at the deadline")
        body = b"".join(chunks)
        try:
            return json_loads(body)
        except ValueError as exc:
            raise ValueError(f"malformed JSON from {resp.url} ({len(body)} bytes: {short(exc)})") from None

    return read


def within(seconds: float, fn: Callable, timeout_error: Exception):
    """``fn()``, or ``timeout_error`` raised if it has not returned within ``seconds`` (it runs in a daemon
    thread that is left behind: for client libraries that set no timeout of their own, e.g. mp-api's
    heartbeat)."""
    box: dict = {}

    def run():
        try:
            box["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            box["error"] = exc

    thread = threading.Thread(target=run, daemon=True, name="lib.data bounded call")
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        raise timeout_error
    if "error" in box:
        raise box["error"]
    return box["value"]


def download(url: str, dest: Path, progress: bool, *, what: str, help_: str,
             deadline: float = 3600.0) -> Path:
    """Stream a public file to dest (atomically, retried, within ``deadline`` s); DataUnavailable if
    unreachable."""
    def save(resp, end: float) -> Path:
        total = int(resp.headers.get("content-length") or 0) or None
        with (
            atomic_path(dest) as tmp,
            open(tmp, "wb") as fh,
            tqdm(total=total, unit="B", unit_scale=True, desc=f"downloading {what}",
                 disable=not progress) as bar,
        ):
            got = 0
            for block in _blocks(resp, 1 << 20):
                fh.write(block)
                got += len(block)
                bar.update(len(block))
                if time.monotonic() > end:
                    raise FetchError(f"downloading {what} from {url} took more than {deadline:g} s; "
                                     "run again")
            if total is not None and got < total:
                raise ValueError(f"the download stopped at {got} of {total} bytes")
        return dest

    try:
        return http_get(url, timeout=(10, 120), deadline=deadline, on_body=save)
    except _NoAnswer as exc:
        raise DataUnavailable(f"cannot download {what} from {url} ({exc}). {help_}") from None
