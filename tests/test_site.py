"""The documentation site builds offline and references nothing outside itself."""

from __future__ import annotations

import pathlib
import re
import subprocess
import sys
from html.parser import HTMLParser

import pytest

ROOT = pathlib.Path(__file__).parent.parent
EXTERNAL = re.compile(r"^(?:[a-z][a-z0-9+.-]*:)?//", re.IGNORECASE)  # http://, https://, //host


class _Loads(HTMLParser):
    """Every URL a page makes the browser fetch by itself: scripts, stylesheets, icons, images, frames, media."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "a":  # a link is followed only when clicked
            return
        for name in ("src", "data", "poster", "srcset") + (("href",) if tag in ("link", "use", "image") else ()):
            if values.get(name):
                self.urls += [(tag, url.split()[0]) for url in values[name].split(",")]


def external_loads(site: pathlib.Path) -> list[str]:
    """``file: tag url`` for every external load in the built HTML and CSS."""
    found = []
    for page in site.rglob("*.html"):
        parser = _Loads()
        parser.feed(page.read_text(encoding="utf-8"))
        found += [f"{page.relative_to(site)}: <{tag}> {url}" for tag, url in parser.urls if EXTERNAL.match(url)]
    for sheet in site.rglob("*.css"):
        for url in re.findall(r"""(?:url\(|@import\s+)\s*['"]?([^'")\s]+)""", sheet.read_text(encoding="utf-8")):
            if EXTERNAL.match(url):
                found.append(f"{sheet.relative_to(site)}: {url}")
    return found


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> pathlib.Path:
    pytest.importorskip("mkdocs")
    pytest.importorskip("mkdocstrings_handlers.python")
    out = tmp_path_factory.mktemp("site")
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300, env={**_env(), "NO_MKDOCS_2_WARNING": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    return out


def _env() -> dict[str, str]:
    import os

    return dict(os.environ)


def test_the_site_loads_nothing_from_outside(site):
    assert external_loads(site) == []
    assert (site / "index.html").exists() and (site / "api" / "index.html").exists()


def test_the_external_load_detector_finds_what_it_must(tmp_path):
    (tmp_path / "a.html").write_text(
        '<link rel="stylesheet" href="https://fonts.googleapis.com/css?family=Roboto">'
        '<script src="//unpkg.com/mathjax"></script><img src="figures/x.svg"><a href="https://arxiv.org">ok</a>'
    )
    (tmp_path / "b.css").write_text("@font-face { src: url(https://fonts.gstatic.com/x.woff2) }")
    found = external_loads(tmp_path)
    assert len(found) == 3 and not any("arxiv" in f or "x.svg" in f for f in found)


def test_math_is_mathml_rendered_by_the_browser(site):
    page = (site / "derivations" / "index.html").read_text(encoding="utf-8")
    assert page.count('<math display="block">') > 50
    assert "\\begin{matrix}" not in page and "\\left[" not in page and "mathjax" not in page.lower()


def test_api_page_is_rendered_by_mkdocstrings_from_the_docstrings(site):
    page = (site / "api" / "index.html").read_text(encoding="utf-8")
    assert 'class="doc doc-object doc-function"' in page  # mkdocstrings' markup, not a generated Markdown page
    assert "lstheory.closed_form.logit_gap" in page
    assert ":func:`" not in page and "Formula::" not in page  # Sphinx roles and literal blocks converted
    assert "doc-section-title" in page or "Parameters" in page
