"""The C core, re-exported under the package (internal; use the functions of `focal`).

The extension is compiled as the top-level module ``_focal_core``, beside the
package rather than inside it.  Run from a source checkout's root, Python puts
the checkout first on sys.path, so ``import focal`` finds the source folder
./focal, which holds no compiled file; a module inside the package would then
be missing.  A top-level module is found in site-packages (or, after
``pip install -e .``, beside setup.py) whichever ``focal`` folder was imported.
Its signatures are in _core.pyi.
"""
try:
    from _focal_core import *  # noqa: F401,F403
except ModuleNotFoundError as error:  # pragma: no cover - a hint for a Python without the build
    if error.name != "_focal_core":
        raise
    raise ImportError(
        "focal's C extension (_focal_core) is not installed in this Python "
        f"({__import__('sys').executable}): run 'pip install .' in focal's source folder, "
        "or 'pip install focal'"
    ) from None
