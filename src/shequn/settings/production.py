"""Production: HTTPS everywhere, secrets required. `shequn manage check --deploy` passes with it."""

from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F403
from .base import MESSAGE_WEBHOOK, SECRET_KEY, env_bool, env_int

if len(SECRET_KEY) < 50:
    raise ImproperlyConfigured("SECRET_KEY must be set to a random string of 50+ characters")
if 0 < len(MESSAGE_WEBHOOK["SECRET"]) < 32:  # the webhook would refuse every delivery (503)
    raise ImproperlyConfigured("SHEQUN_MESSAGE_WEBHOOK_SECRET must be 32+ random characters")

SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
# The API's docs and schema only for logged-in staff (SHEQUN_API_DOCS_PUBLIC=1 opens them).
SHEQUN_API_DOCS_PUBLIC = env_bool("SHEQUN_API_DOCS_PUBLIC", False)
