"""A whole Django project in one file, on Qactuar: `qactuar django_app:application`.

Django's own ASGI handler serves it; a view and a form protected by CSRF.
"""

import django
from django.conf import settings

settings.configure(
    DEBUG=False,
    SECRET_KEY="change-me: an example, not a secret",
    ALLOWED_HOSTS=["*"],
    ROOT_URLCONF=__name__,
    MIDDLEWARE=["django.middleware.csrf.CsrfViewMiddleware"],
    LOGGING_CONFIG=None,
)
django.setup()

from django.core.asgi import get_asgi_application  # noqa: E402
from django.http import HttpRequest, HttpResponse  # noqa: E402
from django.middleware.csrf import get_token  # noqa: E402
from django.urls import path  # noqa: E402
from django.utils.html import escape  # noqa: E402


def index(request: HttpRequest) -> HttpResponse:
    return HttpResponse("Hello from Django", content_type="text/plain")


def guestbook(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        return HttpResponse(f"Thanks, {escape(request.POST.get('name', ''))}!")
    return HttpResponse(f'<form method="post"><input type="hidden" name="csrfmiddlewaretoken" '
                        f'value="{escape(get_token(request))}"><input name="name">'
                        f'<button>Sign</button></form>')


urlpatterns = [path("", index), path("guestbook", guestbook)]

application = get_asgi_application()
