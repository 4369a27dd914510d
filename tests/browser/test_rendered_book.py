"""The rendered book, opened in a real browser without network: maths typeset, figures loaded, widgets alive."""

from __future__ import annotations

from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

HTML = Path(__file__).resolve().parents[2] / "_build" / "html"

PAGES_WITH_MATH = ["book/intro.html", "book/inverse_problems.html", "book/guided_reconstruction.html",
                   "book/lambda.html", "notebooks/01_measurements.html"]
PAGES_WITH_FIGURES = ["book/inverse_problems.html", "book/data.html", "book/guided_reconstruction.html",
                      "book/lambda.html", "notebooks/01_measurements.html", "notebooks/03_guided_reconstruction.html"]
WIDGET_PAGES = ["notebooks/01_measurements.html", "notebooks/09_lambda.html"]


def _open(browser, site, page):
    browser.get(f"{site}/{page}")
    WebDriverWait(browser, 30).until(lambda d: d.execute_script("return document.readyState") == "complete")


@pytest.mark.parametrize("page", PAGES_WITH_MATH)
def test_math_is_typeset(browser, site, page):
    _open(browser, site, page)
    WebDriverWait(browser, 30).until(
        lambda d: d.execute_script("return document.querySelectorAll('mjx-container').length > 0"),
        message=f"MathJax typeset nothing on {page}",
    )
    main = browser.find_element(By.CSS_SELECTOR, "main").text
    for raw in ("\\(", "\\[", "$$"):
        assert raw not in main, f"raw TeX {raw!r} left on {page}"
    errors = browser.execute_script("return document.querySelectorAll('mjx-merror, .MathJax_Error').length")
    assert errors == 0, f"{errors} MathJax errors on {page}"


@pytest.mark.parametrize("page", PAGES_WITH_FIGURES)
def test_every_figure_loaded(browser, site, page):
    _open(browser, site, page)
    images = browser.execute_script(
        "return Array.from(document.querySelectorAll('main img')).map(i => [i.src, i.complete, i.naturalWidth])"
    )
    assert len(images) >= 1, f"no figures on {page}"
    broken = [src for src, complete, width in images if not (complete and width > 0)]
    assert not broken, f"images that did not load on {page}: {broken}"


@pytest.mark.parametrize("page", WIDGET_PAGES)
def test_widget_renders_and_responds_without_a_kernel(browser, site, page):
    _open(browser, site, page)
    WebDriverWait(browser, 60).until(
        lambda d: d.execute_script("return document.querySelectorAll('.widget-slider, .jupyter-widget-slider').length > 0"),
        message=f"no widget slider rendered on {page}",
    )
    visible = """
        return Array.from(document.querySelectorAll('.widget-image, .jupyter-widget-image'))
            .filter(i => i.offsetParent !== null && i.naturalWidth > 0).map(i => i.src)"""
    before = browser.execute_script(visible)
    assert len(before) == 1, f"expected one visible frame, got {len(before)}"
    handle = browser.find_element(By.CSS_SELECTOR, ".noUi-handle, .ui-slider-handle")
    handle.send_keys(Keys.ARROW_RIGHT)
    WebDriverWait(browser, 10).until(
        lambda d: d.execute_script(visible) not in ([], before), message="moving the slider did not swap the frame"
    )


ALL_CHAPTERS = ["book/intro.html", "book/findings.html", "book/verdicts.html", "book/inverse_problems.html", "book/diffusion_primer.html", "book/data.html",
                "book/evaluation.html", "book/guided_reconstruction.html", "book/solvers.html", "book/lesions.html", "book/lambda.html",
                "book/path_guided.html",
                "book/consistency.html", "book/one_prior_many_hospitals.html", "book/synthetic_data.html",
                "book/own_data.html", "book/real_scans.html",
                "book/glossary.html", "book/reproducing.html", "book/references.html"]
NOTEBOOK_PAGES = ["notebooks/01_measurements.html", "notebooks/02_prior.html", "notebooks/03_guided_reconstruction.html",
                  "notebooks/04_results_table.html", "notebooks/09_lambda.html", "notebooks/10_path_guided.html",
                  "notebooks/11_consistency.html", "notebooks/12_synthetic_dp.html", "notebooks/07_shift.html",
                  "notebooks/13_own_data.html", "notebooks/08_real_scans.html", "notebooks/05_solvers.html",
                  "notebooks/06_lesions.html"]


@pytest.mark.parametrize("folder, pages", [("book", ALL_CHAPTERS), ("notebooks", NOTEBOOK_PAGES)])
def test_every_page_is_checked(site, folder, pages):
    """A new page must join its list, or the leak check below would skip it."""
    built = sorted(str(p.relative_to(HTML)) for p in (HTML / folder).glob("*.html"))
    assert built == sorted(pages), f"update the list of {folder} pages: built {built}"


@pytest.mark.parametrize("page", ALL_CHAPTERS + NOTEBOOK_PAGES)
def test_no_python_object_or_unresolved_glue_shows(browser, site, page):
    """A glued value must render as its text: never as a Python repr, an address, or a glue role left unresolved
    (notebook pages glue text in their markdown too). A figure's repr is a leak in a chapter only: a notebook page may
    show one as a cell's text output."""
    _open(browser, site, page)
    main = browser.find_element(By.CSS_SELECTOR, "main").text
    leaks = ("IPython.core.display", "object at 0x", "{glue", "glue:text", "glue:md")
    for leak in leaks + (("<Figure size",) if page.startswith("book/") else ()):
        assert leak not in main, f"{leak!r} shows on {page}"


# A page says what is, not how it came to be: no word of the project's issues or of earlier versions.
HISTORY_WORDS = ("the issue", "issue's", "first version", "not built yet")


@pytest.mark.parametrize("page", ALL_CHAPTERS + NOTEBOOK_PAGES)
def test_no_page_tells_the_projects_history(browser, site, page):
    _open(browser, site, page)
    main = browser.find_element(By.CSS_SELECTOR, "main").text.lower()
    found = [word for word in HISTORY_WORDS if word in main]
    assert not found, f"{page} says {found}: state what is, without the project's history"
