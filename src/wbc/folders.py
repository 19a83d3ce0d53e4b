"""Where the images are: the default data folder, the images root below the folder given, its class folders
(named in any case), and what a folder near that layout should be given as instead."""

from __future__ import annotations

import os
from pathlib import Path

from wbc.errors import DataError
from wbc.info import CLASS_INDEX, CLASSES, SPLITS
from wbc.io import printable

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SHARED_DATA = PROJECT_ROOT.parent / "shared" / "data" / "blood-cells"


def default_data_path() -> Path | None:
    """`WBC_DATA` if set, else the shared copy beside the project, else None."""
    env = os.environ.get("WBC_DATA")
    if env:
        return Path(env)
    return SHARED_DATA if SHARED_DATA.is_dir() else None


def kept_data_folder(path: str | Path | None) -> str | None:
    """The data folder a run keeps in its config: the one given, else the default (WBC_DATA, or the shared
    copy) as it is now, made absolute, so that its export, evaluation or resume finds the same images from
    any folder and whatever WBC_DATA says then; None where there is none."""
    path = path if path is not None else default_data_path()
    return None if path is None else os.path.abspath(os.path.expanduser(path))


# Where an images root may lie below the folder given: the folder itself (or the data set's
# dataset2-master), this project's copy, and the Kaggle zip, which nests dataset2-master twice.
# Nothing deeper: a search of any depth picks unrelated folders (a test fixture under /tmp).
IMAGES_ROOT_LAYOUTS = (".", "images", "dataset2-master/images", "dataset2-master/dataset2-master/images")


def check_folder(p: Path) -> None:
    """DataError, naming `p`, unless it is a folder that can be read."""
    try:
        if p.is_dir():
            return
        exists = p.exists()
    except OSError as e:
        raise DataError(f"{p}: cannot be read ({e.strerror or e})") from e
    raise DataError(f"{p}: is a file, not a folder" if exists else f"{p}: no such folder")


def class_folders(folder: Path) -> tuple[dict[str, Path], list[str]]:
    """The class folders under `folder` by class name, their names matched regardless of case
    (EOSINOPHIL, Eosinophil, eosinophil), and the names of the other folders there. OSError where
    `folder` cannot be listed."""
    found: dict[str, list[Path]] = {}
    unknown: list[str] = []
    for p in sorted(folder.iterdir()):
        if p.is_symlink() and not p.exists() and p.name.upper() in CLASS_INDEX:  # a whole class gone without a word
            raise DataError(f"{printable(str(p))}: a class folder that is a link to nothing (its target is gone, or "
                            "it loops); restore or remove it")
        if not p.is_dir() or p.name == "__MACOSX" or p.name.startswith("."):
            continue
        if p.name.upper() in CLASS_INDEX:
            found.setdefault(p.name.upper(), []).append(p)
        else:
            unknown.append(p.name)
    twice = [ps for ps in found.values() if len(ps) > 1]
    if twice:
        names = "; ".join(" and ".join(p.name for p in ps) for ps in twice)
        raise DataError(f"{folder}: class folders that differ only in case ({names}); merge them into one")
    return {c: ps[0] for c, ps in found.items()}, unknown


def _is_images_root(p: Path) -> bool:
    """Whether `p` holds a split folder with a class folder in it; OSError where it cannot be read."""
    return p.is_dir() and any((p / s).is_dir() and class_folders(p / s)[0] for s in SPLITS)


def find_images_root(path: str | Path | None = None) -> Path:
    """The folder holding TRAIN/TEST/TEST_SIMPLE: the folder given, or one of `IMAGES_ROOT_LAYOUTS`
    below it.

    Accepts this project's flattened copy (`blood-cells/dataset2-master/images`), the Kaggle zip's
    nested layout (`blood-cells/dataset2-master/dataset2-master/images`), a dataset2-master folder of
    either and the images folder itself.
    """
    source = ""  # a path from the environment is named as such: the user may not remember setting it
    if path is None:
        path = default_data_path()
        if path is None:
            raise DataError(
                f"no data set found: WBC_DATA is not set and {SHARED_DATA} (beside the project, not the current "
                "folder) does not exist; pass --data PATH or set WBC_DATA to the folder of the Kaggle "
                "data set paultimothymooney/blood-cells (`wbc data download` fetches it)"
            )
        source = " (from the environment variable WBC_DATA)" if os.environ.get("WBC_DATA") else ""
    base = Path(os.path.expanduser(path))  # Path's raised RuntimeError for an unknown ~user
    try:
        check_folder(base)
    except DataError as e:
        raise DataError(f"{e}{source}") from e
    unreadable: list[str] = []
    for p in (base / layout for layout in IMAGES_ROOT_LAYOUTS):
        try:
            if _is_images_root(p):
                return p
        except OSError as e:  # an unreadable folder is skipped, and named if nothing is found
            unreadable.append(str(e.filename or p))
    looked = ", ".join(str(base / layout) for layout in IMAGES_ROOT_LAYOUTS)
    cannot = f"; cannot read {', '.join(unreadable)}" if unreadable else ""
    raise DataError(
        f"{base}: no folder with TRAIN, TEST or TEST_SIMPLE holding class folders ({', '.join(CLASSES)}) "
        f"was found; looked in {looked}{cannot}{source}{_layout_hint(base)}"
    )


def _layout_hint(base: Path) -> str:
    """What `base` holds that is near the layout, said so that a user's own folder can be put right: split
    folders named in lower case, class folders with no split folder above them, class names in the plural."""
    if base.name.upper() in SPLITS:
        return f". {base} is a split folder itself: give the folder that holds it, {base.parent}"
    if base.name.upper() in CLASSES and base.parent.name.upper() in SPLITS:
        return (f". {base} is a class folder of the split {base.parent.name}: give the folder that holds the "
                f"splits, {base.parent.parent}")
    try:
        names = [p.name for p in base.iterdir() if p.is_dir()]
    except OSError:
        return ""
    splits = [n for n in names if n.upper() in SPLITS and n not in SPLITS]
    if splits:
        return f". Split folders are named in capitals: rename {', '.join(splits)} to {', '.join(n.upper() for n in splits)}"
    # One's own zip unpacked into a folder of its name, as Kaggle's is: the data one level down
    inner = [n for n in names if any((base / n / split).is_dir() for split in SPLITS)]
    if len(inner) == 1:
        return f". {base / inner[0]} holds the split folders: give it as --data {base / inner[0]}"
    near = _near_class_names(names)
    if near:
        return (f". {base} holds class folders ({', '.join(sorted(near))}) itself: to evaluate them, give it as "
                f"--folder {base}; to train, put them in a TRAIN folder (and the images to test on in a TEST folder "
                f"of the same class folders), e.g. {base / 'TRAIN' / CLASSES[0]}, each named as a class in the "
                f"singular ({', '.join(CLASSES)}, in any case)")
    for split in (n for n in names if n in SPLITS):  # a split whose class folders are misnamed (in the plural)
        if plural := _plural_class_folders(base / split):
            return (f". {base / split} holds {', '.join(plural)}: name class folders in the singular "
                    f"({', '.join(CLASSES)}, in any case)")
    return ""


def class_folders_hint(folder: Path, others: list[str], beside_classes: bool = False) -> str:
    """What the unknown folders in a folder of class folders say of it: a class's name with a blank before or after
    it, split folders (a data folder, given as --folder), the data set's own folders above its images, or class names
    in the plural."""
    # "Eosinophil " (a space typed after the name, or left by a copy): the message named it as a fifth type to move out
    spaced = [n for n in others if n != n.strip() and _near_class_names([n.strip()])]
    if spaced:
        return "".join(f". '{printable(n)}' has a space or another blank before or after its name: rename it "
                       f"{printable(_singular(n.strip()))}" for n in spaced)
    splits = [n for n in others if n.upper() in SPLITS]
    if splits:
        # In lower case, --data would refuse them next: the renaming first, in the same words
        lower = [n for n in splits if n not in SPLITS]
        rename = (f" (rename {', '.join(lower)} to {', '.join(n.upper() for n in lower)} first: split folders are "
                  "named in capitals)" if lower else "")
        return (f". {folder} holds split folders ({', '.join(splits)}): it is a data folder, whose splits hold the "
                f"class folders; give it as --data {folder}, or one split as --folder {folder / splits[0].upper()}"
                + rename)
    try:
        root = find_images_root(folder)
    except DataError:
        if not any(n.upper() not in CLASS_INDEX for n in _near_class_names(others)):
            # A fifth type (BASOPHIL) beside the four's folders: the model learns the four alone. Not where no class
            # folder is there (the data set's own dataset-master, a folder of dated photos): no cells' folders.
            return (f". The model learns these four types only: move {', '.join(others)} out of {folder} (images of "
                    "other cells cannot be learnt as one of them)") if beside_classes else ""
        # The other splits beside it, at once: fixed split by split, the next command found the next.
        also = [f"{split}: {', '.join(more)}" for split in SPLITS if split != folder.name
                if (more := _plural_class_folders(folder.parent / split))]
        return (f". Name class folders in the singular ({', '.join(CLASSES)}, in any case)"
                + (f"; so too in {'; '.join(also)}" if also else ""))
    return (f". {folder} holds a data set (its images are in {root}): give it as --data {folder}, or one split as "
            f"--folder {root / 'TEST'}")


def _singular(name: str) -> str:
    """A class folder's name (one of `_near_class_names`) in the singular, its case kept: Eosinophils -> Eosinophil."""
    return name if name.upper() in CLASS_INDEX else name.rstrip("sS")


def _near_class_names(names: list[str]) -> list[str]:
    """The folder names among `names` that are a class's, in any case or in the plural."""
    return [n for n in names if n.upper() in CLASS_INDEX or n.upper().rstrip("S") in CLASS_INDEX]


def _plural_class_folders(folder: Path) -> list[str]:
    """The folders in `folder` named as a class in the plural, sorted ([] where it cannot be listed)."""
    try:
        names = [p.name for p in folder.iterdir() if p.is_dir()]
    except OSError:
        return []
    return sorted(n for n in _near_class_names(names) if n.upper() not in CLASS_INDEX)
