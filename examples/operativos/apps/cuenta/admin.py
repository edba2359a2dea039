from django.contrib import admin

from .models import Perfil


@admin.register(Perfil)
class PerfilAdmin(admin.ModelAdmin):
    list_display = ("usuario", "telefono")
    list_select_related = ("usuario",)
    raw_id_fields = ("usuario",)
