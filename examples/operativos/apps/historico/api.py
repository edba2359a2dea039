from ninja import ModelSchema, Router

from .models import Registro

router = Router(tags=["historico"])

LIST_LIMIT = 100


class RegistroOut(ModelSchema):
    class Meta:
        model = Registro
        fields = ("id", "operativo", "descripcion", "registrado")


@router.get("/", response=list[RegistroOut])
def list_registros(request):
    """List the newest registros first, at most LIST_LIMIT of them."""
    # list() runs the query here, so a database error reaches the API's handler as itself and not wrapped in a
    # pydantic ValidationError raised while the response is serialized.
    return list(Registro.objects.order_by("-registrado", "-id")[:LIST_LIMIT])
