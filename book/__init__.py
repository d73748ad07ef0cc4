"""The book: a static HTML site of the compendium (`make book`, `python -m book --profile smoke`).

It reads what is already there and runs nothing: README.md (the home page), the pages of docs/, and for every
chapter (notebooks/NN_name.ipynb) one executed copy of the profile from results/notebooks/, as `make all`
leaves them. They are staged under ``<out>/src/`` (README.md, docs/, chapters/<NN_name>.ipynb) and built with
mkdocs, mkdocs-material and mkdocs-jupyter (mkdocs.yml at the root) into ``<out>/site/``; the figures are
the PNG outputs embedded in the executed notebooks. No network is used: nothing is executed, and the theme's
web fonts are off.

The chapters' formulas are typeset by MathJax 2.7, copied into the site (``site/assets/mathjax/``) from the
installed PyPI package jupyter-server-mathjax (requirements.txt) with its STIX-Web fonts
(book/mathjax_book.js), so the book shows them without network. Without that package the chapters load
MathJax from its CDN when read, and a reader offline sees TeX; the build warns.

Which executed copy stands for a chapter that runs once per property, seed, model or labelling: the
formation-energy one (the thesis's headline property), then SOAP-SVR before SOAP-MLP (05), the group
labelling before the period one (07), then the lowest seed, then the name (:func:`choose`). A chapter with
no executed copy of the profile gets a page saying what to run.
"""

from __future__ import annotations

import re
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "mkdocs.yml"
STYLE = Path(__file__).with_name("book.css")  # mkdocs.yml's extra_css
NOTEBOOKS = ROOT / "notebooks"
EXECUTED = ROOT / "results" / "notebooks"
OUT = ROOT / "results" / "book"

# the chapters' formulas: MathJax 2.7 from the PyPI package jupyter-server-mathjax (its static/ folder),
# copied into the site; chapter pages are chapters/<stem>.html, so the script is one folder up. The package
# keeps only the STIX-Web fonts: book/mathjax_book.js (MathJax's config/local/book.js) selects them.
MATHJAX_PACKAGE = "jupyter_server_mathjax"
MATHJAX_DIR = "assets/mathjax"
MATHJAX_LOCAL_CONFIG = Path(__file__).with_name("mathjax_book.js")
MATHJAX_URL = f"../{MATHJAX_DIR}/MathJax.js?config=TeX-AMS-MML_HTMLorMML-full,Safe,local/book"
# without the package: MathJax from its CDN when a page is read (offline, formulas show as TeX)
MATHJAX_CDN = "https://cdnjs.cloudflare.com/ajax/libs/mathjax/2.7.7/latest.js?config=TeX-AMS_CHTML-full,Safe"

# in this order of importance, what makes an executed copy the chapter's representative
PREFER = ("formation_energy_per_atom", "soap_svr", "_group_")
# the topic pages of docs/ in reading order (the README's "Where to read on"); any other page follows by name
DOC_ORDER = ("data", "validation", "graphs", "models", "predictors", "sweep", "benchmark", "bench", "xgnn",
             "cathodes", "voltage_model", "code")


@dataclass(frozen=True)
class Chapter:
    stem: str  # "03_cgcnn"
    title: str  # "03 · CGCNN", the first heading of the notebook up to its colon (the navigation's)
    executed: Path | None  # the executed copy shown, None if the profile has none

    @property
    def page(self) -> str:
        """The page's source path in the staged book."""
        return f"chapters/{self.stem}.{'ipynb' if self.executed else 'md'}"


def _title(notebook: Path) -> str:
    """The notebook's first Markdown heading, up to a colon ("03 · CGCNN"); else its file name."""
    import nbformat

    nb = nbformat.read(notebook, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("#"):
                    title = line.lstrip("#").strip().split(":")[0].strip()
                    # "06 — Benchmark" -> "06 · Benchmark", as the other chapters
                    return re.sub(r"^(\d\d)\s*[—–-]\s*", r"\1 · ", title)
    return notebook.stem


def chapters(notebooks: Path = NOTEBOOKS) -> list[tuple[str, Path]]:
    """(stem, path) of every chapter notebook, NN_name.ipynb, in order."""
    return [(p.stem, p) for p in sorted(Path(notebooks).glob("[0-9][0-9]_*.ipynb"))]


def choose(stem: str, profile: str, executed: Path = EXECUTED) -> Path | None:
    """The executed copy of chapter ``stem`` that stands for it in ``profile`` (see the module's docstring).

    Executed copies are named by lib.sweep:
    ``<stem>[_<model>][_<property>][_<labelling>]_<profile>[_s<seed>]``, e.g. 03_cgcnn_band_gap_quick_s0,
    05_soap_svr_efermi_quick_s1, 07_xgnn_band_gap_group_quick_s0, 06_benchmark_quick.
    """
    pattern = re.compile(rf"^{re.escape(stem)}(?P<rest>_.+)?_{re.escape(profile)}(?:_s(?P<seed>\d+))?$")
    found = []
    for path in Path(executed).glob(f"{stem}_*.ipynb"):
        m = pattern.match(path.stem)
        if m:
            key = tuple(p not in path.stem for p in PREFER) + (int(m["seed"] or 0), path.stem)
            found.append((key, path))
    return min(found)[1] if found else None


def _missing_page(stem: str, title: str, profile: str) -> str:
    stage = stem.split("_", 1)[0]
    return (
        f"# {title}\n\n"
        f"This chapter has no executed copy in the `{profile}` profile: `results/notebooks/` holds no "
        f"`{stem}_…_{profile}….ipynb`.\n\n"
        f"Run it with `make all PROFILE={profile}` (or only this chapter, once the ones it needs have run: "
        f"`make all PROFILE={profile} ONLY={stage}`), then `make book PROFILE={profile}` again.\n\n"
        f"The notebook itself: `notebooks/{stem}.ipynb`.\n"
    )


def _doc_pages(docs: Path) -> list[Path]:
    pages = sorted(Path(docs).glob("*.md"))
    rank = {name: i for i, name in enumerate(DOC_ORDER)}
    return sorted(pages, key=lambda p: (rank.get(p.stem, len(rank)), p.stem))


def _page_title(page: Path) -> str:
    """A page's title for the navigation: its first heading without code marks, up to a colon or a
    parenthesis ("Crystal graphs (`lib.graphs`, notebook 02_graphs)" -> "Crystal graphs")."""
    for line in page.read_text(encoding="utf-8").splitlines():
        if line.startswith("# "):
            return re.split(r"[:(]", line[2:].replace("`", ""))[0].strip()
    return page.stem


def stage(profile: str, out: Path, *, executed: Path = EXECUTED, notebooks: Path = NOTEBOOKS,
          readme: Path = ROOT / "README.md", docs: Path = ROOT / "docs") -> tuple[list[Chapter], list]:
    """Copy the book's sources to ``out/src`` (emptied first); return the chapters and the navigation."""
    src = Path(out) / "src"
    if src.exists():
        shutil.rmtree(src)
    (src / "chapters").mkdir(parents=True)
    (src / "docs").mkdir()
    shutil.copy2(readme, src / "README.md")  # mkdocs makes a README.md the folder's index page
    (src / "assets").mkdir()
    shutil.copy2(STYLE, src / "assets" / "book.css")
    topics = []
    for page in _doc_pages(docs):
        shutil.copy2(page, src / "docs" / page.name)
        topics.append({_page_title(page): f"docs/{page.name}"})
    chs = []
    for stem, nb in chapters(notebooks):
        title = _title(nb)
        ch = Chapter(stem, title, choose(stem, profile, executed))
        if ch.executed:
            shutil.copy2(ch.executed, src / ch.page)
        else:
            (src / ch.page).write_text(_missing_page(stem, title, profile), encoding="utf-8")
        chs.append(ch)
    nav = [{"Home": "README.md"},
           {f"Chapters ({profile} profile)": [{c.title: c.page} for c in chs]},
           {"Topics": topics}]
    return chs, nav


def mathjax_source() -> Path | None:
    """MathJax's folder in the installed jupyter-server-mathjax (MathJax.js, config/, jax/, fonts/); None
    without the package."""
    import importlib.util

    spec = importlib.util.find_spec(MATHJAX_PACKAGE)
    if spec is None or not spec.origin:
        return None
    static = Path(spec.origin).parent / "static"
    return static if (static / "MathJax.js").is_file() else None


def copy_mathjax(site: Path, source: Path | None) -> Path | None:
    """Copy MathJax from ``source`` (:func:`mathjax_source`) into ``site``/assets/mathjax, with the book's
    local configuration (the STIX-Web fonts the package ships); return the script, or None without a
    source."""
    if source is None:
        return None
    dest = Path(site) / MATHJAX_DIR
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(source, dest)
    (dest / "config" / "local").mkdir(parents=True, exist_ok=True)
    shutil.copy2(MATHJAX_LOCAL_CONFIG, dest / "config" / "local" / "book.js")
    return dest / "MathJax.js"


def build(profile: str = "smoke", out: Path = OUT, *, executed: Path = EXECUTED, notebooks: Path = NOTEBOOKS,
          readme: Path = ROOT / "README.md", docs: Path = ROOT / "docs", config: Path = CONFIG,
          quiet: bool = True, mathjax: Path | None | bool = True) -> tuple[Path, list[Chapter]]:
    """Stage and build the book of ``profile``; return the site's folder and the chapters.

    mathjax : MathJax's folder to copy into the site (default True: :func:`mathjax_source`); None (or a
        missing package): the chapters load it from its CDN when read, and a warning says so.
    """
    import logging

    from mkdocs.commands.build import build as mkdocs_build
    from mkdocs.config import load_config

    out = Path(out).resolve()
    chs, nav = stage(profile, out, executed=executed, notebooks=notebooks, readme=readme, docs=docs)
    site = out / "site"
    if quiet:  # mkdocs' progress, and nbconvert's note that matplotlib's figures have no alternative text
        logging.getLogger("mkdocs").setLevel(logging.WARNING)
        logging.getLogger("traitlets").setLevel(logging.ERROR)
    cfg = load_config(str(config), docs_dir=str(out / "src"), site_dir=str(site), nav=nav,
                      site_name=f"{_site_name(config)} ({profile} profile)")
    source = mathjax_source() if mathjax is True else (mathjax or None)
    cfg["plugins"]["mkdocs-jupyter"].config["custom_mathjax_url"] = MATHJAX_URL if source else MATHJAX_CDN
    mkdocs_build(cfg)
    if copy_mathjax(site, source) is None:
        warnings.warn("book: jupyter-server-mathjax is not installed (`make setup` installs it; or "
                      "`.venv/bin/pip install -c requirements-lock.txt jupyter-server-mathjax`): the "
                      "chapters load MathJax from its CDN when read, and offline their formulas show as TeX",
                      stacklevel=2)
    return site, chs


def _site_name(config: Path) -> str:
    for line in Path(config).read_text(encoding="utf-8").splitlines():
        if line.startswith("site_name:"):
            return line.split(":", 1)[1].strip()
    return "The compendium"
