"""The book (`make book`, book/): every chapter has a page that shows its figures, every docs page is in it.

`make test` runs before any notebook has been executed (a clean clone, CI), so the main test builds a book
from small executed notebooks it writes itself, one per chapter with a PNG output, plus the real README.md and
docs/. Where `make all PROFILE=smoke` has left its executed chapters, a second test builds the book from them.
"""

from __future__ import annotations

import base64
import re
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # book/ is run from the root (python -m book), not installed
    sys.path.insert(0, str(ROOT))

import book  # noqa: E402


def _png(width: int = 4, height: int = 4) -> bytes:
    """A small RGB PNG (red), written by hand: no plotting library needed."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    rows = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


PNG = _png()
_IMG = re.compile(r"<img\b[^>]*?\bsrc=\"([^\"]+)\"")
_SCRIPT = re.compile(r"<script\b[^>]*?\bsrc=\"([^\"]+)\"")
FORMULA = r"$$V = -\frac{E(\mathrm{A\,I}_{x}) - E(\mathrm{A})}{x\, z\, e}$$"


def _executed(path: Path, title: str, images: int = 1, marker: str = "") -> Path:
    """An executed notebook: a heading, a code cell with ``images`` PNG outputs and a printed marker."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    code = nbformat.v4.new_code_cell("plot()", execution_count=1)
    code.outputs = [nbformat.v4.new_output("stream", name="stdout", text=f"ran {marker}\n")] + [
        nbformat.v4.new_output("display_data", data={"image/png": base64.b64encode(PNG).decode(),
                                                     "text/plain": "<Figure>"}) for _ in range(images)]
    nb.cells = [nbformat.v4.new_markdown_cell(f"# {title}\n\nSome text, $x_i$ and\n\n{FORMULA}"), code]
    nbformat.write(nb, path)
    return path


def _images(page: Path) -> list[str]:
    """The <img> sources of a page that show something: inline PNG data, or a file that exists."""
    html = page.read_text(encoding="utf-8")
    ok = []
    for src in _IMG.findall(html):
        if src.startswith("data:image/"):
            if len(src.split(",", 1)[1]) > 20:
                ok.append(src)
        elif not re.match(r"^[a-z]+:", src) and (page.parent / src.split("#")[0]).exists():
            ok.append(src)
    return ok


def _image_outputs(nb_path: Path) -> int:
    nb = nbformat.read(nb_path, as_version=4)
    return sum(1 for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
               if "image/png" in o.get("data", {}))


def _check_mathjax(page: Path) -> None:
    """The chapter page loads MathJax from the site's own copy (with the book's local configuration), and no
    script from elsewhere: its formulas render without network."""
    html = page.read_text(encoding="utf-8")
    scripts = _SCRIPT.findall(html)
    assert book.MATHJAX_URL in scripts, f"{page.name} does not load the site's MathJax: {scripts}"
    assert not [s for s in scripts if re.match(r"^([a-z]+:)?//", s)], f"{page.name} loads a remote script"
    assert "cdnjs.cloudflare.com/ajax/libs/mathjax" not in html
    mathjax = (page.parent / book.MATHJAX_URL.split("?")[0]).resolve()
    assert mathjax.is_file()
    local = mathjax.parent / "config" / "local" / "book.js"
    assert "STIX-Web" in local.read_text(encoding="utf-8")
    assert list((mathjax.parent / "fonts" / "HTML-CSS" / "STIX-Web" / "woff").glob("*.woff"))


def _check_site(site: Path, chapters: list[book.Chapter], profile: str) -> None:
    index = site / "index.html"
    assert index.exists()
    html = index.read_text(encoding="utf-8")
    assert "fonts.googleapis" not in html  # theme.font: false
    for page in (ROOT / "docs").glob("*.md"):
        assert (site / "docs" / f"{page.stem}.html").exists(), f"docs/{page.name} is not in the book"
        assert f"docs/{page.stem}.html" in html, f"docs/{page.name} is not in the book's navigation"
    stems = [stem for stem, _ in book.chapters()]
    assert [c.stem for c in chapters] == stems
    for ch in chapters:
        page = site / "chapters" / f"{ch.stem}.html"
        assert page.exists(), f"no page for chapter {ch.stem}"
        assert f"chapters/{ch.stem}.html" in html, f"chapter {ch.stem} is not in the navigation"
        if ch.executed is None:
            assert f"make all PROFILE={profile} ONLY={ch.stem[:2]}" in page.read_text(encoding="utf-8")
            continue
        n = _image_outputs(ch.executed)
        shown = _images(page)
        assert len(shown) >= n, f"{ch.stem}: {len(shown)} figures shown of {n} in {ch.executed.name}"
        _check_mathjax(page)


def test_choose_prefers_formation_energy_svr_group_first_seed(tmp_path):
    for name in ("03_cgcnn_band_gap_smoke_s0", "03_cgcnn_formation_energy_per_atom_smoke_s1",
                 "03_cgcnn_formation_energy_per_atom_smoke_s0", "03_cgcnn_formation_energy_per_atom_quick_s0",
                 "03_cgcnn_voltage", "05_soap_mlp_formation_energy_per_atom_smoke_s0",
                 "05_soap_svr_formation_energy_per_atom_smoke_s0", "05_soap_svr_band_gap_smoke_s0",
                 "07_xgnn_formation_energy_per_atom_period_smoke_s0",
                 "07_xgnn_formation_energy_per_atom_group_smoke_s0", "07_xgnn_band_gap_group_smoke_s0",
                 "06_benchmark_smoke", "06_benchmark_quick", "01_fetch_quick"):
        (tmp_path / f"{name}.ipynb").write_text("{}")
    chosen = {stem: book.choose(stem, "smoke", tmp_path) for stem in
              ("01_fetch", "03_cgcnn", "05_soap", "06_benchmark", "07_xgnn", "08_cathodes")}
    assert {k: v.stem if v else None for k, v in chosen.items()} == {
        "01_fetch": None,
        "03_cgcnn": "03_cgcnn_formation_energy_per_atom_smoke_s0",
        "05_soap": "05_soap_svr_formation_energy_per_atom_smoke_s0",
        "06_benchmark": "06_benchmark_smoke",
        "07_xgnn": "07_xgnn_formation_energy_per_atom_group_smoke_s0",
        "08_cathodes": None,
    }


def _executed_chapters(tmp_path: Path) -> Path:
    """Executed copies of every chapter but 07 (07's page says what to run); 03 has decoys."""
    executed = tmp_path / "executed"
    executed.mkdir()
    for stem, _ in book.chapters():
        if stem.startswith("07"):
            continue
        parts = {"01": "", "02": "", "06": ""}.get(stem[:2], "_formation_energy_per_atom")
        model = {"05": "_svr"}.get(stem[:2], "")
        _executed(executed / f"{stem}{model}{parts}_smoke{'_s0' if parts else ''}.ipynb", f"{stem} executed",
                  images=2 if stem.startswith("03") else 1, marker=stem)
    _executed(executed / "03_cgcnn_band_gap_smoke_s0.ipynb", "decoy", marker="DECOY")
    _executed(executed / "03_cgcnn_formation_energy_per_atom_quick_s0.ipynb", "decoy", marker="DECOY")
    return executed


@pytest.fixture(scope="module")
def fake_book(tmp_path_factory):
    """The book of small executed chapters (:func:`_executed_chapters`): (site, chapters)."""
    tmp = tmp_path_factory.mktemp("book")
    return book.build("smoke", tmp / "book", executed=_executed_chapters(tmp))


def test_book_from_executed_notebooks(fake_book):
    """Every chapter but 07 has an executed copy (07's page says what to run); 03 has decoys."""
    site, chapters = fake_book
    _check_site(site, chapters, "smoke")
    not_run = [c.stem for c in chapters if c.executed is None]
    assert not_run == [s for s, _ in book.chapters() if s[:2] == "07"]
    page03 = (site / "chapters" / "03_cgcnn.html").read_text(encoding="utf-8")
    assert "ran 03_cgcnn" in page03 and "DECOY" not in page03
    assert len(_images(site / "chapters" / "03_cgcnn.html")) == 2
    # the README is the home page, its links to docs/ lead to the pages
    index = (site / "index.html").read_text(encoding="utf-8")
    assert 'href="docs/data.html' in index


def test_without_the_mathjax_package_the_book_says_so_and_uses_the_cdn(tmp_path):
    executed = tmp_path / "executed"
    executed.mkdir()
    _executed(executed / "06_benchmark_smoke.ipynb", "06 executed")
    with pytest.warns(UserWarning, match="jupyter-server-mathjax is not installed"):
        site, _ = book.build("smoke", tmp_path / "book", executed=executed, mathjax=None)
    page = (site / "chapters" / "06_benchmark.html").read_text(encoding="utf-8")
    assert f'src="{book.MATHJAX_CDN}"' in page
    assert not (site / book.MATHJAX_DIR).exists()
    assert book.mathjax_source() is not None, "jupyter-server-mathjax (requirements.txt) is not installed"


def _chromium() -> str | None:
    found = (shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome"))
    return next((b for b in found if b), None)


@pytest.mark.skipif(_chromium() is None, reason="no headless Chromium (Debian: apt-get install chromium)")
def test_formulas_render_offline_in_a_browser(fake_book, tmp_path):
    """Headless Chromium, every host name unresolvable (no network), opens a chapter from the file system:
    MathJax typesets its formulas (a display formula, in the STIX-Web fonts of the site's copy)."""
    site, _ = fake_book
    page = site / "chapters" / "03_cgcnn.html"
    cmd = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
           "--host-resolver-rules=MAP * ~NOTFOUND", "--virtual-time-budget=20000", "--dump-dom",
           page.as_uri()]
    dom = subprocess.run(cmd, capture_output=True, text=True, timeout=120).stdout
    assert "ran 03_cgcnn" in dom, dom[-2000:]
    assert 'class="MathJax_Display"' in dom and "STIXMathJax_" in dom, "the formula was not typeset"
    assert "Math Processing Error" not in dom


def test_book_from_the_smoke_outputs(tmp_path):
    """The real thing, where `make all PROFILE=smoke` has run (not on a clean clone: skipped there)."""
    missing = [stem for stem, _ in book.chapters() if book.choose(stem, "smoke") is None]
    if missing:
        pytest.skip(f"no executed smoke copy of {', '.join(missing)} (make all PROFILE=smoke)")
    site, chapters = book.build("smoke", tmp_path / "book")
    _check_site(site, chapters, "smoke")
    assert all(c.executed is not None for c in chapters)
    # every chapter shows figures (its executed copy has some, and the page shows them all: _check_site)
    for c in chapters:
        assert _image_outputs(c.executed) >= 1, f"{c.executed.name} has no figure"
    # 03-05 on formation energy (not band gap): `make all` wrote their executed copies, records or not
    for c in chapters:
        if c.stem[:2] in ("03", "04", "05"):
            assert "_formation_energy_per_atom_smoke_s0" in c.executed.stem, c.executed.name
