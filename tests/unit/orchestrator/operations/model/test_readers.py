"""Items read as tensor rows: by media type, one JSON run per request, refusals by name."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from orchestrator.catalog import DataItem
from orchestrator.errors import OperationError
from orchestrator.operations.model.batching import ItemBlock, Layout, RunBlock
from orchestrator.operations.model.readers import read_blocks, read_rows


def item(path: Path, media_type: str = "application/octet-stream") -> DataItem:
    return DataItem(name=path.name, path=path.name, size=path.stat().st_size, media_type=media_type)


def test_items_become_rows_by_media_type(tmp_path):
    Image.new("RGB", (5, 3), (255, 0, 0)).save(tmp_path / "red.png")
    (tmp_path / "row.json").write_text("[1, 2.5, 3]")
    (tmp_path / "table.json").write_text("[[1, 2, 3], [4, 5, 6]]")
    (tmp_path / "t.csv").write_text("a,b,c\n1,2,3\n\n4,5,6\n")
    np.save(tmp_path / "r.npy", np.arange(3, dtype=np.float32))

    image = read_rows(tmp_path / "red.png", item(tmp_path / "red.png", "image/png"), "auto")
    assert image.rows.shape == (1, 3, 5, 3) and image.rows.dtype == np.uint8
    assert image.layout is Layout.ROW
    assert image.rows[0, 0, 0].tolist() == [255, 0, 0]
    as_float = read_rows(tmp_path / "red.png", item(tmp_path / "red.png", "image/png"), "FP32")
    assert as_float.rows.dtype == np.float32 and as_float.rows.max() == 255.0

    row = read_rows(tmp_path / "row.json", item(tmp_path / "row.json"), "auto")
    assert row.rows.tolist() == [[1, 2.5, 3]] and row.rows.dtype == np.float64
    assert row.layout is Layout.ROW
    table = read_rows(tmp_path / "table.json", item(tmp_path / "table.json"), "auto")
    assert table.rows.shape == (2, 3) and table.layout is Layout.TABLE
    csv = read_rows(tmp_path / "t.csv", item(tmp_path / "t.csv", "text/csv"), "auto")
    assert csv.rows.tolist() == [[1, 2, 3], [4, 5, 6]] and csv.layout is Layout.TABLE
    npy = read_rows(tmp_path / "r.npy", item(tmp_path / "r.npy"), "auto")
    assert npy.rows.dtype == np.float32 and npy.rows.shape == (1, 3)

    # the media type decides before the suffix: a CSV export named .txt, JSON named .dat
    (tmp_path / "export.txt").write_text("1,2\n3,4\n")
    export = read_rows(tmp_path / "export.txt", item(tmp_path / "export.txt", "text/csv"), "auto")
    assert export.rows.tolist() == [[1, 2], [3, 4]] and export.layout is Layout.TABLE
    (tmp_path / "row.dat").write_text("[5, 6]")
    dat = read_rows(tmp_path / "row.dat", item(tmp_path / "row.dat", "application/json"), "auto")
    assert dat.rows.tolist() == [[5, 6]]


@pytest.mark.parametrize(
    ("name", "content", "error"),
    [
        ("ragged.json", "[[1, 2], [3]]", "is not numeric rows"),
        ("words.json", '["a", "b"]', "is not numeric rows"),
        ("cube.json", "[[[1]]]", "has 3 dimensions"),
        ("notes.txt", "hello", "expected an image, .json, .csv or .npy"),
    ],
)
def test_items_that_are_not_rows_are_refused_by_name(tmp_path, name, content, error):
    (tmp_path / name).write_text(content)
    with pytest.raises(OperationError, match=error) as caught:
        read_rows(tmp_path / name, item(tmp_path / name, "text/plain"), "auto")
    assert name in str(caught.value)


def json_items(folder: Path, contents: list[str]) -> list[DataItem]:
    for index, content in enumerate(contents):
        (folder / f"{index}.json").write_text(content)
    return [item(folder / f"{index}.json", "application/json") for index in range(len(contents))]


def test_one_row_json_files_are_read_as_one_run_with_each_files_own_row(tmp_path):
    items = json_items(tmp_path, ["[1, 2]", " [3.5,4]\n", "[5, NaN]", "[1e3, -0]"])
    [block] = read_blocks(str(tmp_path), items, first=10, group=0, datatype="auto")
    assert isinstance(block, RunBlock) and block.first == 10 and block.rows.dtype == np.float64
    assert block.rows[:, 0].tolist() == [1, 3.5, 5, 1000] and block.rows[1, 1] == 4
    [as_float] = read_blocks(str(tmp_path), items, first=0, group=0, datatype="FP32")
    assert as_float.rows.dtype == np.float32 and as_float.rows.shape == (4, 2)


@pytest.mark.parametrize(
    ("contents", "error"),
    [
        # joined, these two would read "[[1,2],[3,4]]": two rows, but neither file is one
        (["[1, 2], [3", "4]"], "item '0.json' is not numeric rows"),
        # each starts with "[" and ends with "]", but the first holds two rows
        (["[1, 2], [3, 4]", "[5, 6]", "[7, 8]"], "item '0.json' is not numeric rows"),
        (["[1, 2]", '["a", 2]'], "item '1.json' is not numeric rows"),
        (["[1, 2]", "[[3, 4]]", "[5, 6]"], None),  # a table among rows: read item by item
    ],
)
def test_json_files_that_are_not_one_row_each_are_read_item_by_item(tmp_path, contents, error):
    items = json_items(tmp_path, contents)
    if error:
        with pytest.raises(OperationError, match=error):
            read_blocks(str(tmp_path), items, first=0, group=0, datatype="auto")
        return
    blocks = read_blocks(str(tmp_path), items, first=0, group=0, datatype="auto")
    assert [(type(b), b.first, b.rows.tolist(), b.layout) for b in blocks] == [
        (ItemBlock, 0, [[1, 2]], Layout.ROW),
        (ItemBlock, 1, [[3, 4]], Layout.TABLE),
        (ItemBlock, 2, [[5, 6]], Layout.ROW),
    ]


def test_a_file_larger_than_its_manifest_says_is_read_whole(tmp_path):
    row = list(range(300_000))  # ~2 MB of JSON: more than one read
    (tmp_path / "big.json").write_text(json.dumps(row))
    stale = DataItem(name="big.json", path="big.json", size=3, media_type="application/json")
    [block] = read_blocks(str(tmp_path), [stale], first=0, group=0, datatype="auto")
    assert block.rows.tolist() == [row]


def test_an_item_missing_from_its_folder_is_named(tmp_path):
    items = json_items(tmp_path, ["[1, 2]", "[3, 4]"])
    (tmp_path / "1.json").unlink()
    with pytest.raises(OperationError, match=r"cannot read item '1\.json': No such file"):
        read_blocks(str(tmp_path), items, first=0, group=0, datatype="auto")
