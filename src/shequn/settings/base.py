"""Settings shared by every deployment, read from the environment.

Embedded default: a SQLite file under ``var/`` (WAL, busy timeout, IMMEDIATE transactions).
Scale path: ``DATABASE_URL=postgresql://...``.
"""

from __future__ import annotations

import json
import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import dj_database_url
from csp.constants import NONE, SELF, UNSAFE_INLINE
from django.core.exceptions import ImproperlyConfigured

PACKAGE_DIR = Path(__file__).resolve().parent.parent
# The working directory is the project checkout (or wherever an operator runs `shequn`).
VAR_DIR = Path(os.environ.get("SHEQUN_VAR_DIR", Path.cwd() / "var")).resolve()


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0, true/false), got {raw!r}")


def env_int(name: str, default: int, *, minimum: int = 0) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, got {raw!r}") from None
    if value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, got {value}")
    return value


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if not raw:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def database_from_url(url: str) -> dict[str, Any]:
    """One database config from a URL; SQLite gets the options that make it a real server-less DB."""
    config: dict[str, Any] = dict(dj_database_url.parse(url, conn_max_age=0))
    if config["ENGINE"] == "django.db.backends.sqlite3":
        config["OPTIONS"] = {
            # Writers queue on BEGIN IMMEDIATE instead of failing on a lock upgrade (Django >= 5.1).
            "transaction_mode": "IMMEDIATE",
            # Seconds a writer waits for the lock before "database is locked".
            "timeout": 30,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; "
            "PRAGMA foreign_keys=ON;",
        }
    elif config["ENGINE"] == "django.db.backends.postgresql":
        # Django's backend with a health check that needs no round trip (core/postgresql).
        config["ENGINE"] = "shequn.core.postgresql"
        # Django turns psycopg's prepared statements off (for transaction-mode poolers); that
        # also silently ignores ``execute(..., prepare=True)``. Django's own cursors bind
        # client-side and never prepare anyway, so this enables exactly the statements our
        # code asks to prepare (the flash order, 0.7 ms of planning each time otherwise) and
        # nothing automatically. Behind a transaction-mode pooler, set it back to None.
        config.setdefault("OPTIONS", {}).setdefault("prepare_threshold", 2**31 - 1)
        # Keep a request's connection for the next request on the same thread (a new
        # PostgreSQL connection is a new server process: ~2 ms, and every prepared statement
        # prepared again); checked before reuse, so a restarted server costs one retry.
        config["CONN_MAX_AGE"] = env_int("SHEQUN_DB_CONN_MAX_AGE", 300)
        config["CONN_HEALTH_CHECKS"] = True
    return config


DEBUG = env_bool("DEBUG", False)
SECRET_KEY = os.environ.get("SECRET_KEY", "")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

DATABASES = {
    "default": database_from_url(
        os.environ.get("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'shequn.sqlite3'}"
    )
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# A flash-sale order placed by the one-statement fast path (PostgreSQL) commits without
# waiting for its WAL to reach the disk (``synchronous_commit = off`` for that transaction
# only). What it risks: if the database server itself crashes, orders placed in its last
# ~0.6 s (3 × wal_writer_delay) are gone — each whole, with its quota, shelf and member
# units, so nothing is oversold or leaked; none of them was paid, because starting a payment
# commits synchronously and so makes every earlier order durable first. What it buys: the
# hot quota row is no longer held through a disk flush (648 → 1,077 orders/s at 8 workers).
FLASH_ORDER_ASYNC_COMMIT = env_bool("SHEQUN_FLASH_ASYNC_COMMIT", True)
# How many threads of one process may run that statement at once (the rest wait in the
# process, not in PostgreSQL's lock queue for the hot quota row).
FLASH_STATEMENT_CONCURRENCY = env_int("SHEQUN_FLASH_CONCURRENCY", 8, minimum=1)

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "ninja",
    "axes",
    "csp",
    "shequn.core",
    "shequn.org",
    "shequn.members",
    "shequn.groups",
    "shequn.catalog",
    "shequn.orders",
    "shequn.promotions",
    "shequn.referrals",
    "shequn.demand",
    "shequn.shop",
    "shequn.flows",
    "shequn.console",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "shequn.core.middleware.RequestContextMiddleware",
    "shequn.core.idempotency.IdempotencyMiddleware",
    # Last, as axes asks: turns a login refused by the lockout into its 429 (org/lockout.py).
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "shequn.urls"
WSGI_APPLICATION = "shequn.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "shequn.console.context.console_context",
            ]
        },
    }
]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "console:login"
LOGIN_REDIRECT_URL = "console:home"

# --- Staff login throttling (django-axes; shequn/org/lockout.py) -----------------------------
# SHEQUN_LOGIN_FAILURE_LIMIT wrong passwords for one account, or SHEQUN_LOGIN_IP_FAILURE_LIMIT
# from one address whatever the usernames, and logins are refused (429, the right password
# too) until SHEQUN_LOGIN_COOLOFF_MINUTES after the last counted failure. The address limit is
# higher because a store's tills and phones usually share one public address.
SHEQUN_LOGIN_FAILURE_LIMIT = env_int("SHEQUN_LOGIN_FAILURE_LIMIT", 5, minimum=1)
SHEQUN_LOGIN_IP_FAILURE_LIMIT = env_int("SHEQUN_LOGIN_IP_FAILURE_LIMIT", 20, minimum=1)
SHEQUN_LOGIN_COOLOFF_MINUTES = env_int("SHEQUN_LOGIN_COOLOFF_MINUTES", 15, minimum=1)
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # first: a locked-out login never reaches the password
    "django.contrib.auth.backends.ModelBackend",
]
AXES_HANDLER = "shequn.org.lockout.LoginAttempts"
AXES_LOCKOUT_PARAMETERS = [["username"], ["ip_address"]]  # LoginAttempts reads them in this order
AXES_FAILURE_LIMIT = SHEQUN_LOGIN_FAILURE_LIMIT
AXES_COOLOFF_TIME = timedelta(minutes=SHEQUN_LOGIN_COOLOFF_MINUTES)
# Attempts refused during a lockout are not counted: the lock ends on time, however hard it is
# knocked on (and a knock writes nothing).
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_RESET_ON_SUCCESS = True  # forgets that account's failures from that address only
AXES_LOCKOUT_CALLABLE = "shequn.org.lockout.lockout_response"
AXES_CLIENT_IP_CALLABLE = "shequn.core.middleware.client_ip"
AXES_DISABLE_ACCESS_LOG = True  # no row per successful login; lockouts go to the audit log
AXES_VERBOSE = False

LANGUAGE_CODE = "zh-hans"
LANGUAGES = [("zh-hans", "简体中文")]
TIME_ZONE = "Asia/Shanghai"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True

# Requests: 1 MiB of body is plenty for this API; bigger gets 413 with the error shape.
DATA_UPLOAD_MAX_MEMORY_SIZE = 1024 * 1024

SESSION_COOKIE_HTTPONLY = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

# Content-Security-Policy on every response (django-csp). Scripts only from our own static files:
# no inline <script>, no onclick=… (templates put behaviour in console/*.js and shop/*.js).
# Styles: stylesheets and <style> elements only from us (style-src-elem), but style="…"
# attributes are allowed ('unsafe-inline' in style-src, which style-src-attr falls back to): the
# templates draw bars and progress with computed widths in dozens of them. They run no code.
# No form-action: paying redirects the member's form post to WeChat Pay's (or the demo
# simulator's) cashier, which form-action would block.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF, UNSAFE_INLINE],
        "style-src-elem": [SELF],
        "img-src": [SELF, "data:"],
        "connect-src": [SELF],
        "font-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "frame-ancestors": [NONE],
    }
}

LOGGING: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "WARNING")},
}

# --- WeChat Pay v3 merchant (empty: payments are not configured) ---------------------------
# WECHATPAY_PLATFORM_KEYS is JSON: {"<Wechatpay-Serial>": "<PEM text or path>", ...}; list both
# the platform certificate serial and the PUB_KEY_ID_… during the public-key migration.
SHEQUN_WECHATPAY = {
    "MCHID": os.environ.get("WECHATPAY_MCHID", ""),
    "APPID": os.environ.get("WECHATPAY_APPID", ""),
    "APIV3_KEY": os.environ.get("WECHATPAY_APIV3_KEY", ""),
    "PLATFORM_PUBLIC_KEYS": json.loads(os.environ.get("WECHATPAY_PLATFORM_KEYS") or "{}"),
    # Outbound calls (refunds, prepay): the API base, our merchant private key and its serial.
    "API_BASE": os.environ.get("WECHATPAY_API_BASE", "https://api.mch.weixin.qq.com"),
    "MERCHANT_KEY": os.environ.get("WECHATPAY_MERCHANT_KEY", ""),
    "MERCHANT_SERIAL": os.environ.get("WECHATPAY_MERCHANT_SERIAL", ""),
}
# Where the platform can reach us (notify_url); must be public HTTPS in production.
# How member login codes reach phones. "log": written to the log and kept in memory
# (shequn.integrations.sms.OUTBOX); "display": the same, and the demo login page shows the code
# because no SMS is really sent. A production deployment plugs in its SMS provider here.
# Behind a reverse proxy, the request header with the client's address (e.g. HTTP_X_REAL_IP);
# WeChat checks it for H5 payments. Empty: the socket's peer (REMOTE_ADDR).
SHEQUN_CLIENT_IP_HEADER = os.environ.get("SHEQUN_CLIENT_IP_HEADER", "")
SHEQUN_SMS_BACKEND = os.environ.get("SHEQUN_SMS_BACKEND", "log")
# Texts cost money and annoy whoever owns a typed-in number: one a minute and ten a day per
# phone, a daily cap per client address and one for the whole deployment (see core/throttle.py).
SHEQUN_SMS_PHONE_INTERVAL_S = env_int("SHEQUN_SMS_PHONE_INTERVAL_S", 60, minimum=1)
SHEQUN_SMS_PHONE_DAILY = env_int("SHEQUN_SMS_PHONE_DAILY", 10, minimum=1)
SHEQUN_SMS_IP_DAILY = env_int("SHEQUN_SMS_IP_DAILY", 30, minimum=1)
SHEQUN_SMS_GLOBAL_DAILY = env_int("SHEQUN_SMS_GLOBAL_DAILY", 20000, minimum=1)
# The smallest withdrawal a sharer may ask for, in fen (¥10 by default).
SHEQUN_MIN_WITHDRAWAL_FEN = env_int("SHEQUN_MIN_WITHDRAWAL_FEN", 1000)

# WeCom (企业微信) callbacks: the corp, the callback's Token and EncodingAESKey, and the chain
# whose groups they are. Empty: the callback answers 503 (not configured). CONTACT_SECRET (the
# 客户联系 secret) lets Shequn read a group's members back from WeCom (groupchat/get) when a
# callback was lost or came out of order; empty: such groups wait, marked, until it is set.
WECOM = {
    "CORP_ID": os.environ.get("WECOM_CORP_ID", ""),
    "CALLBACK_TOKEN": os.environ.get("WECOM_CALLBACK_TOKEN", ""),
    "CALLBACK_AES_KEY": os.environ.get("WECOM_CALLBACK_AES_KEY", ""),
    "CHAIN_CODE": os.environ.get("WECOM_CHAIN_CODE", ""),
    "CONTACT_SECRET": os.environ.get("WECOM_CONTACT_SECRET", ""),
    "API_BASE": os.environ.get("WECOM_API_BASE", "https://qyapi.weixin.qq.com"),
}
# The signed group-message webhook (POST /webhooks/demand/messages): the shared HMAC-SHA256
# secret (32+ characters; empty or shorter: it answers 503), the chain whose groups the
# messages belong to, and the platform names a record may claim besides "webhook" — e.g.
# "wecom" for a bridge relaying WeCom messages under their archive msgids, so that a later
# archive import finds them stored (opt-in: such a sender can occupy an archive message's key).
MESSAGE_WEBHOOK = {
    "SECRET": os.environ.get("SHEQUN_MESSAGE_WEBHOOK_SECRET", ""),
    "CHAIN_CODE": os.environ.get("SHEQUN_MESSAGE_WEBHOOK_CHAIN_CODE", ""),
    "PLATFORMS": os.environ.get("SHEQUN_MESSAGE_WEBHOOK_PLATFORMS", "webhook"),
}
SHEQUN_PUBLIC_URL = os.environ.get("SHEQUN_PUBLIC_URL", "http://127.0.0.1:8000")
# /api/docs and /api/openapi.json for everyone (on, the default; production settings turn it
# off) or only for staff, by console session or API token (off: anyone else gets a 404).
SHEQUN_API_DOCS_PUBLIC = env_bool("SHEQUN_API_DOCS_PUBLIC", True)

# --- Celery (scale path) ----------------------------------------------------------------------
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "")
CELERY_RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND", CELERY_BROKER_URL or None)
# Without a broker, tasks run in-process (the embedded default); with one, in workers.
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_ACKS_LATE = (
    True  # a worker killed mid-task leaves it to be redelivered: tasks are idempotent
)
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TIMEZONE = "Asia/Shanghai"
CELERY_BEAT_SCHEDULE = {
    "due-deadlines": {"task": "shequn.flows.tasks.run_due_sweeps_task", "schedule": 30.0},
}

# --- Shequn business settings (platform-wide; per-store policy lives on the models) ---------
SHEQUN = {
    # Invitation codes older than this are refused even if the row says otherwise.
    "INVITATION_DEFAULT_DAYS": 30,
    # Idempotency keys are kept this long (Stripe: at least 24 h).
    "IDEMPOTENCY_RETENTION_HOURS": 24,
}
