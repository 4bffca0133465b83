"""Every lesson runs top to bottom on the CPU tier, and the course site renders them in a real browser.

The lessons run once, into the cache the site builder reads (``build/executed/``, as ``make site``), so
the site is built from exactly what these tests ran, and ``make site`` after ``make test`` runs nothing again.
"""

import pytest
from browser import browser_page, canvas_ink
from course import ROOT

from interplab.site import build_site, cache_dir, execute_lesson, site_dir
from interplab.syllabus import MODULES

LESSONS = sorted((ROOT / "lessons").glob("*.ipynb"))
EXECUTED = {}


@pytest.mark.parametrize("lesson", LESSONS, ids=[p.name for p in LESSONS])
def test_lesson_runs_without_errors_on_cpu(lesson):
    EXECUTED[lesson] = execute_lesson(lesson, cache_dir(ROOT), force=True)  # raises, naming the cell, on any error


@pytest.fixture(scope="module")
def site():
    missing = [p.name for p in LESSONS if p not in EXECUTED]
    if missing:
        pytest.skip(f"the site is built from the lessons executed above; these did not run: {missing}")
    return build_site(ROOT, site_dir(ROOT), executed=EXECUTED)


def test_the_site_has_every_lesson_the_syllabus_and_the_guide(site):
    pages = {p.relative_to(site).as_posix() for p in site.rglob("*.html")}
    assert {"index.html", "syllabus.html", "instructors.html"} <= pages
    assert {f"lessons/{p.stem}.html" for p in LESSONS} <= pages
    index = (site / "index.html").read_text()
    for m in MODULES:
        assert m.title.split(":")[0] in index


def test_the_site_reads_with_no_kernel_in_a_browser(site):
    with browser_page() as page:
        for name in ("index", "syllabus", "instructors", *(f"lessons/{p.stem}" for p in LESSONS)):
            response = page.goto((site / f"{name}.html").as_uri())
            assert response is None or response.ok, name
            page.locator("article h1").first.wait_for(state="visible")  # the page rendered, not just arrived

        page.goto((site / "lessons" / "02_induction_heads.html").as_uri())
        figures = page.locator("main img[src*='_images']")
        assert figures.count() >= 3
        for figure in figures.all():
            figure.scroll_into_view_if_needed()
            assert page.evaluate("(img) => img.complete && img.naturalWidth > 100", figure.element_handle())

        page.goto((site / "lessons" / "00_tour.html").as_uri())
        pattern = page.locator("main div[id^='circuits-vis']").first
        pattern.scroll_into_view_if_needed()
        assert "Head Selector" in pattern.inner_text()
        ink = canvas_ink(page, pattern)
        assert len(ink) >= 4 and all(n > 0 for n in ink), ink  # every head drawn, not a blank CDN placeholder
