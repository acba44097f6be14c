from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("social/", include("social_django.urls", namespace="social")),
    path("recall/", include("django_recall_calendar.urls")),
]
