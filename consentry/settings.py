"""Consentry settings: one file, driven by the environment.

Production differs from development only by environment variables (the table
is in README.md). Defaults are the embedded local platform: SQLite and a
filesystem broker in ``CONSENTRY_STATE_DIR``, secrets generated there once.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from celery.schedules import crontab
from csp.constants import NONE as CSP_NONE
from csp.constants import SELF as CSP_SELF
from django.core.exceptions import ImproperlyConfigured

from consentry.env import env_bool, env_int, env_list, env_rate, env_str
from consentry.localstate import ed25519_pem, random_key_b64, random_token, secret
from consentry.log_filters import ROUTINE_TASK_LOGGERS

BASE_DIR = Path(__file__).resolve().parent.parent
STATE_DIR = Path(env_str("CONSENTRY_STATE_DIR", str(BASE_DIR / ".state"))).resolve()
STATE_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = env_bool("DJANGO_DEBUG", False)
GENERATE_SECRETS = env_bool("CONSENTRY_GENERATE_SECRETS", True)


def _secret(name: str, make) -> str:
    return secret(name, state_dir=STATE_DIR, generate=GENERATE_SECRETS, make=make)


SECRET_KEY = _secret("DJANGO_SECRET_KEY", random_token)
# Envelope-encryption master key for data keys (base64, 32 bytes).
CONSENTRY_MASTER_KEY = _secret("CONSENTRY_MASTER_KEY", random_key_b64)
# Keyed-HMAC secret that turns HR ids into per-purpose pseudonyms.
CONSENTRY_PSEUDONYM_KEY = _secret("CONSENTRY_PSEUDONYM_KEY", random_key_b64)
# Ed25519 PEM that signs capture grants and consent receipts.
CONSENTRY_SIGNING_KEY = _secret("CONSENTRY_SIGNING_KEY", ed25519_pem)
# Ed25519 PEM that signs audit checkpoints and export manifests.
CONSENTRY_AUDIT_SIGNING_KEY = _secret("CONSENTRY_AUDIT_SIGNING_KEY", ed25519_pem)

ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "guardian",
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "mozilla_django_oidc",
    # Domain apps, in layer order: each imports only from those above it.
    "consentry",
    "audit",
    "people",
    "governance",
    "consent",
    "decisions",
]

MIDDLEWARE = [
    # First: a database outage raised anywhere below answers 503 in the caller's format, not a 500.
    "consentry.problems.DatabaseOutageMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "people.second_factor.SecondFactorRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    # Last, as django-axes asks: it answers locked-out sign-ins.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "consentry.urls"
WSGI_APPLICATION = "consentry.wsgi.application"
ASGI_APPLICATION = "consentry.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "consentry.context_processors.navigation",
            ],
        },
    },
]

# Lower case: not a setting (it may hold a password).
_database_url = env_str("DATABASE_URL", f"sqlite:///{STATE_DIR / 'db.sqlite3'}")
DATABASES = {
    "default": dj_database_url.parse(
        _database_url,
        # A server database keeps each worker's connection between requests (opening one
        # costs more than a whole capture decision); health checks drop a broken one first.
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 0 if _database_url.startswith("sqlite") else 60, minimum=0),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Web, worker and beat share one file: take the write lock when a
    # transaction starts (no deadlocking upgrades) and wait for it.
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # Tests against a live server need a file: an in-memory test database is
    # one connection shared by every server thread, so a long poll and a
    # decision answered at once would share one transaction.
    # Per process, so two test runs never share (or delete) one file.
    DATABASES["default"]["TEST"] = {"NAME": str(STATE_DIR / f"test-db-{os.getpid()}.sqlite3")}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTHENTICATION_BACKENDS = [
    # First: refuses any sign-in while the username/address pair is locked out.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
    "people.oidc.EmployeeOIDCBackend",
    "guardian.backends.ObjectPermissionBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "/accounts/login/"
# The start page sends each person on to the console their roles open.
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/accounts/login/"
GUARDIAN_RAISE_403 = True

LANGUAGE_CODE = "en"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = STATE_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)
# Site-wide assets (layout CSS, small scripts); served locally, never from a CDN.
STATICFILES_DIRS = [BASE_DIR / "consentry" / "static"]
MEDIA_ROOT = Path(env_str("CONSENTRY_MEDIA_DIR", str(STATE_DIR / "media")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "consentry.problems.exception_handler",
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "people.authentication.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["people.authentication.IsPersonAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PAGINATION_CLASS": "consentry.pagination.ApiPagination",
    "PAGE_SIZE": 100,
    # Per person and per machine token; rates in CONSENTRY_RATE_LIMITS below.
    "DEFAULT_THROTTLE_CLASSES": ["consentry.throttling.CallerRateThrottle"],
    # The API speaks JSON only; so do its tests unless they say otherwise.
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Consentry API",
    "DESCRIPTION": "Consent and privacy governance for workplace activity data.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # The API docs load Swagger UI from our own static files: the CSP allows no CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # The JWKS and the health check are plain Django views: documented by hand (consentry.openapi).
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "consentry.openapi.document_plain_views",
    ],
    # One name per choice set, whichever serializer uses it.
    # The vocabularies the engine shares with the models (``consentry.vocabulary``) are
    # plain enums: name their (value, label) choices, as Django's TextChoices give them.
    "ENUM_NAME_OVERRIDES": {
        "RegionKindEnum": "governance.models.RegionKind",
        "ExclusionKindEnum": "governance.models.ExclusionKind.choices",
        "PreconditionTypeEnum": "governance.models.PreconditionType.choices",
        "RuleStatusEnum": "governance.models.RuleStatus.choices",
        "RegionStandingStatusEnum": "consent.serializers.REGION_STATUS_CHOICES",
        "ConsentEventKindEnum": "consent.models.ConsentEventKind.choices",
        "ConsentItemStateEnum": "consent.selectors.PairState",
        "ApprovalStateEnum": "governance.models.ApprovalState",
        "RightsKindEnum": "decisions.models.RightsKind",
        "RightsStatusEnum": "decisions.models.RightsStatus",
    },
}

# Celery. The default broker is kombu's filesystem transport inside the state
# folder: a real worker and beat, no service to install. Production sets
# CELERY_BROKER_URL to redis://… or amqp://….
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    _broker_dir = STATE_DIR / "broker"
    for _sub in ("queue", "processed"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "store_processed": False,
    }
CELERY_RESULT_BACKEND = env_str("CELERY_RESULT_BACKEND") or None
CELERY_TASK_ALWAYS_EAGER = False
# A task is acknowledged after it ran: a killed worker's task is redelivered.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 300, minimum=1)
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 360, minimum=1)
CELERY_BEAT_SCHEDULE_FILENAME = str(STATE_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE: dict[str, dict] = {
    "expire-consents": {
        "task": "consent.tasks.expire_consents",
        "schedule": env_int("CONSENTRY_EXPIRY_SWEEP_SECONDS", 900, minimum=10),
    },
}
CELERY_TIMEZONE = "UTC"
if CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    # Redis redelivers a task a dead worker held only after this many seconds:
    # keep it above the longest task time limit (the audit export's).
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": env_int("CELERY_BROKER_VISIBILITY_TIMEOUT", 7200, minimum=1),
    }

# Domain settings.
# Smallest group whose aggregate opt-in rate a manager may see.
CONSENTRY_K_ANONYMITY = env_int("CONSENTRY_K_ANONYMITY", 10, minimum=2)
CONSENTRY_ISSUER = env_str("CONSENTRY_ISSUER", "consentry")
CONSENTRY_CONTROLLER_NAME = env_str("CONSENTRY_CONTROLLER_NAME", "Example Corp")
CONSENTRY_CONTROLLER_CONTACT = env_str("CONSENTRY_CONTROLLER_CONTACT", "privacy@example.com")
# Postal address and phone of the controller, printed on consent receipts (Kantara v1.1).
CONSENTRY_CONTROLLER_ADDRESS = env_str("CONSENTRY_CONTROLLER_ADDRESS", "")
CONSENTRY_CONTROLLER_PHONE = env_str("CONSENTRY_CONTROLLER_PHONE", "")

# HR provisioning (people/): CSV imports are validated whole before anything is
# written, so the file is held in memory; this caps it.
CONSENTRY_CSV_MAX_ROWS = env_int("CONSENTRY_CSV_MAX_ROWS", 20000, minimum=1)
CONSENTRY_CSV_MAX_BYTES = env_int("CONSENTRY_CSV_MAX_BYTES", 10 * 1024 * 1024, minimum=1024)
# Set-password links for provisioned employees (docs/scim.md) name the site by
# this address and go out through Django's e-mail backend: the console locally,
# SMTP (EMAIL_HOST…) in production.
CONSENTRY_PUBLIC_URL = env_str("CONSENTRY_PUBLIC_URL", "http://127.0.0.1:8000").rstrip("/")
EMAIL_BACKEND = env_str("DJANGO_EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = env_str("DJANGO_EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("DJANGO_EMAIL_PORT", 25, minimum=1)
EMAIL_HOST_USER = env_str("DJANGO_EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("DJANGO_EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("DJANGO_EMAIL_USE_TLS", False)
DEFAULT_FROM_EMAIL = env_str("DJANGO_DEFAULT_FROM_EMAIL", "consentry@localhost")

# Sign-in and login protection (people/; README "Configuration").
# Lockout (django-axes): after this many failed sign-ins for one user name from
# one address, further attempts are refused until the cool-off has passed.
AXES_ENABLED = env_bool("CONSENTRY_LOGIN_LOCKOUT", True)
AXES_FAILURE_LIMIT = env_int("CONSENTRY_LOGIN_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("CONSENTRY_LOGIN_COOLOFF_MINUTES", 15, minimum=1))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_IPWARE_PROXY_COUNT = env_int("CONSENTRY_PROXY_COUNT", 0, minimum=0)
# TOTP second factor (django-otp), required for these roles on every session.
CONSENTRY_SECOND_FACTOR_ROLES = env_list("CONSENTRY_SECOND_FACTOR_ROLES", ["legal", "approver", "auditor"])
OTP_TOTP_ISSUER = env_str("CONSENTRY_TOTP_ISSUER", "Consentry")
# OpenID Connect sign-in (mozilla-django-oidc). On when a client id and the
# provider's endpoints are set; the local sign-in form stays available.
OIDC_RP_CLIENT_ID = env_str("CONSENTRY_OIDC_CLIENT_ID")
OIDC_RP_CLIENT_SECRET = env_str("CONSENTRY_OIDC_CLIENT_SECRET")
OIDC_OP_AUTHORIZATION_ENDPOINT = env_str("CONSENTRY_OIDC_AUTHORIZATION_ENDPOINT")
OIDC_OP_TOKEN_ENDPOINT = env_str("CONSENTRY_OIDC_TOKEN_ENDPOINT")
OIDC_OP_USER_ENDPOINT = env_str("CONSENTRY_OIDC_USERINFO_ENDPOINT")
OIDC_OP_JWKS_ENDPOINT = env_str("CONSENTRY_OIDC_JWKS_ENDPOINT")
OIDC_RP_SIGN_ALGO = env_str("CONSENTRY_OIDC_SIGN_ALGO", "RS256")
OIDC_RP_SCOPES = env_str("CONSENTRY_OIDC_SCOPES", "openid email profile")
OIDC_USE_PKCE = True
OIDC_TIMEOUT = env_int("CONSENTRY_OIDC_TIMEOUT_SECONDS", 10, minimum=1)
CONSENTRY_OIDC_ENABLED = bool(OIDC_RP_CLIENT_ID and OIDC_OP_AUTHORIZATION_ENDPOINT and OIDC_OP_TOKEN_ENDPOINT)
# Which ID-token/userinfo claim names the employee, and which employee field it matches.
CONSENTRY_OIDC_EMPLOYEE_CLAIM = env_str("CONSENTRY_OIDC_EMPLOYEE_CLAIM", "email")
CONSENTRY_OIDC_EMPLOYEE_FIELD = env_str("CONSENTRY_OIDC_EMPLOYEE_FIELD", "email")
if CONSENTRY_OIDC_EMPLOYEE_FIELD not in ("email", "user_name", "hr_id"):
    raise ImproperlyConfigured("CONSENTRY_OIDC_EMPLOYEE_FIELD must be email, user_name or hr_id.")
LOGIN_REDIRECT_URL_FAILURE = "/accounts/login/?sso=failed"
# Audit ledger: signed checkpoints, daily verification, exports (audit/).
# A checkpoint is signed once this many entries are uncovered, or once the
# oldest uncovered entry is this many minutes old; beat checks every poll.
CONSENTRY_CHECKPOINT_EVERY_ENTRIES = env_int("CONSENTRY_CHECKPOINT_EVERY_ENTRIES", 1000, minimum=1)
CONSENTRY_CHECKPOINT_EVERY_MINUTES = env_int("CONSENTRY_CHECKPOINT_EVERY_MINUTES", 5, minimum=1)
CONSENTRY_CHECKPOINT_POLL_SECONDS = env_int("CONSENTRY_CHECKPOINT_POLL_SECONDS", 30, minimum=1)
# Verification fails when an entry waited longer than the above plus this grace
# for its first signed checkpoint: deleted checkpoints, or a stopped signer.
# Entries: queued appends near 2,000/s fill 60,000 between two 30 s polls.
CONSENTRY_CHECKPOINT_GRACE_MINUTES = env_int("CONSENTRY_CHECKPOINT_GRACE_MINUTES", 10, minimum=0)
CONSENTRY_CHECKPOINT_GRACE_ENTRIES = env_int("CONSENTRY_CHECKPOINT_GRACE_ENTRIES", 100_000, minimum=0)
# Entries queued without the chain head's lock (capture grants) are chained by
# beat this often, and before every checkpoint.
CONSENTRY_AUDIT_SEAL_SECONDS = env_int("CONSENTRY_AUDIT_SEAL_SECONDS", 1, minimum=1)
# Hour (UTC) of the daily live verification, whose outcome is itself audited.
CONSENTRY_AUDIT_VERIFY_HOUR = env_int("CONSENTRY_AUDIT_VERIFY_HOUR", 3, minimum=0, maximum=23)
# Export jobs: hard time limit in seconds (a million entries take about a minute).
CONSENTRY_AUDIT_EXPORT_TIME_LIMIT = env_int("CONSENTRY_AUDIT_EXPORT_TIME_LIMIT", 3600, minimum=60)
# Who may read which entries: resolved above the audit app (regions, people).
CONSENTRY_AUDIT_ACCESS_RESOLVER = "governance.audit_scope.audit_access_for"
CELERY_BEAT_SCHEDULE.update(
    {
        "audit-seal": {
            "task": "audit.queue_seal",
            "schedule": float(CONSENTRY_AUDIT_SEAL_SECONDS),
            # A run missed while no worker listens is covered by the next one.
            "options": {"expires": float(CONSENTRY_AUDIT_SEAL_SECONDS)},
        },
        "audit-checkpoint": {"task": "audit.checkpoint_tick", "schedule": float(CONSENTRY_CHECKPOINT_POLL_SECONDS)},
        "audit-verify-daily": {
            "task": "audit.verify_daily",
            "schedule": crontab(hour=CONSENTRY_AUDIT_VERIFY_HOUR, minute=17),
        },
        "audit-export-sweep": {"task": "audit.export_sweep", "schedule": 300.0},
    }
)

# Decisions (capture and use decision API).
# How long a capture grant lives; the wire contract caps it at 15 minutes.
CONSENTRY_GRANT_LIFETIME_SECONDS = env_int("CONSENTRY_GRANT_LIFETIME_SECONDS", 60, minimum=1, maximum=900)

# Rights requests (decisions/rights.py): hard time limit in seconds of an access
# export or an erasure; the sweep enqueues again requests a broker outage lost.
CONSENTRY_RIGHTS_TIME_LIMIT = env_int("CONSENTRY_RIGHTS_TIME_LIMIT", 1800, minimum=60)
CELERY_BEAT_SCHEDULE["rights-sweep"] = {"task": "decisions.rights_sweep", "schedule": 300.0}

# Data keys (decisions/datakeys.py, docs/data-keys.md). The class that wraps
# data keys under the master key; a cloud KMS implementation can replace it.
CONSENTRY_KEK_CLASS = env_str("CONSENTRY_KEK_CLASS", "decisions.kms.LocalKeyEncryptionKey")
# Master keys a rotation retired (base64, comma-separated): kept until every
# data key is re-wrapped under the current CONSENTRY_MASTER_KEY.
CONSENTRY_MASTER_KEY_PREVIOUS = env_list("CONSENTRY_MASTER_KEY_PREVIOUS")
# The shredding sweep (retention, withdrawal and termination windows): how
# often beat runs it, how many keys each transaction destroys, and its time limits.
CONSENTRY_KEY_SWEEP_SECONDS = env_int("CONSENTRY_KEY_SWEEP_SECONDS", 3600, minimum=10)
CONSENTRY_KEY_SWEEP_BATCH = env_int("CONSENTRY_KEY_SWEEP_BATCH", 100, minimum=1, maximum=5000)
CONSENTRY_KEY_SWEEP_TIME_LIMIT = env_int("CONSENTRY_KEY_SWEEP_TIME_LIMIT", 1800, minimum=30)
CELERY_BEAT_SCHEDULE["data-key-sweep"] = {
    "task": "decisions.data_key_sweep",
    "schedule": float(CONSENTRY_KEY_SWEEP_SECONDS),
    # A sweep that is still running makes the next one pointless: never queue a backlog.
    "options": {"expires": float(CONSENTRY_KEY_SWEEP_SECONDS)},
}

# Revocation feed and outbox relay (decisions/revocations.py, consentry/outbox.py).
# The relay runs right after each publishing commit; this periodic run catches
# up whatever a crash between commit and relay left behind.
CONSENTRY_OUTBOX_RELAY_SECONDS = env_int("CONSENTRY_OUTBOX_RELAY_SECONDS", 5, minimum=1)
CELERY_BEAT_SCHEDULE["outbox-relay"] = {
    "task": "consentry.outbox_relay",
    "schedule": float(CONSENTRY_OUTBOX_RELAY_SECONDS),
    # A missed run is caught up by the next one: never queue a backlog of them.
    "options": {"expires": float(CONSENTRY_OUTBOX_RELAY_SECONDS)},
}
# Rules and notices approved to take effect later are announced on the feed
# when they do (governance.services.policy_boundaries_announce), this often.
CONSENTRY_POLICY_BOUNDARY_SECONDS = env_int("CONSENTRY_POLICY_BOUNDARY_SECONDS", 15, minimum=1)
CELERY_BEAT_SCHEDULE["policy-boundaries"] = {
    "task": "governance.policy_boundaries_announce",
    "schedule": float(CONSENTRY_POLICY_BOUNDARY_SECONDS),
    "options": {"expires": float(CONSENTRY_POLICY_BOUNDARY_SECONDS)},
}
# Long polls and event streams each hold a server thread while they wait: at
# most this many per process, the rest are answered at once (README).
CONSENTRY_FEED_MAX_WAITERS = env_int("CONSENTRY_FEED_MAX_WAITERS", 64, minimum=1)
# How often a waiter looks again when nothing wakes it (SQLite, or PostgreSQL
# while its LISTEN connection reconnects), in milliseconds.
CONSENTRY_FEED_POLL_MS = env_int("CONSENTRY_FEED_POLL_MS", 500, minimum=50, maximum=10000)
# An event stream is closed after this long; clients reconnect with Last-Event-ID.
CONSENTRY_FEED_STREAM_SECONDS = env_int("CONSENTRY_FEED_STREAM_SECONDS", 300, minimum=5, maximum=3600)

# Security headers. Off only when DEBUG is on (local HTTP).
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", not DEBUG)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_HSTS_SECONDS = env_int("DJANGO_SECURE_HSTS_SECONDS", 0 if DEBUG else 31536000, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_SECURE = not DEBUG
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_SECURE = not DEBUG
X_FRAME_OPTIONS = "DENY"

# Web portal: Content Security Policy (django-csp). Every script and style is a
# file served from our own origin: no inline code, no CDN, no framing, forms
# post only back to us. A single injected tag can then neither run nor leak.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [CSP_SELF],
        "script-src": [CSP_SELF],
        "style-src": [CSP_SELF],
        "img-src": [CSP_SELF, "data:"],
        "font-src": [CSP_SELF],
        "connect-src": [CSP_SELF],
        "object-src": [CSP_NONE],
        "base-uri": [CSP_NONE],
        "form-action": [CSP_SELF],
        "frame-ancestors": [CSP_NONE],
    },
}
# Browsers need not send more than the page itself to anybody.
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
# Sessions end with the browser and after a working day at most.
SESSION_COOKIE_AGE = env_int("DJANGO_SESSION_COOKIE_AGE", 8 * 3600, minimum=300)
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
# Portal pages: how many audit entries and history events one page lists.
CONSENTRY_PAGE_SIZE = env_int("CONSENTRY_PAGE_SIZE", 50, minimum=5)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "filters": {
        "quiet_routine_tasks": {"()": "consentry.log_filters.QuietRoutineTasks"},
        "client_errors_without_traceback": {"()": "consentry.log_filters.ClientErrorsWithoutTraceback"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        # Django's own console handler (debug) would print every request warning a second time.
        "django": {"handlers": [], "level": "INFO", "propagate": True},
        # A refused page (403) or a missing one (404) is one line, not a traceback.
        "django.request": {"filters": ["client_errors_without_traceback"]},
        # The audit sealer runs every second: its routine runs are not logged.
        **{name: {"filters": ["quiet_routine_tasks"]} for name in ROUTINE_TASK_LOGGERS},
    },
}

# API protection: idempotency keys, rate limits, body size, cache.
# Largest request body (bytes) any JSON endpoint reads; 413 beyond. Room for a
# 10,000-record use-decision batch.
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("CONSENTRY_MAX_BODY_BYTES", 16 * 1024 * 1024, minimum=1024)
# Requests per caller (a person, or a machine token) and scope; "off" disables a
# scope. Views choose a scope with throttle_scope: the decision endpoints use
# "decisions", SCIM and CSV import "provisioning", everything else "api";
# anonymous callers share "anon" per address.
CONSENTRY_RATE_LIMITS = {
    "api": env_rate("CONSENTRY_RATE_API", "600/minute"),
    "decisions": env_rate("CONSENTRY_RATE_DECISIONS", "6000/minute"),
    "anon": env_rate("CONSENTRY_RATE_ANON", "60/minute"),
    # HR systems syncing thousands of people through SCIM or CSV.
    "provisioning": env_rate("CONSENTRY_RATE_PROVISIONING", "3000/minute"),
}
REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"] = CONSENTRY_RATE_LIMITS
# Rate-limit counters (and any other cache use). Local memory per process by
# default; production sets a Redis URL so every process shares one count.
CONSENTRY_CACHE_URL = env_str("CONSENTRY_CACHE_URL", "")
if CONSENTRY_CACHE_URL:
    if not CONSENTRY_CACHE_URL.startswith(("redis://", "rediss://", "unix://")):
        raise ImproperlyConfigured("CONSENTRY_CACHE_URL must be a redis://, rediss:// or unix:// URL")
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": CONSENTRY_CACHE_URL,
            # A cache that hangs must not hang the API: fail fast, then 503.
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "consentry"}}
# Idempotency-Key records are kept at least this long (API.md promises 24 h).
CONSENTRY_IDEMPOTENCY_TTL_HOURS = env_int("CONSENTRY_IDEMPOTENCY_TTL_HOURS", 48, minimum=24)
CELERY_BEAT_SCHEDULE["consentry.idempotency_purge"] = {"task": "consentry.idempotency_purge", "schedule": 3600.0}
