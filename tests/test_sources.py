"""Every claim cites what a reader can follow: the docs' seed page, papers by arXiv id, books, issues."""

from __future__ import annotations

import pathlib
import re

from lstheory.claims import all_claims

DOCS = pathlib.Path(__file__).parent.parent / "docs"
FOLLOWABLE = re.compile(r"docs/seed\.md|arXiv \d{4}\.\d{4,5}|doi:10\.\d{4,}/|Thm\. \d|sec\. \d|issues? #\d+|PyTorch")


def test_every_source_is_followable_and_names_no_file_outside_the_docs():
    for claim in all_claims():
        assert FOLLOWABLE.search(claim.source), f"{claim.id}: {claim.source}"
        for named in re.findall(r"[\w./-]+\.md\b", claim.source):
            assert named.startswith("docs/") and (DOCS.parent / named).is_file(), f"{claim.id} cites {named}"
        assert not re.search(r"shared/|NOTES|literature\.md", claim.source), f"{claim.id}: {claim.source}"


def test_seed_claims_cite_the_seed_page_which_describes_the_post():
    seed = [claim for claim in all_claims() if claim.id.startswith("seed.")]
    assert seed and all("docs/seed.md" in claim.source for claim in seed)
    page = (DOCS / "seed.md").read_text()
    assert "zhuanlan.zhihu.com/p/116466239" in page and "blog.csdn.net/qq_43211132/article/details/100510113" in page
    for claim in seed:
        assert f"`{claim.id}`" in page, claim.id  # each seed claim is described on the page
