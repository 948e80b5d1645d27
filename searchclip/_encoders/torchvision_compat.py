"""Keeping a torchvision whose C extension cannot load from breaking transformers and OpenCLIP.

PyPI's torchvision wheels for Linux are CUDA builds; beside the CPU build of torch (how
searchclip is installed without a GPU) their C extension fails to load, and importing
torchvision then raises (its ``_meta_registrations`` registers kernels for the ``nms`` operators
the missing extension would have declared). transformers imports torchvision whenever it is
installed, so every image processor fails to import, and OpenCLIP needs torchvision's
transforms. Those are pure Python: declaring the two operators' schemas (what the extension
would have done) lets torchvision import with its transforms working; calling its detection
operators still fails, and nothing in searchclip calls them.

Importing this module is light: :func:`install_import_hook` (run by ``searchclip._encoders``)
only adds a finder to ``sys.meta_path`` that runs the fix, importing torch, when torchvision is
first imported, by whatever imports it (transformers, open_clip, a test).
"""

from __future__ import annotations

import importlib.util
import sys
import threading

_LOCK = threading.RLock()  # find_spec below may run the import hook, which calls back in
_checked = False


def make_torchvision_importable() -> None:
    """Declare torchvision's ``nms`` operator schemas when torchvision is installed but its C
    extension cannot load; a no-op otherwise (no torchvision, or a working one). Idempotent;
    call it before transformers' image processors or open_clip are imported."""
    global _checked
    uninstall_import_hook()
    with _LOCK:
        if _checked:
            return
        _checked = True
        spec = importlib.util.find_spec("torchvision")
        if spec is None or not spec.submodule_search_locations:
            return
        import torch

        if _extension_loads(spec.submodule_search_locations[0]):
            return
        try:
            library = torch.library.Library("torchvision", "DEF")
            library.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
            library.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        except RuntimeError:  # declared already (torchvision imported some other way)
            return
        _LIBRARIES.append(library)  # a Library unregisters its definitions when collected


_LIBRARIES: list = []


def _extension_loads(package_dir: str) -> bool:
    """Whether torchvision's compiled extension (``_C``) loads beside this torch."""
    import glob

    import torch

    candidates = glob.glob(f"{package_dir}/_C*.so") + glob.glob(f"{package_dir}/_C*.pyd")
    if not candidates:
        return False
    try:
        torch.ops.load_library(candidates[0])
    except (OSError, RuntimeError):
        return False
    return True


class _BeforeTorchvision:
    """A meta path finder that finds nothing: it makes torchvision importable just before the
    real finders import it, then steps aside."""

    def find_spec(self, name, path=None, target=None):
        if name == "torchvision":
            uninstall_import_hook()
            make_torchvision_importable()
        return None


_HOOK = _BeforeTorchvision()


def install_import_hook() -> None:
    """Run :func:`make_torchvision_importable` before torchvision's first import (a no-op when
    it was imported already)."""
    if "torchvision" not in sys.modules and _HOOK not in sys.meta_path:
        sys.meta_path.insert(0, _HOOK)


def uninstall_import_hook() -> None:
    if _HOOK in sys.meta_path:
        sys.meta_path.remove(_HOOK)
