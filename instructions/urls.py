"""Routes of the standing-instruction API under ``/api/v1/`` (no trailing slashes)."""

from django.urls import URLPattern, path

from banksim.api.routing import by_method
from instructions import api

urlpatterns: list[URLPattern] = [
    path(
        "standing-instructions",
        by_method(get=api.InstructionListApi, post=api.InstructionCreateApi),
        name="standing-instructions",
    ),
    path(
        "standing-instructions/<int:instruction_id>",
        api.InstructionDetailApi.as_view(),
        name="standing-instruction",
    ),
    path(
        "standing-instructions/<int:instruction_id>/cancel",
        api.InstructionCancelApi.as_view(),
        name="standing-instruction-cancel",
    ),
]
