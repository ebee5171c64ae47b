"""A minimal Django project in one module, served by Django's own ASGI handler.

Settings are made here (no manage.py, no database).  Static files are served
by the app itself through `ASGIStaticFilesHandler`, as `runserver` does.
Routes:
  GET  /hello?name=N       "Hello, N!" (plain text)
  GET  /json?...           {"framework", "query", "script_name", "reverse"} (JsonResponse)
  GET  /form               an HTML form with a CSRF token (sets the csrftoken cookie)
  POST /form               the posted fields as JSON; 403 without a valid CSRF token
  POST /upload             multipart: file "file", field "note" -> name, type, size, sha256
  GET  /stream?n=K         K lines from an async StreamingHttpResponse
  GET  /file               this module's source as a FileResponse
  GET  /crash              raises: Django's 500 page
  GET  /static/site.css    a static file
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import django
from django.conf import settings

HERE = Path(__file__).resolve().parent

settings.configure(
    DEBUG=False,
    SECRET_KEY="qactuar-tests-only-not-a-secret",
    ALLOWED_HOSTS=["*"],
    ROOT_URLCONF=__name__,
    INSTALLED_APPS=["django.contrib.staticfiles"],
    MIDDLEWARE=["django.middleware.csrf.CsrfViewMiddleware"],
    STATIC_URL="/static/",
    STATICFILES_DIRS=[HERE / "django_static"],
    DATABASES={},
    USE_TZ=True,
    LOGGING_CONFIG=None,  # leave logging to the server's LOGS
)
django.setup()

from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler  # noqa: E402
from django.core.asgi import get_asgi_application  # noqa: E402
from django.http import (  # noqa: E402
    FileResponse,
    HttpRequest,
    HttpResponse,
    JsonResponse,
    StreamingHttpResponse,
)
from django.middleware.csrf import get_token  # noqa: E402
from django.urls import path, reverse  # noqa: E402
from django.utils.html import escape  # noqa: E402


def hello(request: HttpRequest) -> HttpResponse:
    return HttpResponse(f"Hello, {request.GET.get('name', 'world')}!",
                        content_type="text/plain")


async def json_view(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"framework": "django", "query": request.GET.dict(),
                         "script_name": request.META["SCRIPT_NAME"],
                         "reverse": reverse("json")})


def form(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        return JsonResponse({"fields": {k: request.POST.getlist(k) for k in request.POST
                                        if k != "csrfmiddlewaretoken"}})
    token = escape(get_token(request))
    return HttpResponse(f'<form method="post"><input type="hidden" '
                        f'name="csrfmiddlewaretoken" value="{token}">'
                        f'<input name="title"></form>')


def upload(request: HttpRequest) -> JsonResponse:
    file = request.FILES["file"]
    content = file.read()
    return JsonResponse({"filename": file.name, "content_type": file.content_type,
                         "size": len(content), "sha256": hashlib.sha256(content).hexdigest(),
                         "note": request.POST["note"]})


async def stream(request: HttpRequest) -> StreamingHttpResponse:
    count = int(request.GET.get("n", "5"))

    async def lines() -> AsyncIterator[bytes]:
        for i in range(count):
            await asyncio.sleep(0)
            yield f"line {i}\n".encode()

    return StreamingHttpResponse(lines(), content_type="text/plain")


def file(request: HttpRequest) -> FileResponse:
    return FileResponse(open(__file__, "rb"), content_type="text/x-python")


def crash(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("the Django view crashed on purpose")


urlpatterns = [
    path("hello", hello),
    path("json", json_view, name="json"),
    path("form", form),
    path("upload", upload),
    path("stream", stream),
    path("file", file),
    path("crash", crash),
]

application = ASGIStaticFilesHandler(get_asgi_application())
