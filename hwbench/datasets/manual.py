"""Datasets with no public copy, supplied by the user as one folder of images per class.

The Amharic set of the multiscript paper has 77 classes in its 11 x 7 order.
A class folder is named by its index (``0``-``76``, leading zeros allowed) or
by its Ethiopic character (``ለ``). The images are copied into
``data/raw/amharic/classes/`` (nothing there is ever deleted) and listed in a
manifest for the generic preprocess rule. Writers are unknown unless the class
folders have one sub-folder per writer.
"""

from __future__ import annotations

import logging
import re
import shutil
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from hwbench.datasets.common import write_manifest
from hwbench.datasets.vocab import AMHARIC77

log = logging.getLogger("hwbench.datasets")

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".gif", ".pgm"}


class ManualDatasetError(ValueError):
    """The user's folder is missing classes or holds unreadable files; says which."""


def class_of(folder_name: str, names: list[str]) -> int | None:
    """Class index of a folder named by index or by character, else None."""
    if re.fullmatch(r"\d+", folder_name):
        index = int(folder_name)
        return index if index < len(names) else None
    return names.index(folder_name) if folder_name in names else None


def scan_class_folders(root: Path, names: list[str], dataset: str, config_key: str):
    """{class index: [image paths]} after checking every class is present and readable."""
    if not root.is_dir():
        raise ManualDatasetError(
            f"{dataset}: folder {root} not found. This dataset has no public copy: create it with "
            f"one sub-folder per class (named 0-{len(names) - 1} or by the character) holding that "
            f"class's images, or point the config key {config_key} at such a folder."
        )
    found: dict[int, list[Path]] = {}
    unknown, problems = [], []
    for sub in sorted(p for p in root.iterdir() if p.is_dir()):
        index = class_of(sub.name, names)
        if index is None:
            unknown.append(sub.name)
            continue
        if index in found:
            problems.append(f"class {index} ({names[index]}) appears twice (folder {sub.name})")
            continue
        images = sorted(p for p in sub.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        found[index] = images
    missing = [i for i in range(len(names)) if i not in found]
    empty = [i for i in sorted(found) if not found[i]]
    if missing:
        problems.append(
            f"{len(missing)} of {len(names)} classes have no folder: "
            + ", ".join(f"{i} ({names[i]})" for i in missing)
        )
    if empty:
        problems.append(
            "class folders without images: " + ", ".join(f"{i} ({names[i]})" for i in empty)
        )
    if unknown:
        problems.append(f"folders that name no class (rename or remove them): {unknown}")
    for images in found.values():
        for path in images:
            try:
                with Image.open(path) as img:
                    img.verify()
            except (UnidentifiedImageError, OSError, SyntaxError) as exc:
                problems.append(f"{path}: not a readable image ({exc})")
    if problems:
        raise ManualDatasetError(
            f"{dataset}: {root} (config key {config_key}) is incomplete:\n  "
            + "\n  ".join(problems)
        )
    return found


def build_amharic_manifest(files: dict, raw: Path, options: dict | None = None):
    """Validate the user's class folders, copy them into data/raw/amharic, write the manifest."""
    options = options or {}
    raw = Path(raw)
    store = raw / "classes"
    source = Path(options["local_copy"]).expanduser() if options.get("local_copy") else store
    found = scan_class_folders(source, AMHARIC77, "amharic", "data.amharic.local_copy")
    rows = []
    for index, images in sorted(found.items()):
        class_dir = next(
            p for p in source.iterdir() if p.is_dir() and class_of(p.name, AMHARIC77) == index
        )
        for path in images:
            rel_in_class = path.relative_to(class_dir)
            target = store / f"{index:02d}" / rel_in_class
            if source != store:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, target)
            else:
                target = path
            writer = rel_in_class.parts[0] if len(rel_in_class.parts) > 1 else ""
            rows.append(
                {
                    "file": target.relative_to(raw).as_posix(),
                    "label": index,
                    "label_name": AMHARIC77[index],
                    "script": "ethiopic",
                    "writer": writer,
                    "pen": "",
                    "source_split": "",
                }
            )
    frame = write_manifest(rows, raw / "manifest.csv")
    log.info("amharic: %d images in %d classes", len(frame), frame.label.nunique())
    return frame
