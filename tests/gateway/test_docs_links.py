"""Every relative link in README.md and docs/*.md names a file that exists, and an
anchor a heading of that file (GitHub's slugs)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.S | re.M)


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to dashes."""
    text = re.sub(r"`", "", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = FENCE.sub("", path.read_text(encoding="utf-8"))
    return {slug(m) for m in re.findall(r"^#+ (.+)$", text, re.M)}


def broken(doc: Path) -> list[str]:
    out = []
    text = FENCE.sub("", doc.read_text(encoding="utf-8"))
    for target in LINK.findall(text):
        if re.match(r"[a-z]+:", target):
            continue
        name, _, anchor = target.partition("#")
        path = (doc.parent / name).resolve() if name else doc
        if not path.exists():
            out.append(f"{doc.relative_to(ROOT)}: {target} (no such file)")
        elif anchor and path.suffix == ".md" and anchor not in anchors(path):
            out.append(f"{doc.relative_to(ROOT)}: {target} (no such heading)")
    return out


def test_every_relative_link_resolves() -> None:
    wrong = [line for doc in DOCS for line in broken(doc)]
    assert not wrong, "broken links:\n" + "\n".join(wrong)


def test_the_check_sees_links_and_headings() -> None:
    """It would pass on docs without links: it must find the real ones."""
    assert sum(len(LINK.findall(doc.read_text(encoding="utf-8"))) for doc in DOCS) > 20
    assert slug("The timeline (办理过程)") == "the-timeline-办理过程"
    assert slug("`/metrics` across workers") == "metrics-across-workers"
    assert "the-timeline-办理过程" in anchors(ROOT / "docs" / "catalogue.md")
