"""The page's layout: its CSS, the keys that the CSS and the tests find its parts by, and results in pages."""

from __future__ import annotations

from collections.abc import Sequence

from wbc.differential import DASH

# Hides the "Download as CSV" button of the review table's toolbar (its aria-label starts so; the table's
# label may follow it), in the container Streamlit marks with the widget's key: the page's own button gives it
# with repeats, unreadable files and formula quoting. The other buttons (search, full screen) and the About
# tab's tables' downloads stay. (The differential, a plain table, has no toolbar; its container's key is for
# DIFFERENTIAL_CSS and the tests.)
REVIEW_KEY = "review"
DIFFERENTIAL_KEY = "differential"
# (The review table's key gains "-N" when a restored review replaces its values: *= finds every one.)
HIDE_GRID_DOWNLOAD_CSS = (f'[class*="st-key-{REVIEW_KEY}"] [data-testid="stElementToolbarButton"]'
                          ':has(button[aria-label^="Download as CSV"]) { display: none; }')
# Each result sits in a container keyed RESULT_KEY + its index. On a phone its two columns stack, and the
# pictures (the left column) came first: the type and confidence began about 1,500 px down. There the
# verdict's column goes first, and the crop and its heatmap sit side by side (one above the other, each the
# screen's width, a result was 1,210 px tall: 1.4 screens); a ringed photo of two cells keeps the full width.
RESULT_KEY = "result-"
PICTURES_KEY = "pictures-"  # the crop and its heatmap, in a container of their own (the ringed photo is not)
PHONE_RESULT_CSS = ('@media (max-width: 640px) { [class*="st-key-' + RESULT_KEY + '"] [data-testid="stHorizontalBlock"] > '
                    '[data-testid="stColumn"]:last-child { order: -1; } '
                    '[class*="st-key-' + PICTURES_KEY + '"] { flex-flow: row wrap; } '
                    '[class*="st-key-' + PICTURES_KEY + '"] > [data-testid="stElementContainer"] '
                    '{ width: calc(50% - 0.5rem) !important; } }')
# The differential's plain table: its number columns' headings over their figures (Streamlit sets every
# heading to the left, the figures to the right).
# On a phone its cells' padding narrowed: with 100 cells or more (three-digit counts, a status in every row) it
# ran 15 px past a 356 px screen and cut the status off.
DIFFERENTIAL_CSS = ('[class*="st-key-' + DIFFERENTIAL_KEY + '"] thead th:nth-child(2), '
                    '[class*="st-key-' + DIFFERENTIAL_KEY + '"] thead th:nth-child(3) { text-align: right !important; } '
                    '@media (max-width: 640px) { [class*="st-key-' + DIFFERENTIAL_KEY + '"] th, '
                    '[class*="st-key-' + DIFFERENTIAL_KEY + '"] td { padding-left: 0.3rem !important; '
                    'padding-right: 0.3rem !important; } }')
# On a touch screen (Streamlit's own test for it: pointer: coarse) a table's toolbar is always shown, 44 px
# tall and above the table, where the gap to what comes before is 16 px: it covered the last line of the
# caption above the review table and the last row of the review table above the differential. There a table
# keeps that room above it.
TOOLBAR_ROOM_CSS = ('@media (pointer: coarse) { [data-testid="stElementContainer"]:has([data-testid="stDataFrame"]) '
                    '{ margin-top: 1.75rem; } }')

# Each result is headed by its file's name, an h2 (the type under it an h3), so that a list of the page's
# headings names each file; shown smaller than Streamlit's h2, and than the type, as the bold name it replaced.
# A long name without spaces (a camera's) breaks rather than widen the page. Their anchors (`result_anchors`)
# are for unique ids only: Streamlit gives a heading without one an id made of its text, the same for two
# results of one type, so their "Link to heading" buttons stay hidden, as the bold name had none.
RESULT_HEADINGS_CSS = ('[class*="st-key-' + RESULT_KEY + '"] [data-testid="stHeading"] h2 '
                       '{ font-size: 1.15rem; font-weight: 600; padding: 0.25rem 0 0.5rem; overflow-wrap: anywhere; } '
                       '[class*="st-key-' + RESULT_KEY + '"] [data-testid="stHeaderActionElements"] { display: none; }')


RESULTS_PER_PAGE = 20  # results drawn at a time: each costs the browser about 0.1 s, and a screen or two of page


def result_pages(n: int) -> list[range]:
    """The indices of `n` results, RESULTS_PER_PAGE to a page (none for none)."""
    return [range(start, min(start + RESULTS_PER_PAGE, n)) for start in range(0, n, RESULTS_PER_PAGE)]


def page_label(page: range, n: int) -> str:
    """A page of results as its selector names it: "21–40 of 110"."""
    return f"{page.start + 1}{DASH}{page.stop} of {n}"


PAGES_ANCHOR = "results-shown"  # the id above the choice of results, which `pages_note` links to
# The link's target lands below Streamlit's header (60 px, opaque), not under it: the choice's label was hidden.
PAGES_ANCHOR_CSS = f"#{PAGES_ANCHOR} {{ display: block; scroll-margin-top: 4.5rem; }}"


def pages_note(pages: Sequence[range], page: int, n: int, table: bool = True) -> str:
    """Under a page of results: which are shown, a link up to the choice of the others and, where some image
    was read (`table`), that the review table holds them all."""
    others = f"the next {len(pages[page + 1])}, or others" if page + 1 < len(pages) else "others"
    return (f"Results {page_label(pages[page], n)} shown. [Choose {others} above the results](#{PAGES_ANCHOR})"
            + ("; the review table below has every image read." if table else "."))


def result_anchors(i: int) -> tuple[str, str]:
    """The anchors (the headings' ids) of the `i`th result's file name and type: unique on the page."""
    return f"{RESULT_KEY}{i}", f"{RESULT_KEY}{i}-type"


# Streamlit draws captions at 0.6 opacity: 3.9:1 on the light theme's white, under the 4.5:1 that small
# text needs, and the captions here carry what a picture or a table means. At 0.8 they are 7.2:1.
CAPTION_CONTRAST_CSS = '[data-testid="stCaptionContainer"] { opacity: 0.8; }'


# Keyboard focus made visible where Streamlit shows none, or too little to see: a picture's or a table's toolbar
# (its Fullscreen, Search and Show/hide columns buttons) stays at opacity 0 until pointed at, so Tab landed on an
# invisible button (a tooltip floating beside nothing); the uploader's "Add files" (+) changed no pixel when
# focused (its other buttons keep their own ring, this one beside it); the samples switch showed only a faint
# grey box (23 of 255 levels from the page).
# An outline in the text colour, on :focus-visible only: a mouse click draws none.
FOCUS_RING = "outline: 2px solid currentColor !important; outline-offset: 2px;"
FOCUS_CSS = ('[data-testid="stElementToolbar"]:focus-within { opacity: 1 !important; } '
             '[data-testid="stElementToolbar"] button:focus-visible, '
             '[data-testid="stFileUploader"] button:focus-visible { ' + FOCUS_RING + ' } '
             '[data-testid="stCheckbox"] label:has(input:focus-visible) { ' + FOCUS_RING + ' border-radius: 0.25rem; }')
