"""Porfin settings: one module, driven by a small set of environment switches.

Embedded default (no variables set): SQLite under ``var/``, an in-process channel layer, background tasks on
threads inside the web process, the WhatsApp sandbox and the offline AI provider.

Production: ``DATABASE_URL`` (PostgreSQL), ``REDIS_URL`` (channels-redis, django-q2 broker, cache),
``SECRET_KEY``, ``DEBUG=0``, ``ALLOWED_HOSTS``, ``EMAIL_URL``, ``OPENAI_API_KEY``/``OPENAI_BASE_URL``,
``FIELD_ENCRYPTION_KEY``, ``MEDIA_STORAGE=s3`` with ``AWS_*`` (customer files in a bucket shared by every
box). Every value may also come from ``NAME_FILE`` (a path holding the secret).
"""

import importlib.util
import sys
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.FileAwareEnv()  # also reads NAME_FILE for secrets
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)  # optional, never committed

DEBUG = env.bool("DEBUG", default=True)

DEV_SECRET_KEY = "porfin-insecure-development-key-change-me-0123456789abcdef"
SECRET_KEY = env.str("SECRET_KEY", default=DEV_SECRET_KEY)
if not DEBUG and SECRET_KEY == DEV_SECRET_KEY:
    raise ImproperlyConfigured("Set SECRET_KEY: the development key is refused when DEBUG is off.")

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# Fernet key for credentials at rest (WhatsApp tokens, app secrets, per-organization AI keys).
# In development it is derived from SECRET_KEY; production must set its own.
FIELD_ENCRYPTION_KEY = env.str("FIELD_ENCRYPTION_KEY", default="")
if not DEBUG and not FIELD_ENCRYPTION_KEY:
    raise ImproperlyConfigured("Set FIELD_ENCRYPTION_KEY (a Fernet key) when DEBUG is off.")

REDIS_URL = env.str("REDIS_URL", default="")

INSTALLED_APPS = [
    # Development only (requirements-dev.txt): `runserver` serves ASGI, websockets included.
    *(["daphne"] if importlib.util.find_spec("daphne") else []),
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    # Third party
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "channels",
    "django_htmx",
    "template_partials",
    "django_q",
    "rest_framework",
    "drf_spectacular",
    # Porfin
    "kernel",
    "accounts",
    "integrations",
    "inbox",
    "assistants",
    "campaigns",
    "appointments",
    "flows",
    "reports",
]

MIDDLEWARE = [
    "kernel.tracing.RequestIdMiddleware",  # outermost: every line of the request has its id
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "accounts.middleware.TenantMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "reports.middleware.AuditContextMiddleware",
]

# Integrator API calls made with an API key (``Authorization: Bearer …`` under /api/) run only
# these (config.asgi.ApiKeyDjangoHandler): no session, cookie, CSRF token, user, tenant, message
# or htmx work is needed to answer a key, and skipping it is most of the API's speed (issue 21).
API_KEY_MIDDLEWARE = [
    "kernel.tracing.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "reports.middleware.AuditContextMiddleware",
]

ROOT_URLCONF = "config.urls"
ASGI_APPLICATION = "config.asgi.application"
WSGI_APPLICATION = None

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
                "django.template.context_processors.i18n",
                "accounts.context_processors.tenant",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
VAR_DIR.mkdir(exist_ok=True)
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'porfin.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL + immediate transactions let the web threads and the in-process workers write without
    # "database is locked" errors.
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
else:
    # Under ASGI every request runs on a thread of its own, so persistent per-thread connections
    # would pile up: web processes use psycopg's pool instead (Django >= 5.1). `qcluster` forks
    # its workers after start-up, and a pool must never be shared across a fork, so it doesn't.
    # A qcluster worker (one task at a time) keeps its own connection between tasks instead:
    # django-q2 closes obsolete connections before every task, and opening a new one cost about
    # as much as an inbound task's own work.
    pooled = env.bool("DB_POOL", default="qcluster" not in sys.argv)
    DATABASES["default"]["CONN_MAX_AGE"] = 0 if pooled else 600
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = not pooled
    if pooled:
        DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
            "min_size": env.int("DB_POOL_MIN", default=2),
            # Without Redis the task queues run as threads of this process (the AI queue's
            # 64 among them), each holding a connection while it works: with 16, a reply ready
            # for the model waited for a connection another reply was using (up to a second
            # each, bench/assistants_pipeline.py's 50 chats: 3.58 s with 16, 2.81 s with 64).
            "max_size": env.int("DB_POOL_MAX", default=16 if REDIS_URL else 64),
            "timeout": 10,
        }
DATABASES["default"]["ATOMIC_REQUESTS"] = False
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
IS_POSTGRES = DATABASES["default"]["ENGINE"].startswith("django.db.backends.postgresql")
# Django requests one web process runs at once (config/admission.py); more wait their turn, and
# a request waiting on WhatsApp or the model gives its turn away meanwhile. On PostgreSQL two:
# an API send waits on about ten database and Redis round trips, a third of its time, and a
# second request uses that time (README: +15-20% requests/s and a fifth off the p95 at 100
# connections; a third adds little, the cores are full). SQLite writes one at a time: one.
# Keep it at or below DB_POOL_MAX.
HTTP_CONCURRENCY = env.int("HTTP_CONCURRENCY", default=2 if IS_POSTGRES else 1)

# --- Cache, channel layer, background tasks --------------------------------------------------
if REDIS_URL:
    CACHES = {
        # One connection pool per process (Django's own backend opens one per request context).
        "default": {"BACKEND": "kernel.cache.SharedRedisCache", "LOCATION": REDIS_URL}
    }
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "kernel.pubsub.PubSubLayer",
            "CONFIG": {"hosts": [REDIS_URL], "prefix": "porfin"},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# "thread": tasks run on threads inside the web process, where the in-memory channel layer can
# reach the browsers (embedded default). "django_q": tasks go to the django-q2 broker and run in
# `manage.py qcluster` workers (production). "inline": run at once in the caller (tests).
TASK_RUNNER = env.str("TASK_RUNNER", default="django_q" if REDIS_URL else "thread")
if TASK_RUNNER not in {"thread", "django_q", "inline"}:
    raise ImproperlyConfigured(
        f"TASK_RUNNER must be thread, django_q or inline, not {TASK_RUNNER!r}"
    )

Q_CLUSTER = {
    "name": "porfin",
    "workers": env.int("Q_WORKERS", default=2),
    "timeout": 120,
    "retry": 300,  # must exceed timeout plus queue wait, or django-q2 runs a task twice
    "max_attempts": 3,
    "queue_limit": 50,
    "catch_up": False,
    "save_limit": 1000,
    "label": _("Background tasks"),
    # One cluster per queue (kernel.tasks.cluster_name): Q_CLUSTER_NAME=porfin-inbound qcluster
    "ALT_CLUSTERS": {
        # A worker restarts after `recycle` tasks (to bound leaks); at 500, an inbound worker
        # restarted every few seconds under load, and each restart is a second of CPU.
        "porfin-inbound": {"workers": 2, "recycle": 5000},
        "porfin-bulk": {"workers": 2},
        # AI auto-replies wait seconds on the model: many workers (Q_CLUSTER_NAME=porfin-ai).
        "porfin-ai": {"workers": env.int("Q_AI_WORKERS", default=16)},
    },
}
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"

# --- Auth (django-allauth) ------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
# Argon2id at OWASP's parameters (accounts.hashers: ~25 ms a sign-in instead of PBKDF2's ~0.3 s);
# the PBKDF2 hashers after it verify older hashes, which are re-hashed with Argon2id at sign-in.
PASSWORD_HASHERS = [
    "accounts.hashers.Argon2idHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "home"
ACCOUNT_ADAPTER = "accounts.adapters.AccountAdapter"
# Anyone may create an account and an organization; SIGNUP_OPEN=0 closes sign-up (members then
# join by invitation, organizations are created with `manage.py create_organization`).
ACCOUNT_ALLOW_SIGNUP = env.bool("SIGNUP_OPEN", default=True)
ACCOUNT_FORMS = {"signup": "accounts.forms.SignupForm"}
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_EMAIL_VERIFICATION = env.str("ACCOUNT_EMAIL_VERIFICATION", default="optional")
ACCOUNT_LOGOUT_ON_PASSWORD_CHANGE = False
ACCOUNT_SESSION_REMEMBER = None
ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION = True
ACCOUNT_EMAIL_SUBJECT_PREFIX = "[Porfin] "
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
MFA_TOTP_ISSUER = "Porfin"

# --- Email ----------------------------------------------------------------------------------
if not DEBUG and not env.str("EMAIL_URL", default="") and "test" not in sys.argv[1:2]:
    # Invitations, password resets and alerts would silently go to the console.
    raise ImproperlyConfigured(
        "Set EMAIL_URL (e.g. smtp+tls://user:pass@host:587) when DEBUG is off."
    )
EMAIL_CONFIG = env.email_url("EMAIL_URL", default="consolemail://")
vars().update(EMAIL_CONFIG)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Porfin <no-reply@porfin.local>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# --- Internationalisation -------------------------------------------------------------------
LANGUAGE_CODE = "pt-br"
LANGUAGES = [("pt-br", "Português (Brasil)"), ("en", "English"), ("es", "Español")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "America/Sao_Paulo"
USE_I18N = True
USE_TZ = True

# --- Static and media -----------------------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
# Customer files are never served from MEDIA_URL: only through the authenticated view
# (inbox.media). "local": MEDIA_ROOT on this machine (embedded default; one box only).
# "s3": any S3-compatible bucket (AWS S3, MinIO, R2...), shared by every web and worker box;
# the view redirects to a signed URL valid MEDIA_URL_EXPIRE seconds.
MEDIA_URL = "/media/"
MEDIA_ROOT = env.path("MEDIA_ROOT", default=str(VAR_DIR / "media"))
MEDIA_STORAGE = env.str("MEDIA_STORAGE", default="local")
MEDIA_URL_EXPIRE = env.int("MEDIA_URL_EXPIRE", default=300)
if MEDIA_STORAGE == "local":
    MEDIA_BACKEND = {"BACKEND": "django.core.files.storage.FileSystemStorage"}
elif MEDIA_STORAGE == "s3":
    if not env.str("AWS_STORAGE_BUCKET_NAME", default=""):
        raise ImproperlyConfigured("Set AWS_STORAGE_BUCKET_NAME when MEDIA_STORAGE=s3.")
    MEDIA_BACKEND = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": env.str("AWS_STORAGE_BUCKET_NAME"),
            # Empty: boto3's own chain (instance role, ~/.aws, AWS_* environment).
            "access_key": env.str("AWS_ACCESS_KEY_ID", default="") or None,
            "secret_key": env.str("AWS_SECRET_ACCESS_KEY", default="") or None,
            "endpoint_url": env.str("AWS_S3_ENDPOINT_URL", default="") or None,
            "region_name": env.str("AWS_S3_REGION_NAME", default="") or None,
            "addressing_style": env.str("AWS_S3_ADDRESSING_STYLE", default="") or None,
            "location": env.str("AWS_LOCATION", default=""),
            "signature_version": "s3v4",
            "default_acl": None,  # private objects: readable only through signed URLs
            "querystring_auth": True,
            "querystring_expire": MEDIA_URL_EXPIRE,
            "file_overwrite": False,
        },
    }
else:
    raise ImproperlyConfigured(f"MEDIA_STORAGE must be local or s3, not {MEDIA_STORAGE!r}")
STORAGES = {
    "default": MEDIA_BACKEND,
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

# --- Security -------------------------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
if not DEBUG:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_REDIRECT_EXEMPT = [r"^healthz(/(live|ready|workers))?$"]

# --- REST framework -------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["rest_framework.authentication.SessionAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Porfin API",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,  # the schema describes the API, not itself
    # Request bodies get their own components, so non-blank strings say minLength 1 there.
    "COMPONENT_SPLIT_REQUEST": True,
    # One name per shared choice set (`manage.py check --deploy` warns of ambiguous names).
    "ENUM_NAME_OVERRIDES": {
        "ContactStageEnum": "inbox.models.Contact.Stage",
        "CampaignStatusEnum": "campaigns.models.Campaign.Status",
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "accounts.api_auth.schema_links",  # a create's answer links to its object's operations
    ],
}

# --- Product switches -----------------------------------------------------------------------
OPENAI_API_KEY = env.str("OPENAI_API_KEY", default="")
OPENAI_BASE_URL = env.str("OPENAI_BASE_URL", default="")
WHATSAPP_GRAPH_API_VERSION = env.str("WHATSAPP_GRAPH_API_VERSION", default="v25.0")
WHATSAPP_GRAPH_BASE_URL = env.str("WHATSAPP_GRAPH_BASE_URL", default="https://graph.facebook.com")
# Seconds to wait for the Cloud API's answer once a request is written. A send whose answer does
# not come (or that fails with a 5xx) may have gone out: it is held as unknown, never re-sent
# blindly (INBOX_SEND_RECONCILE_SECONDS, CAMPAIGN_RECONCILE_SECONDS).
WHATSAPP_READ_TIMEOUT_SECONDS = env.float("WHATSAPP_READ_TIMEOUT_SECONDS", default=15.0)
# How long an inbox message whose send is unknown waits for a status webhook (they echo the
# send's callback data) before it is sent again.
INBOX_SEND_RECONCILE_SECONDS = env.float("INBOX_SEND_RECONCILE_SECONDS", default=120.0)
# Campaign sends (campaigns.dispatch): claimed rows and a campaign's dispatcher hold a lease
# renewed by the dispatcher's heartbeat every third of it, so a killed worker's campaign resumes
# within a minute: the lease runs out, then its claimed rows wait CAMPAIGN_CLAIM_RECONCILE_SECONDS
# for a status webhook proving they went out. A send that failed ambiguously (5xx, no answer)
# waits CAMPAIGN_RECONCILE_SECONDS: WhatsApp was in trouble, its webhooks may come late.
CAMPAIGN_LEASE_SECONDS = env.float("CAMPAIGN_LEASE_SECONDS", default=15.0)
CAMPAIGN_CLAIM_RECONCILE_SECONDS = env.float("CAMPAIGN_CLAIM_RECONCILE_SECONDS", default=30.0)
CAMPAIGN_RECONCILE_SECONDS = env.float("CAMPAIGN_RECONCILE_SECONDS", default=600.0)
# The in-product sandbox (a local Cloud API emulator) is on in development and demos; it is
# served at /sandbox/graph by the same process (its phone page at /sandbox/phone/). Tests and benchmarks point SANDBOX_URL at a standalone
# one (`manage.py whatsapp_sandbox`). Sandbox numbers' webhooks go to SANDBOX_WEBHOOK_BASE_URL.
# Left empty, both follow the address the server listens on (integrations.sandbox_links); a
# worker in its own process (django-q) needs them or PUBLIC_BASE_URL. The control API wants
# SANDBOX_CONTROL_TOKEN in X-Sandbox-Token (empty: derived from SECRET_KEY).
SANDBOX_ENABLED = env.bool("SANDBOX_ENABLED", default=DEBUG)
SANDBOX_URL = env.str("SANDBOX_URL", default="")
SANDBOX_WEBHOOK_BASE_URL = env.str("SANDBOX_WEBHOOK_BASE_URL", default="")
SANDBOX_CONTROL_TOKEN = env.str("SANDBOX_CONTROL_TOKEN", default="")
WEBHOOK_MAX_BODY_BYTES = env.int("WEBHOOK_MAX_BODY_BYTES", default=3 * 1024 * 1024)
# Days the raw webhook log (names, phones, message texts as Meta sent them) is kept once a
# delivery is processed (or given up on); messages themselves follow the retention policy.
WEBHOOK_LOG_RETENTION_DAYS = env.int("WEBHOOK_LOG_RETENTION_DAYS", default=7)
if WEBHOOK_LOG_RETENTION_DAYS < 1:
    raise ImproperlyConfigured("WEBHOOK_LOG_RETENTION_DAYS must be at least 1")
INBOUND_MEDIA_MAX_BYTES = env.int("INBOUND_MEDIA_MAX_BYTES", default=100 * 1024 * 1024)
# Public base URL used to build webhook URLs shown to owners (defaults to the request host).
PUBLIC_BASE_URL = env.str("PUBLIC_BASE_URL", default="")
WORKER_HEARTBEAT_MAX_AGE = env.int("WORKER_HEARTBEAT_MAX_AGE", default=180)
# Bearer token for Prometheus scrapers of /metrics (superusers may read it signed in).
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
# Contact imports (campaigns.imports): rows per committed chunk, and how long a worker holds an
# import before another may resume it from its checkpoint.
CONTACT_IMPORT_CHUNK = env.int("CONTACT_IMPORT_CHUNK", default=1000)
CONTACT_IMPORT_LEASE_SECONDS = env.int("CONTACT_IMPORT_LEASE_SECONDS", default=60)

LOG_FORMAT = env.str("LOG_FORMAT", default="plain")  # "json": one JSON object per line
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "scrub": {"()": "config.logs.ScrubSecrets"},
        "context": {"()": "config.logs.Context"},
    },
    "formatters": {
        "plain": {
            "()": "config.logs.UTCFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s%(trace)s %(message)s",
        },
        "json": {"()": "config.logs.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json" if LOG_FORMAT == "json" else "plain",
            "filters": ["scrub", "context"],
        }
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.channels.server": {"level": "WARNING"},
        "daphne": {"level": "WARNING"},
        "django-q": {"level": "WARNING"},  # django-q2's own logger: not one line per task
        # kernel.tracing logs one line per request, with its id ("porfin.request").
        "uvicorn.access": {"handlers": ["console"], "propagate": False, "level": "WARNING"},
    },
}
# Errors by e-mail to ADMINS ("Name <a@b>, ...") when set; Sentry when SENTRY_DSN is set.
SENTRY_DSN = env.str("SENTRY_DSN", default="")
if SENTRY_DSN:
    from config.logs import sentry_init

    sentry_init(
        SENTRY_DSN,
        environment=env.str("SENTRY_ENVIRONMENT", default="production"),
        traces_sample_rate=env.float("SENTRY_TRACES_SAMPLE_RATE", default=0.0),
    )
ADMINS = [
    tuple(part.strip(" >") for part in admin.split("<")) if "<" in admin else ("", admin)
    for admin in env.list("ADMINS", default=[])
]
if ADMINS:
    LOGGING["handlers"]["mail_admins"] = {
        "class": "django.utils.log.AdminEmailHandler",
        "level": "ERROR",
        "filters": ["scrub"],
    }
    LOGGING["root"]["handlers"].append("mail_admins")
# Outbound-URL policy (integrations.egress) for addresses users type: webhooks, AI base URLs.
# EGRESS_ALLOW_PRIVATE lets them reach private and loopback addresses: development, tests and
# the embedded sandbox only (it follows DEBUG; the old OUTGOING_WEBHOOKS_ALLOW_PRIVATE still
# sets it). AI_PRIVATE_BASE_URLS names self-hosted model servers on a private network that
# organizations may use as their base URL (comma-separated URLs; host and port must match).
EGRESS_ALLOW_PRIVATE = env.bool(
    "EGRESS_ALLOW_PRIVATE", default=env.bool("OUTGOING_WEBHOOKS_ALLOW_PRIVATE", default=DEBUG)
)
AI_PRIVATE_BASE_URLS = env.list("AI_PRIVATE_BASE_URLS", default=[])
# WhatsApp Web numbers through Evolution API (integrations.providers.evolution): the
# installation's server, used by organizations that configure none of their own (optional).
# The installation's server may be on a private network (it is the operator's); servers that
# organizations type are held to the egress policy unless listed in EVOLUTION_PRIVATE_URLS.
# Without EVOLUTION_API_URL and with the sandbox on, the embedded Evolution emulator is used
# (served by this process at /sandbox/evolution). EVOLUTION_WEBHOOK_BASE_URL is where Evolution
# reaches Porfin (default PUBLIC_BASE_URL, else SANDBOX_WEBHOOK_BASE_URL).
EVOLUTION_API_URL = env.str("EVOLUTION_API_URL", default="")
EVOLUTION_API_KEY = env.str("EVOLUTION_API_KEY", default="")
EVOLUTION_PRIVATE_URLS = env.list("EVOLUTION_PRIVATE_URLS", default=[])
SANDBOX_EVOLUTION_URL = env.str(
    "SANDBOX_EVOLUTION_URL", default=SANDBOX_URL.rsplit("/sandbox/", 1)[0] + "/sandbox/evolution"
)
SANDBOX_EVOLUTION_KEY = env.str("SANDBOX_EVOLUTION_KEY", default="sandbox-evolution-key")
EVOLUTION_WEBHOOK_BASE_URL = env.str(
    "EVOLUTION_WEBHOOK_BASE_URL", default=PUBLIC_BASE_URL or SANDBOX_WEBHOOK_BASE_URL
)
# Conservative pacing for WhatsApp Web numbers (no official rate tier; bulk sends risk a ban):
# a random gap between campaign sends and a daily cap of business-initiated messages.
EVOLUTION_GAP_MIN_SECONDS = env.float("EVOLUTION_GAP_MIN_SECONDS", default=20.0)
EVOLUTION_GAP_MAX_SECONDS = env.float("EVOLUTION_GAP_MAX_SECONDS", default=60.0)
EVOLUTION_DAILY_CAP = env.int("EVOLUTION_DAILY_CAP", default=200)
# Group chats (@g.us) on WhatsApp Web numbers are ignored unless this is on.
EVOLUTION_GROUPS = env.bool("EVOLUTION_GROUPS", default=False)
