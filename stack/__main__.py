"""`make run`: start the embedded stack on loopback until Ctrl-C or SIGTERM.

Environment: CONSTELLATION_VAR (work folder, default `var`), CONSTELLATION_DATA_ROOT
(default VAR/data), CONSTELLATION_ARTIFACT_ROOT (default VAR/artifacts),
CONSTELLATION_API_PORT, CONSTELLATION_DAGSTER_PORT, CONSTELLATION_API_KEYS,
CONSTELLATION_RUN_LAUNCHER (`warm`, the default: Redis and a warm Celery run worker;
`default`: Dagster's DefaultRunLauncher, a new process per run).
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import time
from pathlib import Path
from types import FrameType

from stack.instance import Launcher
from stack.processes import STOP_SIGNALS, Stack

EXAMPLE_COLOURS = [(200, 60, 40), (40, 160, 80), (50, 90, 200), (230, 200, 40)]
FIRE_PHOTOS = "fire-photos"  # the fire-detection-local and compare-models samples' photos
FIRE_LABELS = "fire-labels.csv"  # their true labels (compare-models' truth_file)
FIRE_PHOTO_COUNT = 20
SAMPLES = Path(__file__).resolve().parent.parent / "samples"  # the sample plug-in and notebook


def seed_examples(data_root: Path) -> None:
    """What the sample pipelines read, unless it is there: a few small JPEGs under
    data/examples, and camera-size fire / no-fire photos (mixed sizes) with their labels."""
    from PIL import Image, ImageDraw

    from stack.demo_photos import make_photos

    folder = data_root / "examples"
    if not folder.exists():
        folder.mkdir(parents=True)
        for index, colour in enumerate(EXAMPLE_COLOURS):
            image = Image.new("RGB", (1280, 720), colour)
            ImageDraw.Draw(image).ellipse((400, 160, 880, 560), fill=(255, 255, 255))
            image.save(folder / f"photo-{index}.jpg", quality=90)
    if not (data_root / FIRE_PHOTOS).exists():
        make_photos(data_root / FIRE_PHOTOS, FIRE_PHOTO_COUNT, 7, data_root / FIRE_LABELS)


def port_in_use(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def stop_once(signum: int, frame: FrameType | None) -> None:
    """The first SIGINT or SIGTERM stops the stack; the ones after it are ignored.

    A signal to `make run`'s process group reaches this process more than once;
    a second KeyboardInterrupt inside Stack.stop() would leave services running.
    """
    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
    raise KeyboardInterrupt


def install_stop_handlers() -> None:
    for sig in STOP_SIGNALS:
        signal.signal(sig, stop_once)


def main() -> int:
    workdir = Path(os.environ.get("CONSTELLATION_VAR", "var"))
    api_port = int(os.environ.get("CONSTELLATION_API_PORT", "8000"))
    dagster_port = int(os.environ.get("CONSTELLATION_DAGSTER_PORT", "3000"))
    for port in (api_port, dagster_port):
        if port_in_use(port):
            print(
                f"port {port} on 127.0.0.1 is taken; set CONSTELLATION_API_PORT / "
                "CONSTELLATION_DAGSTER_PORT to other ports",
                file=sys.stderr,
            )
            return 1
    keys = [k for k in os.environ.get("CONSTELLATION_API_KEYS", "").split(",") if k]
    data_root = Path(os.environ.get("CONSTELLATION_DATA_ROOT", workdir / "data"))
    artifact_root = Path(os.environ.get("CONSTELLATION_ARTIFACT_ROOT", workdir / "artifacts"))
    choice = os.environ.get("CONSTELLATION_RUN_LAUNCHER", Launcher.WARM.value)
    if choice not in set(Launcher):
        print(
            f"CONSTELLATION_RUN_LAUNCHER must be one of {[m.value for m in Launcher]}, "
            f"not {choice!r}",
            file=sys.stderr,
        )
        return 1
    stack = Stack(
        workdir,
        dagster_port=dagster_port,
        api_port=api_port,
        api_keys=keys,
        data_root=data_root,
        artifact_root=artifact_root,
        launcher=Launcher(choice),
        env={  # the samples' plug-in and notebook, unless other folders are set
            "CONSTELLATION_PLUGINS_DIR": os.environ.get(
                "CONSTELLATION_PLUGINS_DIR", str(SAMPLES / "plugins")
            ),
            "CONSTELLATION_NOTEBOOKS_DIR": os.environ.get(
                "CONSTELLATION_NOTEBOOKS_DIR", str(SAMPLES / "notebooks")
            ),
        },
    )
    install_stop_handlers()
    seed_examples(stack.data_root)
    try:
        workers = "warm run worker on Redis" if stack.broker else "DefaultRunLauncher"
        print(
            f"starting Dagster (webserver + daemon, SQLite, {workers}) and the API ...", flush=True
        )
        stack.start()
        print(
            f"\n  Dagster UI  {stack.dagster_url}\n"
            f"  API         {stack.api_url}   (docs: {stack.api_url}/docs)\n"
            f"  data root   {stack.data_root}\n"
            f"  plug-ins    {stack.extra_env['CONSTELLATION_PLUGINS_DIR']}\n"
            f"  notebooks   {stack.extra_env['CONSTELLATION_NOTEBOOKS_DIR']}\n"
            f"  artifacts   {stack.artifact_root}\n"
            f"  logs        {stack.logs}\n",
            flush=True,
        )
        if not keys:
            print(
                "  auth        OPEN ACCESS for local development "
                "(set CONSTELLATION_API_KEYS to require API keys)\n",
                flush=True,
            )
        print("Ctrl-C (or SIGTERM) stops everything.", flush=True)
        while all(s.process and s.process.poll() is None for s in stack.services.values()):
            time.sleep(1)
        print("a service exited; see the logs above. Stopping.", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nstopping ...", flush=True)
        return 0
    finally:
        stack.stop()


if __name__ == "__main__":
    sys.exit(main())
