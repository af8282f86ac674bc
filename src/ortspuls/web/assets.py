"""The dashboard's static files: our own CSS and icons, and the bundled browser code.

The bundle (`static/dist/`, built from `frontend/` with npm: uPlot, Leaflet and our scripts) is
never committed. `ensure_assets()` builds it when it is missing or older than its sources and
`npm` is on the PATH; `ortspuls serve` calls it once before the server starts. Without a bundle
the pages still work: they show tables instead of charts and a list instead of the map.
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import logging
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import orjson
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"
DIST_DIR = STATIC_DIR / "dist"
MANIFEST = DIST_DIR / "manifest.json"
# In a source checkout (the editable install of the README) the npm project sits beside src/.
FRONTEND_DIR = Path(__file__).resolve().parents[3] / "frontend"
BUILD_TIMEOUT_S = 600


def _newest_source_mtime(frontend: Path) -> float:
    paths = [frontend / "package.json", frontend / "package-lock.json", frontend / "build.mjs"]
    paths += [p for p in (frontend / "src").rglob("*") if p.is_file()]
    return max((p.stat().st_mtime for p in paths if p.exists()), default=0.0)


def assets_current(frontend: Path = FRONTEND_DIR, manifest: Path | None = None) -> bool:
    """True when a complete bundle exists and no source is newer than it."""
    manifest = manifest or MANIFEST
    if not manifest.exists():
        return False
    if not frontend.is_dir():  # an installed package without sources: use what is there
        return True
    return manifest.stat().st_mtime >= _newest_source_mtime(frontend)


def ensure_assets(say: Callable[[str], None] = print, frontend: Path = FRONTEND_DIR) -> bool:
    """Build the browser bundle if it is missing or stale; True if a current bundle exists.

    Never raises: a failed build leaves the pages on their table and list fallbacks, with a
    message saying how to build by hand.
    """
    if assets_current(frontend):
        return True
    if not (frontend / "package.json").exists():
        say("ortspuls: the dashboard's browser bundle is missing and there is no frontend/ "
            "folder to build it from; pages show tables instead of charts and map.")
        return False
    npm = shutil.which("npm")
    if npm is None:
        say("ortspuls: npm was not found, so the dashboard's charts and map are off (pages show "
            "tables instead). Install Node.js 20 with npm and restart, or run "
            f"`npm ci && npm run build` in {frontend}.")
        return False
    # Several servers (or test processes) may start at once: one builds, the others wait. The
    # lock file stays (removing it would let a late starter lock a fresh inode and build twice).
    with (frontend / ".build.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if assets_current(frontend):
                return True
            say(f"ortspuls: building the dashboard's browser bundle once (npm ci && npm run "
                f"build in {frontend}); this takes a few seconds …")
            for args in ([npm, "ci", "--no-audit", "--no-fund"], [npm, "run", "build"]):
                try:
                    result = subprocess.run(args, cwd=frontend, capture_output=True, text=True,
                                            timeout=BUILD_TIMEOUT_S, check=False)
                except (OSError, subprocess.TimeoutExpired) as exc:
                    say(f"ortspuls: `{' '.join(args[1:])}` failed ({exc}); pages show tables "
                        "instead of charts and map.")
                    return False
                if result.returncode != 0:
                    tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-15:])
                    say(f"ortspuls: `npm {' '.join(args[1:])}` failed in {frontend}; pages show "
                        f"tables instead of charts and map. Its last output:\n{tail}")
                    return False
            say("ortspuls: browser bundle built.")
            return True
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@functools.cache
def _manifest(mtime: float) -> dict[str, str]:
    try:
        return orjson.loads(MANIFEST.read_bytes()).get("files", {})
    except (OSError, orjson.JSONDecodeError):
        return {}


def bundle_files() -> dict[str, str]:
    """File name -> content hash of the built bundle; empty when there is none."""
    try:
        mtime = MANIFEST.stat().st_mtime
    except OSError:
        return {}
    return _manifest(mtime)


@functools.cache
def _own_file_hash(name: str, mtime: float) -> str:
    return hashlib.sha256((STATIC_DIR / name).read_bytes()).hexdigest()[:12]


def static_version(name: str) -> str:
    """A content hash for cache busting of one of our own static files."""
    path = STATIC_DIR / name
    return _own_file_hash(name, path.stat().st_mtime)


class VersionedStaticFiles(StaticFiles):
    """Static files; a URL with a content hash (`?v=…`) may be cached for a year."""

    async def get_response(self, path: str, scope: Scope):
        response = await super().get_response(path, scope)
        if response.status_code == 200:
            versioned = b"v=" in scope.get("query_string", b"")
            response.headers["Cache-Control"] = ("public, max-age=31536000, immutable"
                                                 if versioned else "no-cache")
        return response
