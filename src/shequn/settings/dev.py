"""Local development and `make demo`: DEBUG on, a fixed dev secret, SQLite under var/."""

import os

from . import DEV_SECRET_KEY

os.environ.setdefault("DEBUG", "1")
os.environ.setdefault("SHEQUN_SMS_BACKEND", "display")  # no real SMS in the demo
os.environ.setdefault("SECRET_KEY", DEV_SECRET_KEY)

from .base import *  # noqa: E402,F403
from .base import (  # noqa: E402
    SECRET_KEY,
    STATIC_ROOT,  # noqa: E402
    VAR_DIR,
)

VAR_DIR.mkdir(parents=True, exist_ok=True)
if not SECRET_KEY:  # pragma: no cover - set above
    raise RuntimeError("SECRET_KEY missing")

STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # whitenoise wants it to exist
