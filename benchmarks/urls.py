"""The app's URLs and the admin, plus the bare view the webhook benchmark compares against."""

from django.contrib import admin
from django.db import connection
from django.http import HttpRequest, HttpResponse
from django.urls import include, path
from django.views.decorators.csrf import csrf_exempt

from .wsgi import DJANGO_INSERT_EVENT_TYPE, floor_insert


@csrf_exempt
def bare(request: HttpRequest) -> HttpResponse:
    """The cheapest answer Django can give through the same middleware: the ingestion baseline."""
    return HttpResponse(status=200)


@csrf_exempt
def django_insert(request: HttpRequest) -> HttpResponse:
    """The floor's one INSERT from a Django view, through Django's connection: the least any
    Django endpoint that stores a delivery costs (no signature check, no enqueue)."""
    with connection.cursor() as cursor:
        cursor.execute(
            floor_insert(connection.vendor, "%s"),
            [request.META["HTTP_WEBHOOK_ID"], DJANGO_INSERT_EVENT_TYPE, request.body.decode()],
        )
    return HttpResponse(status=200)


urlpatterns = [
    path("admin/", admin.site.urls),
    path("bare/", bare, name="bare"),
    path("django-insert/", django_insert, name="django-insert"),
    path("recall/", include("django_recall_calendar.urls")),
]
