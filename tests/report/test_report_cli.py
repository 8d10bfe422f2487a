"""`hwnas report` end to end: a real (tabular) search, a fitted cost table and a synthetic store -> HTML.

The browser test renders the page in headless Chromium (Debian's ``chromium``, driven by Playwright):
every image loads, no console error, each section present; a screenshot is taken. It skips, with the
reason, where Chromium or Playwright is missing; CI (`tools/test.sh`) installs both.
"""

from __future__ import annotations

import json
import re
import shutil

import pytest
from report_helpers import build_store

from hwnas.cli.app import main
from hwnas.cost_models import fitting
from hwnas.cost_models.data import load_store_data
from hwnas.cost_models.export import save_cost_table

SECTIONS = ("device-profiles", "cost-models", "searches", "device-comparisons")


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """A store, a cost table fitted on 8 of its 12 architectures, and a real search comparison file."""
    from hwnas.searchers.compare import compare_searchers
    from hwnas.searchers.objectives import get_objective

    d = tmp_path_factory.mktemp("report")
    store = build_store(d / "s.db")
    data = load_store_data(store, device="cpu-a").subset([f"synthetic:{i}" for i in range(8)])
    tbl, _ = fitting.fit_with_validation("flops", data)
    table = save_cost_table(tbl, d / "table.json")
    store.close()
    obj = get_objective("hyperpower-digits")
    comp = compare_searchers(obj, ["random_search", "random_walk"], seeds=range(3), n_evals=15,
                             constraints=["latency<=0.1864ms", "memory<=0.5831MB"], cost_model_samples=10,
                             objective_name="hyperpower-digits")  # fmt: skip
    hist = d / "comp.json"
    hist.write_text(json.dumps(comp.to_dict(with_histories=True), default=str))
    return {"store": d / "s.db", "table": table, "history": hist, "dir": d}


@pytest.fixture(scope="module")
def report_dir(inputs):
    out = inputs["dir"] / "out"
    args = ["report", "--store", str(inputs["store"]), "--table", str(inputs["table"]),
            "--history", str(inputs["history"]), "--out", str(out),
            "--max-models", "2", "--json"]  # fmt: skip
    assert main(args) == 0
    return out


def test_report_writes_every_section(report_dir) -> None:
    page = (report_dir / "index.html").read_text()
    for sid in SECTIONS:
        assert f'id="{sid}"' in page
    srcs = re.findall(r'<img src="([^"]+)"', page)
    assert len(srcs) >= 8 and all(
        (report_dir / s).is_file() and (report_dir / s).stat().st_size > 5000 for s in srcs
    )
    assert sorted(p.name for p in (report_dir / "img").iterdir()) == sorted(s.split("/")[-1] for s in srcs)
    assert "thermal throttling seen during the run" in page  # a profiler flag reaches the page
    assert "Chosen architecture" in page and "random_search" in page
    assert "architectures not used in fitting" in page  # held-out scoring, labelled
    csvs = list((report_dir / "data").glob("*.csv"))
    assert any("trials" in p.name for p in csvs) and any("layers" in p.name for p in csvs)


def test_report_only_history_and_embed(inputs, tmp_path) -> None:
    out = tmp_path / "r"
    assert (
        main(["report", "--no-store", "--history", str(inputs["history"]), "--out", str(out), "--embed"]) == 0
    )
    page = (out / "index.html").read_text()
    assert 'id="searches"' in page and 'id="device-profiles"' not in page
    assert page.count('src="data:image/png;base64,') >= 3 and 'src="img/' not in page


def test_report_bad_inputs_exit_2(inputs, tmp_path, capsys) -> None:
    assert (
        main(["report", "--no-store", "--history", str(tmp_path / "nope.json"), "--out", str(tmp_path)]) == 2
    )
    assert "nope.json: file not found" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    bad.write_text('{"rows": 1}')
    assert main(["report", "--no-store", "--history", str(bad), "--out", str(tmp_path / "o")]) == 2
    assert "no 'trials'" in capsys.readouterr().err
    assert main(["report", "--store", str(tmp_path / "missing.db"), "--out", str(tmp_path / "o")]) == 2
    empty = tmp_path / "empty.db"
    from hwnas.store import SQLiteStore

    SQLiteStore(empty).close()
    assert main(["report", "--store", str(empty), "--out", str(tmp_path / "o")]) == 2
    assert "nothing to report" in capsys.readouterr().err


# --- in a real browser -----------------------------------------------------------------------------------

CHECK_JS = """() => ({
  images: Array.from(document.images).map(i => ({
      src: i.getAttribute('src').slice(0, 60), ok: i.complete && i.naturalWidth > 0})),
  sections: Array.from(document.querySelectorAll('section.report-section')).map(s => ({
      id: s.id, images: s.querySelectorAll('img').length, height: s.getBoundingClientRect().height})),
  overflowX: document.documentElement.scrollWidth > window.innerWidth + 1,
})"""


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.skip("no chromium on PATH (CI installs Debian's chromium: tools/test.sh)")
    return path


def render(index, screenshot=None) -> dict:  # noqa: ANN001
    """Open ``index`` in headless Chromium; return console errors, failed requests and the DOM checks."""
    sync = pytest.importorskip("playwright.sync_api", reason="playwright is in the dev extra")
    errors: list[str] = []
    with sync.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=_chromium(), args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1360, "height": 900})
        page.on(
            "console", lambda m: errors.append(f"console {m.type}: {m.text}") if m.type == "error" else None
        )
        page.on("pageerror", lambda e: errors.append(f"page error: {e}"))
        page.on("requestfailed", lambda r: errors.append(f"request failed: {r.url}"))
        page.goto(index.as_uri(), wait_until="load")
        checks = page.evaluate(CHECK_JS)
        if screenshot is not None:
            page.screenshot(path=str(screenshot), full_page=True)
        browser.close()
    return {"errors": errors, **checks}


def test_report_in_headless_chromium(report_dir, tmp_path) -> None:
    shot = tmp_path / "shot.png"
    res = render(report_dir / "index.html", shot)
    assert res["errors"] == []
    assert res["images"] and all(i["ok"] for i in res["images"]), [i for i in res["images"] if not i["ok"]]
    assert [s["id"] for s in res["sections"]] == list(SECTIONS)
    assert all(s["images"] >= 1 and s["height"] > 200 for s in res["sections"])
    assert not res["overflowX"]  # nothing wider than the window
    from PIL import Image

    with Image.open(shot) as im:
        assert im.width == 1360 and im.height > 3000  # the whole page, not a blank viewport
        assert len(set(im.convert("L").resize((64, 256)).getdata())) > 20


def test_browser_check_catches_a_broken_image(report_dir, tmp_path) -> None:
    """The check above can fail: a page with a missing image and a console error is caught."""
    page = (report_dir / "index.html").read_text()
    src = re.search(r'<img src="([^"]+)"', page).group(1)
    broken = tmp_path / "index.html"
    broken.write_text(page.replace(f'src="{src}"', 'src="img/missing.png"', 1)
                      .replace("</body>", "<script>console.error('boom')</script></body>"))  # fmt: skip
    res = render(broken)
    assert [i for i in res["images"] if not i["ok"]]
    assert any("boom" in e for e in res["errors"]) and any("missing.png" in e for e in res["errors"])
