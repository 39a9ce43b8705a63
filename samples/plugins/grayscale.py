"""grayscale: a plug-in operation written as a plain `step_fn`.

Its annotations are its parameters (`data` is fed by a nested instruction,
`keep_alpha` is a literal) and its return annotation its output type; the
file's name is the operation's name.
"""

from __future__ import annotations

from PIL import Image, UnidentifiedImageError

from orchestrator.catalog.values import Dataset
from orchestrator.context import OperationContext
from orchestrator.errors import OperationError


def step_fn(data: Dataset, ctx: OperationContext, keep_alpha: bool = False) -> Dataset:
    """Convert every image of a data set to shades of grey, keeping names and order."""
    writer = ctx.dataset_writer()
    for done, item in enumerate(data.items, 1):
        ctx.check_canceled()
        try:
            with Image.open(data.path_of(item)) as image:
                mode = "LA" if keep_alpha and "A" in image.getbands() else "L"
                image.convert(mode).save(writer.path_for(item.name), image.format)
        except (UnidentifiedImageError, OSError) as exc:
            raise OperationError(f"cannot read {item.name!r} as an image: {exc}") from exc
        writer.add(item.name, item.media_type)
        ctx.progress(done, len(data.items))
    return writer.finish(order=[item.name for item in data.items])
