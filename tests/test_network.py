"""Fetches end in bounded time: OPTIMADE and the MP API against a local server that answers 429, 500,
never, malformed JSON, endless or looping pages. Each test counts the requests and times the call.

The retry settings are shortened here (HTTP_BACKOFF 0.05 s, HTTP_TIMEOUT 1 s ...); the defaults are
the same code with longer waits."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

from lib import data
from lib.data.sources import base, mp, optimade

FIXTURES = Path(__file__).parent / "fixtures"
NACL = {"lattice_vectors": [[0, 2.82, 2.82], [2.82, 0, 2.82], [2.82, 2.82, 0]],
        "cartesian_site_positions": [[0, 0, 0], [2.82, 2.82, 2.82]], "species_at_sites": ["Na", "Cl"],
        "species": [{"name": "Na", "chemical_symbols": ["Na"], "concentration": [1.0]},
                    {"name": "Cl", "chemical_symbols": ["Cl"], "concentration": [1.0]}],
        "dimension_types": [1, 1, 1], "_oqmd_band_gap": 5.0}


class Server:
    """A local HTTP server whose answer is ``self.mode(handler, path, query, count)``; counts requests."""

    def __init__(self):
        self.requests: list[str] = []
        self.release = threading.Event()  # handlers that hang wait for this
        self.mode = None
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's naming
                server.requests.append(self.path)
                url = urlparse(self.path)
                server.mode(self, url.path, parse_qs(url.query), len(server.requests))

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def send(h, status: int, body, headers: dict | None = None):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    h.send_response(status)
    h.send_header("Content-Type", "application/json")
    h.send_header("Content-Length", str(len(raw)))
    for k, v in (headers or {}).items():
        h.send_header(k, v)
    h.end_headers()
    h.wfile.write(raw)


def page(server: Server, k: int, n_pages: int, per_page: int = 2) -> dict:
    """Page k of n_pages: per_page NaCl entries, a next link while k < n_pages - 1."""
    data_ = [{"id": f"{k}-{j}", "type": "structures", "attributes": NACL} for j in range(per_page)]
    links = {"next": f"{server.url}/v1/structures?page_offset={k + 1}"} if k < n_pages - 1 else {"next": None}
    return {"data": data_, "links": links, "meta": {"data_returned": n_pages * per_page}}


def offset(query) -> int:
    return int(query.get("page_offset", ["0"])[0])


@pytest.fixture()
def server(monkeypatch):
    monkeypatch.setattr(base, "HTTP_BACKOFF", 0.05)
    monkeypatch.setattr(base, "HTTP_RETRIES", 3)
    monkeypatch.setattr(base, "HTTP_TIMEOUT", (1.0, 1.0))
    monkeypatch.setattr(base, "HTTP_DEADLINE", 20.0)
    s = Server()
    yield s
    s.close()


def fetch(server: Server, tmp_path, **kw):
    t0 = time.perf_counter()
    try:
        return optimade.fetch_optimade("oqmd", server.url, 'elements HAS "Na"', tmp_path / "raw", None, False,
                                       **kw), time.perf_counter() - t0
    except (data.FetchError, data.DataUnavailable) as exc:
        exc.elapsed = time.perf_counter() - t0
        raise


# ----------------------------------------------------------------------------------------------
# OPTIMADE
# ----------------------------------------------------------------------------------------------


def test_optimade_complete_and_retried_after_429_and_500(server, tmp_path):
    def mode(h, path, q, n):
        if n == 1:
            return send(h, 429, {"errors": ["slow down"]}, {"Retry-After": "1"})
        if n == 2:
            return send(h, 503, b"busy")
        send(h, 200, page(server, offset(q), 3))

    server.mode = mode
    pages, seconds = fetch(server, tmp_path)
    assert len(pages) == 3 and len(server.requests) == 5  # 2 refused + 3 pages
    assert 1.0 <= seconds < 5  # the Retry-After of 1 s was honoured, and no more
    assert [json.loads(p.read_text())["data"][0]["id"] for p in pages] == ["0-0", "1-0", "2-0"]


@pytest.mark.parametrize("status", [429, 500, 502])
def test_optimade_gives_up_after_bounded_retries(server, tmp_path, status):
    server.mode = lambda h, path, q, n: send(h, status, {"errors": ["no"]})
    with pytest.raises(data.FetchError, match=rf"4 tries failed \(last: HTTP {status}") as e:
        fetch(server, tmp_path)
    assert len(server.requests) == 4 and e.value.elapsed < 3  # waits 0.05, 0.1, 0.2 s
    assert "0 page(s) are saved" in str(e.value) and "the same call resumes" in str(e.value)
    # a Retry-After of an hour: capped (HTTP_MAX_WAIT), and a wait past the deadline is not started
    server.requests.clear()
    server.mode = lambda h, path, q, n: send(h, status, {"errors": ["no"]}, {"Retry-After": "3600"})
    with pytest.raises(data.FetchError, match=r"1 try failed.*Retry-After: 3600.*20 s deadline") as e:
        fetch(server, tmp_path)
    assert len(server.requests) == 1 and e.value.elapsed < 2


def test_optimade_server_that_never_answers(server, tmp_path):
    server.mode = lambda h, path, q, n: server.release.wait(30)
    with pytest.raises(data.DataUnavailable, match="no usable answer.*4 tries failed.*[Tt]imeout") as e:
        fetch(server, tmp_path)
    assert len(server.requests) == 4 and e.value.elapsed < 8  # 4 tries x 1 s read timeout + backoff


def test_optimade_answer_trickling_forever_hits_the_deadline(server, tmp_path, monkeypatch):
    monkeypatch.setattr(base, "HTTP_DEADLINE", 3.0)

    def trickle(h, path, q, n):
        h.send_response(200)
        h.end_headers()
        h.wfile.write(b'{"data": [')
        while not server.release.wait(0.2):
            try:
                h.wfile.write(b" ")
                h.wfile.flush()
            except OSError:
                return

    server.mode = trickle
    with pytest.raises(data.FetchError, match="still coming at the deadline") as e:
        fetch(server, tmp_path)
    assert len(server.requests) == 1 and e.value.elapsed < 6


def test_optimade_malformed_json_and_not_a_page(server, tmp_path):
    server.mode = lambda h, path, q, n: send(h, 200, b'{"data": [1, 2')
    with pytest.raises(data.FetchError, match="malformed JSON") as e:
        fetch(server, tmp_path)
    assert len(server.requests) == 4 and e.value.elapsed < 3
    server.requests.clear()
    server.mode = lambda h, path, q, n: send(h, 200, {"errors": [{"detail": "bad filter"}]})
    with pytest.raises(data.FetchError, match="bad filter.*not a page of structures"):
        fetch(server, tmp_path)
    assert len(server.requests) == 1
    server.requests.clear()
    server.mode = lambda h, path, q, n: send(h, 400, {"errors": [{"detail": "syntax error in filter"}]})
    with pytest.raises(data.FetchError, match="HTTP 400.*syntax error in filter"):
        fetch(server, tmp_path)
    assert len(server.requests) == 1  # a 4xx is not retried


def test_optimade_looping_and_endless_paging_end(server, tmp_path):
    first = {}

    def loop(h, path, q, n):  # the first page links to a second, which links back to the first
        first.setdefault("url", server.url + h.path)
        send(h, 200, dict(page(server, 0, 3), links={"next": first["url"] if offset(q) else
                                                    f"{server.url}/v1/structures?page_offset=1"}))

    server.mode = loop
    with pytest.raises(data.FetchError, match="links back to a page already fetched") as e:
        fetch(server, tmp_path)
    assert len(server.requests) == 2 and e.value.elapsed < 2

    server.requests.clear()
    server.mode = lambda h, path, q, n: send(h, 200, page(server, offset(q), 10**9))  # a new link each time
    with pytest.raises(data.FetchError, match="passed 25 pages") as e:
        fetch(server, tmp_path / "b", max_pages=25)
    assert len(server.requests) == 25 and e.value.elapsed < 10
    assert len(list((tmp_path / "b").rglob("page-*.json"))) == 25  # kept: the same call resumes

    server.requests.clear()
    server.mode = lambda h, path, q, n: send(h, 200, dict(page(server, offset(q), 10**9), data=[]))
    with pytest.raises(data.FetchError, match="3 empty pages in a row"):
        fetch(server, tmp_path / "c")
    assert len(server.requests) == 3


def test_optimade_resumes_and_refetches_a_corrupt_page(server, tmp_path):
    broken = {"on": True}

    def mode(h, path, q, n):
        if broken["on"] and offset(q) == 3:
            return send(h, 500, b"down")
        send(h, 200, page(server, offset(q), 5))

    server.mode = mode
    with pytest.raises(data.FetchError, match="3 page.s. are saved"):
        fetch(server, tmp_path)
    assert len(server.requests) == 3 + 4  # pages 0-2, then 4 tries of page 3
    broken["on"] = False
    server.requests.clear()
    pages, _ = fetch(server, tmp_path)
    assert len(pages) == 5 and [offset(parse_qs(urlparse(r).query)) for r in server.requests] == [3, 4]
    # nothing more to fetch: no request
    server.requests.clear()
    assert len(fetch(server, tmp_path)[0]) == 5 and server.requests == []
    # a half-written page (an interrupted writer of an older version): it and later pages are refetched
    text = pages[2].read_text()
    pages[2].write_text(text[: len(text) // 2])
    with pytest.warns(UserWarning, match="page-00002.json cannot be used.*2 page.s. after it"):
        again, _ = fetch(server, tmp_path)
    assert [offset(parse_qs(urlparse(r).query)) for r in server.requests] == [2, 3, 4]
    assert [json.loads(p.read_text())["data"][0]["id"] for p in again] == [f"{k}-0" for k in range(5)]
    assert not list(pages[0].parent.glob(".*tmp*"))  # atomic writes leave no temporary file


def test_optimade_through_load_dataset(server, tmp_path):
    server.mode = lambda h, path, q, n: send(h, 200, page(server, offset(q), 2))
    df = data.load_dataset("opt", source="optimade", optimade_filter='elements HAS "Na"',
                           providers={"oqmd": server.url}, raw_dir=tmp_path / "raw", cache_dir=tmp_path,
                           progress=False, verbose=False)
    assert len(df) == 4 and df["band_gap"].tolist() == [5.0] * 4 and len(server.requests) == 2


# ----------------------------------------------------------------------------------------------
# MP API: mp-api's real MPRester against the local server (MP_API_ENDPOINT)
# ----------------------------------------------------------------------------------------------

HEARTBEAT = {"db_version": "2025.01.01", "access_controlled_batch_ids": [], "version": "99.0.0"}
KEY = "x" * 32


@pytest.fixture()
def mp_server(server, monkeypatch):
    import mp_api.client  # noqa: F401 - a heavy import (~10 s on a busy machine), not part of what is timed

    monkeypatch.setenv("MP_API_ENDPOINT", server.url + "/")
    monkeypatch.setattr(mp, "MP_START_TIMEOUT", 3.0)
    monkeypatch.setattr(mp, "MP_CHUNK_TIMEOUT", 8.0)
    return server


def _summary_docs() -> dict:
    docs = json.loads((FIXTURES / "mp_summary_docs.json").read_text())["docs"]
    return {d["material_id"]: d for d in docs}


def test_mp_heartbeat_that_never_answers(mp_server, tmp_path):
    mp_server.mode = lambda h, path, q, n: mp_server.release.wait(60)
    t0 = time.perf_counter()
    with pytest.raises(data.DataUnavailable, match=r"did not answer within 3 s \(its heartbeat"):
        mp.fetch_mp(["mp-1"], KEY, tmp_path / "mp", 10, False)
    assert time.perf_counter() - t0 < 5
    assert mp_server.requests == ["/heartbeat"]


def test_mp_complete_then_errors_end_bounded(mp_server, tmp_path):
    docs = _summary_docs()
    status = {"summary": 200, "retry_after": None}

    def mode(h, path, q, n):
        if path == "/heartbeat":
            return send(h, 200, HEARTBEAT)
        if status["summary"] != 200:
            extra = {"Retry-After": status["retry_after"]} if status["retry_after"] else {}
            return send(h, status["summary"], {"error": "no"}, extra)
        ids = q["material_ids"][0].split(",")
        fields = q["_fields"][0].split(",")
        found = [{k: docs[m].get(k) for k in fields} for m in ids if m in docs]
        send(h, 200, {"data": found, "meta": {"total_doc": len(found), "max_limit": 1000}})

    mp_server.mode = mode
    ids = list(docs)
    df = data.load_dataset("cgcnn", source="mp", ids=ids, api_key=KEY, chunk_size=4, raw_dir=tmp_path / "raw",
                           cache_dir=tmp_path / "proc", progress=False, verbose=False)
    assert df["material_id"].tolist() == ids
    assert sum(r.startswith("/materials/summary/") for r in mp_server.requests) == 2  # 6 ids in chunks of 4

    # HTTP 500 on a summary chunk: FetchError at once (mp-api does not retry 500), what is saved is kept
    status["summary"] = 500
    mp_server.requests.clear()
    t0 = time.perf_counter()
    with pytest.raises(data.FetchError, match="chunk 1/1.*run the same call again"):
        mp.fetch_mp(["mp-1", "mp-2"], KEY, tmp_path / "mp500", 10, False)
    assert time.perf_counter() - t0 < 5
    assert 1 <= sum(r.startswith("/materials/summary/") for r in mp_server.requests) <= 4

    # HTTP 429 with a Retry-After of an hour: mp-api would wait; the chunk deadline (8 s here) ends it
    status.update(summary=429, retry_after="3600")
    mp_server.requests.clear()
    t0 = time.perf_counter()
    with pytest.raises(data.FetchError, match="no answer within 8 s"):
        mp.fetch_mp(["mp-3"], KEY, tmp_path / "mp429", 10, False)
    assert 7.5 < time.perf_counter() - t0 < 11
    assert sum(r.startswith("/materials/summary/") for r in mp_server.requests) == 1
    assert not list((tmp_path / "mp429").glob("chunk-*"))
