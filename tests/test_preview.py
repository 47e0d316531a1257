"""Preview pages: contents, escaping, relative thumbnails, and loading in Chromium."""

from __future__ import annotations

import http.server
import re
import shutil
import threading
from functools import partial

import numpy as np
import pytest
from PIL import Image

from retrieval.preview import PreviewItem, PreviewSheet, write_preview


def test_pages_escape_text_and_reference_thumbnails(tmp_path):
    img = tmp_path / "1.jpg"
    Image.fromarray(np.full((30, 40, 3), 120, np.uint8)).save(img)
    sheets = [
        PreviewSheet(
            "bus<script>",
            1,
            ["prompt: <b>bus</b>"],
            positives=[PreviewItem(1, str(img), 0.25, 0), PreviewItem(2, None, 0.2, 1)],
            background=[PreviewItem(3, str(tmp_path / "gone.jpg"), -0.1, 39)],
        ),
        PreviewSheet("camera", 1, ["prompt: camera"]),
    ]
    summary = write_preview(sheets, tmp_path / "out", title="t", notice="Random weights & co")
    assert summary.thumbnails == 1 and summary.missing == 2
    page = summary.pages[0].read_text()
    assert "<script>" not in page and "bus&lt;script&gt;" in page
    assert "&lt;b&gt;bus&lt;/b&gt;" in page
    assert 'src="thumbs/1.jpg"' in page and "0.2500" in page
    assert "Random weights &amp; co" in page
    assert "No images in this bucket." in summary.pages[1].read_text()
    index = summary.index.read_text()
    assert "Random weights &amp; co" in index
    assert summary.pages[0].name in index and "2 / 1" in index
    for src in re.findall(r'src="([^"]+)"', page):
        assert not src.startswith("/") and (summary.pages[0].parent / src).is_file()


def test_turk_preview_needs_rank(cli, embedded_db):
    result = cli("preview")
    assert result.exit_code == 1
    assert "no candidates yet; run 'turk rank CONCEPTS.yaml' first" in result.stderr


@pytest.fixture
def ranked_preview(cli, embedded_db, sample_dir, tiny_clip, tmp_path):
    config, weights = tiny_clip
    ranked = cli(
        "rank",
        sample_dir / "concepts.yaml",
        "--model",
        config,
        "--pretrained",
        weights,
        "--device",
        "cpu",
    )
    assert ranked.exit_code == 0, ranked.stderr
    result = cli("preview", "--out", tmp_path / "preview", "--notice", "Random weights")
    assert result.exit_code == 0, result.stderr
    return tmp_path / "preview"


def test_turk_preview_pages_per_concept_and_bucket(ranked_preview):
    pages = sorted(p.name for p in ranked_preview.glob("*-bucket-*.html"))
    assert len(pages) == 5 * 3  # 5 concepts x 3 unreserved buckets
    assert not any("bucket-0" in p for p in pages)
    for page in ranked_preview.glob("*.html"):
        text = page.read_text()
        assert "Random weights" in text
    bus = (ranked_preview / "bus-bucket-1.html").read_text()
    assert "prompt: double-decker bus" in bus and "templates: 80" in bus


@pytest.mark.browser
def test_preview_loads_in_chromium(page, ranked_preview, tmp_path):
    # Copied elsewhere whole, served over HTTP and opened from file://.
    moved = tmp_path / "moved"
    shutil.copytree(ranked_preview, moved)

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = partial(Quiet, directory=str(moved))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    bases = [moved.as_uri(), f"http://127.0.0.1:{server.server_address[1]}"]
    pages = ["index.html", *sorted(p.name for p in moved.glob("*-bucket-*.html"))[:6]]
    try:
        checked = 0
        for base in bases:
            for name in pages:
                page.goto(f"{base}/{name}", wait_until="load")
                broken = page.evaluate(
                    "Array.from(document.images)"
                    ".filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src)"
                )
                assert broken == [], (name, broken)
                checked += page.evaluate("document.images.length")
                assert "Random weights" in page.inner_text("body")
    finally:
        server.shutdown()
    assert checked > 0
    assert page.console_errors == []
