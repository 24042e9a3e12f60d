"""A Griffe extension for the API page: Sphinx roles and literal blocks in docstrings, read as Markdown.

lstheory's docstrings follow numpydoc, with Sphinx cross-reference roles
(``:func:`logit_gap```) and ``Formula::`` literal blocks.  mkdocstrings reads
docstrings as Markdown, where a role would show as raw text: this extension,
listed under ``extensions`` in ``mkdocs.yml``, rewrites each role as an
inline code (``logit_gap()``; a ``~`` keeps the last dotted part, as in
Sphinx), the ``::`` that opens a literal block as ``:``, and the
paragraphs ``Accuracy: ...`` / ``References: ...`` as numpydoc sections.  Roles become code
rather than links because a link to an object the page does not document
would fail the strict build.  The docstrings in the source are left as they
are.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_ROLE = re.compile(r":(?:py:)?(func|meth|class|mod|data|attr|exc|obj):`(~?)([^`<>]+)`")
_LITERAL_BLOCK_OPENER = re.compile(r"(?<=\S)::$", re.MULTILINE)
_ISSUE_AT_LINE_START = re.compile(r"^(\s*)#(?=\d)", re.MULTILINE)  # "#130342" wrapped to a line start is no heading
_INLINE_SECTION = re.compile(r"(?:^|(?<=\n\n))(Accuracy|Cost|References?|Notes?|Domain): ", re.MULTILINE)


def markdown_docstring(text: str) -> str:
    """``text`` with Sphinx roles as inline code, ``::`` literal-block openers as ``:``, and a paragraph
    that opens with ``Accuracy:``, ``References:``, ``Cost:`` or ``Notes:`` as a numpydoc section of
    that title (otherwise numpydoc would read it as one more entry of the section above it).

    >>> markdown_docstring("See :func:`~lstheory.closed_form.logit_gap`.  Formula::")
    'See `logit_gap()`.  Formula:'
    """

    def code(match: re.Match) -> str:
        kind, short, name = match.groups()
        shown = name.rsplit(".", 1)[-1] if short else name
        return f"`{shown}()`" if kind in ("func", "meth") else f"`{shown}`"

    def section(match: re.Match) -> str:
        title = match.group(1)
        return f"{title}\n{'-' * len(title)}\n"

    text = _INLINE_SECTION.sub(section, _LITERAL_BLOCK_OPENER.sub(":", _ROLE.sub(code, text)))
    return _ISSUE_AT_LINE_START.sub(r"\1\\#", text)


class SphinxRolesAsMarkdown(griffe.Extension):
    """Rewrites every docstring of the loaded package (see the module docstring)."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        self._rewrite(pkg, set())

    def _rewrite(self, obj: griffe.Object, seen: set[str]) -> None:
        if obj.path in seen:
            return
        seen.add(obj.path)
        if obj.docstring is not None:
            obj.docstring.value = markdown_docstring(obj.docstring.value)
        for member in obj.members.values():
            if not member.is_alias:
                self._rewrite(member, seen)
