"""Test settings: the real settings, with fast hashing, captured email and inline tasks.

``DATABASE_URL``/``REDIS_URL`` still choose the backends, so the same command tests the
embedded default and PostgreSQL + Redis.
"""

from config.settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
TASK_RUNNER = env.str("TASK_RUNNER", default="inline")  # noqa: F405  (servers started by tests pass "thread")
STORAGES["staticfiles"] = {  # noqa: F405
    "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
}
MEDIA_ROOT = VAR_DIR / "test-media"  # noqa: F405

# A file (not an in-memory database) so that server processes started by tests share it.
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":  # noqa: F405
    DATABASES["default"]["TEST"] = {  # noqa: F405
        "NAME": str(VAR_DIR / env.str("TEST_SQLITE_NAME", default="test.sqlite3"))  # noqa: F405
    }

# pytest-django runs with DEBUG off; serve static files from the source folders anyway.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True

# Tests read messages in English unless they choose a language (the product default stays pt-BR).
LANGUAGE_CODE = "en"
