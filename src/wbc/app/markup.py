"""Text for Streamlit's Markdown, shown as it is: a file's name or a message, wherever the page gives one."""

from __future__ import annotations

import re


def markdown_literal(text: str) -> str:
    """`text` for a Streamlit markdown body, shown as it is: every ASCII punctuation mark backslash-escaped
    (a file named a*b_c.jpg was shown as a, then b_c.jpg in italics)."""
    return re.sub(r"([!-/:-@\[-`{-~])", r"\\\1", text)


def heading_name(name: str) -> str:
    """A file's name as its result's heading: `markdown_literal`, with a place to break the line (a
    zero-width space) after each _ . and -, where a long camera name breaks rather than mid-word."""
    return re.sub(r"(\\[_.\-])", "\\1\u200b", markdown_literal(name))
