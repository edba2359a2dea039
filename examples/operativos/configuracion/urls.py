from django.contrib import admin
from django.urls import path, re_path

from apps.auxiliares.views import api_not_found

from .api import api

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", api.urls),
    # Must stay after api.urls: it turns every /api/ path that no API route matches into a JSON 404.
    re_path(r"^api/", api_not_found),
]
