"""Run the ``searchclip`` CLI in a fresh Python process and prove it never imported torch or
transformers (the paths that must stay light: text queries, indexing into an int8 index)."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def run_without_torch(*args: str) -> subprocess.CompletedProcess:
    """``searchclip ARGS`` in a subprocess that fails if torch or transformers got imported."""
    script = textwrap.dedent(
        f"""
        import sys
        sys.argv = ["searchclip", *{list(args)!r}]
        from searchclip._cli import main
        try:
            main()
        except SystemExit as exit:
            assert not exit.code, exit.code
        heavy = sorted(name for name in ("torch", "transformers") if name in sys.modules)
        assert not heavy, heavy
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return result
