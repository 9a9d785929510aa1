"""HTML that a submission wrote, made inert for a page that a person opens.

Two layers. `clean` keeps an allow-list of tags, attributes and classes (ammonia, through
nh3): no script, style, event handler, frame, object, form or meta survives, images load
from data: URLs of PNG or JPEG only, and links lead to http(s), mailto or an anchor of the
page. MathML (for formulas, which the feedback pages render without a script) is allowed
as far as MathML Core's layout elements and the presentation attributes that latex2mathml
writes go: no link, no style, no annotation. `with_csp` puts a Content-Security-Policy
first in the page's head, so that whatever the first layer missed can neither run nor
fetch anything; `html_page` writes a page of the grader's own with it there.
"""

from __future__ import annotations

import re
from html import escape

import nh3
from pygments.token import STANDARD_TYPES

# Scripts: none (the feedback template loads no MathJax; were a script there, it is refused).
# Styles: the template's own inline ones (submissions get no <style> and no style=).
CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; font-src data:; "
    "base-uri 'none'; form-action 'none'"
)
CSP_META = f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'

IMAGE_URL = re.compile(r"data:image/(?:png|jpeg);base64,[A-Za-z0-9+/=]*\Z")
# What an image from anywhere else shows instead: one transparent pixel (an <img> without a
# source would show its alternative text, or the exporter's "No description...").
BLANK_PNG = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII="
)
NO_IMAGE = f"data:image/png;base64,{BLANK_PNG}"
LINK_URL = re.compile(r"(?:https?://|mailto:|#)", re.IGNORECASE)
HEADINGS = ("h1", "h2", "h3", "h4", "h5", "h6")

# MathML Core's elements that TeX formulas need, and their presentation attributes.
_SCRIPTS = ("msub", "msup", "msubsup", "munder", "mover", "munderover", "mmultiscripts")
_TOKENS = ("mi", "mn", "mo", "ms", "mtext")
MATHML_TAGS = {
    "math",
    "mrow",
    "mfrac",
    "msqrt",
    "mroot",
    "mstyle",
    "merror",
    "mpadded",
    "mphantom",
    "mspace",
    "mtable",
    "mtr",
    "mtd",
    "mprescripts",
    "none",
    *_SCRIPTS,
    *_TOKENS,
}
_TABLE = {"columnalign", "rowalign", "columnspacing", "rowspacing", "columnlines", "rowlines"}
MATHML_ATTRIBUTES = {
    "math": {"display"},
    **{tag: {"mathvariant"} for tag in _TOKENS},
    "mo": {
        "mathvariant",
        "stretchy",
        "fence",
        "separator",
        "form",
        "lspace",
        "rspace",
        "minsize",
        "maxsize",
        "largeop",
        "movablelimits",
        "symmetric",
        "accent",
    },
    "mstyle": {"displaystyle", "scriptlevel", "mathvariant", "mathsize"},
    "mspace": {"width", "height", "depth"},
    "mpadded": {"width", "height", "depth", "lspace", "voffset"},
    "mfrac": {"linethickness"},
    "mover": {"accent"},
    "munder": {"accentunder"},
    "munderover": {"accent", "accentunder"},
    "mtable": _TABLE | {"displaystyle"},
    "mtr": {"columnalign", "rowalign"},
    "mtd": {"columnalign", "rowalign", "columnspan", "rowspan"},
}


def _attribute(tag: str, name: str, value: str) -> str | None:
    """Keep an allowed attribute, except URLs other than inline images and plain links."""
    if name == "src":
        return value if IMAGE_URL.match(value) else NO_IMAGE
    if name == "href":
        return value if LINK_URL.match(value.strip()) else None
    if name == "cite":
        return None
    return value


# What nbconvert's markdown and code rendering needs to look right: syntax-highlighting
# classes, heading anchors, pandas' table class; nothing that could lay out the page.
_CLEANER = nh3.Cleaner(
    tags=nh3.ALLOWED_TAGS | MATHML_TAGS,
    attributes={**nh3.ALLOWED_ATTRIBUTES, **{h: {"id"} for h in HEADINGS}, **MATHML_ATTRIBUTES},
    attribute_filter=_attribute,
    url_schemes={"http", "https", "mailto", "data"},
    allowed_classes={
        "span": {c for c in STANDARD_TYPES.values() if c},
        "div": {"highlight"},
        "pre": {"highlight"},
        "a": {"anchor-link"},
        "table": {"dataframe"},
    },
)


def clean(html) -> str:
    """`html` (a fragment) with nothing active left."""
    return _CLEANER.clean(str(html))


def with_csp(page: str) -> str:
    """`page` with the policy as the first element of its <head> (before any resource the
    template loads, which a policy in a meta element governs only when it comes first)."""
    head = re.search(r"<head\b[^>]*>", page, re.IGNORECASE)
    if head is None:
        raise ValueError("the page has no <head> to put its Content-Security-Policy in")
    return f"{page[: head.end()]}\n{CSP_META}\n{page[head.end() :]}"


def html_page(title: str, body: list[str], style: str = "") -> str:
    """A whole page, the policy first in its head; `title` is escaped here, the lines of
    `body` are HTML that the caller has escaped or cleaned."""
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en">',
            "<head>",
            CSP_META,
            '<meta charset="utf-8">',
            f"<title>{escape(title)}</title>",
            f"<style>{style}</style>",
            "</head>",
            "<body>",
            *body,
            "</body>",
            "</html>",
            "",
        ]
    )
