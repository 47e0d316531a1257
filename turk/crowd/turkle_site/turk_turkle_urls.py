"""URLs of turk's minimal Turkle site: admin, REST API, logins, Turkle, and /media/."""

from django.conf import settings
from django.contrib import admin
from django.urls import include, path, re_path
from django.views.static import serve

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", include("turkle.api.urls")),
    path("", include("django.contrib.auth.urls")),
    path("", include("turkle.urls")),
]
if settings.MEDIA_DIR:
    # The project's staged item images: Turkle hosts no media of its own.
    urlpatterns.append(
        re_path(r"^media/(?P<path>.*)$", serve, {"document_root": settings.MEDIA_DIR})
    )
