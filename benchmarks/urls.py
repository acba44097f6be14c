"""The app's URLs and the admin, plus the bare view the webhook benchmark compares against."""

from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.urls import include, path
from django.views.decorators.csrf import csrf_exempt


@csrf_exempt
def bare(request: HttpRequest) -> HttpResponse:
    """The cheapest answer Django can give through the same middleware: the ingestion baseline."""
    return HttpResponse(status=200)


urlpatterns = [
    path("admin/", admin.site.urls),
    path("bare/", bare, name="bare"),
    path("recall/", include("django_recall_calendar.urls")),
]
