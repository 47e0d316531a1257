"""The CLEAR-layout export over DataFrames and files (analysis.export)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from analysis.errors import AnalysisError
from analysis.export import (
    BACKGROUND,
    DatasheetInfo,
    class_names_for,
    export_dataset,
    split_train_test,
)


def _collection(tmp_path: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Three buckets (0 reserved), 2 concepts + background, real files on disk."""
    images = tmp_path / "images"
    images.mkdir()
    meta_rows = []
    labeled_rows = []
    image_id = 1000
    for bucket in (0, 1, 2):
        for k in range(12):
            image_id += 1
            path = images / f"{image_id}.jpg"
            path.write_bytes(b"\xff\xd8" + image_id.to_bytes(4, "big") + b"\xff\xd9")
            meta_rows.append(
                {
                    "id": image_id,
                    "bucket": bucket,
                    "title": f"photo <b>{image_id}</b>",
                    "user_tags": "bus,city",
                    "date_uploaded": 1_200_000_000 + bucket * 10_000_000 + k,
                    "download_url": f"file://{path}",
                    "local_path": str(path),
                    "longitude": float("nan"),
                }
            )
            if bucket == 0:
                continue
            if k < 4:
                labeled_rows.append((image_id, bucket, "bus", str(path), 0.3 - k * 0.01, k))
            elif k < 7:
                labeled_rows.append((image_id, bucket, "camera", str(path), 0.2, k - 4))
            elif k < 9:
                labeled_rows.append((image_id, bucket, BACKGROUND, str(path), 0.01, None))
    metadata = pd.DataFrame(meta_rows).set_index("id")
    labeled = pd.DataFrame(
        labeled_rows, columns=["image_id", "bucket", "class_name", "path", "score", "rank"]
    )
    buckets = pd.DataFrame(
        {
            "id": [0, 1, 2],
            "reserved": [1, 0, 0],
            "start_uploaded": [1_200_000_000, 1_210_000_000, 1_220_000_000],
            "end_uploaded": [1_209_999_999, 1_219_999_999, 1_229_999_999],
        }
    )
    return labeled, metadata, buckets


def test_class_names_sorted_with_background() -> None:
    assert class_names_for(["soccer", "bus", "camera"], True) == [
        "BACKGROUND",
        "bus",
        "camera",
        "soccer",
    ]
    assert class_names_for(["soccer", "bus", BACKGROUND], False) == ["bus", "soccer"]


def test_split_is_stratified_deterministic_and_disjoint() -> None:
    ids = list(range(100, 130))
    labels = [0] * 20 + [1] * 10
    train, test = split_train_test(ids, labels, seed=3, test_fraction=0.3)
    assert sorted(train + test) == ids
    assert not set(train) & set(test)
    assert len([i for i in test if i < 120]) == 6
    assert len([i for i in test if i >= 120]) == 3
    assert split_train_test(ids, labels, 3, 0.3) == (train, test)
    assert split_train_test(ids, labels, 4, 0.3) != (train, test)


def test_export_writes_clear_layout(tmp_path: Path) -> None:
    labeled, metadata, buckets = _collection(tmp_path)
    instructions = tmp_path / "bus.md"
    instructions.write_text("# bus\nA road vehicle for many passengers.\n")
    out = tmp_path / "export"
    summary = export_dataset(
        out,
        labeled,
        metadata,
        buckets,
        concepts=["camera", "bus"],
        background=True,
        instructions={"bus": instructions},
        datasheet=DatasheetInfo(
            title="sample",
            precision=[
                {
                    "concept": "all",
                    "bucket": "all",
                    "accepted": 14,
                    "audited": 14,
                    "audit_errors": 0,
                    "certified_lower": 0.807,
                    "status": "not certified",
                }
            ],
            aggregator="ds",
            workers=7,
            answers=99,
            cost="1.23",
            dates={"exported_at": "2026-01-01T00:00:00Z"},
        ),
        seeds=(0, 1),
        test_fraction=0.25,
    )
    assert (out / "class_names.txt").read_text() == "BACKGROUND\nbus\ncamera"
    names = (out / "class_names.txt").read_text().split("\n")
    assert summary.class_names == names
    assert summary.images == 18
    assert summary.counts == {
        1: {"BACKGROUND": 2, "bus": 4, "camera": 3},
        2: {"BACKGROUND": 2, "bus": 4, "camera": 3},
    }
    # Reserved bucket 0: unlabeled only.
    assert summary.reserved_buckets == [0]
    assert not (out / "labeled_images" / "0").exists()
    assert json.loads((out / "training_folder" / "bucket_indices.json").read_text()) == ["1", "2"]
    assert summary.unlabeled == {0: 12, 1: 3, 2: 3}
    # Images and their metadata.
    first = labeled.iloc[0]
    image = out / "labeled_images" / "1" / "bus" / f"{first.image_id}.jpg"
    assert image.read_bytes() == Path(first.path).read_bytes()
    index = json.loads((out / "labeled_metadata.json").read_text())
    assert index["1"]["bus"] == "labeled_metadata/1/bus.json"
    bus1 = json.loads((out / index["1"]["bus"]).read_text())
    assert len(bus1) == 4
    record = bus1[str(first.image_id)]
    assert record["IMG_PATH"] == f"labeled_images/1/bus/{first.image_id}.jpg"
    assert record["TITLE"] == f"photo <b>{first.image_id}</b>"
    assert record["CLIP_RANK"] == 0
    assert record["LONGITUDE"] is None
    assert "LOCAL_PATH" not in record
    # Caffe-style filelists: "path label", paths relative to the export folder.
    lines = (out / "training_folder/filelists/1/all.txt").read_text().splitlines()
    assert len(lines) == 9
    for line in lines:
        path, label = line.rsplit(" ", 1)
        assert (out / path).is_file()
        assert names[int(label)] == path.split("/")[2]
    # Splits per seed.
    for seed in (0, 1):
        split = out / "training_folder" / "testset_ratio_0.25" / f"split_{seed}" / "2"
        train = (split / "train.txt").read_text().splitlines()
        test = (split / "test.txt").read_text().splitlines()
        assert len(train) + len(test) == 9
        assert not set(train) & set(test)
    # Unlabeled lists and all metadata per bucket.
    all0 = json.loads((out / "all_metadata" / "0.json").read_text())
    assert len(all0) == 12
    unl1 = (out / "unlabeled_images" / "1.txt").read_text().splitlines()
    assert len(unl1) == 3
    assert all(Path(line.split(" ", 1)[1]).is_file() for line in unl1)
    # Instructions and datasheet.
    assert (out / "instructions" / "bus.md").read_text().startswith("# bus")
    sheet = json.loads((out / "datasheet.json").read_text())
    assert sheet["counts"]["2"]["bus"] == 4
    assert sheet["workers"] == 7
    assert sheet["cost"] == "1.23"
    md = (out / "datasheet.md").read_text()
    assert "| 1 | 2 | 4 | 3 | 9 |" in md
    assert "80.70%" in md


def test_export_rerun_reuses_and_removes_stale(tmp_path: Path) -> None:
    labeled, metadata, buckets = _collection(tmp_path)
    out = tmp_path / "export"
    export_dataset(out, labeled, metadata, buckets, concepts=["bus", "camera"], background=True)
    smaller = labeled[labeled["class_name"] != "camera"]
    summary = export_dataset(
        out, smaller, metadata, buckets, concepts=["bus", "camera"], background=True
    )
    assert summary.images_reused == len(smaller)
    assert summary.stale_removed == 6
    assert not (out / "labeled_images" / "1" / "camera").exists()
    assert json.loads((out / "labeled_metadata/1/camera.json").read_text()) == {}


@pytest.mark.parametrize("mode", ["hardlink", "symlink"])
def test_export_links(tmp_path: Path, mode: str) -> None:
    labeled, metadata, buckets = _collection(tmp_path)
    out = tmp_path / "export"
    export_dataset(
        out, labeled, metadata, buckets, concepts=["bus", "camera"], background=True, mode=mode
    )
    first = labeled.iloc[0]
    target = out / "labeled_images" / "1" / "bus" / f"{first.image_id}.jpg"
    if mode == "symlink":
        assert target.is_symlink()
    else:
        assert target.samefile(first.path)


def test_export_refuses_missing_image_before_writing(tmp_path: Path) -> None:
    labeled, metadata, buckets = _collection(tmp_path)
    Path(labeled.iloc[3].path).unlink()
    out = tmp_path / "export"
    with pytest.raises(AnalysisError, match=rf"image {labeled.iloc[3].image_id}"):
        export_dataset(out, labeled, metadata, buckets, concepts=["bus", "camera"], background=True)
    assert not out.exists()


def test_export_refuses_foreign_folder_and_bad_options(tmp_path: Path) -> None:
    labeled, metadata, buckets = _collection(tmp_path)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("keep me")
    with pytest.raises(AnalysisError, match="not empty"):
        export_dataset(
            foreign, labeled, metadata, buckets, concepts=["bus", "camera"], background=True
        )
    assert (foreign / "thesis.tex").read_text() == "keep me"
    with pytest.raises(AnalysisError, match="--test-fraction"):
        export_dataset(
            tmp_path / "x",
            labeled,
            metadata,
            buckets,
            concepts=["bus", "camera"],
            background=True,
            test_fraction=1.5,
        )
    with pytest.raises(AnalysisError, match="'camera' is not a concept"):
        export_dataset(
            tmp_path / "y", labeled, metadata, buckets, concepts=["bus"], background=True
        )
    twice = pd.concat([labeled, labeled.iloc[[0]].assign(class_name="camera")])
    with pytest.raises(AnalysisError, match="more than one class"):
        export_dataset(
            tmp_path / "z", twice, metadata, buckets, concepts=["bus", "camera"], background=True
        )


def test_export_reserved_bucket_rows_are_unlabeled_only(tmp_path: Path) -> None:
    labeled, metadata, buckets = _collection(tmp_path)
    reserved_row = metadata[metadata["bucket"] == 0].iloc[[0]]
    extra = pd.DataFrame(
        {
            "image_id": [int(reserved_row.index[0])],
            "bucket": [0],
            "class_name": ["bus"],
            "path": [reserved_row["local_path"].iloc[0]],
        }
    )
    summary = export_dataset(
        tmp_path / "export",
        pd.concat([labeled, extra], ignore_index=True),
        metadata,
        buckets,
        concepts=["bus", "camera"],
        background=True,
    )
    assert summary.skipped_reserved == 1
    assert summary.unlabeled[0] == 12
    assert not (tmp_path / "export" / "labeled_images" / "0").exists()
