"""Every reviewer page, crawled in Chromium: each one reads whole, at desk and phone widths.

The server of the UI world (:mod:`tests.serving.ui_data`) runs on a store of its own that also
holds a value table, a plan, a recorded campaign and a drift report, so that no page is in its
"nothing yet" state. The crawl logs in, starts at the overview and follows every same-origin link
breadth-first, one page per route template (one customer page, the one with the longest history,
and one model page per task); the login page and the error page are checked too. Every page must
answer 200 (the error page its 404) with no console error and no failed request (static files and
the favicon included), have a ``<title>`` and exactly one ``<h1>``, ids each on one element,
header cells and a caption unique on its page in every table, a label on every form control, a
text alternative on every image and chart, and no horizontal scrolling of the document at 1280
and 375 px wide (a wide table scrolls inside its own container). Printed (on A4's width), a page
leaves out its controls (the skip link, the menu, log out), keeps every chart and cuts no table
at the paper's edge.

For keyboard and screen-reader users: ``lang`` on the page, no positive tabindex, no link named
only "here" or "more" nor two links of one name to different places, a skip link as the first Tab
stop that moves the focus to ``<main>``, a focus ring of 3:1 against what it is drawn over on every
Tab stop, every scroll box a focusable region with a name unique on its page (any other element
that scrolls sideways must take focus too), and at 375 px each box that overflows shows its focus
and scrolls with ArrowRight. Young stores are crawled as well: a snapshot without any model (the
pages that need models answer their 503 naming ``guanxi train``; the menu leads to the model pages,
which say the same), and, in the slow set, the world's models with nothing else, and a snapshot
with a value table but no model (the value page, its exports and the customer pages need none);
each page says what is missing and the command that makes it.
"""

from __future__ import annotations

import json
import re
from collections import Counter, deque
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import polars as pl
import pytest
import yaml

from features.store import Store
from models.offers import parse_offers
from models.planning import keep_plan, plan_from_store
from models.tasks import task_names
from serving.ui.drift import render_report
from tests.pipelines.test_target_cli import OFFERS
from tests.serving.conftest import (
    AS_OF,
    KEYS,
    NEEDS_CHROMIUM,
    NOTHING_PROMOTED,
    STORE_KEY,
    serve_uvicorn,
    shot,
)
from tests.serving.test_drift_page import EVIL
from tests.serving.test_drift_page import _report as drift_report
from tests.serving.test_targeting_pages import _outcomes
from tests.serving.test_value_api import store_values
from tests.serving.ui_data import BUSY, UIWorld

pytestmark = [NEEDS_CHROMIUM]

WIDTHS = (1280, 375)
PRINT_WIDTH = 718  # A4's 210 mm less Chromium's default margins, at 96 px to the inch

# what each page must be, read from the DOM (returns a list of problems, empty when all is well)
AUDIT_JS = """() => {
  const problems = [];
  const VAGUE = ["here", "click here", "more", "read more", "link", "this"];
  const name = (el) => (el.id ? "#" + el.id : el.tagName.toLowerCase()
    + (el.getAttribute("name") ? "[name=" + el.getAttribute("name") + "]" : ""));
  const hidden = (el) => el.closest("[aria-hidden=true]") !== null;
  if (!document.title.trim()) problems.push("no <title>");
  if (!document.documentElement.lang) problems.push("no lang on <html>");
  document.querySelectorAll("[tabindex]").forEach((el) => {
    if (el.tabIndex > 0) problems.push(name(el) + " jumps the focus order (tabindex > 0)");
  });
  const named = new Map();
  document.querySelectorAll("a[href]").forEach((el) => {
    // the name a screen reader says: an aria-label over the text (the value page's "CSV" links)
    const text = (el.getAttribute("aria-label") || el.textContent.trim()).toLowerCase();
    if (!text) problems.push("link to " + el.href + " has no text");
    else if (VAGUE.includes(text.replace(/[.!]$/, "")))
      problems.push("link to " + el.href + " says only '" + text + "'");
    // a list of links read out of context: one name, one place (the overview's band links)
    const said = text.replace(/\\s+/g, " ");
    if (named.has(said) && named.get(said) !== el.href)
      problems.push("links to " + named.get(said) + " and " + el.href + " both say '" + said + "'");
    named.set(said, el.href);
  });
  const ids = new Map();  // an id names one element (the plan's charts had their tables' ids)
  document.querySelectorAll("[id]").forEach((el) => ids.set(el.id, (ids.get(el.id) || 0) + 1));
  ids.forEach((n, id) => { if (n > 1) problems.push(n + " elements with the id " + id); });
  const h1 = document.querySelectorAll("h1").length;
  if (h1 !== 1) problems.push(h1 + " <h1> elements");
  const captions = new Set();  // a screen reader's list of tables names each one, once
  document.querySelectorAll("table").forEach((t, i) => {
    if (t.querySelectorAll("th").length === 0)
      problems.push("table " + (t.id || i) + " has no header cells");
    const caption = t.caption ? t.caption.textContent.trim().replace(/\\s+/g, " ") : "";
    if (!caption) problems.push("table " + (t.id || i) + " has no caption");
    else if (captions.has(caption)) problems.push("two tables have the caption " + caption);
    captions.add(caption);
  });
  document.querySelectorAll("input, select, textarea").forEach((el) => {
    if (el.type === "hidden") return;
    if (el.labels.length === 0 && !el.getAttribute("aria-label")
        && !el.getAttribute("aria-labelledby"))
      problems.push("form control " + name(el) + " has no label");
  });
  document.querySelectorAll("button").forEach((el) => {
    if (!el.textContent.trim() && !el.getAttribute("aria-label"))
      problems.push("button " + name(el) + " has no name");
  });
  document.querySelectorAll("img").forEach((el) => {
    if (el.getAttribute("alt") === null) problems.push("image " + el.src + " has no alt");
  });
  document.querySelectorAll("svg").forEach((el) => {
    if (hidden(el) || el.parentElement.closest("svg")) return;
    const title = el.querySelector(":scope > title");
    const labelled = el.getAttribute("aria-label") || el.getAttribute("aria-labelledby");
    if (!labelled && !(title && title.textContent.trim()))
      problems.push("chart " + name(el) + " has no text alternative");
  });
  const counts = {
    tables: document.querySelectorAll("table").length,
    controls: document.querySelectorAll("input:not([type=hidden]), select, textarea").length,
    charts: document.querySelectorAll("svg, img").length,
  };
  const assets = [...document.querySelectorAll("link[href], img[src]")]
    .map((el) => el.href || el.src);
  return {problems, counts, assets};
}"""

OVERFLOW_JS = """() => {
  const doc = document.documentElement;
  if (doc.scrollWidth <= doc.clientWidth) return null;
  // the widest elements that stick out, to say what overflows
  const out = [...document.body.querySelectorAll("*")]
    .filter((el) => el.getBoundingClientRect().right > doc.clientWidth + 1)
    .filter((el) => !el.parentElement
      || el.parentElement.getBoundingClientRect().right <= doc.clientWidth + 1)
    .slice(0, 5)
    .map((el) => el.tagName.toLowerCase() + (el.id ? "#" + el.id : "")
      + (el.className && typeof el.className === "string" ? "." + el.className : ""));
  return doc.scrollWidth + " > " + doc.clientWidth + ": " + out.join(", ");
}"""

# printed: no controls (the skip link, the menu, log out, the filters' buttons), every chart
# kept, and nothing wider than the paper (a table cut at a scroll box's edge)
PRINT_JS = """() => {
  const problems = [];
  const shown = (el) => getComputedStyle(el).display !== "none"
    && el.getBoundingClientRect().width > 0;
  document.querySelectorAll("nav[aria-label=Main], .session, .skip-link, .filters button")
    .forEach((el) => { if (shown(el)) problems.push(el.className || el.tagName); });
  const charts = [...document.querySelectorAll("svg[role=img]")];
  const gone = charts.filter((el) => !shown(el)).length;
  if (gone) problems.push(gone + " of " + charts.length + " charts not printed");
  const paper = document.documentElement.clientWidth;
  document.querySelectorAll("table, svg[role=img], figure").forEach((el) => {
    const right = Math.round(el.getBoundingClientRect().right);
    if (right > paper + 1) problems.push((el.id || el.tagName) + " is cut at " + right + " px");
  });
  return problems;
}"""

# every Tab stop shows where the focus is, in a ring of 3:1 against what it is drawn over (WCAG
# 2.4.7 and 1.4.11): the accent's ring was 2.6:1 over the dark header, on its links and Log out
FOCUS_JS = """() => {
  const problems = [];
  const rgba = (c) => (c.match(/[\\d.]+/g) || []).map(Number);
  const opaque = (c) => c.length === 3 || c[3] > 0;
  const lum = (c) => {
    const f = (v) => ((v /= 255) <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4);
    return 0.2126 * f(c[0]) + 0.7152 * f(c[1]) + 0.0722 * f(c[2]);
  };
  const background = (el) => {
    for (let e = el; e; e = e.parentElement) {
      const c = rgba(getComputedStyle(e).backgroundColor);
      if (opaque(c)) return c.slice(0, 3);
    }
    return [255, 255, 255];
  };
  const said = new Set();
  document.querySelectorAll("a[href], button, input, select, summary, [tabindex]").forEach((el) => {
    if (el.tabIndex < 0 || el.type === "hidden") return;
    el.focus();
    if (document.activeElement !== el) return;  // not shown (a closed <details>)
    const style = getComputedStyle(el);
    const what = el.tagName.toLowerCase() + (el.className ? "." + el.className : "");
    if (!el.matches(":focus-visible") || style.outlineStyle === "none") {
      if (!said.has(what)) problems.push(what + " shows no focus");
      said.add(what);
      return;
    }
    // what the ring is drawn over: just outside the element (or inside, for a negative offset)
    const box = el.getBoundingClientRect(), offset = parseFloat(style.outlineOffset);
    const x = Math.max(0, box.left - offset - 1), y = box.top + box.height / 2;
    const under = offset < 0 ? el : document.elementsFromPoint(x, y).find((e) => !el.contains(e));
    const ring = rgba(style.outlineColor), back = background(under || document.body);
    const [hi, lo] = [lum(ring), lum(back)].sort((a, b) => b - a);
    const ratio = (hi + 0.05) / (lo + 0.05);
    if (ratio < 3 && !said.has(what)) {
      problems.push(what + "'s focus ring is " + ratio.toFixed(1) + ":1 against rgb(" + back + ")");
      said.add(what);
    }
  });
  document.activeElement.blur();
  return problems;
}"""

# the boxes a wide table scrolls in (the macro ``scroll`` of macros.html): each one a focusable,
# named region (WCAG 2.1.1 and 1.3.1); any other element that scrolls sideways must take focus too
BOXES_JS = """() => {
  const problems = [];
  const names = new Map();
  const boxes = [...document.querySelectorAll(".scroll, .table-wrap")];
  boxes.forEach((el, i) => {
    el.dataset.crawlBox = String(i);
    const what = "scroll box " + i + " (" + (el.querySelector("table[id]") || {id: "?"}).id + ")";
    if (el.getAttribute("tabindex") !== "0") problems.push(what + " is not focusable");
    if (el.getAttribute("role") !== "region") problems.push(what + " is not a region");
    const by = el.getAttribute("aria-labelledby");
    const label = ((by && document.getElementById(by) || {}).textContent
      || el.getAttribute("aria-label") || "").trim();
    if (!label) problems.push(what + " has no accessible name");
    else if (names.has(label)) problems.push(what + " has the name of another: " + label);
    names.set(label, i);
  });
  document.body.querySelectorAll("*").forEach((el) => {
    const style = getComputedStyle(el).overflowX;
    // a strip of links (the phone's menu) scrolls as Tab moves along them
    if ((style === "auto" || style === "scroll") && el.scrollWidth > el.clientWidth + 1
        && el.tabIndex < 0 && !el.querySelector("a[href]"))
      problems.push(el.tagName.toLowerCase() + "." + el.className + " scrolls but takes no focus");
  });
  const overflowing = boxes.filter((el) => el.scrollWidth > el.clientWidth + 1)
    .map((el) => el.dataset.crawlBox);
  return {problems, overflowing, boxes: boxes.length};
}"""

# a chart's box is a Tab stop and a named region while it scrolls, and only then (ui32: it was a
# Tab stop at every width, with nothing to scroll at 1280 px): what el.focus() reaches, Tab does
CHART_BOXES_JS = """() => {
  const problems = [];
  let scrolling = 0;
  document.querySelectorAll(".chart-scroll").forEach((el) => {
    const scrolls = el.scrollWidth > el.clientWidth + 1;
    el.focus({preventScroll: true});
    const focused = document.activeElement === el;
    if (focused) el.blur();
    scrolling += scrolls ? 1 : 0;
    const name = el.getAttribute("aria-label");
    if (scrolls && !focused) problems.push(name + " scrolls but takes no focus");
    if (!scrolls && focused) problems.push(name + " takes the focus with nothing to scroll");
  });
  return {problems, scrolling};
}"""

TEMPLATES = [
    (re.compile(r"^/ui/customers/[^/]+$"), "/ui/customers/{customer_id}"),
    (re.compile(r"^/ui/value/segments/[^/]+\.csv$"), "/ui/value/segments/{name}.csv"),
]


def route_template(path: str) -> str:
    """The route a path is served by (a model page per task stays its own)."""
    for pattern, template in TEMPLATES:
        if pattern.match(path):
            return template
    return path


def test_route_templates() -> None:
    assert route_template("/ui/customers/c001") == "/ui/customers/{customer_id}"
    assert route_template("/ui/customers") == "/ui/customers"
    assert route_template("/ui/models/churn") != route_template("/ui/models/repurchase")
    assert route_template("/ui/value/segments/at_risk.csv") == "/ui/value/segments/{name}.csv"


def full_store(world: UIWorld, home: Path) -> None:
    """A store of the world's snapshot and events with values, a plan, a campaign and drift."""
    events = pl.read_parquet(world.events)
    Store(home).write_snapshot(world.snapshot, AS_OF, events=world.events, history=events)
    store_values(home)
    store = Store(home, STORE_KEY.encode())  # signed, as guanxi target with the key signs them
    offers = parse_offers(yaml.safe_load(OFFERS))
    keep_plan(store, plan_from_store(store, offers, 20.0, uplift=False))
    # sent to the world's customers; their segment and churn probability come from the values
    outcomes = _outcomes([f"c{i:03d}" for i in range(80)]).drop("segment", "churn_probability")
    store.write_campaign(outcomes, "october", "outcomes.csv")
    report = json.loads(json.dumps(drift_report()).replace(EVIL, "recency_days"))
    store.write_record("drift", date(2024, 12, 31), report)


@pytest.fixture(scope="module")
def full_server(world: UIWorld, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The world's models (its MLflow) served from a full store of its own."""
    home = tmp_path_factory.mktemp("crawl") / "home"
    full_store(world, home)
    with serve_uvicorn(home, world.uri, home.parent) as url:
        yield url


class Watch:
    """What a page did wrong while it loaded: console errors and failed requests."""

    def __init__(self, page: Any) -> None:
        self.problems: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.problems.append(f"page error: {error}"))
        page.on("requestfailed", self._failed)
        page.on("response", self._response)
        self.expected: set[str] = set()  # URLs whose error status is the point (the error page)

    def _console(self, message: Any) -> None:
        # Chromium logs every error status it is answered, the error page's own 404 too
        if message.type == "error" and message.location.get("url") not in self.expected:
            self.problems.append(f"console error: {message.text} at {message.location}")

    def _failed(self, request: Any) -> None:
        self.problems.append(f"request failed: {request.url} ({request.failure})")

    def _response(self, response: Any) -> None:
        if response.status >= 400 and response.url not in self.expected:
            self.problems.append(f"HTTP {response.status}: {response.url}")

    def take(self) -> list[str]:
        problems, self.problems = self.problems, []
        return problems


class Crawl:
    """What the crawl has seen so far: the elements it checked and the files pages refer to."""

    def __init__(self, context: Any, label: str = "crawl") -> None:
        self.context, self.label = context, label  # the label names its screenshots
        self.counts: Counter[str] = Counter()
        self.assets: dict[str, int] = {}

    def asset_problems(self, urls: list[str]) -> list[str]:
        """Fetch each stylesheet, icon and image once (Chromium headless skips the favicon)."""
        for url in urls:
            if url not in self.assets:
                self.assets[url] = self.context.request.get(url).status
        return [f"HTTP {self.assets[url]}: {url}" for url in urls if self.assets[url] != 200]


def skip_link_problems(page: Any) -> list[str]:
    """The first Tab stop is a visible link to the main content, and following it moves there.

    A page that puts the focus in its form itself (the login page's autofocus) is left as it is.
    """
    if page.evaluate("() => document.activeElement !== document.body"):
        return []
    page.keyboard.press("Tab")
    first = page.evaluate(
        """() => { const el = document.activeElement;
          return {href: el.getAttribute("href"), top: el.getBoundingClientRect().top,
                  text: el.textContent.trim()}; }"""
    )
    if first["href"] != "#main" or first["top"] < 0 or not first["text"]:
        return [f"the first Tab stop is not a visible skip link: {first}"]
    page.keyboard.press("Enter")
    if page.evaluate("() => document.activeElement.id") != "main":
        return ["the skip link does not move the focus to <main>"]
    return []


def scroll_box_problems(page: Any, crawl: Crawl) -> list[str]:
    """Every scroll box is a named region a keyboard reaches; at the current width each one that
    overflows shows its focus and scrolls sideways with ArrowRight."""
    boxes = page.evaluate(BOXES_JS)
    problems: list[str] = boxes["problems"]
    crawl.counts["scroll boxes"] += boxes["boxes"]
    for index in boxes["overflowing"]:
        box = page.locator(f"[data-crawl-box='{index}']")
        box.focus()
        if box.evaluate("el => getComputedStyle(el).outlineStyle") == "none":
            problems.append(f"scroll box {index} shows no focus")
        page.keyboard.press("ArrowRight")
        for _ in range(100):  # a keyboard scroll may be animated: polls 20 ms apart
            if box.evaluate("el => el.scrollLeft") > 0:
                break
            page.wait_for_timeout(20)
        else:
            problems.append(f"scroll box {index} does not scroll with ArrowRight")
        crawl.counts["keyboard scrolls"] += 1
    return problems


def chart_box_problems(page: Any, width: int) -> list[str]:
    """At ``width``, a chart's box takes the focus when it scrolls and not otherwise, and a
    screen reader meets a region "Chart: ..." for each box that scrolls and for no other."""
    boxes = page.evaluate(CHART_BOXES_JS)
    problems = [f"at {width} px the box of {problem}" for problem in boxes["problems"]]
    regions = page.get_by_role("region", name=re.compile(r"^Chart: ")).count()
    if regions != boxes["scrolling"]:
        problems.append(f"at {width} px {regions} chart regions for {boxes['scrolling']} scrolling")
    # the box is hidden, never the chart: every chart drawn is still an image a screen reader reads
    drawn = page.evaluate(
        "() => [...document.querySelectorAll('svg.chart')].filter((e) => e.getClientRects().length)"
        ".length"
    )
    read = page.get_by_role("img").and_(page.locator("svg.chart")).count()
    if read != drawn:
        problems.append(f"at {width} px {read} of {drawn} charts drawn are images in the tree")
    return problems


HEADER_HEIGHT = 130
"""The most of a phone's first screen (375 px wide) the header takes: brand, menu, session."""


def phone_menu_problems(page: Any) -> list[str]:
    """At 375 px the header is short, the menu opens showing the current page's link, and Tab
    brings each menu link into view.

    ui31b: the menu wrapped to four rows, the header 210 px of the first screen; it is a strip
    that scrolls sideways. A link Tab reaches past the strip's edge is scrolled to (Chromium
    leaves one already partly in view where it is: WCAG 2.4.11 asks that focus is not hidden
    entirely).
    """
    height = page.evaluate("() => document.querySelector('header.top')?.offsetHeight ?? 0")
    problems = [] if height <= HEADER_HEIGHT else [f"at 375 px the header is {height} px tall"]
    # ui32: the strip opened at its left, the current page's link (value, drift...) off its edge
    current = page.locator("header.top nav a[aria-current=page]")
    if current.count() and not current.evaluate(
        """el => { const box = el.getBoundingClientRect();
          const strip = el.closest("nav").getBoundingClientRect();
          return box.left >= strip.left && box.right <= strip.right; }"""
    ):
        problems.append(f"at 375 px the menu opens with {current.inner_text()!r} out of view")
    links = page.locator("header.top nav a")
    for index in range(links.count()):
        link = links.nth(index)
        link.focus()
        hidden = link.evaluate(
            """el => { const box = el.getBoundingClientRect();
              const strip = el.closest("nav").getBoundingClientRect();
              return box.right <= strip.left || box.left >= strip.right; }"""
        )
        if hidden:
            problems.append(f"at 375 px the menu's link {link.inner_text()!r} is out of view")
    return problems


SMALLEST_LABEL = 7.0
"""The least size in px a chart's label is drawn at on a phone (375 px)."""


def chart_label_problems(page: Any) -> list[str]:
    """At 375 px every chart's labels are drawn at least :data:`SMALLEST_LABEL` px high.

    ui31b: a chart shrank to the phone's width, its 10 and 11 px labels drawn at 4 px; it keeps a
    width to read and scrolls sideways in its own box (a named scroll box the crawl checks).
    """
    small = page.evaluate(
        """() => [...document.querySelectorAll("svg.chart")].flatMap((svg) => {
          const scale = svg.getBoundingClientRect().width / svg.viewBox.baseVal.width;
          const sizes = [...svg.querySelectorAll("text[font-size]")]
            .map((t) => Number(t.getAttribute("font-size")) * scale);
          return sizes.length && Math.min(...sizes) < SMALLEST
            ? [svg.id + ": " + Math.min(...sizes).toFixed(1) + " px"] : [];
        })""".replace("SMALLEST", str(SMALLEST_LABEL))
    )
    return [f"at 375 px a chart's labels are too small to read: {chart}" for chart in small]


def check_page(
    page: Any, watch: Watch, crawl: Crawl, url: str, status: int = 200, skip_link: bool = True
) -> list[str]:
    """Load ``url`` and say everything wrong with it."""
    page.set_viewport_size({"width": WIDTHS[0], "height": 900})
    response = page.goto(url, wait_until="load")
    problems = []
    if response is None or response.status != status:
        problems.append(f"status {None if response is None else response.status}, not {status}")
    audit = page.evaluate(AUDIT_JS)
    problems += audit["problems"] + crawl.asset_problems(audit["assets"])
    crawl.counts.update(audit["counts"])
    if skip_link:
        problems += skip_link_problems(page)
    problems += page.evaluate(FOCUS_JS)
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        overflow = page.evaluate(OVERFLOW_JS)
        if overflow is not None:
            problems.append(f"at {width} px the document scrolls sideways: {overflow}")
        problems += chart_box_problems(page, width)
    problems += phone_menu_problems(page) + chart_label_problems(page)  # at 375 px
    problems += scroll_box_problems(page, crawl)  # at the last, the narrowest, width
    page.set_viewport_size({"width": PRINT_WIDTH, "height": 900})
    page.emulate_media(media="print")
    problems += [f"printed: {problem}" for problem in page.evaluate(PRINT_JS)]
    page.emulate_media(media="screen")
    page.set_viewport_size({"width": WIDTHS[-1], "height": 900})  # the screenshot's width
    name = route_template(urlsplit(url).path).strip("/").replace("/", "-") or "root"
    shot(page, f"{crawl.label}-{re.sub(r'[^a-z0-9_-]', '', name)}-{WIDTHS[-1]}")
    return problems + watch.take()


def same_origin_links(page: Any, base: str) -> list[str]:
    hrefs = page.eval_on_selector_all("a[href]", "links => links.map(a => a.href)")
    origin = urlsplit(base)
    links = []
    for href in hrefs:
        parts = urlsplit(urljoin(page.url, href))
        if (parts.scheme, parts.netloc) == (origin.scheme, origin.netloc):
            links.append(parts._replace(fragment="").geturl())
    return links


@dataclass
class Site:
    """What a crawl of a server found: each route's problems and main text, in crawl order."""

    found: dict[str, list[str]]
    text: dict[str, str]
    crawled: list[str]
    crawl: Crawl


def crawl_site(
    browser: Any,
    base: str,
    start: list[str],
    status: dict[str, int],
    missing: str,
    label: str = "crawl",
) -> Site:
    """Log in and check every page reachable from ``start``, one per route template.

    ``status`` is the answer a route template is designed to give when it is not 200 (a 503
    page of a store without models); the login page and the error page of the path ``missing``
    (a 404) are checked first. ``label`` names the screenshots, so that one store's crawl does not
    overwrite another's.
    """
    context = browser.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        watch, crawl = Watch(page), Crawl(context, label)
        site = Site({}, {}, [], crawl)
        site.found["/ui/login"] = check_page(page, watch, crawl, f"{base}/ui/login")
        page.fill("#api_key", KEYS["reviewer"])
        page.click("button[type=submit]")
        page.wait_for_url(f"{base}/ui/")
        watch.take()

        watch.expected.add(f"{base}{missing}")
        site.found["error page"] = check_page(page, watch, crawl, f"{base}{missing}", status=404)

        seen = {route_template(urlsplit(url).path) for url in start}
        queue = deque(start)
        while queue:
            url = queue.popleft()
            path = urlsplit(url).path
            template = route_template(path)
            site.crawled.append(path)
            if not path.startswith("/ui/") or path.endswith(".csv"):
                # a download or the API's documentation: answered, not a reviewer page
                answer = context.request.get(url)
                site.found[template] = [] if answer.status == 200 else [f"status {answer.status}"]
                continue
            if template in status:
                watch.expected.add(url)
            site.found[template] = check_page(page, watch, crawl, url, status.get(template, 200))
            site.text[template] = page.locator("main").inner_text()
            for link in same_origin_links(page, base):
                linked = route_template(urlsplit(link).path)
                if linked not in seen:
                    seen.add(linked)
                    queue.append(link)
    finally:
        context.close()
    return site


PAGES = {"/ui/", "/ui/customers", "/ui/customers/{customer_id}", "/ui/value", "/ui/plan"}
PAGES |= {"/ui/campaign", "/ui/drift"} | {f"/ui/models/{task}" for task in task_names()}


def test_every_reviewer_page_reads_whole(browser: Any, full_server: str) -> None:
    # the customer page of the customer with every kind of history (the widest tables)
    start = [f"{full_server}/ui/", f"{full_server}/ui/customers/{BUSY}"]
    site = crawl_site(browser, full_server, start, {}, "/ui/customers/nobody")
    assert set(site.found) >= PAGES, site.crawled
    assert {route: problems for route, problems in site.found.items() if problems} == {}
    # the checks had something to check
    crawl = site.crawl
    assert min(crawl.counts.values()) > 0, crawl.counts
    assert {urlsplit(url).path for url in crawl.assets} >= {
        "/favicon.ico",
        "/ui/static/favicon.svg",
        "/ui/static/guanxi.css",
    }


# a store as a new user has it: what each page says is missing, and the command that makes it
YOUNG = {
    "/ui/value": "guanxi value",
    "/ui/plan": "guanxi target",
    "/ui/campaign": "guanxi campaign record",
    "/ui/drift": "guanxi drift",
}

# the pages that need a loaded model: their 503 page without one
UNLOADED = {"/ui/", "/ui/customers", "/ui/customers/{customer_id}"}


def young_store(world: UIWorld, home: Path) -> None:
    """The world's snapshot and events only: no value table, plan, campaign or drift report."""
    events = pl.read_parquet(world.events)
    Store(home).write_snapshot(world.snapshot, AS_OF, events=world.events, history=events)


def test_a_store_without_models_says_what_to_run(
    browser: Any, world: UIWorld, tmp_path: Path
) -> None:
    """A snapshot but no model: the pages that need the models answer their 503 page saying to
    train (the documented status), the store's own pages 200 with what to run (the value page
    also that scores need a model); each reads whole, and the menu reaches the model pages."""
    home = tmp_path / "home"
    young_store(world, home)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    with serve_uvicorn(home, uri, tmp_path, ready=NOTHING_PROMOTED) as url:
        # the menu leads to every task's model page, which says what to run
        start = [f"{url}/ui/", f"{url}/ui/customers/c001"]
        site = crawl_site(
            browser,
            url,
            start,
            dict.fromkeys(UNLOADED, 503),
            "/ui/models/nothing",
            "crawl-no-models",
        )
    assert set(site.found) >= PAGES, site.crawled
    assert {route: problems for route, problems in site.found.items() if problems} == {}
    wanted = {route: "guanxi train" for route in UNLOADED | {"/ui/value"}}
    wanted |= {f"/ui/models/{t}": "guanxi train" for t in task_names()}
    wanted |= {route: command for route, command in YOUNG.items() if route not in wanted}
    assert "guanxi value" in site.text["/ui/value"]
    assert {r: c for r, c in wanted.items() if c not in site.text[r]} == {}
    assert all(str(home) not in text for text in site.text.values())


@pytest.mark.slow  # another server and crawl: CI runs it, the default run keeps to two
def test_a_store_with_values_but_no_models_shows_them(
    browser: Any, world: UIWorld, tmp_path: Path
) -> None:
    """A snapshot and a value table, no model: the value page and its exports answer 200 with
    the values (they answered the 503 page), saying that scores need ``guanxi train``; so do the
    customer pages it links to, with the customer's value and history (they were the 503)."""
    home = tmp_path / "home"
    young_store(world, home)
    store_values(home)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    with serve_uvicorn(home, uri, tmp_path, ready=NOTHING_PROMOTED) as url:
        start = [f"{url}/ui/", f"{url}/ui/customers/c001"]
        site = crawl_site(
            browser,
            url,
            start,
            dict.fromkeys(UNLOADED - {"/ui/customers/{customer_id}"}, 503),
            "/ui/valeu",  # a mistyped address: the pages' error page, not the API's JSON
            "crawl-values-no-models",
        )
    assert set(site.found) >= PAGES | {"/ui/value/segments/{name}.csv"}, site.crawled
    assert {route: problems for route, problems in site.found.items() if problems} == {}
    assert "Customer equity by RFM segment" in site.text["/ui/value"]
    assert "There are no scores yet" in site.text["/ui/customers/{customer_id}"]
    wanted = {route: "guanxi train" for route in UNLOADED | {"/ui/value"}}
    wanted |= {f"/ui/models/{t}": "guanxi train" for t in task_names()}
    wanted |= {route: command for route, command in YOUNG.items() if route != "/ui/value"}
    assert {r: c for r, c in wanted.items() if c not in site.text[r]} == {}


@pytest.mark.slow  # a third server and crawl: CI runs it, the default run keeps to two
def test_a_store_with_models_only_says_what_to_run(
    browser: Any, world: UIWorld, tmp_path: Path
) -> None:
    """The world's models on a store with nothing else: every page 200, each says what it lacks."""
    home = tmp_path / "home"
    young_store(world, home)
    with serve_uvicorn(home, world.uri, tmp_path) as url:
        start = [f"{url}/ui/", f"{url}/ui/customers/{BUSY}"]
        site = crawl_site(browser, url, start, {}, "/ui/customers/nobody", "crawl-models-only")
    assert set(site.found) >= PAGES, site.crawled
    assert {route: problems for route, problems in site.found.items() if problems} == {}
    wanted = YOUNG | {"/ui/customers/{customer_id}": "guanxi value"}
    assert {r: c for r, c in wanted.items() if c not in site.text[r]} == {}


def test_the_drift_report_file_reads_whole(browser: Any, tmp_path: Path) -> None:
    """``guanxi drift --html``'s file: the drift page's body with the stylesheet inlined."""
    report = json.loads(json.dumps(drift_report()).replace(EVIL, "recency_days"))
    path = tmp_path / "drift.html"
    path.write_text(render_report(report), encoding="utf-8")
    context = browser.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        watch, crawl = Watch(page), Crawl(context)
        response = page.goto(path.as_uri())
        assert response is not None and response.ok
        assert check_page(page, watch, crawl, path.as_uri(), response.status, skip_link=False) == []
        assert crawl.assets == {} and crawl.counts["tables"] >= 3
    finally:
        context.close()
