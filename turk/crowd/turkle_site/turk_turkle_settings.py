"""Django settings of the minimal site turk runs Turkle in (``turk turkle serve``).

Turkle ships as a Django app only; this is the smallest site around it. Everything that
varies comes from the environment set by :mod:`turk.crowd.turkle_server`:
``TURK_TURKLE_STATE`` (folder of the SQLite database and the secret key),
``TURK_TURKLE_MEDIA`` (folder served at ``/media/``, optional) and
``TURK_TURKLE_HOSTS`` (extra host names, comma separated).
"""

import os
from pathlib import Path

STATE = Path(os.environ["TURK_TURKLE_STATE"])
SECRET_KEY = (STATE / "secret_key").read_text(encoding="utf-8").strip()
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "[::1]"] + [
    h for h in os.environ.get("TURK_TURKLE_HOSTS", "").split(",") if h
]
MEDIA_DIR = os.environ.get("TURK_TURKLE_MEDIA", "")

INSTALLED_APPS = [
    "turkle.apps.TurkleAppConfig",
    "djaa_list_filter2",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "guardian",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
X_FRAME_OPTIONS = "SAMEORIGIN"  # Turkle shows each task page in an iframe of its own
ROOT_URLCONF = "turk_turkle_urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.debug",
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "turkle.utils.turkle_vars",
            ]
        },
    }
]
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": str(STATE / "turkle.sqlite3"),
        "OPTIONS": {"timeout": 30},
        # A request that fails leaves nothing half-written (a batch without its tasks).
        "ATOMIC_REQUESTS": True,
    }
}
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "guardian.backends.ObjectPermissionBackend",
]
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAdminUser"],
}
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
LOGIN_URL = "/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/"
TURKLE_AUTO_ACCEPT_DEFAULT = False
TURKLE_SITE_NAME = "Turkle"
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "/static/"
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
}
