"""The Django scenario's app: one async view returning the JSON payload, through
Django's own ASGI handler (a one-module project: settings, URLconf, view).

Its own module so that the other apps do not need Django installed.  Settings
are the few a small production app has (no debug, no database access in the
view, the default middleware of a new project minus sessions and messages,
which need a database); the view is `async`, so no thread hop is measured.
"""

from __future__ import annotations

import django
from django.conf import settings
from django.core.handlers.asgi import ASGIHandler
from django.http import HttpRequest, JsonResponse
from django.urls import path

from benchmarks.apps import JSON_PAYLOAD

if not settings.configured:
    settings.configure(
        DEBUG=False,
        SECRET_KEY="benchmarks-only-not-secret",
        ALLOWED_HOSTS=["*"],
        ROOT_URLCONF=__name__,
        MIDDLEWARE=[
            "django.middleware.security.SecurityMiddleware",
            "django.middleware.common.CommonMiddleware",
            "django.middleware.csrf.CsrfViewMiddleware",
            "django.middleware.clickjacking.XFrameOptionsMiddleware",
        ],
        INSTALLED_APPS=[],
        DATABASES={},
        USE_TZ=True,
        LOGGING_CONFIG=None,
    )
    django.setup(set_prefix=False)


async def json_view(request: HttpRequest) -> JsonResponse:
    return JsonResponse(JSON_PAYLOAD)


urlpatterns = [path("", json_view)]

application = ASGIHandler()
