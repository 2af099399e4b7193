"""Generated blocks inside hand-written documents (docs/sandbox.md): the text between two marker comments."""

from __future__ import annotations


def block_between(text: str, start_marker: str, end_marker: str) -> str | None:
    """The text between the markers (stripped), or None when a marker is missing or they are out of order."""
    start, end = text.find(start_marker), text.find(end_marker)
    if start < 0 or end < 0 or end < start:
        return None
    return text[start + len(start_marker):end].strip()


def replace_block(text: str, block: str, start_marker: str, end_marker: str, document: str = "README.md") -> str:
    """``text`` with the block between the markers replaced by ``block``. Raises ValueError without markers."""
    if block_between(text, start_marker, end_marker) is None:
        raise ValueError(f"{document} has no '{start_marker}' ... '{end_marker}' block")
    start, end = text.find(start_marker), text.find(end_marker)
    return text[:start + len(start_marker)] + "\n" + block.strip() + "\n" + text[end:]
