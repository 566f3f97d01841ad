"""Several operations on one path, one view per operation.

Django resolves a URL to a single callback before it looks at the HTTP method, but the API
puts e.g. ``GET /customers`` (search) and ``POST /customers`` (create) on the same path.
``by_method`` builds that callback: it hands the request, untouched, to each operation's own
view, so every operation keeps its own permissions, serializers and schema. The schema hook
``banksim.api.schema.expand_method_routes`` shows drf-spectacular the operation views.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from django.http import HttpRequest, HttpResponseBase
from rest_framework.views import APIView


class MethodDispatchApi(APIView):
    """Forward each request to the view registered for its method (405 problem otherwise)."""

    operations: ClassVar[dict[str, Callable[..., HttpResponseBase]]] = {}

    @property
    def allowed_methods(self) -> list[str]:
        return list(self.operations)

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        operation = self.operations.get(request.method or "")
        if operation is None:
            # The base dispatch authenticates first, then answers 405 as problem+json.
            return super().dispatch(request, *args, **kwargs)
        return operation(request, *args, **kwargs)


def by_method(**views: type[APIView]) -> Callable[..., HttpResponseBase]:
    """Return one URL callback dispatching on method: ``by_method(get=ListApi, post=CreateApi)``."""
    operations = {method.upper(): view.as_view() for method, view in views.items()}
    if "GET" in operations:
        operations.setdefault("HEAD", operations["GET"])
    name = "".join(view.__name__.removesuffix("Api") for view in views.values()) + "Api"
    router = type(name, (MethodDispatchApi,), {"operations": operations})
    return router.as_view()
