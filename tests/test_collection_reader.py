"""The YFCC100M readers: layouts, compression, URL decoding, validation, filters, folders."""

from __future__ import annotations

import bz2
import gzip
import json
import sqlite3
import threading
from array import array
from collections import Counter
from pathlib import Path

import pytest
from PIL import Image

from retrieval.collection import (
    BARE_ROW_FIELDS,
    IN_PROCESS_MAX_BYTES,
    ROW_FIELDS,
    Batch,
    CollectionFilters,
    ImageIndex,
    InsertTarget,
    MetadataFile,
    Reject,
    decode_metadata,
    detect_layout,
    open_collection,
    read_records,
    worker_context,
)
from retrieval.errors import CollectionError
from retrieval.processes import available_cpus


def records(batch: Batch) -> list[dict]:
    """A batch's good rows, decoded, in photo id order."""
    decoded = [decode_metadata(dict(zip(ROW_FIELDS, r, strict=True))) for r in batch.full_rows()]
    return sorted(decoded, key=lambda r: r["id"])


def line25(
    pid: int = 101,
    *,
    uploaded: str = "1262304000",
    taken: str = "2009-12-31 10:00:00.0",
    title: str = "Red+bus+%C3%A0+Paris",
    device: str = "Canon+PowerShot",
    lon: str = "2.35",
    marker: str = "0",
    url: str = "http://farm1.staticflickr.com/1/101_abc.jpg",
) -> str:
    """One 25-column yfcc100m_dataset line."""
    fields = [
        "7",
        str(pid),
        "0123456789abcdef0123456789abcdef",
        "123@N00",
        "mr+brown",
        taken,
        uploaded,
        device,
        title,
        "A+bus%2C+seen+in+town",
        "bus,london,double+decker",
        "vision%3Aoutdoor%3D099",
        lon,
        "48.85",
        "16",
        f"http://www.flickr.com/photos/123@N00/{pid}/",
        url,
        "Attribution+License",
        "http://creativecommons.org/licenses/by/2.0/",
        "1",
        "2",
        "abc",
        "def",
        "jpg",
        marker,
    ]
    return "\t".join(fields)


def to23(line: str) -> str:
    """The same record in the 23-column layout (no line number, no hash)."""
    fields = line.split("\t")
    return "\t".join([fields[1], *fields[3:]])


def rows_of(path: Path, **filters: object) -> tuple[list[dict], list[Reject]]:
    rows: list[dict] = []
    rejects: list[Reject] = []
    for item in read_records(path, filters=CollectionFilters(**filters)):  # type: ignore[arg-type]
        if isinstance(item, Reject):
            rejects.append(item)
        else:
            rows.append(item)
    return rows, rejects


def test_25_column_layout_is_detected_and_decoded(tmp_path: Path) -> None:
    path = tmp_path / "m.tsv"
    path.write_text(line25() + "\n" + line25(102) + "\n")
    assert detect_layout(path) == "yfcc25"
    rows, rejects = rows_of(path)
    assert rejects == []
    row = rows[0]
    assert row["id"] == 101 and row["line_number"] == 7
    assert row["hash"] == "0123456789abcdef0123456789abcdef"
    assert row["title"] == "Red bus à Paris"
    assert row["device"] == "Canon PowerShot"
    assert row["description"] == "A bus, seen in town"
    assert row["user_tags"] == "bus,london,double decker"
    assert row["machine_tags"] == "vision:outdoor=099"
    assert row["nickname"] == "mr brown"
    assert row["license_name"] == "Attribution License"
    assert row["date_uploaded"] == 1262304000
    assert row["longitude"] == pytest.approx(2.35)
    assert row["accuracy"] == 16 and row["marker"] == 0
    assert row["source"] == str(path.resolve())
    assert row["local_path"] is None


def test_23_column_layout_gives_the_same_row_without_line_number_and_hash(
    tmp_path: Path,
) -> None:
    wide, narrow = tmp_path / "w.tsv", tmp_path / "n.tsv"
    wide.write_text(line25() + "\n")
    narrow.write_text(to23(line25()) + "\n")
    assert detect_layout(narrow) == "yfcc23"
    (rw,), _ = rows_of(wide)
    (rn,), _ = rows_of(narrow)
    assert rn["line_number"] is None and rn["hash"] is None
    skip = {"line_number", "hash", "source"}
    assert {k: v for k, v in rn.items() if k not in skip} == {
        k: v for k, v in rw.items() if k not in skip
    }


@pytest.mark.parametrize("opener", [bz2.open, gzip.open], ids=["bz2", "gz"])
def test_compressed_files_are_read_by_content_not_name(tmp_path: Path, opener) -> None:
    path = tmp_path / "metadata"  # no suffix: compression is recognised from the bytes
    with opener(path, "wt") as fh:
        fh.write("".join(line25(100 + i) + "\n" for i in range(50)))
    rows, rejects = rows_of(path)
    assert [r["id"] for r in rows] == list(range(100, 150)) and rejects == []


def test_malformed_lines_are_rejected_with_line_numbers_and_no_good_row_lost(
    tmp_path: Path,
) -> None:
    lines = [
        line25(1),
        line25(2)[:-10].rsplit("\t", 2)[0],  # cut short: 23 columns in a 25-column file
        line25(3, uploaded="2010-05-06"),
        line25(4, lon="north"),
        line25(5, taken="2010-13-45 00:00:00"),
        line25(6, marker="7"),
        "",  # blank: skipped, not a reject
        line25(8),
    ]
    path = tmp_path / "m.tsv"
    path.write_text("\n".join(lines) + "\n")
    rows, rejects = rows_of(path, photos_only=False)
    assert [r["id"] for r in rows] == [1, 8]
    by_line = {r.line: r.reason for r in rejects}
    assert sorted(by_line) == [2, 3, 4, 5, 6]
    assert "columns, expected 25" in by_line[2]
    assert by_line[3] == "date uploaded '2010-05-06' is not an integer"
    assert by_line[4] == "longitude 'north' is not a number"
    assert "date taken" in by_line[5] and "marker" in by_line[6]
    assert rejects[0].text == lines[1]


def test_batches_are_bounded(tmp_path: Path) -> None:
    path = tmp_path / "m.tsv"
    path.write_text("".join(line25(i + 1) + "\n" for i in range(250)))
    sizes = [b.lines for b in MetadataFile(path, batch_size=100).batches()]
    assert sizes == [100, 100, 50]


def test_filters_videos_and_invalid_dates(tmp_path: Path) -> None:
    path = tmp_path / "m.tsv"
    path.write_text(
        "\n".join(
            [
                line25(1),
                line25(2, marker="1"),
                line25(3, taken="2011-01-01 00:00:00.0"),  # taken after the 2010 upload
                line25(4, taken=""),
            ]
        )
        + "\n"
    )
    rows, _ = rows_of(path)
    assert [r["id"] for r in rows] == [1, 3, 4]
    rows, _ = rows_of(path, photos_only=False)
    assert [r["id"] for r in rows] == [1, 2, 3, 4]
    batch = next(MetadataFile(path, filters=CollectionFilters(valid_date=True)).batches())
    assert [r["id"] for r in records(batch)] == [1, 4]
    assert batch.filtered == {"video": 1, "invalid_date": 1}


def test_image_filters_use_local_files(tmp_path: Path) -> None:
    images = tmp_path / "imgs" / "sub"
    images.mkdir(parents=True)
    Image.new("RGB", (300, 200), "red").save(images / "1.jpg")
    Image.new("RGB", (100, 100), "red").save(images / "2.jpg")
    Image.new("RGB", (900, 200), "red").save(images / "3.png")
    (images / "4.jpg").write_bytes(b"not a jpeg")
    path = tmp_path / "m.tsv"
    path.write_text("".join(line25(i) + "\n" for i in (1, 2, 3, 4, 5)))
    index = ImageIndex(tmp_path / "imgs")
    assert len(index) == 4
    filters = CollectionFilters(min_edge=150, max_aspect=3.0)
    batch = next(MetadataFile(path, filters=filters, images=index).batches())
    assert [r["id"] for r in records(batch)] == [1]
    row = records(batch)[0]
    assert (row["width"], row["height"]) == (300, 200)
    assert row["local_path"] == str((images / "1.jpg").resolve())
    assert row["byte_size"] == (images / "1.jpg").stat().st_size
    assert batch.filtered == {"too_small": 1, "bad_aspect": 1, "no_local_image": 1}
    assert [r.line for r in batch.rejects] == [4] and "not an image" in batch.rejects[0].reason
    few = CollectionFilters(min_bytes=10**9)
    assert next(MetadataFile(path, filters=few, images=index).batches()).full_rows() == []


def test_file_urls_resolve_to_local_paths(tmp_path: Path) -> None:
    Image.new("RGB", (64, 48)).save(tmp_path / "9.jpg")
    path = tmp_path / "m.tsv"
    url = (tmp_path / "9.jpg").as_uri()
    missing = (tmp_path / "nowhere" / "10.jpg").as_uri()
    path.write_text(line25(9, url=url) + "\n" + line25(10, url=missing) + "\n")
    rows, _ = rows_of(path)
    assert rows[0]["local_path"] == str(tmp_path / "9.jpg")
    assert (rows[0]["width"], rows[0]["height"]) == (64, 48)
    assert rows[1]["local_path"] is None


def test_img2dataset_folder(tmp_path: Path) -> None:
    shard = tmp_path / "out" / "00000"
    shard.mkdir(parents=True)
    sidecars: list[tuple[str, dict[str, object]]] = [
        ("000000000", {"photoid": 11, "dateuploaded": "1262304000", "title": "Bus+stop"}),
        ("000000001", {"photoid": 12, "dateuploaded": 1262304001, "marker": 1}),
        ("000000002", {"photoid": 13}),  # no upload time
        ("000000003", {"status": "failed_to_download", "photoid": 14}),
    ]
    for key, extra in sidecars:
        Image.new("RGB", (80, 60)).save(shard / f"{key}.jpg")
        sidecar = {"key": key, "status": "success", "url": "http://x/y.jpg", **extra}
        (shard / f"{key}.json").write_text(json.dumps(sidecar))
    (shard / "00000_stats.json").write_text("{}")
    reader = open_collection(tmp_path / "out")
    assert reader.layout == "img2dataset"
    (batch,) = list(reader.batches())
    assert [r["id"] for r in records(batch)] == [11]
    assert records(batch)[0]["title"] == "Bus stop"
    assert records(batch)[0]["local_path"] == str((shard / "000000000.jpg").resolve())
    assert batch.filtered == {"video": 1, "download_failed": 1}
    assert [r.line for r in batch.rejects] == [3] and "upload time" in batch.rejects[0].reason


def test_folder_without_sidecars_is_refused(tmp_path: Path) -> None:
    with pytest.raises(CollectionError, match=r"no images with \.json sidecars"):
        open_collection(tmp_path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty file"),
        (b"\n\n", "empty file"),
        (b"a\tb\tc\n" * 5, "unknown layout"),
        (b"BZh9 not really bzip2 data" * 10, "cannot decompress"),
    ],
    ids=["empty", "blank", "layout", "corrupt-bz2"],
)
def test_whole_file_errors(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "m.tsv"
    path.write_bytes(content)
    with pytest.raises(CollectionError, match=message) as info:
        detect_layout(path)
    assert str(path) in str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CollectionError, match="no such file"):
        MetadataFile(tmp_path / "absent.tsv")


def test_truncated_bz2_is_an_error_naming_the_line(tmp_path: Path) -> None:
    # bzip2 -1 works in 100 kB blocks: several blocks, cut in the last, so the first
    # lines decompress and the end is missing.
    text = "".join(line25(i + 1) + "\n" for i in range(1000))
    data = bz2.compress(text.encode(), compresslevel=1)
    path = tmp_path / "m.tsv.bz2"
    path.write_bytes(data[: len(data) * 9 // 10])
    reader = MetadataFile(path)  # the first lines decompress fine
    with pytest.raises(CollectionError, match="truncated") as info:
        for _ in reader.batches():
            pass
    assert "after line" in str(info.value)


def test_encoded_tab_stays_inside_its_field(tmp_path: Path) -> None:
    path = tmp_path / "m.tsv"
    path.write_text(line25(title="a%09b+c") + "\n")
    (row,), _ = rows_of(path)
    assert row["title"] == "a\tb c"
    assert row["description"] == "A bus, seen in town"


def mixed_lines(n: int) -> list[str]:
    """``n`` lines, every seventh malformed in a different way, a video every eleventh."""
    lines = []
    for i in range(1, n + 1):
        if i % 7 == 0:
            lines.append(line25(i, uploaded="soon") if i % 2 else line25(i)[:30])
        else:
            lines.append(line25(i, marker="1" if i % 11 == 0 else "0"))
    return lines


def read_all(path: Path, workers: int, batch_size: int) -> tuple[list, list, Counter, int]:
    reader = MetadataFile(path, workers=workers, batch_size=batch_size)
    rows: list = []
    rejects: list = []
    filtered: Counter = Counter()
    lines = 0
    for batch in reader.batches():
        rows.extend(batch.full_rows())
        rejects.extend((r.line, r.reason, r.text) for r in batch.rejects)
        filtered.update(batch.filtered)
        lines += batch.lines
    return rows, rejects, filtered, lines


@pytest.mark.parametrize("workers", [1, 2])
def test_worker_processes_give_the_same_rows_and_rejects(tmp_path: Path, workers: int) -> None:
    lines = mixed_lines(1000)
    path = tmp_path / "m.tsv"
    path.write_text("\n".join(lines))  # no newline after the last line
    # 64-line chunks: rejects on both sides of many chunk boundaries.
    in_process = read_all(path, 0, 64)
    parallel = read_all(path, workers, 64)
    assert parallel == in_process
    _rows, rejects, filtered, count = parallel
    assert count == 1000 and filtered == {"video": 1000 // 11 - 1000 // 77}
    assert [line for line, _, _ in rejects] == list(range(7, 1001, 7))
    for number, _reason, text in rejects:
        assert text == lines[number - 1]  # exact line numbers across chunk boundaries


def insert_target(db: Path, *, present: bool = False) -> InsertTarget:
    """A plain WAL database with a ``rows`` table keyed by photo id."""
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"CREATE TABLE rows ({', '.join(ROW_FIELDS)}, PRIMARY KEY (id))")
    marks = ", ".join("?" for _ in ROW_FIELDS)
    return InsertTarget(
        database=str(db),
        full_sql=f"INSERT OR IGNORE INTO rows ({', '.join(ROW_FIELDS)}) VALUES ({marks})",
        bare_sql=(
            f"INSERT OR IGNORE INTO rows ({', '.join(BARE_ROW_FIELDS)}) "
            f"VALUES ({', '.join('?' for _ in BARE_ROW_FIELDS)})"
        ),
        present_sql=(
            "SELECT id FROM rows WHERE id IN (SELECT value FROM json_each(?))" if present else None
        ),
    )


@pytest.mark.parametrize("workers", [1, 2])
def test_workers_insert_in_file_order_so_the_first_occurrence_wins(
    tmp_path: Path, workers: int
) -> None:
    # 600 lines over 30 chunks of 20; every id appears three times, 200 lines apart, with
    # a different title each time: whichever worker parses first, line order must win.
    lines = [line25(i % 200 + 1, title=f"copy+{i // 200}") for i in range(600)]
    path = tmp_path / "dups.tsv"
    path.write_text("\n".join(lines) + "\n")
    db = tmp_path / "out.db"
    target = insert_target(db)
    reader = MetadataFile(path, workers=workers, batch_size=20)
    chunks = list(reader.insert(target))
    assert [c.inserted for c in chunks] == [20] * 10 + [0] * 20
    assert sum(c.rows for c in chunks) == 600 and sum(c.lines for c in chunks) == 600
    with sqlite3.connect(db) as conn:
        titles = {r[0] for r in conn.execute("SELECT yfcc_fields FROM rows")}
        assert conn.execute("SELECT COUNT(*) FROM rows").fetchone()[0] == 200
    assert all("\tcopy+0\t" in t for t in titles)


def test_workers_report_exactly_the_ids_they_added(tmp_path: Path) -> None:
    path = tmp_path / "m.tsv"
    path.write_text("".join(line25(i) + "\n" for i in range(1, 101)))
    db = tmp_path / "out.db"
    target = insert_target(db, present=True)
    first = tmp_path / "first.tsv"
    first.write_text("".join(line25(i) + "\n" for i in range(1, 101, 3)))
    assert sum(c.inserted for c in MetadataFile(first, workers=1).insert(target)) == 34
    chunks = list(MetadataFile(path, workers=2, batch_size=16).insert(target))
    new = [i for c in chunks for i in array("q", c.new_ids)]
    assert new == [i for i in range(1, 101) if i % 3 != 1]
    assert sum(c.inserted for c in chunks) == 66


def test_inserting_needs_worker_processes(tmp_path: Path) -> None:
    path = tmp_path / "m.tsv"
    path.write_text(line25() + "\n")
    with pytest.raises(CollectionError, match="--workers 1 or more"):
        list(MetadataFile(path, workers=0).insert(insert_target(tmp_path / "out.db")))


def test_worker_processes_started_by_spawn_when_threads_run(tmp_path: Path) -> None:
    # With another thread alive, fork is unsafe and workers are spawned fresh.
    path = tmp_path / "m.tsv"
    path.write_text("\n".join(mixed_lines(300)) + "\n")
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait)
    thread.start()
    try:
        assert worker_context().get_start_method() == "spawn"
        assert read_all(path, 1, 50) == read_all(path, 0, 50)
        target = insert_target(tmp_path / "out.db")
        inserted = sum(
            c.inserted for c in MetadataFile(path, workers=2, batch_size=50).insert(target)
        )
        assert inserted == len(read_all(path, 0, 50)[0])
    finally:
        stop.set()
        thread.join()
    assert worker_context().get_start_method() in ("fork", "spawn")


def test_truncated_bz2_with_workers_is_the_same_error(tmp_path: Path) -> None:
    text = "".join(line25(i + 1) + "\n" for i in range(1000))
    data = bz2.compress(text.encode(), compresslevel=1)
    path = tmp_path / "m.tsv.bz2"
    path.write_bytes(data[: len(data) * 9 // 10])
    with pytest.raises(CollectionError, match=r"truncated.*after line") as info:
        for _ in MetadataFile(path, workers=1, batch_size=100).batches():
            pass
    assert str(path) in str(info.value)


def test_negative_workers_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "m.tsv"
    path.write_text(line25() + "\n")
    with pytest.raises(CollectionError, match="--workers -1"):
        MetadataFile(path, workers=-1)


def _large_metadata(tmp_path: Path) -> Path:
    """A metadata file just large enough to be parsed in workers by default."""
    large = tmp_path / "large.tsv"
    with large.open("w") as fh:
        line = line25() + "\n"
        fh.write(line * (IN_PROCESS_MAX_BYTES // len(line) + 1))
    return large


def test_small_files_parse_in_process_large_ones_in_workers(tmp_path: Path) -> None:
    small = tmp_path / "small.tsv"
    small.write_text(line25() + "\n")
    assert MetadataFile(small).workers == 0
    assert MetadataFile(_large_metadata(tmp_path)).workers == min(2, available_cpus())


def test_default_workers_count_the_cpus_this_process_may_use(tmp_path: Path, one_cpu: None) -> None:
    assert available_cpus() == 1
    assert MetadataFile(_large_metadata(tmp_path)).workers == 1


def test_rows_keep_the_yfcc_text_verbatim_and_decode_on_read(tmp_path: Path) -> None:
    path = tmp_path / "m.tsv"
    raw = line25(title="a%09b+c%2Bd", device="Canon+PowerShot")
    path.write_text(raw + "\n")
    (batch,) = MetadataFile(path, workers=0).batches()
    (row,) = batch.full_rows()
    stored = dict(zip(ROW_FIELDS, row, strict=True))
    fields = raw.split("\t")
    # Not decoded: the distributed text, tab-joined in layout order.
    assert stored["yfcc_fields"].split("\t") == [
        fields[i] for i in (2, 3, 4, 7, 8, 9, 10, 11, 14, 15, 17, 18, 19, 20, 21, 22, 23)
    ]
    record = decode_metadata(stored)
    assert record["title"] == "a\tb c+d" and record["device"] == "Canon PowerShot"
    assert (record["accuracy"], record["server"], record["farm"]) == (16, 1, 2)
    assert record["license_name"] == "Attribution License"
    with pytest.raises(ValueError, match="yfcc_fields holds 2 values"):
        decode_metadata({**stored, "yfcc_fields": "a\tb"})
    # Rows written without yfcc_fields (not by ingest) decode to None text.
    assert decode_metadata({"id": 5, "date_uploaded": 0})["title"] is None
