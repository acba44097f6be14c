"""URLs of the example project: its own small pages, the app's, social-auth's and the admin."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from . import views

urlpatterns = [
    path("", views.home, name="home"),
    path("meetings/", views.meetings, name="meetings"),
    path("meetings/<int:pk>/record/", views.meeting_record, name="meeting_record"),
    path(
        "accounts/login/",
        auth_views.LoginView.as_view(next_page="meetings"),
        name="login",
    ),
    path("accounts/logout/", auth_views.LogoutView.as_view(next_page="login"), name="logout"),
    path("accounts/signup/", views.signup, name="signup"),
    path("admin/", admin.site.urls),
    path("social/", include("social_django.urls", namespace="social")),
    path("recall/", include("django_recall_calendar.urls")),
]
