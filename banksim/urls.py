from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("api/v1/", include("accounts.urls")),
    path("api/v1/", include("ledger.urls")),
    path("api/v1/", include("fees.urls")),
    path("api/v1/", include("limits.urls")),
    path("api/v1/", include("audit.urls")),
    path("api/v1/", include("eod.urls")),
    path("api/v1/", include("instructions.urls")),
]

handler400 = "banksim.api.exceptions.handler400"
handler403 = "banksim.api.exceptions.handler403"
handler404 = "banksim.api.exceptions.handler404"
handler500 = "banksim.api.exceptions.handler500"
