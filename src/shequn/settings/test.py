"""Test settings: the database comes from DATABASE_URL (PostgreSQL leg) or a SQLite file.

SQLite tests use a file, not :memory:, because the concurrency tests open one connection per
thread and must all see the same database.
"""

import hashlib
import os
import tempfile

os.environ.setdefault("SECRET_KEY", "test-only-key-shequn-00000000000000000000000000000000")
os.environ.setdefault("SHEQUN_VAR_DIR", os.path.join(tempfile.gettempdir(), "shequn-test-var"))

from .base import *  # noqa: E402,F403
from .base import (
    DATABASES,  # noqa: E402
    STATIC_ROOT,  # noqa: E402
)

DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # One file per checkout (or per SHEQUN_TEST_DB_TAG), so two runs at once never share one.
    cwd_tag = hashlib.sha1(os.getcwd().encode()).hexdigest()[:8]  # noqa: S324 - a name
    checkout = os.environ.get("SHEQUN_TEST_DB_TAG") or cwd_tag
    DATABASES["default"]["TEST"] = {
        "NAME": os.path.join(tempfile.gettempdir(), f"shequn-test-{checkout}.sqlite3")
    }
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # whitenoise wants it to exist
