"""resize_image: right size, right order, same quality as a full decode."""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageChops, ImageDraw, ImageStat

from orchestrator.artifacts import LocalStore
from orchestrator.catalog import validate
from orchestrator.context import Services
from orchestrator.execution import run_plan
from orchestrator.operations import CATALOG
from orchestrator.operations.images import ResizeImageParams, resize_file


def photo(path: Path) -> Path:
    image = Image.new("RGB", (1920, 1080), (30, 60, 90))
    draw = ImageDraw.Draw(image)
    for x in range(0, 1920, 40):
        draw.line((x, 0, 1920 - x, 1080), fill=(x % 255, 200, 255 - x % 255), width=5)
    image.save(path, quality=92)
    return path


def test_draft_decoding_matches_a_full_decode(tmp_path: Path) -> None:
    source = photo(tmp_path / "photo.jpg")
    params = ResizeImageParams.model_construct(
        width=224, height=224, resample="bicubic", format="png", quality=95
    )
    resize_file(source, tmp_path / "fast.png", params)
    with Image.open(source) as full:
        reference = full.convert("RGB").resize((224, 224), Image.Resampling.BICUBIC)
    with Image.open(tmp_path / "fast.png") as fast:
        assert fast.size == (224, 224)
        diff = ImageStat.Stat(ImageChops.difference(fast.convert("RGB"), reference))
    assert max(diff.mean) < 3.0, f"mean absolute difference per channel: {diff.mean}"


def test_resize_keeps_names_and_order_and_refuses_non_images(tmp_path: Path) -> None:
    data = tmp_path / "data" / "mixed"
    data.mkdir(parents=True)
    for name in ("b.png", "a.png"):
        Image.new("RGBA", (50, 40), (1, 2, 3, 4)).save(data / name)
    document = [
        {
            "operation": "resize_image",
            "parameters": {
                "width": 10,
                "height": 8,
                "data": {
                    "operation": "dict_to_list",
                    "parameters": {
                        "data": {"operation": "import_from_local", "parameters": {"path": "mixed"}}
                    },
                },
            },
        }
    ]
    services = Services(artifacts=LocalStore(tmp_path / "art"), data_root=tmp_path / "data")
    outcome = run_plan(validate(document, CATALOG), CATALOG, services, "r1")
    assert outcome.succeeded, outcome.first_error
    resized = outcome.values["instructions[0]"]
    assert resized.type_name == "list"
    assert [item.name for item in resized.items] == ["a.png", "b.png"]
    with Image.open(resized.path_of(resized.items[0])) as image:
        assert (image.size, image.mode) == ((10, 8), "RGBA")

    (data / "notes.txt").write_text("not an image")
    outcome = run_plan(validate(document, CATALOG), CATALOG, services, "r2")
    assert "cannot read 'notes.txt' as an image" in outcome.first_error
