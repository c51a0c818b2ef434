"""Regenerate hub/migrations/versions/0001 from the models (only while nothing is released).

Once a release exists, add new revisions with ``alembic revision --autogenerate`` instead.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from alembic import command

from hub.migrate import MIGRATIONS_DIR, alembic_config


def main() -> int:
    target = MIGRATIONS_DIR / "versions" / "0001_initial_schema.py"
    target.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{Path(tmp) / 'gen.db'}"
        cfg = alembic_config(url)
        command.revision(cfg, message="initial schema", autogenerate=True, rev_id="0001")
    ruff = str(Path(sys.executable).parent / "ruff")
    subprocess.run([ruff, "format", "-q", str(target)], check=False)
    subprocess.run([ruff, "check", "--fix", "-q", str(target)], check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
