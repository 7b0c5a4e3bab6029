"""A 15 625-model page (a NARes-shaped table) in a real headless Chromium: no console errors, hover
shows a drawn model's numbers and a density cell's count, the trial table pages and a click on a
model's point turns it to that model's row. How fast it opens is measured by
benchmarks/analysis_scale.py --browser (a timed assertion has no place in a unit test)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from _browser import Browser, require_chromium

import robustarch
from robustarch.report import write_analysis

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from scale_tables import nares_raw, prepare_nares  # noqa: E402


@pytest.fixture(scope="module")
def nares_page(tmp_path_factory):
    # B = 20: the test is about the page; the statistics of this table are benchmarked elsewhere
    a = robustarch.analyze_table(prepare_nares(nares_raw()), name="nares", n_boot=20)
    return write_analysis(a, tmp_path_factory.mktemp("nares") / "nares.html")


@pytest.fixture(scope="module")
def browser():
    b = Browser(require_chromium())
    yield b
    b.close()


def _centre(browser, selector: str):
    return browser.eval(f"""(() => {{
        const el = document.querySelector({selector!r});
        el.scrollIntoView({{block: "center"}});
        const r = el.getBoundingClientRect(), x = r.left + r.width / 2, y = r.top + r.height / 2;
        const top = document.elementFromPoint(x, y).closest('[data-tip]');
        return [x, y, top.getAttribute('data-trial'), top.getAttribute('data-tip')]; }})()""")


def _tip(browser):
    return browser.eval(
        "(() => { const t = document.getElementById('tip'); return [getComputedStyle(t).display, t.textContent]; })()"
    )


def test_a_15625_model_page_opens_cleanly_and_hover_works(browser, nares_page):
    browser.open(nares_page)
    assert browser.problems() == []
    x, y, trial, _ = _centre(browser, "#robust-vs-clean_accuracy circle.mark[data-trial]")
    browser.mouse_move(x, y)
    shown, text = _tip(browser)
    assert shown == "block" and text.startswith(f"trial {trial}: wrn-") and "robust" in text
    x, y, _, cell = _centre(browser, "#robust-vs-params rect.mark.bin")
    browser.mouse_move(x, y)
    assert _tip(browser)[1] == cell and " model" in cell and "parameters" in cell
    browser.mouse_move(5, 5)
    assert browser.eval("getComputedStyle(document.getElementById('tip')).display") == "none"
    assert browser.problems() == []


def test_the_trial_table_pages_and_follows_a_clicked_point(browser, nares_page):
    browser.open(nares_page)
    rows = "document.querySelectorAll('#trial-table tbody tr').length"
    info = "document.querySelector('#trial-table-pager .pager-info').textContent"
    assert browser.eval(rows) == 100 and browser.eval(info).startswith("rows 1–100 of 15625")
    browser.eval("document.querySelector('#trial-table-pager button[data-go=last]').click()")
    assert browser.eval(info).startswith("rows 15601–15625 of 15625") and browser.eval(rows) == 25
    # the most robust model: its point is drawn; a click shows its row, lit
    best = browser.eval("""(() => { const c = Array.from(document.querySelectorAll(
        '#robust-vs-clean_accuracy circle.mark[data-trial]')).sort((a, b) => a.cy.baseVal.value - b.cy.baseVal.value)[0];
        c.dispatchEvent(new MouseEvent('click', {bubbles: true})); return c.getAttribute('data-trial'); })()""")
    assert browser.eval(f"document.querySelectorAll('#trial-table tr[data-trial=\"{best}\"].hl').length") == 1
    browser.eval("document.querySelectorAll('#trial-table th')[0].click()")  # sort by trial over every row
    assert browser.eval("document.querySelector('#trial-table tbody td').textContent") == "0"
    assert browser.problems() == []
