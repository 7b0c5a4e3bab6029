"""The report opened in a real headless Chromium: no console errors or network requests, plots
rendered (a non-blank screenshot), hover text, table sorting, and a hostile study name as text.

Chromium must be installed (CI: `apt-get install -y chromium`); without it these tests fail unless
ROBUSTARCH_SKIP_BROWSER=1 says to skip them.
"""

from __future__ import annotations

import numpy as np
import optuna
import pytest
from _browser import Browser, require_chromium
from _studies import make_study
from PIL import Image
from test_analyze_table import ROBUSTBENCH
from test_report import _retrained

from robustarch import analyze_table
from robustarch.report import write_analysis, write_comparison, write_report

optuna.logging.set_verbosity(optuna.logging.WARNING)
EVIL = "<script>alert(1)</script>"


@pytest.fixture(scope="module")
def browser():
    b = Browser(require_chromium())
    yield b
    b.close()


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pages")
    study = make_study(30, name=EVIL, n_flagged=2, search_training=True, seed=8)
    report = write_report(study, folder / "report.html", n_boot=200)
    compare = write_comparison(
        make_study(15, name="other", seed=9, slope=0.9), study, folder / "compare.html", n_boot=100
    )
    tiny = write_report(make_study(2, n_flagged=0, name="tiny"), folder / "tiny.html", n_boot=100)
    return {"report": report, "compare": compare, "tiny": tiny}


def _pixel_spread(png) -> float:
    img = np.asarray(Image.open(png).convert("L"), dtype=float)
    return float(img.std())


def test_report_renders_without_errors_and_escapes_the_name(browser, pages, tmp_path):
    browser.open(pages["report"])
    assert browser.problems() == []
    assert browser.eval("document.title") == f"robustarch report — {EVIL}"
    assert browser.eval("document.querySelector('h1').textContent").endswith(EVIL)
    assert browser.eval("document.scripts.length") == 1  # only the page's own script
    # Every plot drew marks with real size on screen.
    plots = browser.eval("""Array.from(document.querySelectorAll('svg.plot')).map(s => {
        const r = s.getBoundingClientRect();
        return [s.id, r.width, r.height, s.querySelectorAll('.mark').length]; })""")
    ids = {p[0] for p in plots}
    assert {
        "robust-vs-clean_accuracy",
        "robust-vs-params",
        "eps-curves",
        "power-law",
        "slopes",
        "margins",
        "depth-width",
        "phase",
    } <= ids
    assert all(w > 300 and h > 200 and n > 0 for _, w, h, n in plots), plots
    shot = browser.screenshot(tmp_path / "report.png")
    assert _pixel_spread(shot) > 20, "the screenshot looks blank"
    # A plot region alone is not blank either (marks and axes drawn, not just page text).
    box = browser.eval(
        "(() => { const r = document.getElementById('robust-vs-clean_accuracy')"
        ".getBoundingClientRect(); return [r.left + scrollX, r.top + scrollY, r.width, r.height]; })()"
    )
    crop = Image.open(shot).crop((int(box[0]), int(box[1]), int(box[0] + box[2]), int(box[1] + box[3])))
    crop.save(tmp_path / "plot.png")
    assert _pixel_spread(tmp_path / "plot.png") > 10


def test_hover_shows_the_models_architecture_and_numbers(browser, pages):
    browser.open(pages["report"])
    browser.eval("document.getElementById('robust-vs-clean_accuracy').scrollIntoView()")
    x, y, trial = browser.eval("""(() => {
        const c = document.querySelector('#robust-vs-clean_accuracy circle.mark[data-trial]');
        const r = c.getBoundingClientRect(), x = r.left + r.width / 2, y = r.top + r.height / 2;
        // Points may overlap: the model under the pointer is the topmost mark there.
        const top = document.elementFromPoint(x, y).closest('[data-trial]');
        return [x, y, top.getAttribute('data-trial')]; })()""")
    browser.mouse_move(x, y)
    tip = browser.eval(
        "(() => { const t = document.getElementById('tip'); return [getComputedStyle(t).display, t.textContent]; })()"
    )
    assert tip[0] == "block"
    assert tip[1].startswith(f"trial {trial}: stem8 ") and "clean" in tip[1] and "params" in tip[1]
    lit = browser.eval(f"document.querySelectorAll('[data-trial=\"{trial}\"].hl').length")
    assert lit >= 3  # the same model lights up in the other plots and its table row
    browser.mouse_move(5, 5)
    assert browser.eval("getComputedStyle(document.getElementById('tip')).display") == "none"
    assert browser.problems() == []


def test_trial_table_sorts_on_click(browser, pages):
    browser.open(pages["report"])
    col = browser.eval("""Array.from(document.querySelectorAll('#trial-table th'))
        .findIndex(th => th.textContent === 'clean')""")
    values = []
    for _ in range(2):
        browser.eval(f"document.querySelectorAll('#trial-table th')[{col}].click()")
        values.append(
            browser.eval(f"""Array.from(document.querySelectorAll('#trial-table tbody tr'))
            .map(r => r.cells[{col}].getAttribute('data-v')).filter(v => v !== null).map(Number)""")
        )
    assert len(values[0]) == 30
    assert values[0] == sorted(values[0]) and values[1] == sorted(values[1], reverse=True)
    assert browser.problems() == []


def test_comparison_and_too_few_pages_render_cleanly(browser, pages, tmp_path):
    browser.open(pages["compare"])
    assert browser.problems() == []
    assert browser.eval("document.querySelectorAll('svg.plot .mark').length") > 20
    assert _pixel_spread(browser.screenshot(tmp_path / "compare.png")) > 20
    browser.open(pages["tiny"])
    assert browser.problems() == []
    assert "Too few complete trials" in browser.eval("document.getElementById('too-few').textContent")


def test_findings_and_rescore_render_in_the_browser(browser, tmp_path):
    from test_findings import pairs_study

    rescore = {
        3: {
            "suite": "strong",
            "split": "test",
            "eps": [0.05],
            "clean_accuracy": 0.9,
            "n_attacked": 400,
            "robust_accuracy": {"worst_case": [0.1]},
            "seconds": 3.0,
            "sanity_invalid": [],
        }
    }
    page = write_report(pairs_study(sampler="tpe", rescore=rescore), tmp_path / "findings.html", n_boot=100)
    browser.open(page)
    assert browser.problems() == []
    rows = browser.eval("""Array.from(document.querySelectorAll('#findings-table tbody tr'))
        .map(r => [r.cells[0].textContent, r.cells[1].textContent])""")
    assert len(rows) >= 6 and {v for _, v in rows} <= {
        "supported",
        "not supported",
        "contradicted",
        "inconclusive",
        "skipped",
    }
    # The findings come first: above the summary, and visible on the first screen.
    top = browser.eval("document.getElementById('findings-table').getBoundingClientRect().top")
    assert 0 < top < browser.eval("document.getElementById('summary').getBoundingClientRect().top")
    assert "tpe sampler" in browser.eval("document.getElementById('sampler-caveat').textContent")
    cells = browser.eval("""Array.from(document.querySelectorAll('#rescore-table tbody td')).map(c => c.textContent)""")
    assert "strong" in cells and "0.100" in cells
    assert _pixel_spread(browser.screenshot(tmp_path / "findings.png")) > 20


def _text_outside_plots(browser) -> list:
    """Tick labels, legends and titles that run past the edge of their plot."""
    return browser.eval("""Array.from(document.querySelectorAll('svg.plot')).flatMap(s => {
        const box = s.getBoundingClientRect();
        return Array.from(s.querySelectorAll('text')).filter(t => {
            const r = t.getBoundingClientRect();
            return r.width > 0 && (r.left < box.left - 1 || r.right > box.right + 1 || r.top < box.top - 1
                                   || r.bottom > box.bottom + 1); }).map(t => [s.id, t.textContent]); })""")


def test_plot_labels_and_legends_stay_inside_their_plots(browser, pages):
    browser.open(pages["report"])
    assert _text_outside_plots(browser) == []
    legend = browser.eval("Array.from(document.querySelectorAll('#margins text')).map(t => t.textContent)")
    assert sum(t.startswith("clean acc. ") for t in legend) == 3
    ticks = browser.eval("""Array.from(document.querySelectorAll('#depth-width text'))
        .filter(t => !t.getAttribute('transform') && t.getAttribute('text-anchor') === 'middle'
                && !t.classList.contains('title') && !t.classList.contains('label') && !t.classList.contains('cell'))
        .map(t => [t.textContent, t.getBoundingClientRect().height])""")
    assert [t for t, _ in ticks] == ["1", "2", "3", "4", "5", "6"]  # upright, one per depth
    assert all(h >= 9 for _, h in ticks)


def test_a_table_of_published_results_renders(browser, tmp_path):
    page = write_analysis(analyze_table(ROBUSTBENCH, n_boot=100), tmp_path / "robustbench.html")
    browser.open(page)
    assert browser.problems() == [] and _text_outside_plots(browser) == []
    assert "robustarch analyze" in browser.eval("document.getElementById('table-source').textContent")
    ids = browser.eval("Array.from(document.querySelectorAll('svg.plot')).map(s => s.id)")
    assert {"robust-vs-clean_accuracy", "robust-vs-params", "depth-width"} <= set(ids)
    verdicts = browser.eval("""Array.from(document.querySelectorAll('#findings-table tbody tr'))
        .map(r => r.cells[1].textContent)""")
    assert "skipped" in verdicts and "supported" in verdicts
    assert _pixel_spread(browser.screenshot(tmp_path / "robustbench.png")) > 20


def test_paired_comparison_renders(browser, tmp_path):
    study = make_study(20, name="standard", seed=11, n_flagged=0)
    page = write_comparison(study, _retrained(study, "pgd", 0.1), tmp_path / "paired.html", n_boot=100)
    browser.open(page)
    assert browser.problems() == [] and _text_outside_plots(browser) == []
    assert browser.eval("document.querySelectorAll('#compare-pairs circle.mark').length") == 20
    assert browser.eval("document.querySelectorAll('#pairs-table tbody tr').length") == 20
